"""Training batches: every row once per epoch, a new seeded order each epoch."""

from __future__ import annotations

import numpy as np
import pytest

from memory_efficient_embeddings.modeling.batches import shuffled_batches


def _epochs(dataset, count: int) -> list[list[tuple[list[int], list[float]]]]:
    return [
        [(batch[0]["user_id"].numpy().tolist(), batch[1].numpy().tolist()) for batch in dataset]
        for _ in range(count)
    ]


def test_every_row_once_per_epoch_with_inputs_and_targets_aligned():
    inputs = {"user_id": np.arange(10, dtype=np.int32)}
    targets = np.arange(10, dtype=np.float32) * 0.5  # target of row i is i / 2
    epochs = _epochs(shuffled_batches(inputs, targets, batch_size=4, seed=3), 3)

    for batches in epochs:
        assert [len(ids) for ids, _ in batches] == [4, 4, 2]  # 10 rows: two full, one rest
        ids = [i for batch_ids, _ in batches for i in batch_ids]
        assert sorted(ids) == list(range(10))
        assert all(t == i / 2 for batch in batches for i, t in zip(*batch, strict=True))
    orders = [[i for batch_ids, _ in batches for i in batch_ids] for batches in epochs]
    assert len({tuple(order) for order in orders}) == 3  # a new order every epoch
    assert orders[0] != list(range(10))


def test_same_seed_same_epochs_other_seed_other_order():
    inputs = {"user_id": np.arange(64, dtype=np.int32)}
    targets = np.zeros(64, dtype=np.float32)

    def orders(seed: int) -> list:
        return _epochs(shuffled_batches(inputs, targets, batch_size=16, seed=seed), 2)

    assert orders(7) == orders(7)
    assert orders(7) != orders(8)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="at least one training row"):
        shuffled_batches({"user_id": np.zeros(0, np.int32)}, np.zeros(0, np.float32), 4, 0)
    with pytest.raises(ValueError, match="batch_size must be positive"):
        shuffled_batches({"user_id": np.zeros(3, np.int32)}, np.zeros(3, np.float32), 0, 0)
