"""Compact embedding layers for Keras 3 (no Kedro dependency): lift this package as is."""

from memory_efficient_embeddings.embeddings.blocks import (
    PopularityBlocks,
    alpha_power_dims,
    popularity_blocks,
)
from memory_efficient_embeddings.embeddings.cce import CCEEmbedding, CCEReclusterCallback
from memory_efficient_embeddings.embeddings.layers import (
    CompactEmbedding,
    FullEmbedding,
    HashedEmbedding,
    IdLookup,
    MixedDimensionEmbedding,
    ProjectedEmbedding,
    QuotientRemainderEmbedding,
)
from memory_efficient_embeddings.embeddings.models import (
    EMBEDDING_TYPES,
    DotScore,
    RatingOutput,
    build_rating_model,
    embedding_bytes,
    embedding_parameter_count,
    make_embedding,
    with_string_ids,
)
from memory_efficient_embeddings.embeddings.optimizers import LazyAdam
from memory_efficient_embeddings.embeddings.robe import ROBEEmbedding
from memory_efficient_embeddings.embeddings.tt_rec import TTEmbedding

__all__ = [
    "EMBEDDING_TYPES",
    "CCEEmbedding",
    "CCEReclusterCallback",
    "CompactEmbedding",
    "DotScore",
    "FullEmbedding",
    "HashedEmbedding",
    "IdLookup",
    "LazyAdam",
    "MixedDimensionEmbedding",
    "PopularityBlocks",
    "ProjectedEmbedding",
    "QuotientRemainderEmbedding",
    "ROBEEmbedding",
    "RatingOutput",
    "TTEmbedding",
    "alpha_power_dims",
    "build_rating_model",
    "embedding_bytes",
    "embedding_parameter_count",
    "make_embedding",
    "popularity_blocks",
    "with_string_ids",
]
