"""What the library needs from Keras' backend, in one place: TensorFlow and JAX are supported.

The layers are written in ``keras.ops`` and compute the same outputs on both backends. Three
things differ, and are handled here:

* **64-bit integers.** The universal hashes (``hashing.py``) multiply ids by coefficients below
  ``2**31`` in int64. JAX computes in 32 bits unless ``jax_enable_x64`` is on, and would silently
  truncate int64 to int32 (wrong buckets). Importing the library switches it on under JAX
  (:func:`enable_int64`); a hashed layer built with it off raises (:func:`check_int64`).
* **Sparse gradients.** TensorFlow gives a gathered table a ``tf.IndexedSlices`` gradient (only
  the batch's rows); JAX always gives a dense one. :func:`is_indexed_slices` is the one test the
  optimizers use, and it imports nothing from TensorFlow on another backend.
* **TensorFlow-only pieces** (``StringLookup`` inside :class:`~.layers.IdLookup`) call
  :func:`require_tensorflow`, which names the piece and what to do instead.
"""

from __future__ import annotations

from typing import Any

import keras


def backend() -> str:
    """The backend Keras runs on (``KERAS_BACKEND``, chosen once, before Keras is imported)."""
    return keras.backend.backend()


def enable_int64() -> None:
    """Under JAX, switch on 64-bit types (``jax_enable_x64``): the hashes need exact int64.

    Arrays made before this call keep their 32-bit types; floats stay float32 (Keras passes its
    ``floatx`` explicitly), so only integer arithmetic widens.
    """
    if backend() == "jax":
        import jax  # noqa: PLC0415 - only on the JAX backend

        jax.config.update("jax_enable_x64", True)


def int64_available() -> bool:
    """Whether ``int64`` tensors are really 64-bit on this backend now."""
    if backend() != "jax":
        return True
    import jax  # noqa: PLC0415 - only on the JAX backend

    return bool(jax.config.jax_enable_x64)


def check_int64(layer: str) -> None:
    """Refuse to build a hashed layer where int64 would silently be int32 (JAX without x64)."""
    if not int64_available():
        raise RuntimeError(
            f"{layer} hashes ids in int64, but JAX runs with 64-bit types off "
            "(jax_enable_x64 is False), so the hashes would overflow in int32 and pick other "
            "rows than on TensorFlow. Importing memory_efficient_embeddings.embeddings switches "
            "it on; something switched it off again. Set JAX_ENABLE_X64=1 in the environment, or "
            "call jax.config.update('jax_enable_x64', True) before building the layer."
        )


def is_indexed_slices(gradient: Any) -> bool:
    """Whether a gradient is TensorFlow's row-sparse ``tf.IndexedSlices`` (never on JAX)."""
    if backend() != "tensorflow":
        return False
    import tensorflow as tf  # noqa: PLC0415 - only on the TensorFlow backend

    return isinstance(gradient, tf.IndexedSlices)


def require_tensorflow(piece: str, instead: str) -> None:
    """A clear error for a TensorFlow-only piece used on another backend."""
    if backend() != "tensorflow":
        raise NotImplementedError(
            f"{piece} runs on Keras' TensorFlow backend only (this process runs on "
            f"{backend()!r}, from KERAS_BACKEND). {instead}"
        )
