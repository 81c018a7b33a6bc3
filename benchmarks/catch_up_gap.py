"""How far LazyAdam's catch-up lands from dense Adam on a row that skips most steps.

A row is touched at the first and at the last of ``steps`` steps (another row every step), from a
given starting iteration; the gap is ``|lazy - dense| / |dense - initial|`` on that row, i.e. the
share of the row's movement that catch-up gets wrong. Run:
``PYTHONPATH=src .venv/bin/python benchmarks/catch_up_gap.py`` (a markdown table; no assertions).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from memory_efficient_embeddings.embeddings.optimizers import LazyAdam  # noqa: E402

ROWS, DIM = 4, 8


def catch_up_gap(start_iteration: int, steps: int = 60, seed: int = 0, **adam: float) -> float:
    """Relative gap on the rarely touched row after ``steps`` steps from ``start_iteration``."""
    rng = np.random.default_rng(seed)
    initial = rng.normal(size=(ROWS, DIM)).astype("float32")
    lazy_var, dense_var = keras.Variable(initial), keras.Variable(initial)
    lazy = LazyAdam(learning_rate=0.01, **adam)
    dense = keras.optimizers.Adam(learning_rate=0.01, **adam)
    for optimizer, variable in ((lazy, lazy_var), (dense, dense_var)):
        optimizer.build([variable])
        optimizer.iterations.assign(start_iteration)
    for step in range(steps):
        indices = [0, 1] if step in (0, steps - 1) else [1]
        grad = tf.IndexedSlices(
            tf.constant(rng.normal(size=(len(indices), DIM)), "float32"),
            tf.constant(indices, "int64"),
            tf.constant([ROWS, DIM], "int64"),
        )
        lazy.apply([grad], [lazy_var])
        dense.apply([tf.convert_to_tensor(grad)], [dense_var])
    moved = np.linalg.norm(dense_var.numpy()[0] - initial[0])
    return float(np.linalg.norm(lazy_var.numpy()[0] - dense_var.numpy()[0]) / moved)


if __name__ == "__main__":
    print("| beta_1, beta_2 | start iteration | steps | gap, max of 3 seeds |")
    print("|---|---|---|---|")
    for beta_1, beta_2 in ((0.9, 0.999), (0.99, 0.999)):
        for start, steps in ((0, 60), (1_000, 60), (5_000, 60), (0, 300)):
            gaps = [
                catch_up_gap(start, steps, seed=seed, beta_1=beta_1, beta_2=beta_2)
                for seed in range(3)
            ]
            print(f"| {beta_1}, {beta_2} | {start:,} | {steps} | {max(gaps):.1e} |", flush=True)
