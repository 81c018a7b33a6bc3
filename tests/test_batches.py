"""Training batches: every row once per epoch, a new seeded order each epoch, on each backend.

``shuffled_batches`` gives a ``tf.data.Dataset`` on TensorFlow and a ``NumpyEpochBatches``
(a Keras ``PyDataset``) elsewhere; both are checked against the same rules.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from memory_efficient_embeddings.modeling.batches import NumpyEpochBatches, shuffled_batches

# Runs on JAX too in CI (`make test`): see pyproject.toml's markers.
pytestmark = pytest.mark.both_backends


def _tensorflow_epochs(inputs, targets, batch_size, seed, count):
    dataset = shuffled_batches(inputs, targets, batch_size, seed)
    return [
        [(batch[0]["user_id"].numpy().tolist(), batch[1].numpy().tolist()) for batch in dataset]
        for _ in range(count)
    ]


def _numpy_epochs(inputs, targets, batch_size, seed, count):
    batches = NumpyEpochBatches(inputs, targets, batch_size, seed)
    epochs = []
    for _ in range(count):  # Keras calls on_epoch_end after each epoch
        epochs.append(
            [
                (x["user_id"].tolist(), y.tolist())
                for x, y in (batches[i] for i in range(len(batches)))
            ]
        )
        batches.on_epoch_end()
    return epochs


EPOCHS = [
    pytest.param(_tensorflow_epochs, marks=pytest.mark.tensorflow_only, id="tf.data"),
    pytest.param(_numpy_epochs, id="numpy"),
]


@pytest.mark.parametrize("epochs_of", EPOCHS)
def test_every_row_once_per_epoch_with_inputs_and_targets_aligned(epochs_of):
    inputs = {"user_id": np.arange(10, dtype=np.int32)}
    targets = np.arange(10, dtype=np.float32) * 0.5  # target of row i is i / 2
    epochs = epochs_of(inputs, targets, 4, 3, 3)

    for batches in epochs:
        assert [len(ids) for ids, _ in batches] == [4, 4, 2]  # 10 rows: two full, one rest
        ids = [i for batch_ids, _ in batches for i in batch_ids]
        assert sorted(ids) == list(range(10))
        assert all(t == i / 2 for batch in batches for i, t in zip(*batch, strict=True))
    orders = [[i for batch_ids, _ in batches for i in batch_ids] for batches in epochs]
    assert len({tuple(order) for order in orders}) == 3  # a new order every epoch
    assert orders[0] != list(range(10))


@pytest.mark.parametrize("epochs_of", EPOCHS)
def test_same_seed_same_epochs_other_seed_other_order(epochs_of):
    inputs = {"user_id": np.arange(64, dtype=np.int32)}
    targets = np.zeros(64, dtype=np.float32)

    def orders(seed: int) -> list:
        return epochs_of(inputs, targets, 16, seed, 2)

    assert orders(7) == orders(7)
    assert orders(7) != orders(8)


def test_each_backend_gets_its_own_batches():
    batches = shuffled_batches({"user_id": np.arange(5, dtype=np.int32)}, np.zeros(5), 2, 0)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf  # noqa: PLC0415

        assert isinstance(batches, tf.data.Dataset)
    else:
        assert isinstance(batches, NumpyEpochBatches) and len(batches) == 3
        with pytest.raises(IndexError):
            batches[3]


@pytest.mark.parametrize("make", [shuffled_batches, NumpyEpochBatches])
def test_bad_arguments_are_named(make):
    with pytest.raises(ValueError, match="at least one training row"):
        make({"user_id": np.zeros(0, np.int32)}, np.zeros(0, np.float32), 4, 0)
    with pytest.raises(ValueError, match="batch_size must be positive"):
        make({"user_id": np.zeros(3, np.int32)}, np.zeros(3, np.float32), 0, 0)
