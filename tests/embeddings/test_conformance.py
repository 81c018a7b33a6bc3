"""The library against the implementations it follows, re-stated here as tests.

* TensorFlow Addons' ``LazyAdam`` test cases (``optimizers/tests/lazy_adam_test.py``): sparse
  and dense updates against a numpy Adam for every float dtype, repeated indices, callable and
  schedule learning rates, one slot set per variable, serialization; plus 1-D and 3-D variables.
* ``LazyAdam`` against ``keras.optimizers.Adam``: dense gradients exactly, touched rows of sparse
  gradients to float32 rounding (also after catch-up, and for ``beta_1 == sqrt(beta_2)``).
* ``alpha_power_dims`` against a numpy port of DLRM's ``md_solver`` (facebookresearch/dlrm,
  ``tricks/md_embedding_bag.py``) on random inputs; the quotient-remainder index mapping against
  DLRM's ``QREmbeddingBag.forward``.
* Every layer under a global and a per-layer mixed-precision policy, ``quantize("int8")`` and
  ``.keras`` round trips.

The references are ported from their published semantics, not imported (neither PyTorch nor TF
Addons is a dependency).
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
from keras import ops

from memory_efficient_embeddings.embeddings import (
    CompactEmbedding,
    DHEEmbedding,
    FullEmbedding,
    HashedEmbedding,
    HashEmbedding,
    LazyAdam,
    MixedDimensionEmbedding,
    ProjectedEmbedding,
    QuotientRemainderEmbedding,
    alpha_power_dims,
    build_rating_model,
)
from tests.embeddings.backend_ops import densified, row_gradient

FLOAT_DTYPES = ["float16", "float32", "float64"]
# TF Addons' assert_allclose_according_to_type: 1e-3 for half precision, 1e-6 otherwise.
TOLERANCE = {"float16": 1e-3, "float32": 1e-6, "float64": 1e-6}


# --------------------------------------------------------------------------------------------
# TF Addons' LazyAdam cases
# --------------------------------------------------------------------------------------------


def numpy_adam_step(
    param: np.ndarray,
    grad: np.ndarray,
    step: int,
    m: np.ndarray,
    v: np.ndarray,
    lr: float = 0.001,
    beta_1: float = 0.9,
    beta_2: float = 0.999,
    epsilon: float = 1e-7,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One Adam step (Kingma & Ba with epsilon-hat) in float64; ``step`` counts from 0."""
    lr_t = lr * math.sqrt(1 - beta_2 ** (step + 1)) / (1 - beta_1 ** (step + 1))
    m = beta_1 * m + (1 - beta_1) * grad
    v = beta_2 * v + (1 - beta_2) * grad * grad
    return param - lr_t * m / (np.sqrt(v) + epsilon), m, v


def _slices(values: Any, indices: list[int], dense_shape: list[int], dtype: str) -> Any:
    # tf.IndexedSlices on TensorFlow; on JAX the dense gradient a lookup gives there.
    return row_gradient(values, indices, dense_shape, dtype)


@pytest.mark.both_backends
@pytest.mark.parametrize("catch_up", [True, False])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_addons_sparse_matches_numpy_adam(dtype: str, catch_up: bool) -> None:
    # Two 1-D variables, gradients on elements 0 and 2 only; the numpy reference updates every
    # element with a zero gradient on element 1, which leaves it unchanged (zero moments).
    var0_np, var1_np = np.array([1.0, 1.0, 2.0]), np.array([3.0, 3.0, 4.0])
    grads0_np, grads1_np = np.array([0.1, 0.0, 0.1]), np.array([0.01, 0.0, 0.01])
    var0, var1 = keras.Variable(var0_np, dtype=dtype), keras.Variable(var1_np, dtype=dtype)
    grads0 = _slices(grads0_np[[0, 2]], [0, 2], [3], dtype)
    grads1 = _slices(grads1_np[[0, 2]], [0, 2], [3], dtype)
    optimizer = LazyAdam(catch_up=catch_up)
    m0 = v0 = m1 = v1 = np.zeros(3)
    for step in range(3):
        optimizer.apply_gradients(zip([grads0, grads1], [var0, var1], strict=True))
        var0_np, m0, v0 = numpy_adam_step(var0_np, grads0_np, step, m0, v0)
        var1_np, m1, v1 = numpy_adam_step(var1_np, grads1_np, step, m1, v1)
        tol = TOLERANCE[dtype]
        np.testing.assert_allclose(var0.numpy(), var0_np, rtol=tol, atol=tol)
        np.testing.assert_allclose(var1.numpy(), var1_np, rtol=tol, atol=tol)
    assert var0.dtype == dtype


