"""Block sizes, boundaries and dims against hand-worked cases and a naive second implementation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from memory_efficient_embeddings.embeddings import alpha_power_dims, popularity_blocks


def _naive_equal_mass_sizes(freqs: list[float], num_blocks: int) -> tuple[int, ...]:
    """Walk the ids one by one; close block b at the first id where the running share reaches b/k."""
    total = sum(freqs)
    ends, running, block = [], 0.0, 1
    for position, count in enumerate(freqs, start=1):
        running += count
        while block < num_blocks and running / total >= block / num_blocks:
            previous = ends[-1] if ends else 0
            # At least one row per block, and one left for each block still to come.
            ends.append(min(max(position, previous + 1), len(freqs) - (num_blocks - block)))
            block += 1
    ends.append(len(freqs))
    return tuple(e - s for s, e in zip([0, *ends[:-1]], ends, strict=True))


@pytest.mark.parametrize(
    ("freqs", "num_blocks", "sizes"),
    [
        ([4, 3, 2, 1], 2, (2, 2)),  # shares .4 .7: the second id reaches one half
        ([5, 3, 2], 2, (1, 2)),  # the first id reaches exactly one half: it closes the block
        ([6, 2, 1, 1], 3, (1, 1, 2)),
        ([100, 1, 1, 1], 3, (1, 1, 2)),  # one id holds every third: later blocks get one row each
        ([1, 1, 1, 1], 4, (1, 1, 1, 1)),
        ([3, 3, 3, 1], 1, (4,)),
    ],
)
def test_equal_mass_blocks_by_hand(freqs, num_blocks, sizes) -> None:
    blocks = popularity_blocks(freqs, num_blocks=num_blocks)
    assert blocks.sizes == sizes
    assert blocks.boundaries == tuple(np.cumsum(sizes))
    assert blocks.num_blocks == num_blocks
    total = sum(freqs)
    starts = [0, *blocks.boundaries[:-1]]
    shares = [sum(freqs[s:e]) / total for s, e in zip(starts, blocks.boundaries, strict=True)]
    assert blocks.query_shares == pytest.approx(shares, rel=1e-12)
    assert blocks.row_probabilities == pytest.approx(
        [share / size for share, size in zip(shares, sizes, strict=True)], rel=1e-12
    )


@pytest.mark.parametrize("num_blocks", [2, 3, 5, 8])
def test_equal_mass_blocks_match_a_naive_walk_on_zipf_counts(num_blocks) -> None:
    freqs = [int(1000 / rank) for rank in range(1, 41)]
    assert popularity_blocks(freqs, num_blocks=num_blocks).sizes == _naive_equal_mass_sizes(
        freqs, num_blocks
    )


def test_explicit_boundaries_by_hand() -> None:
    # 10 ids, counts 10..1 (total 55); blocks [0, 3), [3, 7), [7, 10).
    blocks = popularity_blocks(list(range(10, 0, -1)), boundaries=[3, 7])
    assert blocks.sizes == (3, 4, 3)
    assert blocks.boundaries == (3, 7, 10)
    assert blocks.query_shares == pytest.approx((27 / 55, 22 / 55, 6 / 55), rel=1e-12)
    assert blocks.row_probabilities == pytest.approx((9 / 55, 5.5 / 55, 2 / 55), rel=1e-12)
    assert popularity_blocks(list(range(10, 0, -1)), boundaries=[3, 7, 10]) == blocks
    assert popularity_blocks([2, 1], boundaries=[1]).sizes == (1, 1)  # the smallest split


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"frequencies": [], "num_blocks": 1},
            "^`frequencies` must be a non-empty 1-D array of per-id counts.$",
        ),
        ({"frequencies": [[2, 1]], "num_blocks": 1}, "non-empty 1-D"),
        (
            {"frequencies": [2, float("nan")], "num_blocks": 1},
            "^`frequencies` must be finite and non-negative.$",
        ),
        ({"frequencies": [2, -1], "num_blocks": 1}, "finite and non-negative"),
        (
            {"frequencies": [1, 2], "num_blocks": 1},
            "^`frequencies` must be sorted by popularity, most popular first",
        ),
        (
            {"frequencies": [0, 0], "num_blocks": 1},
            "^`frequencies` must contain at least one positive count.$",
        ),
        ({"frequencies": [3, 2, 1]}, "^Pass exactly one of `boundaries` and `num_blocks`.$"),
        ({"frequencies": [3, 2, 1], "boundaries": [1], "num_blocks": 2}, "exactly one"),
        (
            {"frequencies": [3, 2, 1], "boundaries": [0]},
            r"^`boundaries` must lie strictly between 0 and 3; got \[0\].$",
        ),
        ({"frequencies": [3, 2, 1], "boundaries": [4]}, "strictly between 0 and 3"),
        (
            {"frequencies": [3, 2, 1], "boundaries": [2, 2]},
            r"^`boundaries` must be strictly increasing; got \[2, 2\].$",
        ),
        ({"frequencies": [3, 2, 1], "boundaries": [3, 3]}, "strictly between 0 and 3"),
        (
            {"frequencies": [3, 2, 1], "num_blocks": 0},
            "^`num_blocks` must be a positive integer; got 0.$",
        ),
        ({"frequencies": [3, 2, 1], "num_blocks": 1.0}, "positive integer; got 1.0"),
        (
            {"frequencies": [3, 2, 1], "num_blocks": 4},
            r"^`num_blocks` \(4\) cannot exceed the number of ids \(3\).$",
        ),
    ],
)
def test_block_errors_say_what_is_wrong(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        popularity_blocks(**kwargs)


def test_alpha_rule_rounds_halves_to_even_and_other_fractions_to_nearest() -> None:
    # α = 1, base dim 12: d_i = 12 · p_i / p_0, all exact in binary except 3.6 and 1.2. The
    # probabilities are non-increasing (the rule rejects blocks out of popularity order).
    probabilities = [1.0, 0.875, 0.625, 0.375, 0.3, 0.125, 0.1]
    raw = [12.0, 10.5, 7.5, 4.5, 3.6, 1.5, 1.2]
    assert alpha_power_dims([1] * 7, probabilities, 1.0, base_dim=12, round_dims=False) == (
        pytest.approx(raw, rel=1e-12)
    )
    # Halves to even like torch.round in DLRM (not half up, half down, floor or ceil):
    # 10.5 -> 10, 7.5 -> 8, 4.5 -> 4, 1.5 -> 2; 3.6 -> 4 and 1.2 -> 1 go to the nearest.
    # Half up would give 11, 8, 5, 2; half down 10, 7, 4, 1; floor 10, 7, 4, 3, 1, 1.
    dims = alpha_power_dims([1] * 7, probabilities, 1.0, base_dim=12)
    assert dims == [12, 10, 8, 4, 4, 2, 1]
    assert all(isinstance(d, int) for d in dims)


def test_alpha_rule_rejects_blocks_out_of_popularity_order() -> None:
    # Block 0 anchors the rule, so a less popular block 0 is refused, naming the first rise.
    with pytest.raises(
        ValueError,
        match=(
            r"^`row_probabilities` must be non-increasing \(blocks ordered most popular first, "
            r"block 0 is the anchor\); block 2 has 0\.875 > block 1's 0\.125\.$"
        ),
    ):
        alpha_power_dims([1] * 3, [1.0, 0.125, 0.875], 1.0, base_dim=12)
    # Equal probabilities are in order.
    assert alpha_power_dims([1] * 2, [0.5, 0.5], 1.0, base_dim=12) == [12, 12]


def test_alpha_rule_exponent_and_anchor_by_hand() -> None:
    # α = 0.5: p^α = [0.4, 0.2, 0.1]; base dim 20 anchors block 0 -> [20, 10, 5].
    assert alpha_power_dims([3, 5, 9], [0.16, 0.04, 0.01], 0.5, base_dim=20) == [20, 10, 5]
    # α = 2: (p / p_0)^2 = [1, 1/4, 1/16] -> [32, 8, 2].
    assert alpha_power_dims([1, 1, 1], [0.8, 0.4, 0.2], 2.0, base_dim=32) == [32, 8, 2]


def test_alpha_rule_budget_counts_rows_by_hand() -> None:
    # p^0.5 = [0.5, 0.25]; Σ n_i p_i^α = 2·0.5 + 6·0.25 = 2.5; λ = 100 / 2.5 = 40 -> [20, 10].
    dims = alpha_power_dims([2, 6], [0.25, 0.0625], 0.5, budget=100)
    assert dims == [20, 10]
    assert 2 * dims[0] + 6 * dims[1] == 100
    # Unrounded, the budget is met exactly.
    raw = alpha_power_dims([3, 7], [0.09, 0.01], 0.5, budget=50, round_dims=False)
    assert raw == pytest.approx([50 * 0.3 / 1.6, 50 * 0.1 / 1.6], rel=1e-12)


def test_alpha_rule_clamps_before_and_after_rounding() -> None:
    # Raw dims [12, 2.4, 0.6]: min_dim 3 lifts both small ones; max_dim 10 caps the first.
    probabilities = [1.0, 0.2, 0.05]
    assert alpha_power_dims([1] * 3, probabilities, 1.0, base_dim=12, min_dim=3) == [12, 3, 3]
    # min_dim 0, raw dims [12, 2.4, 0.48]: 0.48 rounds to 0 (a block with no vector dims);
    # power_of_two takes 12 to 16 and 2 to 2, and keeps 0 at 0.
    assert alpha_power_dims([1] * 3, [0.5, 0.1, 0.02], 1.0, base_dim=12, min_dim=0) == [12, 2, 0]
    assert alpha_power_dims(
        [1] * 3, [0.5, 0.1, 0.02], 1.0, base_dim=12, min_dim=0, power_of_two=True
    ) == [16, 2, 0]
    assert alpha_power_dims([1] * 3, probabilities, 1.0, base_dim=12, max_dim=10) == [10, 2, 1]
    assert alpha_power_dims(
        [1] * 3, probabilities, 1.0, base_dim=12, min_dim=2, max_dim=10, round_dims=False
    ) == pytest.approx([10.0, 2.4, 2.0], rel=1e-12)
    # A max that is not a power of two still bounds power-of-two dims.
    assert alpha_power_dims([1], [1.0], 1.0, base_dim=12, max_dim=10, power_of_two=True)[0] <= 10


@pytest.mark.parametrize(
    ("raw", "expected"), [(1.0, 1), (2.0, 2), (3.0, 4), (12.0, 16), (64.0, 64)]
)
def test_power_of_two_rounding_on_cases_every_rounding_rule_agrees_on(raw, expected) -> None:
    dims = alpha_power_dims([1], [1.0], 1.0, base_dim=raw, power_of_two=True)
    assert dims == [expected]
    assert math.log2(dims[0]).is_integer()


def test_small_totals_are_valid_inputs() -> None:
    # Shares that sum to 1 are counts too; budgets and Σ n_i p_i^α below 1 are fine.
    assert popularity_blocks([0.5, 0.3, 0.2], num_blocks=2).sizes == (1, 2)
    assert alpha_power_dims([1, 1], [0.25, 0.0625], 1.0, budget=0.5) == [1, 1]
    assert alpha_power_dims([1, 1], [0.25, 0.0625], 1.0, budget=50, round_dims=False) == (
        pytest.approx([40.0, 10.0], rel=1e-12)
    )


def test_alpha_zero_is_uniform_even_for_unqueried_blocks() -> None:
    assert alpha_power_dims([2, 3], [0.5, 0.0], 0.0, budget=50) == [10, 10]


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (
            ([], [], 0.5),
            {"base_dim": 8},
            "^`row_counts` and `row_probabilities` must be non-empty and equally long.$",
        ),
        (([1, 2], [0.5], 0.5), {"base_dim": 8}, "non-empty and equally long"),
        (([1, 0], [0.5, 0.5], 0.5), {"base_dim": 8}, "^`row_counts` must be positive.$"),
        (
            ([1, 1], [0.5, -0.1], 0.5),
            {"base_dim": 8},
            "^`row_probabilities` must be finite and non-negative.$",
        ),
        (([1, 1], [0.5, float("inf")], 0.5), {"base_dim": 8}, "finite and non-negative"),
        (([1, 1], [0.5, 0.5], -0.1), {"base_dim": 8}, r"^`alpha` must be non-negative; got -0.1.$"),
        (([1, 1], [0.5, 0.5], 0.5), {}, "^Pass exactly one of `base_dim` and `budget`.$"),
        (([1, 1], [0.5, 0.5], 0.5), {"base_dim": 8, "budget": 9}, "exactly one"),
        (([1, 1], [0.5, 0.5], 0.5), {"base_dim": 0}, "^`base_dim` / `budget` must be positive.$"),
        (([1, 1], [0.5, 0.5], 0.5), {"budget": -3}, "must be positive"),
        (
            ([1, 1], [0.5, 0.5], 0.5),
            {"base_dim": 8, "min_dim": -1},
            "^`min_dim` must be at least 0; got -1.$",
        ),
        (
            ([1, 1], [0.5, 0.5], 0.5),
            {"base_dim": 8, "min_dim": 3, "max_dim": 2},
            r"^`max_dim` \(2\) must be >= `min_dim` \(3\).$",
        ),
        (
            ([1, 1], [0.0, 0.5], 0.5),
            {"base_dim": 8},
            r"^`row_probabilities` must be non-increasing \(blocks ordered most popular first, "
            r"block 0 is the anchor\); block 1 has 0\.5 > block 0's 0\.$",
        ),
        (
            ([1, 1], [0.0, 0.0], 0.5),
            {"base_dim": 8},
            "^Block 0 needs a positive row probability to anchor `base_dim`.$",
        ),
        (
            ([1, 1], [0.0, 0.0], 0.5),
            {"budget": 8},
            r"^The row probabilities give Σ n_i p_i\^α = 0; cannot meet a budget.$",
        ),
    ],
)
def test_alpha_rule_errors_say_what_is_wrong(args, kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        alpha_power_dims(*args, **kwargs)


def test_alpha_rule_accepts_its_boundary_values() -> None:
    # min_dim == max_dim, α = 0 and min_dim = 1 are all valid.
    assert alpha_power_dims([1, 1], [0.5, 0.1], 0.0, base_dim=5, min_dim=4, max_dim=4) == [4, 4]
    assert alpha_power_dims([1, 1], [0.5, 0.1], 0.5, base_dim=5, min_dim=1) == [5, 2]
