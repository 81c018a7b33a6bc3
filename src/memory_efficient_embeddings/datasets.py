"""Catalog dataset types of the project."""

from kedro_datasets.tensorflow import TensorFlowModelDataset

# Registers the custom layers with Keras, so a saved model loads (safe mode on) wherever the
# catalog is used: `kedro run`, notebooks, kedro-viz previews, tests.
import memory_efficient_embeddings.embeddings  # noqa: F401


class KerasModelDataset(TensorFlowModelDataset):
    """A `.keras` model file whose custom layers are registered before loading."""
