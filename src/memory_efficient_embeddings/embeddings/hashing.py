"""The universal hash the hashed layers share: ``h(i) = ((a·i + b) mod p) mod m``.

One place for the prime, the guard on the vocabulary size, the coefficient draws and the formula,
as thomasahle/cce keeps its hashes in one module. ``p = 2**31 - 1`` is a Mersenne prime above
``2**30``: with ids and coefficients below ``p``, ``a·i + b`` stays below ``2**62``, so int64
arithmetic is exact.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from keras import ops

from memory_efficient_embeddings.embeddings import backends

HASH_PRIME = 2**31 - 1


def check_hashable(num_ids: int) -> None:
    """Refuse a vocabulary whose ids could overflow the exact int64 hash, or a 32-bit backend."""
    if num_ids >= HASH_PRIME:
        raise ValueError(f"`num_ids` must be below {HASH_PRIME} for exact int64 hashing.")
    backends.check_int64("A hashed embedding layer")


def draw_coefficients(rng: np.random.Generator, count: int | None = None) -> tuple[Any, Any]:
    """``(a, b)`` with ``a`` in ``[1, p)`` and ``b`` in ``[0, p)``: scalars, or ``count`` of each."""
    return rng.integers(1, HASH_PRIME, count), rng.integers(0, HASH_PRIME, count)


def universal_hash(ids: Any, a: Any, b: Any, modulus: int) -> Any:
    """``((a·ids + b) mod p) mod modulus`` for int64 ``ids``; ``a`` and ``b`` broadcast.

    Plain operators, so one formula serves backend tensors in ``call`` and numpy arrays where a
    layer computes initial values in ``build``.
    """
    return (ids * a + b) % HASH_PRIME % modulus


def universal_hashes(indices: Any, a: Any, b: Any, modulus: int) -> Any:
    """``k`` hashes of every index, one per entry of ``a`` and ``b`` (``(k,)``, or broadcast).

    Returns int64 of shape ``S + (k,)`` for indices of shape ``S``.
    """
    ids = ops.expand_dims(ops.cast(indices, "int64"), -1)
    return universal_hash(
        ids, ops.convert_to_tensor(a, "int64"), ops.convert_to_tensor(b, "int64"), modulus
    )
