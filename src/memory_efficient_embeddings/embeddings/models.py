"""Rating models (matrix factorisation) assembled from the compact embedding layers."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal, get_args

import keras
import numpy as np
from keras import ops

from memory_efficient_embeddings.embeddings import backends
from memory_efficient_embeddings.embeddings.cce import CCEEmbedding
from memory_efficient_embeddings.embeddings.dhe import DHEEmbedding
from memory_efficient_embeddings.embeddings.hash_embedding import HashEmbedding
from memory_efficient_embeddings.embeddings.id_inputs import (
    IdVocabularies,
    cached_vocabularies,
    id_pairs,
)
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

# Where the per-id biases live: their own FullEmbedding(n, 1) tables ("separate"), or column 0 of
# each side's embedding layer, built one column wider ("in_embedding"), so that a compact layer
# compresses the biases with the vectors. The parameter schema reads the allowed values here.
BiasLayout = Literal["separate", "in_embedding"]
BIAS_LAYOUTS = get_args(BiasLayout)


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


@keras.saving.register_keras_serializable(package=PACKAGE)
class ColumnSlice(keras.layers.Layer):
    """Columns ``[start, stop)`` of the last axis (``stop`` None: to the end).

    Splits an ``in_embedding`` side's rows into its bias (column 0) and its vector (columns 1:),
    each with its own activity regularizer, as the separate bias table and the embedding layer
    have theirs. A width-1 row gives a vector of width 0 (a biases-only model).
    """

    def __init__(self, start: int, stop: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise ValueError(f"`start` must be a non-negative integer; got {start!r}.")
        if stop is not None and (isinstance(stop, bool) or not isinstance(stop, int)):
            raise ValueError(f"`stop` must be an integer or None; got {stop!r}.")
        if stop is not None and stop < start:
            raise ValueError(f"`stop` ({stop}) must not be below `start` ({start}).")
        self.start = start
        self.stop = stop

    def call(self, inputs: Any) -> Any:
        return inputs[..., self.start : self.stop]

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        width = input_shape[-1]
        stop = width if self.stop is None else min(self.stop, width)
        return (*input_shape[:-1], max(stop - self.start, 0))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "start": self.start, "stop": self.stop}


def build_rating_model(
    num_users: int,
    num_movies: int,
    user_embedding: Mapping[str, Any],
    movie_embedding: Mapping[str, Any],
    embedding_dim: int,
    *,
    use_biases: bool = False,
    bias_l2: float = 0.0,
    embedding_l2: float = 0.0,
    bias_layout: BiasLayout = "separate",
    output: Mapping[str, Any] = RECIPE_OUTPUT,
) -> keras.Model:
    """Matrix-factorisation rating model on integer ids.

    Inputs: dict ``{"user_id": int32 (batch,), "movie_id": int32 (batch,)}`` of indices as
    produced by :class:`IdLookup` (index ``num_*`` = OOV → zero vector and zero bias).
    Output: ratings of shape ``(batch,)``.

    Args:
        user_embedding, movie_embedding: specs for :func:`make_embedding`.
        embedding_dim: width of both sides' vectors (0: biases only, with ``in_embedding``).
        use_biases: add per-user, per-movie and global biases. Off by default, as in the keras-io
            recipe; the project's models always pass their validated ``model.use_biases``
            (default true).
        bias_l2: L2 on the looked-up per-id biases, per rating (an activity regularizer, so only
            the batch's rows get a gradient); 0 is off.
        embedding_l2: the same on the looked-up vectors; 0 is off.
        bias_layout: ``"separate"``: zero-initialised ``FullEmbedding(n, 1)`` bias tables beside
            the embeddings (1 float per id per side). ``"in_embedding"``: each side's embedding
            layer is built ``embedding_dim + 1`` wide; column 0 is the id's bias, columns 1: its
            vector, so a compact layer compresses the biases too. The specs then describe that
            wider layer (a mixed-dimension spec's ``block_dims`` count the bias column). Without
            ``use_biases`` both layouts are the same model.
        output: kwargs of :class:`RatingOutput`.
    """
    if bias_layout not in BIAS_LAYOUTS:
        raise ValueError(f"`bias_layout` must be one of {BIAS_LAYOUTS}; got {bias_layout!r}.")
    in_embedding = use_biases and bias_layout == "in_embedding"
    if embedding_dim == 0 and not in_embedding:
        raise ValueError(
            "`embedding_dim` 0 (no vectors) needs `use_biases` with `bias_layout='in_embedding'`: "
            "the biases are then all the model holds."
        )
    vector_l2 = keras.regularizers.L2(embedding_l2) if embedding_l2 else None
    bias_regularizer = keras.regularizers.L2(bias_l2) if bias_l2 else None
    user_id = keras.Input(shape=(), dtype="int32", name="user_id")
    movie_id = keras.Input(shape=(), dtype="int32", name="movie_id")
    sides = (
        (user_embedding, num_users, user_id, "user"),
        (movie_embedding, num_movies, movie_id, "movie"),
    )
    if in_embedding:
        # One layer holds both; the slices carry the regularizers that the two layers of the
        # separate layout carry, so the loss is the same function of the same numbers.
        rows = [
            make_embedding(spec, num_ids, embedding_dim + 1, f"{side}_embedding")(ids)
            for spec, num_ids, ids, side in sides
        ]
        slices = [
            (
                ColumnSlice(1, None, activity_regularizer=vector_l2, name=f"{side}_vector")(row),
                ColumnSlice(0, 1, activity_regularizer=bias_regularizer, name=f"{side}_bias")(row),
            )
            for row, (_, _, _, side) in zip(rows, sides, strict=True)
        ]
        terms = [vector for vector, _ in slices] + [bias for _, bias in slices]
    else:
        terms = [
            make_embedding(
                {**spec, "activity_regularizer": vector_l2} if vector_l2 else spec,
                num_ids,
                embedding_dim,
                f"{side}_embedding",
            )(ids)
            for spec, num_ids, ids, side in sides
        ]
        if use_biases:
            for _, num_ids, ids, side in sides:
                bias = FullEmbedding(
                    num_ids, 1, "zeros", activity_regularizer=bias_regularizer, name=f"{side}_bias"
                )
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


@keras.saving.register_keras_serializable(package=PACKAGE)
class StringIdModel(keras.Model):
    """A rating model on raw string ids: every entry point takes what a user naturally passes.

    ``predict``, ``predict_on_batch`` and ``model(x)`` take ``{"user_id": ..., "movie_id": ...}``
    (lists, numpy arrays or pandas Series of ``user_<id>`` / ``movie_<id>`` strings) or a pandas
    DataFrame with those columns; unknown ids score with the OOV fallback. Anything else (numbers,
    missing or empty ids, bare numbers, swapped columns, a tuple, wrong shapes) gets one
    :class:`~memory_efficient_embeddings.embeddings.id_inputs.PredictionInputError` naming the
    column and row (see :func:`~memory_efficient_embeddings.embeddings.id_inputs.id_pairs`).

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

    def _strings_in_numpy(self, x: Any) -> bool:
        """Whether ``x`` holds string ids to map in numpy (any backend but TensorFlow)."""
        return (
            backends.backend() != "tensorflow"
            and isinstance(x, Mapping)
            and not any(
                isinstance(value, keras.KerasTensor) or ops.is_tensor(value) for value in x.values()
            )
        )

    def call(self, inputs: Any, training: Any = None, mask: Any = None) -> Any:
        if self._strings_in_numpy(inputs):
            return self.integer_model(self._indices(inputs), training=training)
        return super().call(inputs, training=training, mask=mask)

    def predict(self, x: Any, *args: Any, **kwargs: Any) -> np.ndarray:
        x = self.checked_ids(x, "predict")
        if not args and kwargs.get("batch_size") is None:
            kwargs["batch_size"] = self.default_predict_batch_size
        if self._strings_in_numpy(x):
            return self.integer_model.predict(self._indices(x), *args, **kwargs)
        return super().predict(x, *args, **kwargs)

    def predict_on_batch(self, x: Any) -> np.ndarray:
        x = self.checked_ids(x, "predict_on_batch")
        if self._strings_in_numpy(x):
            return self.integer_model.predict_on_batch(self._indices(x))
        return super().predict_on_batch(x)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # Keras calls the model on tensors inside predict and fit: id_pairs passes them through.
        if args:
            args = (self.checked_ids(args[0], "model(x)"), *args[1:])
        elif "inputs" in kwargs:
            kwargs["inputs"] = self.checked_ids(kwargs["inputs"], "model(x)")
        return super().__call__(*args, **kwargs)

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

    def checked_ids(self, x: Any, entry: str) -> Any:
        """``x`` as checked ``{"user_id": ..., "movie_id": ...}`` arrays (see ``id_pairs``)."""
        return id_pairs(x, self._id_vocabularies(), entry)

    def _id_vocabularies(self) -> IdVocabularies | None:
        """The lookups' vocabularies, indexed once per model (None without the lookup layers)."""
        lookups = {layer.name: layer for layer in self.layers if isinstance(layer, IdLookup)}
        users, movies = lookups.get("user_lookup"), lookups.get("movie_lookup")
        return cached_vocabularies(
            self,
            users.vocabulary if users is not None else None,
            movies.vocabulary if movies is not None else None,
        )


def with_string_ids(
    model: keras.Model, user_vocabulary: Sequence[str], movie_vocabulary: Sequence[str]
) -> keras.Model:
    """Wrap an integer-id rating model so that it takes raw string ids (weights are shared).

    Inputs: dict ``{"user_id": string (batch,), "movie_id": string (batch,)}``; unknown ids map to
    the OOV index (zero vector) instead of failing. Every entry point accepts lists, numpy arrays,
    pandas Series and DataFrames, and refuses bad ids clearly (see :class:`StringIdModel`).
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
