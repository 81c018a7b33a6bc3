"""Micro-benchmark: one embedding-table train step with Adam, LazyAdam and SGD.

A 100,000 x 64 table, a batch of 128 ids, loss = mean squared lookup; each
optimizer runs N steps inside one ``tf.function`` (after a warm-up call that
traces it). Prints the time per step and the ratio against Adam measured in the
same run. No assertions: timings depend on the machine.

    python benchmarks/optimizer_step.py [--steps 200] [--rows 100000]
"""

from __future__ import annotations

import argparse
import time

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from memory_efficient_embeddings.embeddings.optimizers import LazyAdam


def time_optimizer(
    optimizer: keras.optimizers.Optimizer,
    *,
    rows: int,
    dim: int,
    batch: int,
    steps: int,
    repeats: int,
) -> float:
    """Best-of-``repeats`` seconds per step for ``steps`` steps in a tf.function."""
    rng = np.random.default_rng(0)
    table = keras.Variable(rng.normal(size=(rows, dim)).astype("float32") * 0.01)
    ids = tf.constant(rng.integers(0, rows, size=(steps, batch)), dtype="int32")
    optimizer.build([table])

    @tf.function(jit_compile=False)
    def run(ids: tf.Tensor) -> tf.Tensor:
        loss = tf.constant(0.0)
        for step in tf.range(steps):
            with tf.GradientTape() as tape:
                rows_ = ops.take(table, ids[step], axis=0)  # -> IndexedSlices grad
                loss = ops.mean(ops.square(rows_ - 1.0))
            grads = tape.gradient(loss, [table])
            optimizer.apply(grads, [table])
        return loss

    run(ids).numpy()  # trace + warm up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run(ids).numpy()  # .numpy() waits for the result
        best = min(best, time.perf_counter() - start)
    return best / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    optimizers = {
        "Adam": lambda: keras.optimizers.Adam(learning_rate=1e-3),
        "LazyAdam": lambda: LazyAdam(learning_rate=1e-3),
        "SGD": lambda: keras.optimizers.SGD(learning_rate=1e-2),
    }
    print(
        f"table {args.rows}x{args.dim}, batch {args.batch}, {args.steps} steps "
        f"per tf.function call, best of {args.repeats}; "
        f"devices: {[d.device_type for d in tf.config.list_physical_devices()]}"
    )
    per_step = {
        name: time_optimizer(
            make(),
            rows=args.rows,
            dim=args.dim,
            batch=args.batch,
            steps=args.steps,
            repeats=args.repeats,
        )
        for name, make in optimizers.items()
    }
    for name, seconds in per_step.items():
        print(
            f"{name:>8}: {seconds * 1e3:8.3f} ms/step   x{seconds / per_step['Adam']:.3f} of Adam"
        )


if __name__ == "__main__":
    main()
