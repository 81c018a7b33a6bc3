"""Tests for the row-sparse ``LazyAdam`` optimizer.

On TensorFlow table gradients are ``tf.IndexedSlices`` (the sparse path); on JAX they are dense
(``catch_up`` gives dense Adam, ``catch_up=False`` the masked lazy update). Tests of the sparse
path's own mechanics are ``tensorflow_only``; the others run on both backends.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops

from memory_efficient_embeddings.embeddings.optimizers import LazyAdam
from tests.embeddings.backend_ops import (
    BACKEND,
    dense_gradient,
    embedding_table,
    layer_gradients,
    row_gradient,
)

# Runs on JAX too in CI (`make test`): see pyproject.toml's markers.
pytestmark = pytest.mark.both_backends

ROWS, DIM = 10, 3


def _table(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(ROWS, DIM)).astype("float32")


def _sparse_grad(indices: list[int], seed: int) -> tuple[list[int], np.ndarray]:
    return indices, np.random.default_rng(seed).normal(size=(len(indices), DIM))


def _step(
    optimizer: keras.optimizers.Optimizer,
    variable: keras.Variable,
    grad: tuple[list[int], np.ndarray],
    densify: bool,
) -> None:
    # Dense Adam receives the densified gradient (duplicates summed). Keras' Adam given the
    # IndexedSlices itself would square each duplicate before summing them into v.
    indices, values = grad
    gradient = dense_gradient if densify else row_gradient
    optimizer.apply([gradient(values, indices, variable.shape)], [variable])


@pytest.mark.tensorflow_only
def test_lookup_gradients_are_indexed_slices() -> None:
    """The premise: embedding lookups give row-sparse gradients on TF."""
    import tensorflow as tf  # noqa: PLC0415

    table = keras.Variable(_table())
    embedding = keras.layers.Embedding(ROWS, DIM)
    embedding.build((None,))
    ids = np.array([1, 1, 4])
    with tf.GradientTape() as tape:
        loss = ops.sum(ops.take(table, ids, axis=0)) + ops.sum(embedding(ids))
    grads = tape.gradient(loss, [table, *embedding.trainable_variables])
    assert all(isinstance(g, tf.IndexedSlices) for g in grads)


def test_first_step_matches_dense_adam_with_duplicate_indices() -> None:
    initial = _table()
    lazy_var, dense_var = embedding_table(initial), keras.Variable(initial)
    grad = _sparse_grad([1, 3, 1, 7, 3, 1], seed=1)

    _step(LazyAdam(learning_rate=0.01), lazy_var, grad, densify=False)
    _step(keras.optimizers.Adam(learning_rate=0.01), dense_var, grad, densify=True)

    touched = [1, 3, 7]
    np.testing.assert_allclose(
        lazy_var.numpy()[touched], dense_var.numpy()[touched], rtol=1e-6, atol=1e-7
    )
    assert not np.allclose(lazy_var.numpy()[touched], initial[touched])
    untouched = [i for i in range(ROWS) if i not in touched]
    np.testing.assert_array_equal(lazy_var.numpy()[untouched], initial[untouched])


@pytest.mark.parametrize("catch_up", [False, pytest.param(True, marks=pytest.mark.tensorflow_only)])
def test_lazy_rows_versus_dense_momentum_over_steps(catch_up: bool) -> None:
    # Between visits a row stays put, also with catch_up on TensorFlow (it catches up when it is
    # touched again); catch_up on JAX is dense Adam, whose momentum moves it.
    initial = _table()
    lazy_var, dense_var = embedding_table(initial), keras.Variable(initial)
    lazy, dense = LazyAdam(learning_rate=0.01, catch_up=catch_up), keras.optimizers.Adam(0.01)
    # Row 1 is touched every step; rows 0, 2, 3 once each; 4..9 never.
    batches = [[1, 0], [1, 2, 2], [1, 3]]

    lazy_after_first = None
    for step, indices in enumerate(batches):
        grad = _sparse_grad(indices, seed=10 + step)
        _step(lazy, lazy_var, grad, densify=False)
        _step(dense, dense_var, grad, densify=True)
        if step == 0:
            lazy_after_first = lazy_var.numpy().copy()
            dense_after_first = dense_var.numpy().copy()

    lazy_final, dense_final = lazy_var.numpy(), dense_var.numpy()
    # Never touched: exactly the initial values.
    np.testing.assert_array_equal(lazy_final[4:], initial[4:])
    # Row 0 touched only at step 1: lazy leaves it alone afterwards, dense
    # Adam keeps moving it with the momentum of that first gradient.
    np.testing.assert_array_equal(lazy_final[0], lazy_after_first[0])
    assert not np.allclose(dense_final[0], dense_after_first[0])
    # Touched at every step: identical state history, so lazy == dense.
    np.testing.assert_allclose(lazy_final[1], dense_final[1], rtol=1e-6, atol=1e-7)
    # Touched only at the current (last) step: first-touch update at step t
    # differs from dense only through the global-step bias correction, which
    # both share, so they agree as well.
    np.testing.assert_allclose(lazy_final[3], dense_final[3], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("catch_up", [True, False])
def test_dense_gradients_follow_dense_adam(catch_up: bool) -> None:
    layer_lazy, layer_dense = keras.layers.Dense(4), keras.layers.Dense(4)
    layer_lazy.build((None, 5))
    layer_dense.build((None, 5))
    layer_dense.set_weights(layer_lazy.get_weights())
    lazy, dense = LazyAdam(learning_rate=0.01, catch_up=catch_up), keras.optimizers.Adam(0.01)
    rng = np.random.default_rng(3)
    for _ in range(3):
        x = rng.normal(size=(8, 5)).astype("float32")
        # A kernel row whose input is always 0 has a zero gradient: Dense kernels are no tables,
        # so even without catch_up they move with their momentum, as in Adam.
        x[:, 0] = 0.0
        for layer, opt in ((layer_lazy, lazy), (layer_dense, dense)):
            grads = layer_gradients(layer, x, lambda out: ops.mean(ops.square(out)))
            opt.apply([ops.convert_to_tensor(g) for g in grads.values()], layer.trainable_variables)
    for w_lazy, w_dense in zip(layer_lazy.get_weights(), layer_dense.get_weights()):
        np.testing.assert_array_equal(w_lazy, w_dense)


@pytest.mark.tensorflow_only
def test_tables_below_sparse_min_size_get_exact_dense_adam() -> None:
    initial = _table()
    small_var, dense_var, lazy_var = (keras.Variable(initial) for _ in range(3))
    small = LazyAdam(learning_rate=0.01, sparse_min_size=initial.size + 1)
    lazy = LazyAdam(learning_rate=0.01, sparse_min_size=initial.size)
    dense = keras.optimizers.Adam(0.01)
    for step, indices in enumerate([[1, 0], [2, 2]]):
        grad = _sparse_grad(indices, seed=20 + step)
        _step(small, small_var, grad, densify=False)
        _step(lazy, lazy_var, grad, densify=False)
        _step(dense, dense_var, grad, densify=True)
    # Below the threshold: row 0, untouched at step 2, still moves with its momentum, as in Adam.
    np.testing.assert_allclose(small_var.numpy(), dense_var.numpy(), rtol=1e-6, atol=1e-7)
    # At the threshold the table stays lazy: row 0 keeps its value from step 1.
    assert not np.allclose(lazy_var.numpy()[0], dense_var.numpy()[0])
    assert LazyAdam.from_config(small.get_config()).sparse_min_size == initial.size + 1


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("catch_up", [True, False])
def test_catch_up_reproduces_dense_adam_on_revisited_rows(catch_up: bool) -> None:
    initial = _table()
    lazy_var, dense_var = keras.Variable(initial), keras.Variable(initial)
    lazy, dense = LazyAdam(learning_rate=0.01, catch_up=catch_up), keras.optimizers.Adam(0.01)
    for optimizer, variable in ((lazy, lazy_var), (dense, dense_var)):
        optimizer.build([variable])
        # Late in training; test_conformance covers catch-up from iteration 0.
        optimizer.iterations.assign(50_000)
    # Row 0 is touched at steps 1 and 5 only; row 1 at every step; rows 2..9 never.
    batches = [[0, 1], [1], [1], [1], [1, 0]]
    for step, indices in enumerate(batches):
        grad = _sparse_grad(indices, seed=30 + step)
        _step(lazy, lazy_var, grad, densify=False)
        _step(dense, dense_var, grad, densify=True)
        if step in (1, 2, 3):  # Between visits row 0 stays where step 1 left it.
            assert not np.allclose(lazy_var.numpy()[0], dense_var.numpy()[0])
    lazy_rows, dense_rows = lazy_var.numpy(), dense_var.numpy()
    np.testing.assert_allclose(lazy_rows[1], dense_rows[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(lazy_rows[2:], initial[2:])
    if catch_up:  # The three skipped momentum steps are applied when row 0 comes back.
        np.testing.assert_allclose(lazy_rows[0], dense_rows[0], rtol=1e-4, atol=1e-6)
    else:
        assert not np.allclose(lazy_rows[0], dense_rows[0], rtol=1e-3)


def test_amsgrad_is_rejected() -> None:
    with pytest.raises(ValueError, match="amsgrad"):
        LazyAdam(amsgrad=True)


def _dot_model(num_users: int = 30, num_items: int = 20) -> keras.Model:
    user = keras.Input(shape=(), dtype="int32", name="user")
    item = keras.Input(shape=(), dtype="int32", name="item")
    u = keras.layers.Embedding(num_users, 8, name="user_embedding")(user)
    i = keras.layers.Embedding(num_items, 8, name="item_embedding")(item)
    score = keras.layers.Dot(axes=1)([u, i])
    out = keras.layers.Dense(1, name="head")(score)
    return keras.Model({"user": user, "item": item}, out)


def _ids(values: list[int]) -> np.ndarray:
    return np.asarray(values, dtype="int32")


def _fit_item_table(optimizer: keras.optimizers.Optimizer, batches: int) -> np.ndarray:
    """Item table after ``batches`` fit steps on batches touching disjoint rows."""
    keras.utils.set_random_seed(0)
    model = _dot_model()
    # Batch 1 touches items 0-3, batch 2 items 4-7; users 0-3 in both.
    x = {"user": _ids([0, 1, 2, 3] * 2), "item": _ids(list(range(8)))}
    y = np.linspace(-1.0, 1.0, 8, dtype="float32")[:, None]
    model.compile(optimizer, "mse", steps_per_execution=2, jit_compile=BACKEND == "jax")
    model.fit(
        {k: v[: 4 * batches] for k, v in x.items()},
        y[: 4 * batches],
        batch_size=4,
        shuffle=False,
        epochs=1,
        verbose=0,
    )
    return model.get_layer("item_embedding").embeddings.numpy()


LAZY_IN_FIT = [
    pytest.param(LazyAdam, True, marks=pytest.mark.tensorflow_only, id="LazyAdam-True"),
    pytest.param(lambda **kw: LazyAdam(catch_up=False, **kw), True, id="LazyAdam-no-catch-up"),
    pytest.param(keras.optimizers.Adam, False, id="Adam-False"),
]


@pytest.mark.parametrize(("optimizer_cls", "is_lazy"), LAZY_IN_FIT)
def test_sparse_path_is_taken_inside_model_fit(
    optimizer_cls: type[keras.optimizers.Optimizer], is_lazy: bool
) -> None:
    # Rows 0-3 are touched at step 1 only. Inside the compiled train step (a
    # tf.function, or one XLA program on JAX; steps_per_execution=2) LazyAdam must leave them
    # alone at step 2, while dense Adam moves them with momentum: this would fail if
    # Keras densified the gradient before update_step (TF) or the mask were lost (JAX).
    after_one = _fit_item_table(optimizer_cls(learning_rate=0.05), batches=1)
    after_two = _fit_item_table(optimizer_cls(learning_rate=0.05), batches=2)
    if is_lazy:
        np.testing.assert_array_equal(after_two[:4], after_one[:4])
    else:
        assert not np.allclose(after_two[:4], after_one[:4])
    # Rows never touched stay put either way (zero moments), and rows 4-7 move.
    np.testing.assert_array_equal(after_two[8:], after_one[8:])
    assert not np.allclose(after_two[4:8], after_one[4:8])


def test_fit_steps_per_execution_and_serialization(tmp_path: Path) -> None:
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(1)
    n = 512
    users = rng.integers(0, 30, size=n).astype("int32")
    items = rng.integers(0, 20, size=n).astype("int32")
    # A learnable target: an additive user + item effect.
    y = (np.sin(users) + np.cos(items)).astype("float32")[:, None]

    model = _dot_model()
    optimizer = LazyAdam(learning_rate=0.02)
    model.compile(optimizer, "mse", steps_per_execution=4, jit_compile=BACKEND == "jax")
    history = model.fit({"user": users, "item": items}, y, batch_size=32, epochs=5, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < losses[0]
    assert int(optimizer.iterations.numpy()) == 5 * n // 32

    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert isinstance(restored, LazyAdam)
    assert restored.get_config() == optimizer.get_config()

    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = keras.models.load_model(path)
    assert isinstance(reloaded.optimizer, LazyAdam)
    assert reloaded.optimizer.get_config() == optimizer.get_config()
    x = {"user": users[:16], "item": items[:16]}
    np.testing.assert_allclose(reloaded.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.fixture
def without_op_determinism():
    """Op determinism off for the test: Keras turns XLA off under it, and an earlier fit in the
    process (``fit_rating_model``) may have switched it on. Restored afterwards."""
    from tensorflow.python.framework import config  # noqa: PLC0415 - no public switch back

    was_on = config.is_op_determinism_enabled()
    config.disable_op_determinism()
    yield
    if was_on:
        config.enable_op_determinism()


@pytest.mark.tensorflow_only
def test_xla_compilation_gives_a_clear_error(without_op_determinism) -> None:
    # tf.unique cannot be compiled by XLA; the sparse path says so up front.
    model = _dot_model()
    model.compile(LazyAdam(), "mse", jit_compile=True)
    x = {"user": _ids([0, 1]), "item": _ids([2, 3])}
    with pytest.raises(ValueError, match="jit_compile=False"):
        model.fit(x, np.zeros((2, 1), "float32"), verbose=0)


def test_dense_steps_between_sparse_ones_are_not_replayed() -> None:
    # A table whose gradient is sometimes dense (every row moves, as in dense Adam) and sometimes
    # row-sparse: the catch-up after the dense steps must not replay them a second time.
    initial = _table()
    lazy_var, dense_var = embedding_table(initial), keras.Variable(initial)
    lazy, dense = LazyAdam(learning_rate=0.01), keras.optimizers.Adam(0.01)
    for step, (indices, densify) in enumerate([([0, 1], False), ([0, 2], True), ([1], True)]):
        grad = _sparse_grad(indices, seed=40 + step)
        _step(lazy, lazy_var, grad, densify=densify)
        _step(dense, dense_var, grad, densify=True)
    last = _sparse_grad([0, 3], seed=50)  # row 0 back on the sparse path after two dense steps
    _step(lazy, lazy_var, last, densify=False)
    _step(dense, dense_var, last, densify=True)
    # The rows the last step touched are where dense Adam has them (rows 1 and 2, untouched at
    # the last step, wait for their catch-up on TensorFlow).
    touched = [0, 3]
    np.testing.assert_allclose(
        lazy_var.numpy()[touched], dense_var.numpy()[touched], rtol=1e-5, atol=1e-6
    )
    assert not np.allclose(lazy_var.numpy()[0], initial[0])
