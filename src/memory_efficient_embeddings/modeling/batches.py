"""Training batches cut once per epoch: the cheapest way to feed small steps to Keras on CPU."""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np


def _check(num_rows: int, batch_size: int) -> None:
    if num_rows == 0:
        raise ValueError("shuffled_batches needs at least one training row.")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive; got {batch_size}.")


def shuffled_batches(
    inputs: dict[str, np.ndarray], targets: np.ndarray, batch_size: int, seed: int
) -> Any:
    """Each pass over the dataset (one epoch) yields every row once, in a new seeded order.

    Keras' feeding of NumPy arrays slices and gathers every batch inside tf.data (a map per
    batch); at batch 128 that cost about as much as the model's own step on CPU. Here each epoch
    draws one permutation, gathers all rows at once and yields ready batches (the last one
    smaller when the rows do not divide evenly). ``seed`` fixes the sequence of epoch orders, so
    reruns see the same batches.

    On the TensorFlow backend this is a ``tf.data.Dataset``; on the others (JAX) a
    :class:`NumpyEpochBatches`, which needs no TensorFlow. The two draw different orders from the
    same seed (each is reproducible on its own backend).
    """
    _check(len(targets), batch_size)
    if keras.backend.backend() == "tensorflow":
        return _tensorflow_batches(inputs, targets, batch_size, seed)
    return NumpyEpochBatches(inputs, targets, batch_size, seed)


def _tensorflow_batches(
    inputs: dict[str, np.ndarray], targets: np.ndarray, batch_size: int, seed: int
) -> Any:
    import tensorflow as tf  # noqa: PLC0415 - only on the TensorFlow backend

    num_rows = len(targets)
    columns = {name: tf.constant(values) for name, values in inputs.items()}
    labels = tf.constant(targets)
    full_batches, rest = divmod(num_rows, batch_size)

    def epoch(epoch_seed: tf.Tensor) -> tf.data.Dataset:
        order = tf.random.experimental.stateless_shuffle(
            tf.range(num_rows), seed=tf.stack([epoch_seed, tf.constant(seed, tf.int64)])
        )
        rows: tuple[Any, Any] = (
            {name: tf.gather(values, order) for name, values in columns.items()},
            tf.gather(labels, order),
        )
        cut = full_batches * batch_size
        batches = tf.data.Dataset.from_tensor_slices(
            tf.nest.map_structure(lambda t: tf.reshape(t[:cut], [full_batches, batch_size]), rows)
        )
        if rest:
            batches = batches.concatenate(
                tf.data.Dataset.from_tensors(tf.nest.map_structure(lambda t: t[cut:], rows))
            )
        return batches

    # A new iterator (Keras makes one per epoch) draws a new epoch seed from this seeded stream.
    epoch_seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).take(1)
    return (
        epoch_seeds.flat_map(epoch)
        .apply(tf.data.experimental.assert_cardinality(full_batches + (1 if rest else 0)))
        .prefetch(tf.data.AUTOTUNE)
    )


class NumpyEpochBatches(keras.utils.PyDataset):
    """The same batches in numpy, for backends without tf.data (JAX): one permutation an epoch.

    Epoch ``k`` (counted by Keras' ``on_epoch_end`` calls) is ordered by the ``k``-th permutation
    of ``numpy.random.default_rng(seed)``; batch ``i`` is rows ``i·batch_size ..`` of it.
    """

    def __init__(
        self, inputs: dict[str, np.ndarray], targets: np.ndarray, batch_size: int, seed: int
    ) -> None:
        super().__init__()
        _check(len(targets), batch_size)
        self._inputs = {name: np.asarray(values) for name, values in inputs.items()}
        self._targets = np.asarray(targets)
        self._batch_size = batch_size
        self._rng = np.random.default_rng(seed)
        self.on_epoch_end()

    def __len__(self) -> int:
        return math.ceil(len(self._targets) / self._batch_size)

    def __getitem__(self, index: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} of {len(self)}")
        rows = slice(index * self._batch_size, (index + 1) * self._batch_size)
        return {name: values[rows] for name, values in self._epoch_inputs.items()}, (
            self._epoch_targets[rows]
        )

    def on_epoch_end(self) -> None:
        """Draw the next epoch's order and gather every row in it at once."""
        order = self._rng.permutation(len(self._targets))
        self._epoch_inputs = {name: values[order] for name, values in self._inputs.items()}
        self._epoch_targets = self._targets[order]