@pytest.mark.both_backends
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_addons_repeated_indices_equal_aggregated_gradient(dtype: str) -> None:
    repeated_var = keras.Variable([[1.0], [2.0]], dtype=dtype)
    aggregated_var = keras.Variable([[1.0], [2.0]], dtype=dtype)
    repeated = _slices([[0.1], [0.1]], [1, 1], [2, 1], dtype)
    aggregated = _slices([[0.2]], [1], [2, 1], dtype)
    repeated_optimizer, aggregated_optimizer = LazyAdam(), LazyAdam()
    for _ in range(3):
        repeated_optimizer.apply_gradients([(repeated, repeated_var)])
        aggregated_optimizer.apply_gradients([(aggregated, aggregated_var)])
        np.testing.assert_array_equal(repeated_var.numpy(), aggregated_var.numpy())
    assert repeated_var.numpy()[1, 0] < 2.0


# TF Addons also passes a tf.constant learning rate; Keras 3 optimizers refuse tensors, so a
# schedule (constant here) stands in for it.
@pytest.mark.parametrize("learning_rate", ["float", "callable", "schedule"])
@pytest.mark.parametrize("dtype", FLOAT_DTYPES)
def test_addons_dense_and_learning_rate_kinds_match_numpy_adam(
    dtype: str, learning_rate: str
) -> None:
    lr: Any = {
        "float": 0.001,
        "callable": lambda: 0.001,
        "schedule": keras.optimizers.schedules.ExponentialDecay(0.001, 10, decay_rate=1.0),
    }[learning_rate]
    var0_np, var1_np = np.array([1.0, 2.0]), np.array([3.0, 4.0])
    grads0_np, grads1_np = np.array([0.1, 0.1]), np.array([0.01, 0.01])
    var0, var1 = keras.Variable(var0_np, dtype=dtype), keras.Variable(var1_np, dtype=dtype)
    optimizer = LazyAdam(learning_rate=lr)
    m0 = v0 = m1 = v1 = np.zeros(2)
    for step in range(3):
        grads = [ops.convert_to_tensor(g, dtype=dtype) for g in (grads0_np, grads1_np)]
        optimizer.apply_gradients(zip(grads, [var0, var1], strict=True))
        var0_np, m0, v0 = numpy_adam_step(var0_np, grads0_np, step, m0, v0)
        var1_np, m1, v1 = numpy_adam_step(var1_np, grads1_np, step, m1, v1)
        tol = TOLERANCE[dtype]
        np.testing.assert_allclose(var0.numpy(), var0_np, rtol=tol, atol=tol)
        np.testing.assert_allclose(var1.numpy(), var1_np, rtol=tol, atol=tol)


@pytest.mark.both_backends
@pytest.mark.parametrize("sparse_min_size", [0, 10**6])
def test_duplicate_rows_square_the_summed_gradient(sparse_min_size: int) -> None:
    # Dense Adam (and TF Addons, which sums duplicates first) squares a row's summed gradient.
    # Keras 3's Adam given the IndexedSlices itself squares each duplicate before summing
    # (v grows by 0.1**2 + 0.3**2 instead of 0.4**2); LazyAdam follows dense Adam on both paths.
    variable = keras.Variable([[1.0], [1.0]])
    optimizer = LazyAdam(0.01, sparse_min_size=sparse_min_size)
    grad = _slices([[0.1], [0.3]], [1, 1], [2, 1], "float32")
    param, m, v = np.array([1.0, 1.0]), np.zeros(2), np.zeros(2)
    for step in range(2):
        optimizer.apply_gradients([(grad, variable)])
        param, m, v = numpy_adam_step(param, np.array([0.0, 0.4]), step, m, v, lr=0.01)
    np.testing.assert_allclose(variable.numpy().ravel(), param, rtol=1e-6)


