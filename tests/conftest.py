"""Suite-wide: the Keras backend the tests run on, and the tests that need TensorFlow.

The suite runs on the project's backend (``keras_backend.py``) or on ``KERAS_BACKEND``; ``make
test`` (CI) runs it on TensorFlow, then the tests marked ``both_backends`` again under
``KERAS_BACKEND=jax``. A test marked ``tensorflow_only`` checks something JAX does not have
(``tf.IndexedSlices`` gradients, ``tf.function`` graphs, strings in tensors) and is skipped there.
"""

from __future__ import annotations

import pytest

import memory_efficient_embeddings  # noqa: F401 - chooses the Keras backend before Keras loads


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Files holding slow tests first (stable order otherwise): under `make test`'s workers
    # (pytest-xdist, a file per worker at a time) the long files start early and the short ones
    # fill in, instead of one worker finishing a long file alone at the end.
    slow_files = {item.path for item in items if "slow" in item.keywords}
    items.sort(key=lambda item: item.path not in slow_files)

    import keras  # noqa: PLC0415 - after the project has chosen the backend

    backend = keras.backend.backend()
    if backend == "tensorflow":
        return
    skip = pytest.mark.skip(reason=f"TensorFlow-only behaviour; this run is on {backend}")
    for item in items:
        if "tensorflow_only" in item.keywords:
            item.add_marker(skip)
