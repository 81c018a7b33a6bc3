"""The Keras backend the project runs on, chosen in one place before Keras is imported.

Keras reads ``KERAS_BACKEND`` once, at its first import, so the choice cannot be a parameter in
``conf/`` (parameters load after the pipelines, which import Keras). The package's ``__init__``
calls :func:`choose_keras_backend` first thing: every entry point (``kedro run`` and ``make run``,
the sweep and its Dask workers, the benchmarks, tests, notebooks that import the project before
Keras) gets :data:`DEFAULT_KERAS_BACKEND` unless ``KERAS_BACKEND`` is set in the environment,
which always wins (``KERAS_BACKEND=jax kedro run``). Switching the project's default is the one
line below.
"""

from __future__ import annotations

import os

# JAX: measured against TensorFlow on an idle machine at equal accuracy (docs/speed.md, "Backends"):
# time to accuracy 1.38-1.54x faster and whole runs 1.11-1.13x faster on real data; TensorFlow
# stays installed (the recipe's script, the .keras datasets) and is one variable away.
DEFAULT_KERAS_BACKEND = "jax"
SUPPORTED_KERAS_BACKENDS = ("tensorflow", "jax")


def choose_keras_backend() -> str:
    """Set ``KERAS_BACKEND`` to the project's default unless the user chose one; check it."""
    backend = os.environ.setdefault("KERAS_BACKEND", DEFAULT_KERAS_BACKEND)
    if backend not in SUPPORTED_KERAS_BACKENDS:
        raise ImportError(
            f"KERAS_BACKEND={backend!r}: this project runs on Keras' "
            f"{' or '.join(repr(b) for b in SUPPORTED_KERAS_BACKENDS)} backend. Unset "
            f"KERAS_BACKEND (default {DEFAULT_KERAS_BACKEND!r}) or set it to one of those."
        )
    return backend
