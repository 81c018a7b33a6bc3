"""Micro-benchmark: one embedding-table train step per optimizer, per table size and backend.

A ``rows x dim`` table, a batch of ids, loss = mean squared lookup; each optimizer runs
``--steps`` steps inside one compiled function (a ``tf.function`` on TensorFlow, where a lookup's
gradient is a row-sparse ``tf.IndexedSlices``; one ``jax.jit`` with a ``fori_loop`` on JAX, where
it is dense), after a warm-up call that compiles it. Prints the best-of-``--repeats`` time per
step and the ratio against dense Adam measured in the same process. No assertions: timings depend
on the machine. The default sizes are ml-1m's movie table (3,706 rows) and Ciao's items (105,114
rows), at dim 64 and conf/base's batch of 2,048.

Each backend runs in its own subprocess with its ``KERAS_BACKEND`` (Keras picks its backend at
import), the backends' order rotating over ``--rounds``::

    python benchmarks/optimizer_step.py --backend tensorflow jax [--rows 3706 105114] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import add_backend_argument, check_backends  # noqa: E402

OPTIMIZERS = ("adam", "lazy_adam", "lazy_adam_no_catch_up", "rowwise_adagrad", "sgd")


def make_optimizer(name: str) -> Any:
    import keras  # noqa: PLC0415

    from memory_efficient_embeddings.embeddings.optimizers import (  # noqa: PLC0415
        LazyAdam,
        RowWiseAdagrad,
    )

    return {
        "adam": lambda: keras.optimizers.Adam(learning_rate=1e-3),
        "lazy_adam": lambda: LazyAdam(learning_rate=1e-3),
        "lazy_adam_no_catch_up": lambda: LazyAdam(learning_rate=1e-3, catch_up=False),
        "rowwise_adagrad": lambda: RowWiseAdagrad(learning_rate=1e-2),
        "sgd": lambda: keras.optimizers.SGD(learning_rate=1e-2),
    }[name]()


def _table(rows: int, dim: int) -> Any:
    """An Embedding layer's table: its path ends in "embeddings", as the optimizers' tables do."""
    import keras  # noqa: PLC0415

    layer = keras.layers.Embedding(rows, dim)
    layer.build()
    layer.embeddings.assign(np.random.default_rng(0).normal(size=(rows, dim)) * 0.01)
    return layer.embeddings


def _tensorflow_runner(optimizer: Any, table: Any, ids: np.ndarray) -> Any:
    import tensorflow as tf  # noqa: PLC0415
    from keras import ops  # noqa: PLC0415

    ids = tf.constant(ids)
    steps = int(ids.shape[0])

    @tf.function(jit_compile=False)
    def run() -> Any:
        loss = tf.constant(0.0)
        for step in tf.range(steps):
            with tf.GradientTape() as tape:
                # A resource gather, as the layers read tables: an IndexedSlices gradient.
                rows = tf.gather(table.value, ids[step])
                loss = ops.mean(ops.square(rows - 1.0))
            optimizer.apply(tape.gradient(loss, [table.value]), [table])
        return loss

    return lambda: run().numpy()  # .numpy() waits for the result


def _jax_runner(optimizer: Any, table: Any, ids: np.ndarray) -> Any:
    import jax  # noqa: PLC0415
    import jax.numpy as jnp  # noqa: PLC0415

    ids = jnp.asarray(ids)
    steps = int(ids.shape[0])

    def loss(values: Any, batch: Any) -> Any:
        return jnp.mean(jnp.square(jnp.take(values, batch, axis=0) - 1.0))

    @jax.jit
    def run(values: Any, optimizer_values: list) -> Any:
        def step(i: Any, state: tuple) -> tuple:
            table_value, slots = state
            gradient = jax.grad(loss)(table_value, ids[i])
            new_tables, slots = optimizer.stateless_apply(slots, [gradient], [table_value])
            return new_tables[0], slots

        return jax.lax.fori_loop(0, steps, step, (values, optimizer_values))

    state = (table.value, [v.value for v in optimizer.variables])
    return lambda: jax.block_until_ready(run(*state))


def seconds_per_step(name: str, rows: int, dim: int, batch: int, steps: int, repeats: int) -> float:
    """Best-of-``repeats`` seconds per step of one optimizer on this process's backend."""
    import keras  # noqa: PLC0415

    optimizer = make_optimizer(name)
    table = _table(rows, dim)
    optimizer.build([table])
    ids = np.random.default_rng(1).integers(0, rows, size=(steps, batch)).astype("int32")
    runner = _jax_runner if keras.backend.backend() == "jax" else _tensorflow_runner
    run = runner(optimizer, table, ids)
    run()  # compile and warm up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best / steps


def worker(args: argparse.Namespace) -> dict[str, Any]:
    """Every optimizer at every table size on this process's backend."""
    import keras  # noqa: PLC0415

    import memory_efficient_embeddings.embeddings  # noqa: F401, PLC0415 - int64 under JAX

    return {
        "backend": keras.backend.backend(),
        "seconds_per_step": {
            str(rows): {
                name: seconds_per_step(name, rows, args.dim, args.batch, args.steps, args.repeats)
                for name in args.optimizers
            }
            for rows in args.rows
        },
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[3706, 105_114])
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=1, help="subprocesses per backend")
    parser.add_argument("--optimizers", nargs="+", choices=OPTIMIZERS, default=list(OPTIMIZERS))
    add_backend_argument(parser)
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    check_backends(parser, args.backends)
    if args.worker:
        args.worker.write_text(json.dumps(worker(args)), encoding="utf-8")
        return {}
    runs = []
    with tempfile.TemporaryDirectory(prefix="optimizer_step_") as directory:
        for round_index in range(args.rounds):
            shift = round_index % len(args.backends)
            for backend in args.backends[shift:] + args.backends[:shift]:
                out = Path(directory) / f"{backend}_{round_index}.json"
                options = ["--rows", *map(str, args.rows), "--dim", str(args.dim)]
                options += ["--batch", str(args.batch), "--steps", str(args.steps)]
                options += ["--repeats", str(args.repeats), "--optimizers", *args.optimizers]
                env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
                command = [sys.executable, __file__, *options, "--worker", str(out)]
                subprocess.run(command, env=env, check=True)
                runs.append(json.loads(out.read_text()))
    # Median over rounds of each backend's best-of-repeats time per step.
    result: dict[str, Any] = {"settings": vars(args) | {"worker": None}, "ms_per_step": {}}
    for backend in args.backends:
        mine = [run["seconds_per_step"] for run in runs if run["backend"] == backend]
        result["ms_per_step"][backend] = {
            rows: {
                name: round(1e3 * statistics.median(run[rows][name] for run in mine), 4)
                for name in args.optimizers
            }
            for rows in mine[0]
        }
    print(
        f"dim {args.dim}, batch {args.batch}, {args.steps} steps per compiled call, best of "
        f"{args.repeats}, median of {args.rounds} round(s); load average {os.getloadavg()}"
    )
    for backend, by_rows in result["ms_per_step"].items():
        for rows, by_name in by_rows.items():
            adam = by_name.get("adam")
            for name, ms in by_name.items():
                ratio = f"  x{ms / adam:.2f} of Adam" if adam else ""
                print(f"{backend:>10} {rows:>7} rows {name:>22}: {ms:9.3f} ms/step{ratio}")
    if args.json_out:
        args.json_out.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
