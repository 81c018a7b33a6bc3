"""Training batches cut once per epoch: the cheapest way to feed small steps to Keras on CPU."""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf


def shuffled_batches(
    inputs: dict[str, np.ndarray], targets: np.ndarray, batch_size: int, seed: int
) -> tf.data.Dataset:
    """Each pass over the dataset (one epoch) yields every row once, in a new seeded order.

    Keras' feeding of NumPy arrays slices and gathers every batch inside tf.data (a map per
    batch); at batch 128 that cost about as much as the model's own step on CPU. Here each epoch
    draws one permutation, gathers all rows at once and yields ready batches (the last one
    smaller when the rows do not divide evenly). ``seed`` fixes the sequence of epoch orders, so
    reruns see the same batches.
    """
    num_rows = len(targets)
    if num_rows == 0:
        raise ValueError("shuffled_batches needs at least one training row.")
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive; got {batch_size}.")
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
