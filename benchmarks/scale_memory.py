"""Memory of embedding tables plus optimizer state, against vocabulary size and width.

For each shape (users x movies) and width, smallest first, it builds the project's rating model
with full tables, builds the optimizer (Adam, or the project's LazyAdam) on it, and runs a few
training steps; one fresh process per optimizer. It reports the bytes of the variables actually
built (tables, Adam's ``m`` and ``v``, LazyAdam's per-row step counter) and the process RSS
increase: after building, and the peak (sampled) over the training steps. A linear fit of bytes
per id then extrapolates to where one machine of ``--machine-gib`` stops. No assertions: RSS
depends on the machine.

    python benchmarks/scale_memory.py [--dims 16 64] [--max-ids 2000000] [--machine-gib 24] \\
        [--json-out f.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

# (name, users, movies): MovieLens releases up to ml-25m, then 10x ml-25m's users.
SHAPES = [
    ("ml-100k", 943, 1_682),
    ("ml-1m", 6_040, 3_706),
    ("ml-25m", 162_541, 59_047),
    ("10x ml-25m users", 1_625_410, 59_047),
]
OPTIMIZERS = ("adam", "lazy_adam")
GIB = 1024**3


def _variable_bytes(variables: list) -> int:
    return sum(int(v.numpy().nbytes) for v in variables)


def measure(shapes: list[tuple[str, int, int]], dims: list[int], optimizer_name: str, steps: int):
    """Build, compile and train a few steps per shape and width in this process; yield rows.

    Shapes run smallest first and each model is dropped before the next, so memory that
    TensorFlow's allocator keeps from an earlier model is smaller than the next one's.
    """
    # Imported here: the parent process only orchestrates and never loads TensorFlow.
    import gc  # noqa: PLC0415

    import keras  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    from memory_efficient_embeddings.embeddings import (  # noqa: PLC0415
        LazyAdam,
        build_rating_model,
    )
    from memory_efficient_embeddings.modeling.resources import (  # noqa: PLC0415
        ResourceMonitor,
        current_rss_bytes,
    )

    rss_imported = current_rss_bytes()
    configs = sorted(
        ((name, users, movies, dim) for name, users, movies in shapes for dim in dims),
        key=lambda config: (config[1] + config[2]) * config[3],
    )
    for name, num_users, num_movies, dim in configs:
        keras.backend.clear_session()
        gc.collect()
        rss_before = current_rss_bytes()
        keras.utils.set_random_seed(0)
        model = build_rating_model(
            num_users, num_movies, {"type": "full"}, {"type": "full"}, dim, use_biases=True
        )
        model.build({"user_id": (None,), "movie_id": (None,)})
        rss_model = current_rss_bytes()
        if optimizer_name == "adam":
            optimizer = keras.optimizers.Adam(learning_rate=0.001)
        else:  # the project's LazyAdam, sparse for every table (sparse_min_size 0)
            optimizer = LazyAdam(learning_rate=0.001)
        optimizer.build(model.trainable_variables)
        rss_optimizer = current_rss_bytes()
        model.compile(optimizer=optimizer, loss="mse", jit_compile=False)
        rng = np.random.default_rng(0)
        batch = 128
        with ResourceMonitor(interval_s=0.01) as monitor:
            for _ in range(steps):
                inputs = {
                    "user_id": rng.integers(0, num_users, batch).astype("int32"),
                    "movie_id": rng.integers(0, num_movies, batch).astype("int32"),
                }
                model.train_on_batch(inputs, rng.uniform(1, 5, batch).astype("float32"))
        yield {
            "shape": name,
            "users": num_users,
            "movies": num_movies,
            "ids": num_users + num_movies,
            "dim": dim,
            "optimizer": optimizer_name,
            "model_bytes": _variable_bytes(model.weights),
            "optimizer_bytes": _variable_bytes(optimizer.variables),
            "rss_imported_mib": rss_imported / 2**20,
            "rss_model_increase_mib": (rss_model - rss_before) / 2**20,
            "rss_built_increase_mib": (rss_optimizer - rss_before) / 2**20,
            "peak_rss_in_steps_increase_mib": (monitor.peak_rss_bytes - rss_before) / 2**20,
        }
        del model, optimizer


def _measure_in_subprocess(optimizer: str, dims: list[int], max_ids: int, steps: int):
    # A fresh process per optimizer: nothing of the other optimizer's runs is in its RSS.
    command = [sys.executable, __file__, "--measure", optimizer, "--steps", str(steps)]
    command += ["--max-ids", str(max_ids), "--dims", *map(str, dims)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as process:
        for line in process.stdout:
            if line.startswith("{"):
                yield json.loads(line)
    if process.returncode:
        raise RuntimeError(f"{command} failed with exit status {process.returncode}")


def per_id_bytes(rows: list[dict], dim: int, optimizer: str) -> float:
    """Least-squares bytes per id (tables + optimizer) at one width, from the measured points."""
    points = [r for r in rows if r["dim"] == dim and r["optimizer"] == optimizer]
    ids = [r["ids"] for r in points]
    total = [r["model_bytes"] + r["optimizer_bytes"] for r in points]
    mean_ids, mean_total = sum(ids) / len(ids), sum(total) / len(total)
    covariance = sum((x - mean_ids) * (y - mean_total) for x, y in zip(ids, total, strict=True))
    return covariance / sum((x - mean_ids) ** 2 for x in ids)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Measure every shape x width x optimizer, fit bytes per id, extrapolate; print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measure", choices=OPTIMIZERS, help="(internal) measure in-process")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--dims", type=int, nargs="+", default=[16, 64])
    parser.add_argument(
        "--max-ids", type=int, default=2_000_000, help="skip shapes with more ids than this"
    )
    parser.add_argument("--machine-gib", type=float, default=24.0)
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args(argv)
    shapes = [shape for shape in SHAPES if shape[1] + shape[2] <= args.max_ids]
    if args.measure:
        for row in measure(shapes, args.dims, args.measure, args.steps):
            print(json.dumps(row), flush=True)
        return {}

    rows = []
    for optimizer in OPTIMIZERS:
        for row in _measure_in_subprocess(optimizer, args.dims, args.max_ids, args.steps):
            rows.append(row)
            print(
                f"{row['shape']:>17} dim {row['dim']:>3} {optimizer:>9}: tables "
                f"{row['model_bytes'] / 2**20:8.1f} MiB, optimizer "
                f"{row['optimizer_bytes'] / 2**20:8.1f} MiB; RSS +{row['rss_built_increase_mib']:7.1f}"
                f" MiB built, peak +{row['peak_rss_in_steps_increase_mib']:7.1f} MiB in "
                f"{args.steps} steps",
                flush=True,
            )
    machine_bytes = args.machine_gib * GIB
    runtime_bytes = max(r["rss_imported_mib"] for r in rows) * 2**20
    limits = []
    for dim in args.dims:
        for optimizer in OPTIMIZERS:
            bytes_per_id = per_id_bytes(rows, dim, optimizer)
            limits.append(
                {
                    "dim": dim,
                    "optimizer": optimizer,
                    "bytes_per_id": round(bytes_per_id, 2),
                    # Variables only: the runtime (imports) and a step's temporaries come on top.
                    "max_ids_variables": int((machine_bytes - runtime_bytes) / bytes_per_id),
                    "table_bytes_per_id": 4 * (dim + 1),
                }
            )
    for limit in limits:
        print(
            f"dim {limit['dim']:>3} {limit['optimizer']:>9}: {limit['bytes_per_id']:.1f} bytes/id "
            f"(tables alone {limit['table_bytes_per_id']}); one {args.machine_gib:g} GiB machine "
            f"holds about {limit['max_ids_variables'] / 1e6:,.1f} M ids"
        )
    result = {
        "machine_gib": args.machine_gib,
        "runtime_rss_mib": runtime_bytes / 2**20,
        "rows": rows,
        "limits": limits,
    }
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
