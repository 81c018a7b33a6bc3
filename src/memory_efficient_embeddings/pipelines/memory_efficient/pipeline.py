"""`kedro run --pipelines=memory_efficient`: data processing, then the memory_efficient model end to end."""

from kedro.pipeline import Pipeline

from memory_efficient_embeddings.modeling.pipeline import create_modeling_pipeline
from memory_efficient_embeddings.pipelines.data_processing.pipeline import (
    create_pipeline as create_data_processing_pipeline,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Data processing followed by the memory_efficient model."""
    return create_data_processing_pipeline() + create_modeling_pipeline("memory_efficient")
