"""The sweep's wall time on each executor: sequential in-process against 2 workers.

Runs the same reduced grid (techniques and seeds below) with ``in_process``, ``processes`` and
``dask`` (a LocalCluster started beforehand: an existing cluster, as `sweep.executor.type: dask`
expects) in interleaved rounds, and prints each round's times and speed-ups against the
in-process run of the same round. Worker start-up (spawning, importing TensorFlow) is inside the
measured time of the processes executor, not of the Dask one (its workers already run). Also
checks that every executor gave the same val RMSE. No assertions: timings depend on the machine.
The data are prepared with the data_processing pipeline's nodes (``common.prepare_data``: train,
validation and eval splits, vocabularies); without ``--archive`` (``--path``) they are synthetic.

    python benchmarks/sweep_speedup.py --archive /path/to/ml-100k.zip --no-verify-checksum \\
        [--rounds 2] [--seeds 1 2] [--techniques full uniform_low_dim] [--epochs 10]

``--backend tensorflow jax``: each round runs once per Keras backend, each in a fresh subprocess
with its ``KERAS_BACKEND`` (Keras picks its backend at import; the executors' workers inherit
it), the backends' order rotating between rounds; the report gives each backend's median sweep
seconds per executor and their ratio. With one backend (default: the project's) it runs in this
process, as before.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from memory_efficient_embeddings.keras_backend import choose_keras_backend

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    add_backend_argument,
    add_data_arguments,
    check_backends,
    data_parameters,
    load_parameters,
    prepare_data,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_arguments(parser, dataset="ml-100k")
    parser.add_argument("--path", dest="archive", type=Path, help="the same as --archive")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--techniques", nargs="+", default=["full", "uniform_low_dim"])
    parser.add_argument("--epochs", type=int, default=None, help="override training.epochs")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--start-reversed", action="store_true", help="the first round runs dask first"
    )
    add_backend_argument(parser)
    parser.add_argument("--json-out", default=None)
    args = parser.parse_args(argv)
    check_backends(parser, args.backends)
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Time the reduced sweep on each executor (and backend), interleaved; print the figures."""
    args = parse_args(argv)
    if args.backends == [choose_keras_backend()]:
        return measure(args)
    return measure_backends(args)


def child_arguments(args: argparse.Namespace, backend: str, round_index: int, out: Path) -> list:
    """This script's options for one round on one backend, in a child process."""
    options = ["--dataset", args.dataset, "--env", args.env, "--workers", str(args.workers)]
    options += ["--seeds", *map(str, args.seeds), "--techniques", *args.techniques]
    if args.archive:
        options += ["--archive", str(args.archive)]
    if args.no_verify_checksum:
        options.append("--no-verify-checksum")
    if args.num_ratings:
        options += ["--num-ratings", str(args.num_ratings)]
    if args.epochs is not None:
        options += ["--epochs", str(args.epochs)]
    if (round_index + args.start_reversed) % 2 == 1:
        options.append("--start-reversed")
    return [*options, "--rounds", "1", "--backend", backend, "--json-out", str(out)]


