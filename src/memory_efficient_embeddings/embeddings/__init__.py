"""Compact embedding layers for Keras 3 (no Kedro dependency): lift this package as is.

They run on Keras' TensorFlow and JAX backends alike (``backends.py``); under JAX, importing the
package switches on 64-bit integers, which the hashed layers need.
"""

from memory_efficient_embeddings.embeddings import backends
from memory_efficient_embeddings.embeddings.blocks import (
    PopularityBlocks,
    alpha_power_dims,
    popularity_blocks,
)
from memory_efficient_embeddings.embeddings.cce import CCEEmbedding, CCEReclusterCallback
from memory_efficient_embeddings.embeddings.dhe import DHEEmbedding
from memory_efficient_embeddings.embeddings.hash_embedding import HashEmbedding
from memory_efficient_embeddings.embeddings.layers import (
    CompactEmbedding,
    FullEmbedding,
    HashedEmbedding,
    IdLookup,
    MixedDimensionEmbedding,
    ProjectedEmbedding,
    QuotientRemainderEmbedding,
)
from memory_efficient_embeddings.embeddings.memory import serving_bytes, training_bytes
from memory_efficient_embeddings.embeddings.mlet import fold_projected
from memory_efficient_embeddings.embeddings.models import (
    BIAS_LAYOUTS,
    EMBEDDING_TYPES,
    ColumnSlice,
    DotScore,
    RatingOutput,
    build_rating_model,
    embedding_bytes,
    embedding_parameter_count,
    make_embedding,
    with_string_ids,
)
from memory_efficient_embeddings.embeddings.optimizers import LazyAdam, RowWiseAdagrad
from memory_efficient_embeddings.embeddings.robe import ROBEEmbedding
from memory_efficient_embeddings.embeddings.tt_rec import TTEmbedding

# Before any layer makes an array (none does at import): exact int64 hashes under JAX.
backends.enable_int64()

__all__ = [
    "BIAS_LAYOUTS",
    "EMBEDDING_TYPES",
    "CCEEmbedding",
    "CCEReclusterCallback",
    "ColumnSlice",
    "CompactEmbedding",
    "DHEEmbedding",
    "DotScore",
    "FullEmbedding",
    "HashEmbedding",
    "HashedEmbedding",
    "IdLookup",
    "LazyAdam",
    "MixedDimensionEmbedding",
    "PopularityBlocks",
    "ProjectedEmbedding",
    "QuotientRemainderEmbedding",
    "RowWiseAdagrad",
    "ROBEEmbedding",
    "RatingOutput",
    "TTEmbedding",
    "alpha_power_dims",
    "build_rating_model",
    "embedding_bytes",
    "embedding_parameter_count",
    "fold_projected",
    "make_embedding",
    "popularity_blocks",
    "serving_bytes",
    "training_bytes",
    "with_string_ids",
]
