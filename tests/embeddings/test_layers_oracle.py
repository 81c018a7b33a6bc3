"""Which rows the layers read, decoded from their outputs, against indices worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from memory_efficient_embeddings.embeddings import (
    HashedEmbedding,
    MixedDimensionEmbedding,
    QuotientRemainderEmbedding,
)

# Runs on JAX too in CI (`make test`): see pyproject.toml's markers.
pytestmark = pytest.mark.both_backends


def _row_numbers(rows: int, dim: int, scale: float) -> np.ndarray:
    """A table whose row r holds scale · (r + 1) everywhere, so outputs name the row read."""
    return np.repeat(scale * (np.arange(rows, dtype=np.float32) + 1)[:, None], dim, axis=1)


@pytest.mark.parametrize(("num_ids", "num_buckets"), [(10, 3), (12, 4), (7, 7), (5, 1)])
def test_quotient_remainder_reads_rows_i_div_m_and_i_mod_m(num_ids, num_buckets) -> None:
    layer = QuotientRemainderEmbedding(num_ids, 2, num_buckets=num_buckets, combiner="add")
    layer.build()
    layer.quotient_table.set_weights([_row_numbers(layer.quotient_rows, 2, 1000.0)])
    layer.remainder_table.set_weights([_row_numbers(num_buckets, 2, 1.0)])
    ids = np.arange(num_ids)
    out = np.asarray(layer(ids))[:, 0]
    quotient_rows, remainder_rows = np.divmod(out, 1000.0)
    np.testing.assert_array_equal(quotient_rows - 1, [i // num_buckets for i in ids])
    np.testing.assert_array_equal(remainder_rows - 1, [i % num_buckets for i in ids])
    assert layer.quotient_rows == -(-num_ids // num_buckets)
    # Every (quotient, remainder) pair is different, so every id gets its own vector.
    assert len(set(out.tolist())) == num_ids


def test_quotient_remainder_concat_and_multiply_combine_by_hand() -> None:
    concat = QuotientRemainderEmbedding(6, 4, num_buckets=3, combiner="concat")
    concat.build()
    assert concat.count_params() == 2 * 2 + 3 * 2  # two halves of width 2
    concat.quotient_table.set_weights([_row_numbers(2, 2, 10.0)])
    concat.remainder_table.set_weights([_row_numbers(3, 2, 1.0)])
    np.testing.assert_array_equal(np.asarray(concat(np.array([5]))), [[20, 20, 3, 3]])
    multiply = QuotientRemainderEmbedding(6, 2, num_buckets=3, combiner="multiply")
    multiply.build()
    multiply.quotient_table.set_weights([_row_numbers(2, 2, 10.0)])
    multiply.remainder_table.set_weights([_row_numbers(3, 2, 1.0)])
    np.testing.assert_array_equal(np.asarray(multiply(np.array([4]))), [[40, 40]])  # 20 · 2


def test_hashed_buckets_match_python_integers() -> None:
    # Large ids: a · i overflows 32 bits, and must not overflow 64 (Python ints never do).
    ids = np.array([0, 1, 2, 12_345, 2**30, 2**31 - 3], dtype=np.int64)
    layer = HashedEmbedding(2**31 - 2, 1000, 2, seed=3)
    prime = 2**31 - 1
    expected = [((layer.hash_a * int(i) + layer.hash_b) % prime) % 1000 for i in ids]
    np.testing.assert_array_equal(np.asarray(layer.buckets(ids)), expected)
    other_seed = HashedEmbedding(2**31 - 2, 1000, 2, seed=4)
    assert not np.array_equal(np.asarray(other_seed.buckets(ids)), expected)


def test_mixed_dimension_routes_each_id_to_its_block_row() -> None:
    # Blocks of 2 and 3 ids at widths 2 (= output, no projection) and 1 (projected to 2).
    layer = MixedDimensionEmbedding([2, 3], [2, 1], 2, projection_bias=False)
    layer.build()
    layer.tables[0].set_weights([_row_numbers(2, 2, 1.0)])
    layer.tables[1].set_weights([_row_numbers(3, 1, 10.0)])
    layer.projections[1].set_weights([np.array([[1.0, 2.0]], np.float32)])
    out = np.asarray(layer(np.array([0, 1, 2, 3, 4, 5, -1])))
    np.testing.assert_array_equal(
        out, [[1, 1], [2, 2], [10, 20], [20, 40], [30, 60], [0, 0], [0, 0]]
    )  # ids 5 and -1 are out of range: zero vectors
