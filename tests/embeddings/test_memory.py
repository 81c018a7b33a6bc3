"""serving_bytes and training_bytes against byte counts worked out by hand."""

from __future__ import annotations

import gc

import keras
import numpy as np
import pytest

from memory_efficient_embeddings.embeddings import (
    CCEEmbedding,
    FullEmbedding,
    LazyAdam,
    RowWiseAdagrad,
    build_rating_model,
    serving_bytes,
    training_bytes,
)
from memory_efficient_embeddings.embeddings.memory import shapes_only, variable_bytes

pytestmark = pytest.mark.filterwarnings("ignore:Layer .* does not have a `quantize`:UserWarning")


@pytest.fixture(autouse=True)
def _no_gc_per_dropped_table(monkeypatch: pytest.MonkeyPatch) -> None:
    # Keras' Layer.__delattr__ runs gc.collect() for every float table that quantize() drops:
    # seconds each in a process holding TensorFlow, and nothing else changes.
    monkeypatch.setattr(gc, "collect", lambda *args: 0)


def _table_and_bias() -> keras.Model:
    """A 10 x 4 float32 table and a 10 x 1 bias column: 40 + 10 weights, 200 bytes."""
    ids = keras.Input(shape=(), dtype="int32")
    vectors = FullEmbedding(10, 4, name="table")(ids)
    bias = FullEmbedding(10, 1, name="bias")(ids)
    # A non-embedding weight that neither count may include.
    outputs = keras.layers.Dense(1, name="head")(keras.layers.Concatenate()([vectors, bias]))
    return keras.Model(ids, outputs)


def test_float32_serving_bytes_by_hand() -> None:
    assert serving_bytes(_table_and_bias()) == 4 * (10 * 4 + 10 * 1) == 200


@pytest.mark.parametrize(
    ("optimizer", "expected"),
    [
        # Adam: two slots per weight, each as large as the weights: 3 x 200.
        (keras.optimizers.Adam, 600),
        # LazyAdam with catch-up: Adam's slots plus one int64 step per row of each table.
        (LazyAdam, 600 + 8 * 10 + 8 * 10),
        (lambda: LazyAdam(catch_up=False), 600),
        # Row-wise Adagrad: one float32 per row of the table (10) and of the bias column (10).
        (RowWiseAdagrad, 200 + 4 * 10 + 4 * 10),
        # Keras' Adagrad: one accumulator per weight.
        (keras.optimizers.Adagrad, 400),
        (keras.optimizers.SGD, 200),  # no momentum, no slots
        (lambda: keras.optimizers.SGD(momentum=0.9), 400),
    ],
)
def test_training_bytes_by_hand(optimizer, expected: int) -> None:
    model = _table_and_bias()
    model.compile(optimizer=optimizer(), loss="mse")
    model.fit(np.arange(10, dtype="int32"), np.ones(10), epochs=1, verbose=0)
    assert training_bytes(model, model.optimizer) == expected


def test_an_unbuilt_optimizer_is_built_on_the_model_first() -> None:
    model = _table_and_bias()
    optimizer = keras.optimizers.Adam()
    assert training_bytes(model, optimizer) == 600
    assert optimizer.built


def test_a_loss_scale_optimizer_counts_the_slots_of_the_one_it_wraps() -> None:
    model = _table_and_bias()
    optimizer = keras.optimizers.LossScaleOptimizer(keras.optimizers.Adam())
    model.compile(optimizer=optimizer, loss="mse")
    model.fit(np.arange(10, dtype="int32"), np.ones(10), epochs=1, verbose=0)
    assert training_bytes(model, model.optimizer) == 600


def test_quantized_serving_bytes_by_hand() -> None:
    # int8 on the table only (a width-1 bias would grow): 10 x 4 bytes, a float32 scale per row.
    model = _table_and_bias()
    model.get_layer("table").table.quantize("int8")
    assert serving_bytes(model) == 10 * 4 + 10 * 4 + 40
    # int4, one scale per row: two values per byte (2 bytes a row) and the scale.
    model = _table_and_bias()
    model.get_layer("table").table.quantize(
        "int4", config=keras.quantizers.Int4QuantizationConfig(block_size=-1)
    )
    assert serving_bytes(model) == 10 * 2 + 10 * 4 + 40
    # Keras' default int4 (groups of 128 columns): also an int8 zero point per row and a float32
    # column-to-group index of 4 entries.
    model = _table_and_bias()
    model.get_layer("table").table.quantize("int4")
    assert serving_bytes(model) == 10 * 2 + 10 * 4 + 10 * 1 + 4 * 4 + 40


def test_index_maps_count_in_serving_bytes() -> None:
    ids = keras.Input(shape=(), dtype="int32")
    model = keras.Model(ids, CCEEmbedding(12, 6, num_chunks=3, num_clusters=4)(ids))
    # Two float32 tables of 3 chunks x 4 clusters x 2 columns, int32 assignments (12 ids x 3
    # chunks) and int64 hash coefficients (3 chunks x 2).
    assert serving_bytes(model) == 4 * 2 * 3 * 4 * 2 + 4 * 12 * 3 + 8 * 3 * 2


def test_rating_model_counts_embeddings_not_the_global_bias() -> None:
    model = build_rating_model(7, 5, {"type": "full"}, {"type": "full"}, 3, use_biases=True)
    # (7 + 5) ids x (3 + 1) floats; the DotScore's global bias is not an embedding.
    assert serving_bytes(model) == 4 * 12 * 4
    model.compile(optimizer=keras.optimizers.Adam(), loss="mse")
    assert training_bytes(model, model.optimizer) == 3 * 4 * 12 * 4


def test_variable_bytes_follow_the_dtype() -> None:
    assert variable_bytes(keras.Variable(np.zeros((3, 5)), dtype="bfloat16")) == 30
    assert variable_bytes(keras.Variable(np.zeros((3, 5)), dtype="int64")) == 120
    assert variable_bytes(keras.Variable(np.zeros((3,)), dtype="int8")) == 3


@pytest.mark.both_backends
def test_a_model_built_for_its_shapes_counts_the_same_bytes_and_draws_nothing() -> None:
    calls = []

    class CountingInitializer(keras.initializers.Initializer):
        def __call__(self, shape, dtype=None):
            calls.append(tuple(shape))
            return keras.ops.zeros(shape, dtype=dtype)

    def model() -> keras.Model:
        ids = keras.Input(shape=(), dtype="int32")
        table = FullEmbedding(10, 4, embeddings_initializer=CountingInitializer(), name="table")
        return keras.Model(ids, table(ids))

    with shapes_only():
        sized = model()
    # 10 x 4 float32 by hand; building the functional model traces the layer symbolically.
    assert serving_bytes(sized) == 160
    traced = len(calls)
    # Nothing drawn is left pending: a later scope that initializes deferred variables (as
    # JAX training does) leaves these alone.
    with keras.StatelessScope():
        pass
    assert len(calls) == traced
    eager = model()
    assert len(calls) == traced + 1  # a model built outside draws its values
    assert serving_bytes(eager) == 160