def measure_backends(args: argparse.Namespace) -> dict[str, Any]:
    """Each round once per backend, each in a fresh subprocess; backends' order rotates."""
    rounds = []
    with tempfile.TemporaryDirectory(prefix="sweep_speedup_") as directory:
        for round_index in range(args.rounds):
            shift = round_index % len(args.backends)
            for backend in args.backends[shift:] + args.backends[:shift]:
                out = Path(directory) / f"{backend}_{round_index}.json"
                command = [
                    sys.executable,
                    __file__,
                    *child_arguments(args, backend, round_index, out),
                ]
                env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
                completed = subprocess.run(command, env=env, check=False)
                if completed.returncode != 0:
                    raise RuntimeError(f"round {round_index + 1} on {backend} failed")
                child = json.loads(out.read_text())
                rounds.append({"backend": backend, **child["rounds"][0]})
                print(f"round {round_index + 1} {backend}: {rounds[-1]['seconds']}", flush=True)
    executors = list(rounds[0]["seconds"])
    median_seconds = {
        backend: {
            name: statistics.median(r["seconds"][name] for r in rounds if r["backend"] == backend)
            for name in executors
        }
        for backend in args.backends
    }
    first = args.backends[0]
    result = {
        "backends": args.backends,
        "rounds": rounds,
        "median_seconds": median_seconds,
        # >1: the backend's sweep is faster than the first backend's, on the same executor.
        f"speedup_over_{first}": {
            backend: {
                name: round(median_seconds[first][name] / median_seconds[backend][name], 2)
                for name in executors
            }
            for backend in args.backends[1:]
        },
        "cpu_count": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
    }
    print(json.dumps(result, indent=2))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2))
    return result


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """The sweep on each executor in this process, rounds interleaved."""
    import keras  # noqa: PLC0415
    from distributed import LocalCluster  # noqa: PLC0415

    from memory_efficient_embeddings.modeling.grid import plan_sweep  # noqa: PLC0415
    from memory_efficient_embeddings.pipelines.sweep.plan import assign_sweep_blocks  # noqa: PLC0415
    from memory_efficient_embeddings.pipelines.sweep.runs import run_sweep  # noqa: PLC0415

    params = load_parameters(args.env)
    data = prepare_data(data_parameters(params, args), params)
    provenance = data["provenance"]
    train, validation, evaluation = data["train"], data["validation"], data["eval"]
    users, movies = data["users"], data["movies"]
    sweep = copy.deepcopy(params["sweep"])
    sweep["techniques"] = {name: sweep["techniques"][name] for name in args.techniques}
    # No resuming: every executor must train its runs (the first would leave checkpoints).
    sweep |= {"seeds": args.seeds, "recipe": {}, "quantize": None, "resume": False}
    if args.epochs is not None:
        sweep["training"] = {**(sweep.get("training") or {}), "epochs": args.epochs}
    training = {**params["training"], "verbose": 0}
    plan = plan_sweep(sweep, params["baseline"]["model"])
    embedding_plans = assign_sweep_blocks(plan, users, movies, params["evaluation"])
    logging.getLogger("memory_efficient_embeddings").setLevel(logging.WARNING)

    rounds = []
    with LocalCluster(
        n_workers=args.workers,
        processes=True,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        executors = {
            "in_process": {"type": "in_process"},
            "processes": {"type": "processes", "workers": args.workers},
            "dask": {"type": "dask", "scheduler_address": cluster.scheduler_address},
        }
        for round_index in range(args.rounds):
            seconds, rmse = {}, {}
            # Alternate the order so neither executor always runs first in a round.
            reverse = (round_index + args.start_reversed) % 2 == 1
            names = list(executors)[::-1] if reverse else list(executors)
            for name in names:
                run_settings = {**sweep, "executor": {**executors[name], "progress": False}}
                start = time.perf_counter()
                runs = run_sweep(
                    plan,
                    embedding_plans,
                    train,
                    validation,
                    evaluation,
                    users,
                    movies,
                    training,
                    run_settings,
                )
                seconds[name] = round(time.perf_counter() - start, 1)
                if "val_rmse" not in runs:  # every run failed: say why, not a KeyError
                    raise RuntimeError(f"every {name} sweep run failed: {runs['failed'].iloc[0]}")
                rmse[name] = runs["val_rmse"].round(6).tolist()
                print(f"round {round_index + 1} {name}: {seconds[name]} s", flush=True)
            speedups = {
                name: round(seconds["in_process"] / seconds[name], 2)
                for name in executors
                if name != "in_process"
            }
            # Largest |val RMSE difference| from the in-process run, per executor.
            max_gap = {
                name: max(abs(a - b) for a, b in zip(rmse[name], rmse["in_process"], strict=True))
                for name in executors
                if name != "in_process"
            }
            rounds.append(
                {
                    "order": names,
                    "seconds": seconds,
                    "speedup_vs_in_process": speedups,
                    "max_val_rmse_gap": max_gap,
                    "val_rmse": rmse,
                }
            )
            print(json.dumps(rounds[-1]), flush=True)
    result = {
        "backend": keras.backend.backend(),
        "data": provenance.get("description", str(provenance)),
        "runs_per_sweep": len(plan) * len(args.seeds),
        "points": [point["point"] for point in plan],
        "seeds": args.seeds,
        "workers": args.workers,
        "cpu_count": os.cpu_count(),
        "load_average_at_end": os.getloadavg(),
        "rounds": rounds,
    }
    print(json.dumps(result, indent=2))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
