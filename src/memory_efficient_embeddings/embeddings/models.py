"""Rating models (matrix factorisation) assembled from the compact embedding layers."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

from memory_efficient_embeddings.embeddings import backends
from memory_efficient_embeddings.embeddings.cce import CCEEmbedding
from memory_efficient_embeddings.embeddings.dhe import DHEEmbedding
from memory_efficient_embeddings.embeddings.hash_embedding import HashEmbedding
from memory_efficient_embeddings.embeddings.layers import (
    PACKAGE,
    CompactEmbedding,
    FullEmbedding,
    HashedEmbedding,
    IdLookup,
    MixedDimensionEmbedding,
    ProjectedEmbedding,
    QuotientRemainderEmbedding,
)
from memory_efficient_embeddings.embeddings.memory import embedding_variables, serving_bytes
from memory_efficient_embeddings.embeddings.robe import ROBEEmbedding
from memory_efficient_embeddings.embeddings.tt_rec import TTEmbedding

EMBEDDING_TYPES: dict[str, type[CompactEmbedding]] = {
    "full": FullEmbedding,
    "projected": ProjectedEmbedding,
    "hashed": HashedEmbedding,
    "quotient_remainder": QuotientRemainderEmbedding,
    "mixed_dimension": MixedDimensionEmbedding,
    "cce": CCEEmbedding,
    "tt_rec": TTEmbedding,
    "robe": ROBEEmbedding,
    "hash_embedding": HashEmbedding,
    "dhe": DHEEmbedding,
}

RECIPE_OUTPUT: Mapping[str, Any] = {"activation": "sigmoid", "min_rating": 0.0, "max_rating": 5.0}


def make_embedding(
    spec: Mapping[str, Any], num_ids: int, output_dim: int, name: str
) -> CompactEmbedding:
    """Build a compact embedding layer from a config dict.

    Args:
        spec: ``{"type": <one of EMBEDDING_TYPES>, **layer kwargs}``, e.g.
            ``{"type": "quotient_remainder", "num_buckets": 120, "quotient_rows": 120}`` or
            ``{"type": "mixed_dimension", "block_sizes": [...], "block_dims": [...]}``.
        num_ids: vocabulary size (without OOV).
        output_dim: width of the returned vectors.
        name: layer name.
    """
    kwargs = dict(spec)
    kind = kwargs.pop("type", None)
    if kind not in EMBEDDING_TYPES:
        raise ValueError(
            f"Unknown embedding type {kind!r}; valid types: {sorted(EMBEDDING_TYPES)}."
        )
    for reserved in ("num_ids", "output_dim", "name"):
        if reserved in kwargs:
            raise ValueError(f"`{reserved}` is set by the model, not by the embedding spec.")
    return EMBEDDING_TYPES[kind](num_ids=num_ids, output_dim=output_dim, name=name, **kwargs)


@keras.saving.register_keras_serializable(package=PACKAGE)
class DotScore(keras.layers.Layer):
    """``score = <user, movie> [+ user bias + movie bias + global bias]``, shape ``(batch,)``.

    Call with ``[user_vectors, movie_vectors, *bias_columns]`` (bias columns of shape
    ``(batch, 1)``).

    Args:
        use_global_bias: add one trainable scalar (initialised to 0).
    """

    def __init__(self, use_global_bias: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.use_global_bias = bool(use_global_bias)

    def build(self, input_shape: Any = None) -> None:
        if self.use_global_bias:
            self.global_bias = self.add_weight(shape=(), initializer="zeros", name="global_bias")
        self.built = True

    def call(self, inputs: Sequence[Any]) -> Any:
        user, movie, *biases = inputs
        score = ops.sum(user * movie, axis=-1)
        for bias in biases:
            score = score + ops.squeeze(bias, axis=-1)
        if self.use_global_bias:
            score = score + self.global_bias
        return score

    def compute_output_shape(self, input_shape: Any) -> tuple:
        return tuple(input_shape[0][:-1])

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "use_global_bias": self.use_global_bias}


@keras.saving.register_keras_serializable(package=PACKAGE)
class RatingOutput(keras.layers.Layer):
    """Map a score to a rating.

    Args:
        activation: ``"sigmoid"`` → ``min + (max - min) · sigmoid(score)`` (the recipe is
            ``5 · sigmoid``: min 0, max 5); ``"linear"`` → the score unchanged.
        min_rating, max_rating: the sigmoid's range (ignored by ``linear``).
    """

    def __init__(
        self,
        activation: str = "sigmoid",
        min_rating: float = 0.0,
        max_rating: float = 5.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if activation not in ("sigmoid", "linear"):
            raise ValueError(f"`activation` must be 'sigmoid' or 'linear'; got {activation!r}.")
        if max_rating <= min_rating:
            raise ValueError("`max_rating` must be greater than `min_rating`.")
        self.activation = activation
        self.min_rating = float(min_rating)
        self.max_rating = float(max_rating)

    def call(self, score: Any) -> Any:
        if self.activation == "linear":
            return score
        return self.min_rating + (self.max_rating - self.min_rating) * ops.sigmoid(score)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "activation": self.activation,
            "min_rating": self.min_rating,
            "max_rating": self.max_rating,
        }


def build_rating_model(
    num_users: int,
    num_movies: int,
    user_embedding: Mapping[str, Any],
    movie_embedding: Mapping[str, Any],
    embedding_dim: int,
    *,
    use_biases: bool = False,
    bias_l2: float = 0.0,
    output: Mapping[str, Any] = RECIPE_OUTPUT,
) -> keras.Model:
    """Matrix-factorisation rating model on integer ids.

    Inputs: dict ``{"user_id": int32 (batch,), "movie_id": int32 (batch,)}`` of indices as
    produced by :class:`IdLookup` (index ``num_*`` = OOV → zero vector and zero bias).
    Output: ratings of shape ``(batch,)``.

    Args:
        user_embedding, movie_embedding: specs for :func:`make_embedding`.
        embedding_dim: width of both sides' vectors.
        use_biases: add per-user, per-movie (``FullEmbedding(n, 1)``, zero-initialised) and
            global biases. Off by default, as in the keras-io recipe; the project's models
            always pass their validated ``model.use_biases`` (default true).
        bias_l2: L2 on the looked-up per-id biases, per rating (an activity regularizer, so only
            the batch's rows get a gradient); 0 is off.
        output: kwargs of :class:`RatingOutput`.
    """
    user_id = keras.Input(shape=(), dtype="int32", name="user_id")
    movie_id = keras.Input(shape=(), dtype="int32", name="movie_id")
    user_vectors = make_embedding(user_embedding, num_users, embedding_dim, "user_embedding")(
        user_id
    )
    movie_vectors = make_embedding(movie_embedding, num_movies, embedding_dim, "movie_embedding")(
        movie_id
    )
    terms = [user_vectors, movie_vectors]
    if use_biases:
        regularizer = keras.regularizers.L2(bias_l2) if bias_l2 else None
        for num_ids, ids, name in (
            (num_users, user_id, "user_bias"),
            (num_movies, movie_id, "movie_bias"),
        ):
            bias = FullEmbedding(num_ids, 1, "zeros", activity_regularizer=regularizer, name=name)
            terms.append(bias(ids))
    score = DotScore(use_global_bias=use_biases, name="score")(terms)
    rating = RatingOutput(**dict(output), name="rating")(score)
    return keras.Model(
        inputs={"user_id": user_id, "movie_id": movie_id}, outputs=rating, name="rating_model"
    )


def embedding_parameter_count(model: keras.Model) -> int:
    """Parameters held by :class:`CompactEmbedding` layers (embedding and bias tables)."""
    return sum(math.prod(variable.shape) for variable in embedding_variables(model))


def embedding_bytes(model: keras.Model) -> int:
    """Bytes held by the :class:`CompactEmbedding` layers' variables, at their stored dtypes.

    The same as :func:`~memory_efficient_embeddings.embeddings.memory.serving_bytes`: after
    ``model.quantize("int8")`` this counts the int8 tables and their float32 scales, so it
    measures what quantization really saves rather than assuming one byte per parameter.
    """
    return serving_bytes(model)


_TRAILING_NUMBER = re.compile(r"^(\D*?)\d+$")


def _id_prefix(vocabulary: Sequence[str]) -> str | None:
    """The prefix before the number in ids like ``user_42`` (None when ids have no such form)."""
    match = _TRAILING_NUMBER.match(str(vocabulary[0])) if len(vocabulary) else None
    return match.group(1) if match and match.group(1) else None


def string_id_array(values: Any, name: str, prefix: str | None = None) -> np.ndarray:
    """Raw ids as the object array of str that Keras takes; a clear error for anything else.

    Accepts a str, a list or tuple, a numpy array (unicode, bytes or object) or a pandas Series
    or Index of strings. Integers, or digit-only strings when ids look like ``<prefix><number>``,
    raise a ValueError naming the expected form.
    """
    if isinstance(values, (str, bytes)):
        values = [values]
    raw = np.asarray(values.to_numpy() if hasattr(values, "to_numpy") else values).reshape(-1)
    if raw.dtype.kind == "S":
        raw = np.char.decode(raw, "utf-8")
    array = raw.astype(object)
    example = f"'{prefix}42'" if prefix else "'user_42'"
    for value in array[:1000].tolist():  # a sample is enough to tell the kind of ids
        if isinstance(value, (int, float)):
            raise ValueError(
                f"`{name}` holds numbers (e.g. {value!r}); this model takes string ids such as "
                f"{example}: pass e.g. [f'{prefix or 'user_'}{{i}}' for i in ids]."
            )
        if not isinstance(value, str):
            raise ValueError(
                f"`{name}` holds {type(value).__name__} values; this model takes string ids such "
                f"as {example} (a list, numpy array or pandas Series of str)."
            )
        if prefix and value.isdigit():
            raise ValueError(
                f"`{name}` holds {value!r}, but this model's ids look like {example}: pass "
                f"'{prefix}{value}' (a bare number is not an id and would score as unknown)."
            )
    return array


@keras.saving.register_keras_serializable(package=PACKAGE)
class StringIdModel(keras.Model):
    """A rating model on raw string ids: ``predict`` takes what a user naturally passes.

    ``{"user_id": ..., "movie_id": ...}`` as lists, numpy unicode arrays or pandas Series of
    ``user_<id>`` / ``movie_<id>`` strings; unknown ids score with the OOV fallback; integers
    or bare numbers get a ValueError naming the expected form.

    On TensorFlow the lookups are in the graph. JAX holds no strings in tensors: there, calling
    the model or ``predict`` maps the ids with each :class:`IdLookup`'s vocabulary in numpy and
    runs the integer model (:attr:`integer_model`); ``fit`` and ``evaluate`` refuse (train the
    integer model on indices, as the project does).
    """

    LOOKUPS = {"user_id": "user_lookup", "movie_id": "movie_lookup"}

    # Keras' default of 32 rows per batch makes a million-row call take minutes (197 s against
    # 0.6 s at 65,536, measured on an ml-1m-sized model): a lookup model is cheap per row.
    default_predict_batch_size = 65_536

    @property
    def integer_model(self) -> keras.Model:
        """The wrapped rating model on integer indices (weights shared with this one)."""
        return next(layer for layer in self.layers if isinstance(layer, keras.Model))

    def _indices(self, x: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """String ids to vocabulary indices in numpy, each side by its own lookup layer."""
        return {key: self.get_layer(self.LOOKUPS[key]).indices_of(x[key]) for key in self.LOOKUPS}

    def call(self, inputs: Any, training: Any = None, mask: Any = None) -> Any:
        strings_in_numpy = backends.backend() != "tensorflow" and isinstance(inputs, Mapping)
        if strings_in_numpy and not any(
            isinstance(value, keras.KerasTensor) or ops.is_tensor(value)
            for value in inputs.values()
        ):
            return self.integer_model(self._indices(inputs), training=training)
        return super().call(inputs, training=training, mask=mask)

    def predict(self, x: Any, *args: Any, **kwargs: Any) -> np.ndarray:
        if isinstance(x, Mapping):
            x = {key: self._ids(key, values) for key, values in x.items()}
            self._check_inputs(x)
        if not args and kwargs.get("batch_size") is None:
            kwargs["batch_size"] = self.default_predict_batch_size
        if backends.backend() != "tensorflow" and isinstance(x, Mapping):
            return self.integer_model.predict(self._indices(x), *args, **kwargs)
        return super().predict(x, *args, **kwargs)

    def fit(self, *args: Any, **kwargs: Any) -> Any:
        backends.require_tensorflow(
            "Training a string-id model (StringLookup in the graph)",
            "Train its integer_model on vocabulary indices instead (IdLookup.indices_of).",
        )
        return super().fit(*args, **kwargs)

    def evaluate(self, *args: Any, **kwargs: Any) -> Any:
        backends.require_tensorflow(
            "Evaluating a string-id model with Keras' evaluate",
            "Score it with predict, or evaluate its integer_model on vocabulary indices.",
        )
        return super().evaluate(*args, **kwargs)

    def _check_inputs(self, x: Mapping[str, Any]) -> None:
        """A clear error for missing or unknown keys, empty inputs and unequal lengths."""
        expected = {"user_id", "movie_id"}
        if set(x) != expected:
            missing, unknown = sorted(expected - set(x)), sorted(set(x) - expected)
            raise ValueError(
                "predict takes {'user_id': [...], 'movie_id': [...]}"
                + (f"; missing: {missing}" if missing else "")
                + (f"; unknown keys: {unknown}" if unknown else "")
                + "."
            )
        lengths = {key: int(ops.shape(values)[0]) for key, values in x.items()}
        if lengths["user_id"] != lengths["movie_id"]:
            raise ValueError(
                f"user_id has {lengths['user_id']} ids but movie_id has {lengths['movie_id']}: "
                "predict scores aligned (user, movie) pairs, so both need the same length."
            )
        if lengths["user_id"] == 0:
            raise ValueError(
                "predict got no ids (user_id and movie_id are empty): nothing to score."
            )

    def _ids(self, key: str, values: Any) -> Any:
        if ops.is_tensor(values):
            return values  # already a tensor: Keras takes it as it is
        lookup = self.LOOKUPS.get(key)
        names = {layer.name for layer in self.layers}
        prefix = _id_prefix(self.get_layer(lookup).vocabulary) if lookup in names else None
        return string_id_array(values, key, prefix)


def with_string_ids(
    model: keras.Model, user_vocabulary: Sequence[str], movie_vocabulary: Sequence[str]
) -> keras.Model:
    """Wrap an integer-id rating model so that it takes raw string ids (weights are shared).

    Inputs: dict ``{"user_id": string (batch,), "movie_id": string (batch,)}``; unknown ids map to
    the OOV index (zero vector) instead of failing. ``predict`` accepts lists, numpy unicode
    arrays and pandas Series (see :class:`StringIdModel`).
    """
    user_id = keras.Input(shape=(), dtype="string", name="user_id")
    movie_id = keras.Input(shape=(), dtype="string", name="movie_id")
    user_index = IdLookup(list(user_vocabulary), name="user_lookup")(user_id)
    movie_index = IdLookup(list(movie_vocabulary), name="movie_lookup")(movie_id)
    rating = model({"user_id": user_index, "movie_id": movie_index})
    return StringIdModel(
        inputs={"user_id": user_id, "movie_id": movie_id},
        outputs=rating,
        name=f"{model.name}_string_ids",
    )
