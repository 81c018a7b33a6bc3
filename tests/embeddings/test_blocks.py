"""Popularity blocks and the α-power rule (pure numpy)."""

import math

import numpy as np
import pytest

from memory_efficient_embeddings.embeddings import alpha_power_dims, popularity_blocks


def test_popularity_blocks_by_boundaries():
    freqs = np.array([50, 30, 10, 5, 3, 2])  # total 100
    blocks = popularity_blocks(freqs, boundaries=[2, 4])
    assert blocks.sizes == (2, 2, 2)
    assert blocks.boundaries == (2, 4, 6)
    assert blocks.query_shares == pytest.approx((0.8, 0.15, 0.05))
    assert blocks.row_probabilities == pytest.approx((0.4, 0.075, 0.025))
    # A trailing end equal to the number of ids is the same split.
    assert popularity_blocks(freqs, boundaries=[2, 4, 6]) == blocks


def test_popularity_blocks_recipe_boundaries():
    freqs = np.sort(np.random.default_rng(0).zipf(1.5, 3706))[::-1]
    blocks = popularity_blocks(freqs, boundaries=[400, 1700])
    assert blocks.sizes == (400, 1300, 2006)
    assert blocks.boundaries == (400, 1700, 3706)
    assert sum(blocks.query_shares) == pytest.approx(1.0)


def test_popularity_blocks_by_num_blocks_equal_mass():
    freqs = np.array([40, 20, 10, 10, 5, 5, 5, 5])  # total 100
    blocks = popularity_blocks(freqs, num_blocks=2)
    # Half of the queries are reached within the first two ids.
    assert blocks.sizes == (2, 6)
    assert blocks.query_shares == pytest.approx((0.6, 0.4))
    zipf = 1.0 / np.arange(1, 10_001)
    sizes = popularity_blocks(zipf, num_blocks=4).sizes
    assert sum(sizes) == 10_000
    assert list(sizes) == sorted(sizes)  # popular blocks are small, rare blocks large
    # Every block keeps at least one row even when one id dominates.
    assert popularity_blocks([1000, 1, 1], num_blocks=3).sizes == (1, 1, 1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"frequencies": [1, 2, 3], "num_blocks": 2},  # not sorted by popularity
        {"frequencies": [3, 2, -1], "num_blocks": 2},
        {"frequencies": [0, 0], "num_blocks": 1},
        {"frequencies": [3, 2, 1], "num_blocks": 4},
        {"frequencies": [3, 2, 1], "boundaries": [2, 1]},
        {"frequencies": [3, 2, 1], "boundaries": [0]},
        {"frequencies": [3, 2, 1], "boundaries": [1], "num_blocks": 2},
        {"frequencies": [3, 2, 1]},
    ],
)
def test_popularity_blocks_rejects_bad_input(kwargs):
    with pytest.raises(ValueError):
        popularity_blocks(**kwargs)


def test_alpha_power_base_dim_mode():
    # p^0.5 = [0.1, 0.05, 0.025] -> λ = 64 / 0.1 = 640 -> [64, 32, 16]
    dims = alpha_power_dims([400, 1300, 2006], [0.01, 0.0025, 0.000625], 0.5, base_dim=64)
    assert dims == [64, 32, 16]
    # α = 0: uniform.
    assert alpha_power_dims([1, 2, 3], [0.5, 0.1, 0.0], 0.0, base_dim=24) == [24, 24, 24]


def test_alpha_power_budget_mode():
    # p^0.5 = [0.2, 0.1], Σ n p^α = 10·0.2 + 40·0.1 = 6, λ = 600 / 6 = 100 -> [20, 10].
    dims = alpha_power_dims([10, 40], [0.04, 0.01], 0.5, budget=600)
    assert dims == [20, 10]
    assert 10 * dims[0] + 40 * dims[1] == 600
    # α = 0 spreads the budget uniformly: 600 / 50 rows = 12.
    assert alpha_power_dims([10, 40], [0.04, 0.01], 0.0, budget=600) == [12, 12]


def test_alpha_power_clamping_and_rounding():
    raw = alpha_power_dims([1, 1, 1], [1.0, 0.25, 1e-6], 0.5, base_dim=10, round_dims=False)
    assert raw == pytest.approx([10.0, 5.0, 1.0])  # 0.01 clamped up to min_dim=1
    # 10 · 0.3^0.5 = 5.477 -> 5; 10 · 0.1^0.5 = 3.162 -> 3.
    assert alpha_power_dims([1, 1, 1], [1.0, 0.3, 0.1], 0.5, base_dim=10) == [10, 5, 3]
    assert alpha_power_dims([1, 1, 1], [1.0, 0.3, 0.1], 0.5, base_dim=10, min_dim=4) == [10, 5, 4]
    assert alpha_power_dims([1, 1, 1], [1.0, 0.3, 0.1], 0.5, base_dim=10, max_dim=8) == [8, 5, 3]
    # Powers of two, DLRM's way (integer first, then log space): 5.477 -> 5 -> 4 (log2 5 = 2.32),
    # 3.162 -> 3 -> 4 (log2 3 = 1.58), 10 -> 8 (log2 10 = 3.32).
    pow2 = alpha_power_dims([1, 1, 1], [1.0, 0.3, 0.1], 0.5, base_dim=10, power_of_two=True)
    assert pow2 == [8, 4, 4]
    assert all(math.log2(d).is_integer() for d in pow2)


def test_alpha_power_rule_recovers_recipe_dims():
    # α between 0.3 and 0.5 with power-of-two rounding gives the recipe's hand-picked dims.
    p = [1 / 400 * 0.45, 1 / 1300 * 0.4, 1 / 2006 * 0.15]
    dims = alpha_power_dims([400, 1300, 2006], p, 0.5, base_dim=64, power_of_two=True)
    assert dims == [64, 32, 16]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"base_dim": 8, "budget": 100},
        {},
        {"base_dim": -1},
        {"budget": 0},
        {"base_dim": 8, "min_dim": -1},
        {"base_dim": 8, "min_dim": 4, "max_dim": 2},
    ],
)
def test_alpha_power_rejects_bad_input(kwargs):
    with pytest.raises(ValueError):
        alpha_power_dims([1, 2], [0.5, 0.25], 0.5, **kwargs)
    with pytest.raises(ValueError):
        alpha_power_dims([1, 2], [0.5], 0.5, base_dim=8)
