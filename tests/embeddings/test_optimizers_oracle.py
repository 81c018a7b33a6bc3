"""LazyAdam against a naive numpy implementation of its documented rule, from the first steps on.

Early steps matter: there Adam's bias correction is far from 1, so a catch-up that used the raw
learning rate instead of the bias-corrected step size would move rows several times too far.
"""

from __future__ import annotations

import numpy as np
import pytest

from memory_efficient_embeddings.embeddings.optimizers import LazyAdam
from tests.embeddings.backend_ops import SPARSE_GRADIENTS, embedding_table, row_gradient

# Runs on JAX too in CI (`make test`): see pyproject.toml's markers.
pytestmark = pytest.mark.both_backends

ROWS, DIM = 6, 3
LR, BETA_1, BETA_2, EPSILON = 0.01, 0.9, 0.999, 1e-7


def _naive_lazy_adam(table, batches, catch_up: bool) -> np.ndarray:
    """Row-by-row Python loops over the rule in LazyAdam's docstring (float64).

    With ``catch_up``, a row touched again first replays each skipped step ``s`` as dense Adam
    would take it with a zero gradient: ``m`` and ``v`` decay by ``beta_1`` and ``beta_2`` and the
    row still moves by momentum, with step ``s``'s own bias correction.
    """
    weights = table.astype(np.float64).copy()
    m, v = np.zeros_like(weights), np.zeros_like(weights)
    last_update = np.zeros(ROWS, dtype=int)

    def step_size(t: int) -> float:
        return LR * (1 - BETA_2**t) ** 0.5 / (1 - BETA_1**t)

    for iteration, (indices, values) in enumerate(batches):
        t = iteration + 1
        summed = {}
        for row, value in zip(indices, values, strict=True):
            summed[row] = summed.get(row, 0.0) + value.astype(np.float64)
        for row, gradient in summed.items():
            if catch_up:
                for skipped_step in range(last_update[row] + 1, t):
                    m[row] = BETA_1 * m[row]
                    v[row] = BETA_2 * v[row]
                    weights[row] -= step_size(skipped_step) * m[row] / (np.sqrt(v[row]) + EPSILON)
                last_update[row] = t
            m[row] = BETA_1 * m[row] + (1 - BETA_1) * gradient
            v[row] = BETA_2 * v[row] + (1 - BETA_2) * gradient**2
            weights[row] -= step_size(t) * m[row] / (np.sqrt(v[row]) + EPSILON)
    return weights


def _naive_dense_adam(table, batches) -> np.ndarray:
    # Keras' form (the base class of LazyAdam): epsilon is added to sqrt(v) before the bias
    # correction, i.e. step = lr_t * m / (sqrt(v) + eps) with lr_t = lr * sqrt(1 - b2^t) / (1 - b1^t).
    weights = table.astype(np.float64).copy()
    m, v = np.zeros_like(weights), np.zeros_like(weights)
    for iteration, (indices, values) in enumerate(batches):
        t = iteration + 1
        gradient = np.zeros_like(weights)
        np.add.at(gradient, indices, values)
        m = BETA_1 * m + (1 - BETA_1) * gradient
        v = BETA_2 * v + (1 - BETA_2) * gradient**2
        step_size = LR * (1 - BETA_2**t) ** 0.5 / (1 - BETA_1**t)
        weights -= step_size * m / (np.sqrt(v) + EPSILON)
    return weights


def _batches() -> list[tuple[list[int], np.ndarray]]:
    # Row 0 at steps 1, 2 and 6; row 2 at steps 1 and 4 (twice); row 1 every step; 3..5 never.
    rows = [[0, 1, 2], [1, 0], [1], [2, 1, 2], [1], [0, 1]]
    rng = np.random.default_rng(7)
    return [(r, rng.normal(size=(len(r), DIM)).astype(np.float32)) for r in rows]


def _lazy_adam(table, batches, catch_up: bool) -> np.ndarray:
    variable = embedding_table(table)
    optimizer = LazyAdam(learning_rate=LR, epsilon=EPSILON, catch_up=catch_up)
    for indices, values in batches:
        optimizer.apply([row_gradient(values, indices, (ROWS, DIM))], [variable])
    assert int(optimizer.iterations) == len(batches)
    return variable.numpy()


@pytest.mark.parametrize("catch_up", [True, False])
def test_first_steps_follow_the_naive_rule(catch_up: bool) -> None:
    table = np.random.default_rng(0).normal(size=(ROWS, DIM)).astype(np.float32)
    batches = _batches()
    lazy = _lazy_adam(table, batches, catch_up)
    # Without sparse gradients (JAX) the catch-up is dense Adam itself: the rule it replays.
    dense_anyway = catch_up and not SPARSE_GRADIENTS
    rule = _naive_dense_adam if dense_anyway else lambda t, b: _naive_lazy_adam(t, b, catch_up)
    np.testing.assert_allclose(lazy, rule(table, batches), rtol=0, atol=2e-6)
    np.testing.assert_array_equal(lazy[3:], table[3:])  # never touched
    # Row 1, touched at every step, is exactly dense Adam; with the catch-up so is row 0, whose
    # skipped steps 3..5 are replayed when step 6 touches it again.
    dense = _naive_dense_adam(table, batches)
    rows_like_dense = [0, 1] if catch_up else [1]
    np.testing.assert_allclose(lazy[rows_like_dense], dense[rows_like_dense], rtol=0, atol=2e-6)


def test_catch_up_brings_revisited_rows_closer_to_dense_adam() -> None:
    table = np.random.default_rng(0).normal(size=(ROWS, DIM)).astype(np.float32)
    batches = _batches()
    dense = _naive_dense_adam(table, batches)
    caught_up = np.abs(_lazy_adam(table, batches, True) - dense)[[0, 2]]
    plain = np.abs(_lazy_adam(table, batches, False) - dense)[[0, 2]]
    assert caught_up.sum() < 0.5 * plain.sum()
