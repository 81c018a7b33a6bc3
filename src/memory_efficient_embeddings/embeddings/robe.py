"""ROBE-Z (Desai et al., MLSys 2022): every row is read from one shared 1-D parameter array."""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np
from keras import ops

from memory_efficient_embeddings.embeddings import hashing
from memory_efficient_embeddings.embeddings.layers import (
    PACKAGE,
    CompactEmbedding,
    Unquantizable,
    _check_positive_int,
)


@keras.saving.register_keras_serializable(package=PACKAGE)
class ROBEEmbedding(Unquantizable, CompactEmbedding):
    """ROBE-Z: row ``i`` is ``ceil(output_dim / Z)`` blocks of ``Z`` consecutive array elements.

    Block ``j`` of id ``i`` starts at ``h(i, j) = ((a·i + b·j + c) mod p) mod array_size`` and
    reads ``Z`` elements circularly (wrapping at the end of the array); the row is cut to
    ``output_dim``. With ``use_sign``, block ``j`` is multiplied by ``s(i, j) = ±1`` from a second
    universal hash (``p = 2**31 - 1``), which makes colliding blocks cancel in expectation.

    Args:
        array_size: length of the shared array (the only weights).
        block_size: ``Z``; ``Z = 1`` hashes every element alone, larger ``Z`` reads memory in runs.
        use_sign: multiply each block by a hashed ±1.
        seed: picks the hash coefficients.
    """

    quantize_refusal = (
        "its one shared array is read in overlapping hashed blocks, so per-row scales do not apply."
    )

    def __init__(
        self,
        num_ids: int,
        output_dim: int,
        array_size: int,
        block_size: int = 8,
        use_sign: bool = True,
        seed: int = 0,
        *,
        embeddings_initializer: Any = "uniform",
        **kwargs: Any,
    ) -> None:
        super().__init__(num_ids, output_dim, **kwargs)
        hashing.check_hashable(num_ids)
        self.array_size = _check_positive_int("array_size", array_size)
        self.block_size = _check_positive_int("block_size", block_size)
        self.use_sign = bool(use_sign)
        self.seed = int(seed)
        self.num_blocks = math.ceil(self.output_dim / self.block_size)
        rng = np.random.default_rng(self.seed)
        # (a, b, c) for the block offsets, then for the signs; derived from the seed.
        self.offset_coefficients = [int(rng.integers(1, hashing.HASH_PRIME)) for _ in range(3)]
        self.sign_coefficients = [int(rng.integers(1, hashing.HASH_PRIME)) for _ in range(3)]
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)

    def build(self, input_shape: tuple | None = None) -> None:
        self.array = self.add_weight(
            shape=(self.array_size,), initializer=self.embeddings_initializer, name="array"
        )
        self.built = True

    def _hash(self, indices: Any, coefficients: list[int], modulus: int) -> Any:
        # One hash per block number j, which enters the offset: ((a·i + (b·j + c)) mod p) mod m.
        a, b, c = coefficients
        blocks = ops.arange(self.num_blocks, dtype="int64")
        return hashing.universal_hashes(indices, a, blocks * b + c, modulus)

    def block_starts(self, indices: Any) -> Any:
        """Array position where each block of each id starts: shape ``S + (num_blocks,)``."""
        return self._hash(indices, self.offset_coefficients, self.array_size)

    def block_signs(self, indices: Any) -> Any:
        """±1 per block of each id (all +1 without ``use_sign``): shape ``S + (num_blocks,)``."""
        if not self.use_sign:
            return ops.ones(ops.shape(self.block_starts(indices)), dtype=self.compute_dtype)
        bits = self._hash(indices, self.sign_coefficients, 2)
        return ops.cast(2 * bits - 1, self.compute_dtype)

    def lookup(self, indices: Any) -> Any:
        offsets = ops.arange(self.block_size, dtype="int64")
        positions = ops.mod(
            ops.expand_dims(self.block_starts(indices), -1) + offsets, self.array_size
        )
        values = ops.take(ops.cast(self.array, self.compute_dtype), positions)  # S + (blocks, Z)
        values = values * ops.expand_dims(self.block_signs(indices), -1)
        shape = ops.shape(indices)
        flat = ops.reshape(values, (*shape, self.num_blocks * self.block_size))
        return flat[..., : self.output_dim]

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "array_size": self.array_size,
            "block_size": self.block_size,
            "use_sign": self.use_sign,
            "seed": self.seed,
            "embeddings_initializer": keras.initializers.serialize(self.embeddings_initializer),
        }
