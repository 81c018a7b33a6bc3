"""`kedro run --pipelines=memory_efficient`: data processing, then the memory_efficient model end to
end (its layout chosen on the validation split among `memory_efficient.layouts`), and a plain full
table at its serving bytes (does the compact layout earn its place?)."""

from kedro.pipeline import Pipeline

from memory_efficient_embeddings.modeling.pipeline import (
    create_modeling_pipeline,
    create_uniform_at_same_bytes_pipeline,
)
from memory_efficient_embeddings.pipelines.data_processing.pipeline import (
    create_pipeline as create_data_processing_pipeline,
)


def create_pipeline(**kwargs) -> Pipeline:
    """Data processing, the memory_efficient model (layout chosen on validation), and the uniform
    table at its bytes."""
    return (
        create_data_processing_pipeline()
        + create_modeling_pipeline("memory_efficient", select_layouts=True)
        + create_uniform_at_same_bytes_pipeline("memory_efficient")
    )