def test_addons_one_slot_set_per_variable() -> None:
    var0, var1 = keras.Variable([1.0, 2.0]), keras.Variable([[3.0], [4.0]])
    optimizer = LazyAdam(1.0)
    optimizer.build([var0, var1])
    # iterations and learning rate, then m, v and the per-row last-update step of each variable.
    assert len(optimizer.variables) == 2 + 3 * 2
    assert len({id(v) for v in optimizer.variables}) == len(optimizer.variables)
    plain = LazyAdam(1.0, catch_up=False)
    plain.build([var0, var1])
    assert len(plain.variables) == 2 + 2 * 2


def test_addons_serialization_round_trip() -> None:
    schedule = keras.optimizers.schedules.ExponentialDecay(0.01, decay_steps=10, decay_rate=0.9)
    optimizer = LazyAdam(
        learning_rate=schedule, beta_1=0.8, beta_2=0.95, epsilon=1e-6, catch_up=False
    )
    config = optimizer.get_config()
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert isinstance(restored, LazyAdam)
    assert restored.get_config() == config
    assert (restored.beta_1, restored.beta_2, restored.epsilon) == (0.8, 0.95, 1e-6)
    assert restored.catch_up is False
    assert isinstance(restored.learning_rate, keras.Variable) or callable(restored._learning_rate)


def _run_steps(
    variable: keras.Variable,
    optimizer: keras.optimizers.Optimizer,
    batches: list[tuple[list[int], np.ndarray]],
) -> None:
    for indices, values in batches:
        optimizer.apply_gradients(
            [(_slices(values, indices, list(variable.shape), "float32"), variable)]
        )


@pytest.mark.both_backends
def test_catch_up_on_1d_variable_matches_keras_adam() -> None:
    # The case: catch_up broadcast its per-row factors as [:, None] and failed on 1-D.
    rng = np.random.default_rng(0)
    lazy_var, dense_var = (
        keras.Variable(np.ones(3, "float32")),
        keras.Variable(np.ones(3, "float32")),
    )
    lazy, dense = LazyAdam(learning_rate=0.01), keras.optimizers.Adam(learning_rate=0.01)
    # Element 1 is touched at the first and last of 5 steps, elements 0 and 2 every step.
    for step in range(5):
        indices = [0, 1, 2] if step in (0, 4) else [0, 2]
        grad = _slices(rng.normal(size=len(indices)), indices, [3], "float32")
        lazy.apply_gradients([(grad, lazy_var)])
        dense.apply_gradients([(densified(grad), dense_var)])
    np.testing.assert_allclose(lazy_var.numpy(), dense_var.numpy(), rtol=1e-6, atol=1e-7)


def test_3d_table_ends_identical_to_its_2d_view() -> None:
    rng = np.random.default_rng(1)
    initial = rng.normal(size=(6, 2, 3)).astype("float32")
    table_3d, table_2d = keras.Variable(initial), keras.Variable(initial.reshape(6, 6))
    optimizer_3d, optimizer_2d = LazyAdam(0.01), LazyAdam(0.01)
    for step in range(8):  # rows come back after gaps, so catch-up is exercised
        indices = [[0, 3, 3], [1], [0, 5], [2, 4], [3], [0, 1, 2], [5, 5], [4]][step]
        values = rng.normal(size=(len(indices), 2, 3)).astype("float32")
        optimizer_3d.apply_gradients([(_slices(values, indices, [6, 2, 3], "float32"), table_3d)])
        optimizer_2d.apply_gradients(
            [(_slices(values.reshape(-1, 6), indices, [6, 6], "float32"), table_2d)]
        )
    np.testing.assert_array_equal(table_3d.numpy().reshape(6, 6), table_2d.numpy())
    assert not np.allclose(table_3d.numpy(), initial)


# --------------------------------------------------------------------------------------------
# LazyAdam against keras.optimizers.Adam
# --------------------------------------------------------------------------------------------


