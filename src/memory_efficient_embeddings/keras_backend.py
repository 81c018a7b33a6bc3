"""The Keras backend the project runs on, chosen in one place before Keras is imported.

Keras reads ``KERAS_BACKEND`` once, at its first import, so the choice cannot be a parameter in
``conf/`` (parameters load after the pipelines, which import Keras). The package's ``__init__``
calls :func:`choose_keras_backend` first thing: every entry point (``kedro run`` and ``make run``,
the sweep and its Dask workers, the benchmarks, tests, notebooks that import the project before
Keras) gets :data:`DEFAULT_KERAS_BACKEND` unless ``KERAS_BACKEND`` is set in the environment,
which always wins (``KERAS_BACKEND=jax kedro run``). Switching the project's default is the one
line below.

On JAX, compiled XLA programs are kept on disk between processes (JAX's persistent compilation
cache), set here because JAX reads these settings at its import: every new weight shape compiles
its initializer (0.3-0.6 s each) and every model its train and test steps (about 1.4 s each),
and a later run, a sweep's second seed or another worker compiling the same program loads it
instead (a baseline ``kedro run`` on ml-100k, load average 2: 32.9 s cold, 24.8 s warm). The
compiled program is the same, so the numbers are too. Each variable in :data:`JAX_CACHE_SETTINGS`
set in the environment wins; ``JAX_COMPILATION_CACHE_DIR`` chooses the folder.
"""

from __future__ import annotations

import os
from pathlib import Path

# JAX: measured against TensorFlow on an idle machine at equal accuracy (docs/speed.md, "Backends"):
# time to accuracy 1.38-1.54x faster and whole runs 1.11-1.13x faster on real data; TensorFlow
# stays installed (the recipe's script, the .keras datasets) and is one variable away.
DEFAULT_KERAS_BACKEND = "jax"
SUPPORTED_KERAS_BACKENDS = ("tensorflow", "jax")
# JAX's own environment variables for its persistent compilation cache (read at `import jax`).
JAX_CACHE_SETTINGS = {
    # Cache every program: the initializers' compiles take well under JAX's default 1 s floor.
    "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
    # Bounded (least recently used out first); a bound also makes JAX lock the folder (filelock),
    # so parallel processes (sweep workers, tests) never read an entry half written.
    "JAX_COMPILATION_CACHE_MAX_SIZE": str(1 << 30),
}


def jax_cache_dir() -> Path:
    """Where compiled JAX programs are kept: the user's cache folder (XDG), per project."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "memory-efficient-embeddings" / "jax"


def choose_keras_backend() -> str:
    """Set ``KERAS_BACKEND`` to the project's default unless the user chose one; check it."""
    backend = os.environ.setdefault("KERAS_BACKEND", DEFAULT_KERAS_BACKEND)
    if backend not in SUPPORTED_KERAS_BACKENDS:
        raise ImportError(
            f"KERAS_BACKEND={backend!r}: this project runs on Keras' "
            f"{' or '.join(repr(b) for b in SUPPORTED_KERAS_BACKENDS)} backend. Unset "
            f"KERAS_BACKEND (default {DEFAULT_KERAS_BACKEND!r}) or set it to one of those."
        )
    if backend == "jax":
        os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(jax_cache_dir()))
        for name, value in JAX_CACHE_SETTINGS.items():
            os.environ.setdefault(name, value)
    return backend
