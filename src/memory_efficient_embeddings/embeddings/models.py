"""Rating models (matrix factorisation) assembled from the compact embedding layers."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import keras
import numpy as np
from keras import ops

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


@keras.saving.register_keras_serializable(package=PACKAGE)
class StringIdModel(keras.Model):
    """A rating model on raw string ids: every entry point takes what a user naturally passes.

    ``predict``, ``predict_on_batch`` and ``model(x)`` take ``{"user_id": ..., "movie_id": ...}``
    (lists, numpy arrays or pandas Series of ``user_<id>`` / ``movie_<id>`` strings) or a pandas
    DataFrame with those columns; unknown ids score with the OOV fallback. Anything else (numbers,
    missing or empty ids, bare numbers, swapped columns, a tuple, wrong shapes) gets one
    :class:`~memory_efficient_embeddings.embeddings.id_inputs.PredictionInputError` naming the
    column and row (see :func:`~memory_efficient_embeddings.embeddings.id_inputs.id_pairs`).
    """

    # Keras' default of 32 rows per batch makes a million-row call take minutes (197 s against
    # 0.6 s at 65,536, measured on an ml-1m-sized model): a lookup model is cheap per row.
    default_predict_batch_size = 65_536

    def predict(self, x: Any, *args: Any, **kwargs: Any) -> np.ndarray:
        x = self.checked_ids(x, "predict")
        if not args and kwargs.get("batch_size") is None:
            kwargs["batch_size"] = self.default_predict_batch_size
        return super().predict(x, *args, **kwargs)

    def predict_on_batch(self, x: Any) -> np.ndarray:
        return super().predict_on_batch(self.checked_ids(x, "predict_on_batch"))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        # Keras calls the model on tensors inside predict and fit: id_pairs passes them through.
        if args:
            args = (self.checked_ids(args[0], "model(x)"), *args[1:])
        elif "inputs" in kwargs:
            kwargs["inputs"] = self.checked_ids(kwargs["inputs"], "model(x)")
        return super().__call__(*args, **kwargs)

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
