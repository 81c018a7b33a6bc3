"""TT-Rec (Yin et al., MLSys 2021): the table as a three-core tensor train."""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from memory_efficient_embeddings.embeddings.layers import (
    PACKAGE,
    CompactEmbedding,
    Unquantizable,
    _check_positive_int,
)

# Variance of keras "uniform" (±0.05), the plain table the full rows should match.
_UNIFORM_TABLE_VARIANCE = 0.05**2 / 3


def factor_rows(num_ids: int) -> tuple[int, int, int]:
    """``(n1, n2, n3)`` near the cube root with ``n1·n2·n3 >= num_ids`` (few padded rows)."""
    n1 = math.ceil(num_ids ** (1 / 3))
    n2 = math.ceil(math.sqrt(num_ids / n1))
    n3 = math.ceil(num_ids / (n1 * n2))
    return n1, n2, n3


def factor_width(output_dim: int) -> tuple[int, int, int]:
    """``(d1, d2, d3)`` with ``d1·d2·d3 == output_dim``, as balanced as the divisors allow."""
    best = (1, 1, output_dim)
    for d1 in range(1, output_dim + 1):
        if output_dim % d1:
            continue
        for d2 in range(1, output_dim // d1 + 1):
            if (output_dim // d1) % d2:
                continue
            candidate = (d1, d2, output_dim // (d1 * d2))
            # Smallest largest factor first, then the largest smallest one: (2, 2, 4) over (1, 4, 4).
            if (max(candidate), -min(candidate)) < (max(best), -min(best)):
                best = candidate
    return tuple(sorted(best))  # type: ignore[return-value]


def tt_parameter_count(num_ids: int, output_dim: int, rank: int) -> int:
    """Weights of the three cores at this rank."""
    (n1, n2, n3), (d1, d2, d3) = factor_rows(num_ids), factor_width(output_dim)
    return n1 * d1 * rank + n2 * rank * d2 * rank + n3 * rank * d3


@keras.saving.register_keras_serializable(package=PACKAGE)
class TTEmbedding(Unquantizable, CompactEmbedding):
    """Row ``i = (i1·n2 + i2)·n3 + i3`` is ``G1[i1] · G2[i2] · G3[i3]`` flattened to ``d1·d2·d3``.

    Cores are stored row-index first, ``G_k`` of shape ``(n_k, r_{k-1}, d_k, r_k)`` with
    ``r_0 = r_3 = 1``, so a lookup gathers one slice per core and contracts them with einsum.
    Cores are Gaussian with the standard deviation TT-Rec derives, so that a full row has the
    variance of the plain ±0.05 uniform table: ``Var = r1·r2·σ^6``.

    Args:
        tt_rank: ``r1 = r2``; or give ``parameter_budget`` and the largest rank that fits is used.
        parameter_budget: most weights allowed (used when ``tt_rank`` is not given).
    """

    budget_sizes = ("tt_rank",)
    size_arguments = ("tt_rank",)
    quantize_refusal = (
        "its cores are multiplied together per lookup, so int8 error compounds across three "
        "factors."
    )

    def __init__(
        self,
        num_ids: int,
        output_dim: int,
        tt_rank: int | None = None,
        parameter_budget: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(num_ids, output_dim, **kwargs)
        if (tt_rank is None) == (parameter_budget is None):
            raise ValueError("TTEmbedding needs exactly one of `tt_rank` and `parameter_budget`.")
        self.parameter_budget = parameter_budget
        if tt_rank is None:
            budget = _check_positive_int("parameter_budget", parameter_budget)
            if tt_parameter_count(self.num_ids, self.output_dim, 1) > budget:
                raise ValueError(
                    f"`parameter_budget`={budget} is below the rank-1 tensor train "
                    f"({tt_parameter_count(self.num_ids, self.output_dim, 1)} weights)."
                )
            tt_rank = 1
            while tt_parameter_count(self.num_ids, self.output_dim, tt_rank + 1) <= budget:
                tt_rank += 1
        self.tt_rank = _check_positive_int("tt_rank", tt_rank)
        self.row_factors = factor_rows(self.num_ids)
        self.width_factors = factor_width(self.output_dim)

    def build(self, input_shape: tuple | None = None) -> None:
        (n1, n2, n3), (d1, d2, d3), r = self.row_factors, self.width_factors, self.tt_rank
        stddev = (_UNIFORM_TABLE_VARIANCE / (r * r)) ** (1 / 6)
        init = keras.initializers.RandomNormal(stddev=stddev)
        self.core_1 = self.add_weight(shape=(n1, 1, d1, r), initializer=init, name="core_1")
        self.core_2 = self.add_weight(shape=(n2, r, d2, r), initializer=init, name="core_2")
        self.core_3 = self.add_weight(shape=(n3, r, d3, 1), initializer=init, name="core_3")
        self.built = True

    def lookup(self, indices: Any) -> Any:
        _, n2, n3 = self.row_factors
        flat = ops.reshape(indices, (-1,))
        i1, i2, i3 = flat // (n2 * n3), (flat // n3) % n2, flat % n3
        g1 = ops.take(ops.cast(self.core_1, self.compute_dtype), i1, axis=0)[:, 0]  # (B, d1, r)
        g2 = ops.take(ops.cast(self.core_2, self.compute_dtype), i2, axis=0)  # (B, r, d2, r)
        g3 = ops.take(ops.cast(self.core_3, self.compute_dtype), i3, axis=0)[..., 0]  # (B, r, d3)
        rows = ops.einsum("bar,brcs,bse->bace", g1, g2, g3)
        return ops.reshape(rows, (*ops.shape(indices), self.output_dim))

    def get_config(self) -> dict[str, Any]:
        # The rank is what the weights were built with; the budget only chose it.
        return {**super().get_config(), "tt_rank": self.tt_rank}
