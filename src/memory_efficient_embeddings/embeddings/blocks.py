"""Popularity blocks and the α-power rule for mixed-dimension embeddings (pure numpy, no TF).

Ginart et al., "Mixed Dimension Embeddings with Application to Memory-Efficient Recommendation
Systems" (arXiv 1909.11810); reference code: facebookresearch/dlrm ``tricks/md_embedding_bag.py``
(``md_solver``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PopularityBlocks:
    """Contiguous blocks of popularity-sorted ids.

    Attributes:
        sizes: rows per block, most popular block first.
        boundaries: cumulative block ends (the last one is the number of ids).
        query_shares: each block's share of all queries (sums to 1).
        row_probabilities: per-row query probability ``p_i = query_share_i / size_i``.
    """

    sizes: tuple[int, ...]
    boundaries: tuple[int, ...]
    query_shares: tuple[float, ...]
    row_probabilities: tuple[float, ...]

    @property
    def num_blocks(self) -> int:
        """Number of blocks."""
        return len(self.sizes)


def _validate_frequencies(frequencies: Sequence[float] | np.ndarray) -> np.ndarray:
    freqs = np.asarray(frequencies, dtype=np.float64)
    if freqs.ndim != 1 or freqs.size == 0:
        raise ValueError("`frequencies` must be a non-empty 1-D array of per-id counts.")
    if not np.all(np.isfinite(freqs)) or np.any(freqs < 0):
        raise ValueError("`frequencies` must be finite and non-negative.")
    if np.any(np.diff(freqs) > 0):
        raise ValueError(
            "`frequencies` must be sorted by popularity, most popular first (non-increasing)."
        )
    if freqs.sum() <= 0:
        raise ValueError("`frequencies` must contain at least one positive count.")
    return freqs


def _equal_mass_boundaries(freqs: np.ndarray, num_blocks: int) -> list[int]:
    """Block ends such that each block carries about ``1 / num_blocks`` of the queries.

    Popular ids are few and carry most queries, so block sizes grow with depth, which is the
    shape the α-power rule exploits. Every block keeps at least one row.
    """
    n = freqs.size
    cumulative = np.cumsum(freqs) / freqs.sum()
    ends: list[int] = []
    previous = 0
    for b in range(1, num_blocks):
        # First position where the cumulative share reaches b / num_blocks.
        end = int(np.searchsorted(cumulative, b / num_blocks, side="left")) + 1
        # Keep at least one row in this block and leave one for each remaining block.
        end = max(end, previous + 1)
        end = min(end, n - (num_blocks - b))
        ends.append(end)
        previous = end
    ends.append(n)
    return ends


def popularity_blocks(
    frequencies: Sequence[float] | np.ndarray,
    boundaries: Sequence[int] | None = None,
    num_blocks: int | None = None,
) -> PopularityBlocks:
    """Split popularity-sorted ids into contiguous blocks.

    Args:
        frequencies: per-id query counts, already sorted most popular first (vocabulary order).
        boundaries: cumulative block ends, e.g. the recipe's ``[400, 1700]``; the rest of the ids
            form the last block (a trailing end equal to the number of ids is accepted too).
        num_blocks: alternatively, the number of blocks; boundaries are then chosen so that every
            block carries about the same share of queries (equal query mass), which makes block
            sizes grow geometrically-ish with depth on skewed (Zipf-like) data.

    Exactly one of ``boundaries`` and ``num_blocks`` must be given.
    """
    freqs = _validate_frequencies(frequencies)
    n = freqs.size
    if (boundaries is None) == (num_blocks is None):
        raise ValueError("Pass exactly one of `boundaries` and `num_blocks`.")
    if boundaries is not None:
        ends = [int(b) for b in boundaries]
        if ends and ends[-1] == n:
            ends = ends[:-1]
        if any(b <= 0 or b >= n for b in ends):
            raise ValueError(f"`boundaries` must lie strictly between 0 and {n}; got {boundaries}.")
        if any(b2 <= b1 for b1, b2 in zip(ends, ends[1:], strict=False)):
            raise ValueError(f"`boundaries` must be strictly increasing; got {boundaries}.")
        ends = [*ends, n]
    else:
        if not isinstance(num_blocks, int) or num_blocks < 1:
            raise ValueError(f"`num_blocks` must be a positive integer; got {num_blocks}.")
        if num_blocks > n:
            raise ValueError(f"`num_blocks` ({num_blocks}) cannot exceed the number of ids ({n}).")
        ends = _equal_mass_boundaries(freqs, num_blocks)

    starts = [0, *ends[:-1]]
    sizes = [e - s for s, e in zip(starts, ends, strict=True)]
    total = freqs.sum()
    shares = [float(freqs[s:e].sum() / total) for s, e in zip(starts, ends, strict=True)]
    probabilities = [share / size for share, size in zip(shares, sizes, strict=True)]
    return PopularityBlocks(
        sizes=tuple(sizes),
        boundaries=tuple(ends),
        query_shares=tuple(shares),
        row_probabilities=tuple(probabilities),
    )


def _round_power_of_two(dim: int) -> int:
    # DLRM's ``pow_2_round`` on an already integer dim: nearest power of two in log space. The
    # log of an integer is never exactly halfway, so the tie rule does not matter here. A block
    # rounded to 0 dims (min_dim 0) stays at 0.
    return 2 ** round(math.log2(dim)) if dim > 0 else 0


def _check_alpha_inputs(
    counts: np.ndarray,
    probs: np.ndarray,
    *,
    alpha: float,
    base_dim: float | None,
    budget: float | None,
    min_dim: int,
    max_dim: int | None,
) -> None:
    if counts.ndim != 1 or counts.size == 0 or counts.shape != probs.shape:
        raise ValueError("`row_counts` and `row_probabilities` must be non-empty and equally long.")
    if np.any(counts <= 0):
        raise ValueError("`row_counts` must be positive.")
    if np.any(probs < 0) or not np.all(np.isfinite(probs)):
        raise ValueError("`row_probabilities` must be finite and non-negative.")
    if alpha < 0:
        raise ValueError(f"`alpha` must be non-negative; got {alpha}.")
    if (base_dim is None) == (budget is None):
        raise ValueError("Pass exactly one of `base_dim` and `budget`.")
    if (base_dim is not None and base_dim <= 0) or (budget is not None and budget <= 0):
        raise ValueError("`base_dim` / `budget` must be positive.")
    if min_dim < 0:
        raise ValueError(f"`min_dim` must be at least 0; got {min_dim}.")
    # The rule anchors on block 0 and the layers expect the most popular block first; a small
    # relative slack absorbs float noise between equally popular blocks.
    rising = np.flatnonzero(probs[1:] > probs[:-1] * (1 + 1e-9))
    if rising.size:
        b = int(rising[0]) + 1
        raise ValueError(
            "`row_probabilities` must be non-increasing (blocks ordered most popular first, "
            f"block 0 is the anchor); block {b} has {probs[b]:.6g} > block {b - 1}'s "
            f"{probs[b - 1]:.6g}."
        )
    if max_dim is not None and max_dim < min_dim:
        raise ValueError(f"`max_dim` ({max_dim}) must be >= `min_dim` ({min_dim}).")


def alpha_power_dims(
    row_counts: Sequence[int],
    row_probabilities: Sequence[float],
    alpha: float,
    *,
    base_dim: float | None = None,
    budget: float | None = None,
    min_dim: int = 1,
    max_dim: int | None = None,
    round_dims: bool = True,
    power_of_two: bool = False,
) -> list[int] | list[float]:
    """Block dimensions by the α-power rule ``d_i = λ · p_i^α`` (Ginart et al.; DLRM ``md_solver``).

    Args:
        row_counts: rows per block ``n_i``; block 0 must be the most popular one.
        row_probabilities: per-row query probability ``p_i`` of each block.
        alpha: temperature; 0 gives uniform dims, larger values shrink rare blocks faster.
        base_dim: dim of block 0; then ``λ = base_dim · p_0^(-α)``.
        budget: total embedding parameters ``B = Σ n_i d_i``; then ``λ = B / Σ n_i p_i^α``
            (met exactly before clamping and rounding, approximately after).
        min_dim, max_dim: clamp range (applied before and after rounding). ``min_dim=0`` lets
            a rare block round to 0 dims (below one float per id: with biases in the
            embedding, such a block holds only its ids' biases).
        round_dims: round to the nearest integer, halves to even (``torch.round``, as DLRM's
            ``alpha_power_rule``); ``False`` returns the clamped floats.
        power_of_two: round to an integer first, then to the nearest power of two in log space,
            exactly as DLRM's ``md_solver(round_dim=True)`` (``pow_2_round`` of the rounded dims:
            raw 2.6 -> 3 -> 4, raw 11.4 -> 11 -> 8); the final clamp can still give a non-power
            of two when the bounds are not powers of two.

    Exactly one of ``base_dim`` and ``budget`` must be given. ``row_probabilities`` must be
    non-increasing (``ValueError`` otherwise). With ``p_i = 1 / n_i`` (DLRM's default ``k``),
    ``min_dim=1`` and no ``max_dim`` the result equals ``md_solver(n, alpha, d0=base_dim)`` or
    ``md_solver(n, alpha, B=budget)`` (``round_dim=power_of_two``).
    """
    counts = np.asarray(row_counts, dtype=np.float64)
    probs = np.asarray(row_probabilities, dtype=np.float64)
    _check_alpha_inputs(
        counts,
        probs,
        alpha=alpha,
        base_dim=base_dim,
        budget=budget,
        min_dim=min_dim,
        max_dim=max_dim,
    )

    powered = probs**alpha  # 0 ** 0 == 1, so α = 0 stays uniform even for unqueried blocks
    if base_dim is not None:
        if powered[0] <= 0:
            raise ValueError("Block 0 needs a positive row probability to anchor `base_dim`.")
        lam = base_dim / powered[0]
    else:
        denominator = float(np.sum(counts * powered))
        if denominator <= 0:
            raise ValueError("The row probabilities give Σ n_i p_i^α = 0; cannot meet a budget.")
        lam = budget / denominator

    upper = np.inf if max_dim is None else float(max_dim)
    raw = lam * powered
    if base_dim is not None:
        raw[0] = base_dim  # exactly, as DLRM sets d[0] = d0 (lam * p_0**α can be off by an ulp)
    dims = np.clip(raw, min_dim, upper)
    if not (round_dims or power_of_two):
        return [float(d) for d in dims]
    # Halves to even, like torch.round in DLRM's alpha_power_rule.
    rounded = [int(np.rint(d)) for d in dims]
    if power_of_two:
        rounded = [_round_power_of_two(d) for d in rounded]
    return [int(min(max(d, min_dim), upper)) for d in rounded]
