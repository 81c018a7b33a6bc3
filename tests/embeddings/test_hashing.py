"""The shared universal hash against plain Python integers, and the layers that refuse quantization."""

import numpy as np
import pytest
from keras import ops

from memory_efficient_embeddings.embeddings import (
    CCEEmbedding,
    DHEEmbedding,
    HashedEmbedding,
    HashEmbedding,
    ROBEEmbedding,
    TTEmbedding,
)
from memory_efficient_embeddings.embeddings.hashing import (
    HASH_PRIME,
    check_hashable,
    draw_coefficients,
    universal_hash,
    universal_hashes,
)
from tests.embeddings.backend_ops import BACKEND

P = 2**31 - 1
# Edge ids (a·i overflows 32 bits for the large ones) and coefficients up to p - 1.
IDS = [0, 1, 2, 12_345, 2**30, 2**31 - 2]
COEFFICIENTS = [(1, 0), (5, 7), (P - 1, 0), (P - 1, P - 1), (1_103_515_245, 12_345)]


def python_hash(i: int, a: int, b: int, m: int) -> int:
    return ((a * i + b) % P) % m


def test_the_prime_is_2_to_the_31_minus_1() -> None:
    assert HASH_PRIME == P


@pytest.mark.both_backends
@pytest.mark.parametrize(("a", "b"), COEFFICIENTS)
@pytest.mark.parametrize("modulus", [2, 97, 1000, 2**24])
def test_universal_hash_matches_python_integers(a: int, b: int, modulus: int) -> None:
    expected = [python_hash(i, a, b, modulus) for i in IDS]
    tensor = ops.convert_to_tensor(IDS, dtype="int64")
    np.testing.assert_array_equal(
        ops.convert_to_numpy(universal_hash(tensor, a, b, modulus)), expected
    )
    array = np.array(IDS, dtype=np.int64)
    np.testing.assert_array_equal(universal_hash(array, a, b, modulus), expected)


def test_universal_hash_reduces_mod_p_before_mod_m() -> None:
    # (p-1)·(p-1) = 1 (mod p): 1 mod 1000 is 1, while the product mod 1000 alone would be 316.
    assert universal_hash(np.int64(P - 1), P - 1, 0, 1000) == 1
    assert ((P - 1) * (P - 1)) % 1000 == 316
    assert universal_hash(np.int64(3), 5, 7, 10) == 2  # (15 + 7) mod 10


@pytest.mark.both_backends
def test_universal_hashes_gives_one_column_per_coefficient_pair() -> None:
    a, b = np.array([3, P - 2], dtype=np.int64), np.array([0, 11], dtype=np.int64)
    ids = [[0, 2**30], [2**31 - 2, 7]]  # shape S = (2, 2): hashes of shape (2, 2, k)
    expected = [
        [[python_hash(i, int(aj), int(bj), 50) for aj, bj in zip(a, b, strict=True)] for i in row]
        for row in ids
    ]
    hashes = universal_hashes(ops.convert_to_tensor(ids, dtype="int32"), a, b, 50)
    assert ops.convert_to_numpy(hashes).dtype == np.int64
    np.testing.assert_array_equal(hashes, expected)
    # A scalar `a` broadcasts against per-column offsets (ROBE's block numbers).
    np.testing.assert_array_equal(
        universal_hashes(ops.convert_to_tensor([5]), P - 1, b, 50),
        [[python_hash(5, P - 1, int(bj), 50) for bj in b]],
    )


def test_draw_coefficients_are_the_seeded_draws_in_range() -> None:
    a, b = draw_coefficients(np.random.default_rng(3), 1000)
    assert a.min() >= 1 and b.min() >= 0 and max(a.max(), b.max()) < P
    reference = np.random.default_rng(3)
    np.testing.assert_array_equal(a, reference.integers(1, P, 1000))
    np.testing.assert_array_equal(b, reference.integers(0, P, 1000))
    scalar_a, scalar_b = draw_coefficients(np.random.default_rng(3))
    assert np.ndim(scalar_a) == np.ndim(scalar_b) == 0


@pytest.mark.parametrize(
    "make",
    [
        lambda n: HashedEmbedding(n, 4, 2),
        lambda n: CCEEmbedding(n, 4, num_chunks=1, num_clusters=2),
        lambda n: ROBEEmbedding(n, 4, array_size=8),
        lambda n: HashEmbedding(n, 4, num_buckets=2, importance_rows=2),
        lambda n: DHEEmbedding(n, 4, hidden_dim=2),
    ],
)
def test_hashed_layers_refuse_vocabularies_the_hash_cannot_hold(make) -> None:
    check_hashable(P - 1)
    with pytest.raises(ValueError, match="must be below 2147483647 for exact int64 hashing"):
        check_hashable(P)
    with pytest.raises(ValueError, match="must be below 2147483647 for exact int64 hashing"):
        make(P)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (
            lambda: CCEEmbedding(10, 4, num_chunks=1, num_clusters=2, name="c"),
            "its tables are shared by clusters and rewritten by recluster().",
        ),
        (
            lambda: TTEmbedding(10, 4, tt_rank=2, name="c"),
            "its cores are multiplied together per lookup, so int8 error compounds across three "
            "factors.",
        ),
        (
            lambda: ROBEEmbedding(10, 4, array_size=8, name="c"),
            "its one shared array is read in overlapping hashed blocks, so per-row scales do not "
            "apply.",
        ),
    ],
)
def test_unquantizable_layers_give_their_reason(make, reason) -> None:
    layer = make()
    layer.build(None)
    expected = f"{type(layer).__name__} 'c' cannot be quantized ('int8'): {reason} Keep it float32."
    with pytest.raises(NotImplementedError) as error:
        layer.quantize("int8")
    assert str(error.value) == expected


@pytest.mark.both_backends
@pytest.mark.skipif(BACKEND != "jax", reason="32-bit integers are a JAX setting")
def test_hashed_layers_refuse_jax_without_64_bit_integers() -> None:
    import jax  # noqa: PLC0415

    jax.config.update("jax_enable_x64", False)
    try:
        with pytest.raises(RuntimeError, match="jax_enable_x64 is False"):
            HashedEmbedding(100, 7, 4)
    finally:
        jax.config.update("jax_enable_x64", True)
    assert HashedEmbedding(100, 7, 4).num_buckets == 7  # and builds again once it is on
