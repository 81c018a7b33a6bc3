"""RowWiseAdagrad against a numpy oracle of FBGEMM's rowwise_adagrad, and its sparse path."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

from memory_efficient_embeddings.embeddings import RowWiseAdagrad
from memory_efficient_embeddings.embeddings.optimizers import OPTIMIZERS
from tests.embeddings.backend_ops import BACKEND, embedding_table, row_gradient

# Runs on JAX too in CI (`make test`): see pyproject.toml's markers.
pytestmark = pytest.mark.both_backends


def _table(values: np.ndarray, name: str = "table") -> keras.Variable:
    # A path ending in "embeddings", as a keras.layers.Embedding table has.
    return embedding_table(values, name)


def _slices(values, indices, rows: int, width: int):
    # tf.IndexedSlices on TensorFlow; the dense gradient a lookup gives on JAX.
    return row_gradient(values, indices, (rows, width))


def numpy_rowwise_adagrad(weights, accumulators, indices, values, lr, epsilon):
    """FBGEMM's split_weight_update_cpu for rowwise_adagrad, without weight decay, in float64.

    The gradient of a row is the sum of its occurrences; its accumulator gains the mean of the
    squared row gradient over the width; the row moves by lr * g / (sqrt(acc) + eps).
    """
    weights, accumulators = weights.copy(), accumulators.copy()
    row_gradients: dict[int, np.ndarray] = {}
    for index, value in zip(indices, values, strict=True):
        row_gradients[index] = row_gradients.get(index, 0) + np.asarray(value, np.float64)
    for row, gradient in row_gradients.items():
        accumulators[row] += np.mean(gradient**2)
        weights[row] -= lr * gradient / (np.sqrt(accumulators[row]) + epsilon)
    return weights, accumulators


def test_sparse_steps_with_duplicate_rows_match_the_oracle() -> None:
    rng = np.random.default_rng(0)
    start = rng.normal(size=(6, 3))
    table = _table(start.astype(np.float32))
    optimizer = RowWiseAdagrad(learning_rate=0.1, initial_accumulator_value=0.1, epsilon=1e-7)
    weights, accumulators = start.copy(), np.full(6, 0.1)
    steps = [([1, 4, 1], rng.normal(size=(3, 3))), ([0, 4, 4, 4], rng.normal(size=(4, 3)))]
    steps.append(([2], rng.normal(size=(1, 3))))
    for indices, values in steps:
        optimizer.apply_gradients([(_slices(values, indices, 6, 3), table)])
        weights, accumulators = numpy_rowwise_adagrad(
            weights, accumulators, indices, values, 0.1, 1e-7
        )
        np.testing.assert_allclose(table.numpy(), weights, rtol=1e-5, atol=1e-6)
        slot = optimizer._accumulators[optimizer._get_variable_index(table)]
        np.testing.assert_allclose(slot.numpy(), accumulators, rtol=1e-5)
    # Row 5 was never touched: its weights are the initial ones, bit for bit.
    np.testing.assert_array_equal(table.numpy()[5], start[5].astype(np.float32))


def test_hand_case_one_row() -> None:
    # Row gradient (3, 4): mean square 12.5; accumulator 0 + 12.5; step 0.5 * g / sqrt(12.5).
    table = _table(np.zeros((2, 2), np.float32))
    optimizer = RowWiseAdagrad(learning_rate=0.5, initial_accumulator_value=0.0, epsilon=0.0)
    optimizer.apply_gradients([(_slices([[3.0, 4.0]], [1], 2, 2), table)])
    expected = -0.5 * np.array([3.0, 4.0]) / np.sqrt(12.5)
    np.testing.assert_allclose(table.numpy(), [[0.0, 0.0], expected], rtol=1e-6)


def test_a_dense_table_gradient_gives_the_sparse_result() -> None:
    values = np.array([[1.0, -2.0], [0.5, 0.5], [3.0, 1.0]], np.float32)
    dense_gradient = np.zeros((5, 2), np.float32)
    for index, value in zip([3, 0, 3], values, strict=True):
        dense_gradient[index] += value
    sparse_table = _table(np.ones((5, 2), np.float32), "sparse")
    dense_table = _table(np.ones((5, 2), np.float32), "dense")
    sparse_optimizer, dense_optimizer = RowWiseAdagrad(0.2), RowWiseAdagrad(0.2)
    for _ in range(2):
        sparse_optimizer.apply_gradients([(_slices(values, [3, 0, 3], 5, 2), sparse_table)])
        dense_optimizer.apply_gradients([(ops.convert_to_tensor(dense_gradient), dense_table)])
    np.testing.assert_allclose(dense_table.numpy(), sparse_table.numpy(), rtol=1e-6)
    # Rows with a zero gradient keep their weights under the dense path too.
    np.testing.assert_array_equal(dense_table.numpy()[[1, 2, 4]], 1.0)


def test_other_variables_get_keras_adagrad_exactly() -> None:
    kernel = keras.Variable(np.array([[1.0, 2.0], [3.0, 4.0]], np.float32), name="kernel")
    reference = keras.Variable(kernel.numpy(), name="kernel")
    ours, keras_adagrad = RowWiseAdagrad(0.3), keras.optimizers.Adagrad(0.3)
    gradient = ops.convert_to_tensor([[0.5, -1.0], [2.0, 0.0]])
    for _ in range(3):
        ours.apply_gradients([(gradient, kernel)])
        keras_adagrad.apply_gradients([(gradient, reference)])
    np.testing.assert_array_equal(kernel.numpy(), reference.numpy())
    # One accumulator per weight here, one per row for tables.
    table = _table(np.zeros((7, 3), np.float32))
    optimizer = RowWiseAdagrad()
    optimizer.build([kernel, table])
    shapes = [tuple(slot.shape) for slot in optimizer._accumulators]
    assert shapes == [(2, 2), (7,)]


def _update_ops(optimizer: RowWiseAdagrad, gradient, table) -> set[str]:
    import tensorflow as tf  # noqa: PLC0415

    @tf.function
    def step():
        optimizer.apply_gradients([(gradient, table)])

    return {op.type for op in step.get_concrete_function().graph.get_operations()}


@pytest.mark.tensorflow_only
def test_the_sparse_path_touches_only_the_rows_with_scatter_ops() -> None:
    rows = 200_000  # a dense update of this table would rewrite 800,000 floats per step
    start = np.random.default_rng(1).normal(size=(rows, 4)).astype(np.float32)
    table = _table(start)
    optimizer = RowWiseAdagrad(0.1)
    gradient = _slices(np.ones((3, 4)), [7, 123_456, 7], rows, 4)
    op_types = _update_ops(optimizer, gradient, table)
    # Row updates are scatters; no whole-variable assignment or read of the table for the step.
    assert {"ResourceScatterUpdate", "ResourceScatterSub"} <= op_types
    assert "AssignSubVariableOp" not in op_types and "AssignAddVariableOp" not in op_types
    before_slot = optimizer._accumulators[0].numpy().copy()
    optimizer.apply_gradients([(gradient, table)])
    after = table.numpy()
    touched = np.zeros(rows, bool)
    touched[[7, 123_456]] = True
    np.testing.assert_array_equal(after[~touched], start[~touched])
    assert not np.any(after[touched] == start[touched])
    after_slot = optimizer._accumulators[0].numpy()
    np.testing.assert_array_equal(after_slot[~touched], before_slot[~touched])
    np.testing.assert_allclose(after_slot[[7, 123_456]], [0.1 + 4.0, 0.1 + 1.0], rtol=1e-6)


@pytest.mark.tensorflow_only
def test_a_dense_gradient_on_a_table_takes_the_dense_path() -> None:
    # The contrast that makes the test above meaningful: a dense gradient assigns whole tensors.
    table = _table(np.zeros((10, 2), np.float32))
    op_types = _update_ops(RowWiseAdagrad(0.1), ops.ones((10, 2)), table)
    assert "AssignSubVariableOp" in op_types and "ResourceScatterSub" not in op_types


def test_config_round_trip_and_registry() -> None:
    optimizer = RowWiseAdagrad(0.05, initial_accumulator_value=0.2, table_variables="tab$")
    config = optimizer.get_config()
    assert config["table_variables"] == "tab$"
    assert config["initial_accumulator_value"] == 0.2
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(optimizer))
    assert isinstance(restored, RowWiseAdagrad) and restored.table_variables == "tab$"
    assert OPTIMIZERS["rowwise_adagrad"] is RowWiseAdagrad


def test_a_model_trains_with_it() -> None:
    ids = keras.Input(shape=(), dtype="int32")
    model = keras.Model(ids, keras.layers.Embedding(20, 1)(ids))
    model.compile(optimizer=RowWiseAdagrad(0.5), loss="mse", jit_compile=BACKEND == "jax")
    x, y = np.arange(20, dtype="int32"), np.linspace(-1, 1, 20)[:, None]
    first = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=20, batch_size=5, verbose=0)
    assert model.evaluate(x, y, verbose=0) < first / 10