@pytest.mark.both_backends
def test_dense_gradients_follow_keras_adam_exactly() -> None:
    rng = np.random.default_rng(2)
    initial = rng.normal(size=(5, 4)).astype("float32")
    lazy_var, dense_var = keras.Variable(initial), keras.Variable(initial)
    lazy, dense = LazyAdam(0.01), keras.optimizers.Adam(0.01)
    for _ in range(20):
        grad = ops.convert_to_tensor(rng.normal(size=(5, 4)), "float32")
        lazy.apply_gradients([(grad, lazy_var)])
        dense.apply_gradients([(grad, dense_var)])
    np.testing.assert_array_equal(lazy_var.numpy(), dense_var.numpy())


def _lazy_and_dense_side_by_side(
    initial: np.ndarray,
    batches: list[list[int]],
    lazy: LazyAdam,
    start_iteration: int = 0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Tables after the same sparse gradients under ``lazy`` and under Keras' dense Adam.

    Dense Adam gets the densified gradient (duplicates summed), as Keras' Adam would compute it
    from the IndexedSlices itself. One tf.function step keeps hundreds of steps fast.
    """
    import tensorflow as tf  # noqa: PLC0415 - one tf.function step: TensorFlow only

    rng = np.random.default_rng(seed)
    dense = keras.optimizers.Adam(
        learning_rate=float(lazy.learning_rate.numpy()), beta_1=lazy.beta_1, beta_2=lazy.beta_2
    )
    lazy_var, dense_var = keras.Variable(initial), keras.Variable(initial)
    for optimizer, variable in ((lazy, lazy_var), (dense, dense_var)):
        optimizer.build([variable])
        optimizer.iterations.assign(start_iteration)
    shape = list(initial.shape)

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, *shape[1:]], "float32"),
            tf.TensorSpec([None], "int64"),
        ]
    )
    def step(values: Any, indices: Any) -> None:
        grad = tf.IndexedSlices(values, indices, tf.constant(shape, "int64"))
        lazy.apply([grad], [lazy_var])
        dense.apply([tf.convert_to_tensor(grad)], [dense_var])

    for indices in batches:
        values = rng.normal(size=(len(indices), *shape[1:])).astype("float32")
        step(values, np.asarray(indices, "int64"))
    return lazy_var.numpy(), dense_var.numpy()


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("catch_up", [True, False])
def test_rows_touched_every_step_match_keras_adam_over_200_steps(catch_up: bool) -> None:
    # Every row is in every batch (with duplicates), so lazy and dense Adam see the same
    # gradients; (1 - beta) must be the exact 0.1 / 0.001, not 1 - float32(beta).
    rng = np.random.default_rng(3)
    initial = rng.normal(size=(4, 3)).astype("float32")
    batches = [[0, 1, 2, 3, int(rng.integers(4))] for _ in range(200)]
    lazy, dense = _lazy_and_dense_side_by_side(initial, batches, LazyAdam(0.01, catch_up=catch_up))
    np.testing.assert_array_max_ulp(lazy, dense, maxulp=4)


@pytest.mark.tensorflow_only
@pytest.mark.parametrize(("start", "steps"), [(0, 60), (1_000, 60), (5_000, 60), (0, 302)])
def test_catch_up_matches_keras_adam_early_and_late(start: int, steps: int) -> None:
    # Row 0 is touched at the first and the last step only; dense Adam moves it at every step,
    # with a bias correction that changes fast early in training. 300 skipped steps go past the
    # term-by-term part of the catch-up into its geometric tail.
    rng = np.random.default_rng(4)
    initial = rng.normal(size=(3, 4)).astype("float32")
    batches = [[0, 1] if step in (0, steps - 1) else [1] for step in range(steps)]
    lazy, dense = _lazy_and_dense_side_by_side(initial, batches, LazyAdam(0.01), start)
    moved = np.linalg.norm(dense[0] - initial[0])
    assert np.linalg.norm(lazy[0] - dense[0]) < 1e-4 * moved  # was 0.33 * moved from 0
    np.testing.assert_allclose(lazy[1], dense[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(lazy[2], initial[2])  # never touched


@pytest.mark.both_backends
@pytest.mark.parametrize(("beta_1", "beta_2"), [(0.5, 0.25), (0.9, 0.81)])
def test_catch_up_when_beta_1_equals_sqrt_beta_2(beta_1: float, beta_2: float) -> None:
    # r = beta_1 / sqrt(beta_2) = 1 made the geometric sum 0 / 0 (NaN from the first step).
    rng = np.random.default_rng(6)
    lazy_var = keras.Variable(np.ones((4, 2), "float32"))
    dense_var = keras.Variable(np.ones((4, 2), "float32"))
    lazy = LazyAdam(learning_rate=0.01, beta_1=beta_1, beta_2=beta_2)
    dense = keras.optimizers.Adam(learning_rate=0.01, beta_1=beta_1, beta_2=beta_2)
    first = _slices([[0.1, 0.1]], [1], [4, 2], "float32")
    lazy.apply_gradients([(first, lazy_var)])
    dense.apply_gradients([(densified(first), dense_var)])
    np.testing.assert_allclose(lazy_var.numpy()[1], [0.99, 0.99], rtol=1e-6)
    # Row 1 then skips three steps and comes back: the limit sum_j c_j * 1**j applies.
    for step in range(4):
        indices = [0, 1] if step == 3 else [0]
        grad = _slices(rng.normal(size=(len(indices), 2)), indices, [4, 2], "float32")
        lazy.apply_gradients([(grad, lazy_var)])
        dense.apply_gradients([(densified(grad), dense_var)])
    assert np.all(np.isfinite(lazy_var.numpy()))
    np.testing.assert_allclose(lazy_var.numpy()[:2], dense_var.numpy()[:2], rtol=1e-5)


def test_catch_up_refuses_betas_whose_skipped_moves_grow() -> None:
    # beta_1 > sqrt(beta_2): dense Adam's skipped moves grow until epsilon bounds them.
    with pytest.raises(ValueError, match="beta_1 <= sqrt"):
        LazyAdam(beta_1=0.9, beta_2=0.5)
    assert LazyAdam(beta_1=0.9, beta_2=0.5, catch_up=False).beta_2 == 0.5


# --------------------------------------------------------------------------------------------
# alpha_power_dims against DLRM's md_solver; QR against DLRM's QREmbeddingBag
# --------------------------------------------------------------------------------------------


def md_solver_port(
    n: np.ndarray,
    alpha: float,
    d0: float | None = None,
    budget: float | None = None,
    round_dim: bool = True,
    k: np.ndarray | None = None,
) -> np.ndarray:
    """DLRM's ``md_solver`` step by step in numpy, float32 like torch's default dtype."""
    order = np.argsort(n, kind="stable")
    n_sorted = n[order]
    k_sorted = k[order] if k is not None else np.ones(len(n), "float32")
    rows = n_sorted.astype("float32") / k_sorted.astype("float32")
    # alpha_power_rule
    if d0 is not None:
        lamb = np.float32(d0) * rows[0] ** np.float32(alpha)
    else:
        lamb = np.float32(budget) / np.sum(rows ** np.float32(1 - alpha))
    d = np.ones(len(rows), "float32") * lamb * rows ** np.float32(-alpha)
    for i in range(len(d)):
        if i == 0 and d0 is not None:
            d[i] = d0
        else:
            d[i] = 1 if d[i] < 1 else d[i]
    d = np.round(d).astype("int64")  # torch.round: halves to even
    if round_dim:  # pow_2_round
        d = (2 ** np.round(np.log2(d.astype("float32")))).astype("int64")
    undo = np.empty_like(order)
    undo[order] = np.arange(len(order))
    return d[undo]


def _random_tables(rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.integers(1, 200_000, size=int(rng.integers(2, 7))))


@pytest.mark.parametrize("power_of_two", [True, False])
def test_alpha_power_dims_equals_md_solver_with_base_dim(power_of_two: bool) -> None:
    rng = np.random.default_rng(7)
    for _ in range(1500):
        n = _random_tables(rng)
        alpha, d0 = float(rng.uniform(0, 1)), float(rng.uniform(1, 256))
        expected = md_solver_port(n, alpha, d0=d0, round_dim=power_of_two)
        dims = alpha_power_dims(n, 1.0 / n, alpha, base_dim=d0, power_of_two=power_of_two)
        assert dims == expected.tolist(), (n, alpha, d0)


@pytest.mark.parametrize("power_of_two", [True, False])
def test_alpha_power_dims_equals_md_solver_with_budget(power_of_two: bool) -> None:
    rng = np.random.default_rng(8)
    for _ in range(1500):
        n = _random_tables(rng)
        alpha = float(rng.uniform(0, 1))
        budget = float(n.sum() * rng.uniform(1, 64))
        expected = md_solver_port(n, alpha, budget=budget, round_dim=power_of_two)
        dims = alpha_power_dims(n, 1.0 / n, alpha, budget=budget, power_of_two=power_of_two)
        assert dims == expected.tolist(), (n, alpha, budget)


def test_alpha_power_dims_equals_md_solver_with_query_counts() -> None:
    # DLRM's k (queries per inference) enters as rows / k, i.e. a per-row probability k / n.
    rng = np.random.default_rng(9)
    for _ in range(500):
        n = _random_tables(rng)
        rows_per_query = np.sort(rng.uniform(1, 50_000, size=n.size))
        k = n / rows_per_query  # the smallest table is also the most queried per row
        alpha, d0 = float(rng.uniform(0, 1)), float(rng.uniform(1, 256))
        expected = md_solver_port(n, alpha, d0=d0, k=k)
        probs = (k.astype("float32") / n.astype("float32")).astype("float64")
        assert alpha_power_dims(n, probs, alpha, base_dim=d0, power_of_two=True) == (
            expected.tolist()
        )


def test_power_of_two_rounds_the_integer_dim_like_dlrm() -> None:
    # Raw 2.6 rounds to 3, then to 4 (log2 3 = 1.58); raw 11.4 to 11, then to 8 (log2 11 = 3.46).
    # Rounding the raw value in log space would give 2 and 16.
    for raw, expected in ((2.6, 4), (11.4, 8)):
        dims = alpha_power_dims([1, 1], [1.0, (raw / 64) ** 2], 0.5, base_dim=64, power_of_two=True)
        assert dims == [64, expected]


def test_alpha_power_dims_rejects_blocks_not_ordered_by_popularity() -> None:
    # The case returned [16, 102]: block 1 is far more popular per row than block 0.
    with pytest.raises(ValueError, match="non-increasing.*block 1"):
        alpha_power_dims([1460, 3], [1 / 1460, 1 / 3], 0.3, base_dim=16)
    with pytest.raises(ValueError, match="non-increasing"):
        alpha_power_dims([10, 20, 30], [0.05, 0.01, 0.02], 0.5, budget=300)
    # Equally popular blocks are fine.
    assert alpha_power_dims([3, 7], [0.1, 0.1], 0.5, base_dim=8) == [8, 8]


@pytest.mark.parametrize("combiner", ["multiply", "add", "concat"])
@pytest.mark.parametrize(("num_ids", "num_buckets"), [(1000, 32), (97, 10), (50_000, 7)])
def test_quotient_remainder_mapping_equals_qr_embedding_bag(
    combiner: str, num_ids: int, num_buckets: int
) -> None:
    layer = QuotientRemainderEmbedding(num_ids, 4, num_buckets=num_buckets, combiner=combiner)
    layer.build()
    # QREmbeddingBag's table sizes: ceil(n / m) quotient rows, m remainder rows.
    assert layer.quotient_table.input_dim == math.ceil(num_ids / num_buckets)
    assert layer.remainder_table.input_dim == num_buckets
    ids = np.random.default_rng(10).integers(0, num_ids, size=300)
    # Its forward: (input / num_collisions).long() (float division, truncated) and remainder.
    quotient = np.trunc(ids.astype("float32") / np.float32(num_buckets)).astype("int64")
    remainder = np.remainder(ids, num_buckets)
    q_rows = layer.quotient_table.embeddings.numpy()[quotient]
    r_rows = layer.remainder_table.embeddings.numpy()[remainder]
    expected = {
        "multiply": q_rows * r_rows,
        "add": q_rows + r_rows,
        "concat": np.concatenate([q_rows, r_rows], axis=-1),
    }[combiner]
    np.testing.assert_array_equal(np.asarray(layer(ids.astype("int32"))), expected)


# --------------------------------------------------------------------------------------------
# Mixed precision, int8 quantization, .keras round trips
# --------------------------------------------------------------------------------------------

LAYER_FACTORIES: dict[str, Callable[..., CompactEmbedding]] = {
    "full": lambda **kw: FullEmbedding(50, 8, **kw),
    "projected": lambda **kw: ProjectedEmbedding(50, 4, 8, use_bias=True, **kw),
    "hashed": lambda **kw: HashedEmbedding(50, 13, 8, seed=3, **kw),
    "qr_multiply": lambda **kw: QuotientRemainderEmbedding(50, 8, num_buckets=8, **kw),
    "qr_concat": lambda **kw: QuotientRemainderEmbedding(50, 8, combiner="concat", **kw),
    "mixed_dimension": lambda **kw: MixedDimensionEmbedding([10, 15, 25], [8, 4, 2], 8, **kw),
    # Own head rows, a hashed torso and a quotient-remainder tail (the frequency-aware hybrid).
    "mixed_dimension_shared": lambda **kw: MixedDimensionEmbedding(
        [10, 15, 25],
        [8, 4, 2],
        8,
        projection="pad",
        block_storage=["own", "hashed", "quotient_remainder"],
        block_buckets=[0, 4, 5],
        seed=1,
        **kw,
    ),
    "hash_embedding": lambda **kw: HashEmbedding(50, 8, num_buckets=9, importance_rows=20, **kw),
    "dhe": lambda **kw: DHEEmbedding(50, 8, num_hashes=6, hidden_dim=5, **kw),  # no table
}
IDS = np.array([0, 3, 9, 10, 24, 25, 49, 50, -1], dtype="int32")  # every block, and OOV


@pytest.fixture
def global_mixed_float16() -> Iterator[None]:
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _check_policy(layer: CompactEmbedding, policy: str) -> None:
    output = layer(IDS)
    assert layer.dtype_policy.name == policy
    sublayers = list(layer._flatten_layers(include_self=False, recursive=True))
    assert sublayers
    assert {sublayer.dtype_policy.name for sublayer in sublayers} == {policy}
    assert {variable.dtype for variable in layer.weights} == {"float32"}
    assert keras.backend.standardize_dtype(output.dtype) == "float16"
    np.testing.assert_array_equal(np.asarray(output)[-2:], 0)  # OOV rows stay zero


@pytest.mark.parametrize("kind", sorted(LAYER_FACTORIES))
def test_per_layer_mixed_precision_reaches_sublayers_and_output(kind: str) -> None:
    layer = LAYER_FACTORIES[kind](dtype="mixed_float16")
    _check_policy(layer, "mixed_float16")
    # The same values as the float32 layer, to float16 rounding.
    reference = LAYER_FACTORIES[kind]()
    reference.build()
    for target, source in zip(reference.weights, layer.weights, strict=True):
        target.assign(source.numpy())
    # DHE's rows come out of two float16 matmuls (values near 1): rounding adds up to ~1e-3.
    atol = 2e-3 if kind == "dhe" else 1e-4
    np.testing.assert_allclose(
        np.asarray(layer(IDS)), np.asarray(reference(IDS)), rtol=2e-3, atol=atol
    )
    restored = type(layer).from_config(layer.get_config())
    assert restored.dtype_policy.name == "mixed_float16"


@pytest.mark.parametrize("kind", sorted(LAYER_FACTORIES))
def test_global_mixed_precision_reaches_sublayers_and_output(
    kind: str, global_mixed_float16: None
) -> None:
    _check_policy(LAYER_FACTORIES[kind](), "mixed_float16")


def test_rating_model_under_global_mixed_precision(global_mixed_float16: None) -> None:
    model = build_rating_model(
        30, 20, {"type": "quotient_remainder"}, {"type": "full"}, 8, use_biases=True
    )
    ids = {"user_id": np.array([0, 5, 30], "int32"), "movie_id": np.array([1, 19, 2], "int32")}
    assert keras.backend.standardize_dtype(model(ids).dtype) == "float16"
    policies = {layer.dtype_policy.name for layer in model._flatten_layers(include_self=False)}
    assert policies == {"mixed_float16"}


def _every_layer_model(policy: str) -> keras.Model:
    """One model holding one layer of each kind side by side: one save and load covers all."""
    ids = keras.Input(shape=(), dtype="int32", name="ids")
    outputs = {
        kind: factory(dtype=policy, name=kind)(ids) for kind, factory in LAYER_FACTORIES.items()
    }
    return keras.Model(ids, outputs)


def _as_float32(outputs: dict[str, Any]) -> dict[str, np.ndarray]:
    return {
        kind: keras.ops.convert_to_numpy(out).astype("float32") for kind, out in outputs.items()
    }


# Keras refuses int8 quantization under a float16 compute dtype and suggests mixed_bfloat16.
@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_keras_and_int8_round_trips(
    policy: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Keras' Layer.__delattr__ runs gc.collect() for every float table that quantize() drops:
    # about 2 s each in a process holding TensorFlow. Skipping it changes nothing but the time.
    monkeypatch.setattr(gc, "collect", lambda *args: 0)
    keras.utils.set_random_seed(0)
    model = _every_layer_model(policy)
    expected = _as_float32(model(IDS))
    model.save(tmp_path / "float.keras")
    reloaded = keras.saving.load_model(tmp_path / "float.keras")
    for kind, values in _as_float32(reloaded(IDS)).items():
        np.testing.assert_array_equal(values, expected[kind], err_msg=kind)
        assert reloaded.get_layer(kind).dtype_policy.name == policy

    with pytest.warns(UserWarning):  # the InputLayer has nothing to quantize
        model.quantize("int8")
    for kind in LAYER_FACTORIES:
        stored = "kernel" if kind == "dhe" else "embeddings"  # DHE quantizes its Dense layers
        tables = [w for w in model.get_layer(kind).weights if w.path.endswith(stored)]
        assert tables and {w.dtype for w in tables} == {"int8"}, kind
    outputs = model(IDS)
    compute_dtype = keras.mixed_precision.Policy(policy).compute_dtype
    assert {keras.backend.standardize_dtype(out.dtype) for out in outputs.values()} == {
        compute_dtype
    }
    quantized = _as_float32(outputs)
    for kind, values in quantized.items():
        scale = np.abs(expected[kind]).max()
        assert np.abs(values - expected[kind]).max() <= 0.02 * scale, kind
    model.save(tmp_path / "int8.keras")
    reloaded = keras.saving.load_model(tmp_path / "int8.keras")
    for kind, values in _as_float32(reloaded(IDS)).items():
        np.testing.assert_array_equal(values, quantized[kind], err_msg=kind)


# Keras' default int4 (groups of 128 columns, with zero points) and one scale per row.
INT4_CONFIGS = {
    "default": None,
    "per_row": keras.quantizers.Int4QuantizationConfig(block_size=-1),
}


@pytest.mark.parametrize("config", sorted(INT4_CONFIGS))
def test_int4_round_trips(config: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gc, "collect", lambda *args: 0)  # see test_keras_and_int8_round_trips
    keras.utils.set_random_seed(0)
    model = _every_layer_model("float32")
    expected = _as_float32(model(IDS))
    with pytest.warns(UserWarning):  # the InputLayer has nothing to quantize
        if INT4_CONFIGS[config] is None:
            model.quantize("int4")
        else:
            model.quantize(config=INT4_CONFIGS[config])
    full_table = model.get_layer("full").table
    # Two int4 values per int8 byte: 8 columns in 4 bytes.
    assert full_table._embeddings.dtype == "int8" and tuple(full_table._embeddings.shape) == (50, 4)
    quantized = _as_float32(model(IDS))
    for kind, values in quantized.items():
        scale = np.abs(expected[kind]).max()
        # 16 levels per row (or group): about 1/15 of the row's range at worst.
        assert np.abs(values - expected[kind]).max() <= 0.15 * scale, kind
    model.save(tmp_path / "int4.keras")
    reloaded = keras.saving.load_model(tmp_path / "int4.keras")
    for kind, values in _as_float32(reloaded(IDS)).items():
        np.testing.assert_array_equal(values, quantized[kind], err_msg=kind)
