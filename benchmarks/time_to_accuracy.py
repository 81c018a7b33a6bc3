"""Time to accuracy: the project's models against scikit-surprise's SVD, the CPU peer users pick.

For MovieLens rating prediction on a CPU, the tool a user would reach for first is
scikit-surprise's ``SVD`` (biased matrix factorisation trained by Cython SGD). This benchmark
puts the project beside it on the **same split** (the project's data-processing nodes: ingest,
prefix, seeded 85/15 split, training vocabularies) and reports **time to accuracy**: the seconds
of training until the eval RMSE first reaches the peer's.

* **Peer runs**: ``SVD`` at each configuration of ``--peer`` (factors, epochs, learning rate,
  regularisation); its fit time and eval RMSE (unknown ids get surprise's fallback: the global
  mean plus the known side's bias). The best full-size configuration sets the baseline's
  target. The compact model's target is the peer **at the same parameter count**: ``SVD`` with
  ``f`` factors holds ``(users + movies) · (f + 1)`` parameters (vectors and biases), so ``f`` is
  the compact model's embedding parameters over the ids, minus one, rounded down.
* **Project runs**: ``baseline`` and ``memory_efficient`` with conf/base's parameters (the
  training regime the pipelines use), each in a fresh subprocess (tracing included, as a user
  pays it), with early stopping off and ``--epochs`` epochs, so the whole eval-RMSE curve is
  seen. Time to accuracy is the training wall time (``fit``: tracing, steps and the per-epoch
  validation) at the end of the first epoch whose eval RMSE is at or below the target.
* Runs are interleaved (peer, baseline, compact, then rotated each repeat), and the report gives
  medians with min-max over ``--repeats``, the ratio to the peer's fit time and PASS/FAIL
  against the issue's goal (at most 2x the peer's fit time). Quote ``uptime``'s load average
  with any figure: on a loaded machine ratios mean little.

One command, from the repository root in the project's virtualenv with the benchmark extra
(``pip install -e ".[benchmark]"``)::

    PYTHONPATH=src python benchmarks/time_to_accuracy.py --archive data/01_raw/ml-100k.zip \\
        --dataset ml-100k --json-out data/08_reporting/time_to_accuracy.json
    PYTHONPATH=src python benchmarks/time_to_accuracy.py     # synthetic ml-1m-shaped data
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCHMARK_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARK_DIR))

from training_speed import data_parameters, load_parameters, machine_info  # noqa: E402

MODELS = ("baseline", "memory_efficient")
PEER_TIME_TARGET = 2.0  # goal: reach the peer's accuracy within 2x the peer's fit time
# The peer configurations: (factors, epochs, learning rate, regularisation).
DEFAULT_PEERS = ("64,20,0.01,0.05", "128,40,0.01,0.06")
DEFAULT_MATCHED_PEER = "30,0.01,0.05"  # the 4-factor SVD: 30 epochs, lr 0.01, reg 0.05


def prepare_data(data: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Ingest -> prefix -> split -> vocabularies, exactly as the data_processing pipeline."""
    from memory_efficient_embeddings.pipelines.data_processing import (  # noqa: PLC0415
        nodes as data_nodes,
    )

    ratings, provenance = data_nodes.ingest_ratings(data)
    prefixed = data_nodes.prefix_ids(ratings)
    train, evaluation = data_nodes.split_ratings(prefixed, params["split"])
    users, movies = data_nodes.build_vocabularies(train, evaluation, params["vocabulary"])
    return {
        "provenance": provenance,
        "train": train,
        "eval": evaluation,
        "users": users,
        "movies": movies,
    }


# ------------------------------------------------------------------------------ the peer


def parse_peer(text: str) -> dict[str, Any]:
    """``"factors,epochs,lr,reg"`` -> SVD keyword arguments."""
    factors, epochs, lr, reg = text.split(",")
    return {
        "n_factors": int(factors),
        "n_epochs": int(epochs),
        "lr_all": float(lr),
        "reg_all": float(reg),
    }


def matched_factors(embedding_parameters: int, num_users: int, num_movies: int) -> int:
    """Factors of the SVD with at most the given parameters: (users + movies) · (f + 1)."""
    return max(1, embedding_parameters // (num_users + num_movies) - 1)


def run_peer(data: dict[str, Any], config: dict[str, Any], seed: int) -> dict[str, Any]:
    """Fit scikit-surprise's SVD on the train split; eval RMSE and fit seconds."""
    import numpy as np  # noqa: PLC0415
    from surprise import SVD, Dataset, Reader  # noqa: PLC0415

    train, evaluation = data["train"], data["eval"]
    scale = (float(train["rating"].min()), float(train["rating"].max()))
    trainset = Dataset.load_from_df(
        train[["user_id", "movie_id", "rating"]], Reader(rating_scale=scale)
    ).build_full_trainset()
    algorithm = SVD(random_state=seed, **config)
    start = time.perf_counter()
    algorithm.fit(trainset)
    fit_seconds = time.perf_counter() - start
    predictions = np.array(
        [algorithm.predict(u, m).est for u, m in zip(evaluation["user_id"], evaluation["movie_id"])]
    )
    errors = predictions - evaluation["rating"].to_numpy(np.float64)
    return {
        "config": config,
        "parameters": (len(data["users"]) + len(data["movies"])) * (config["n_factors"] + 1),
        "fit_seconds": round(fit_seconds, 3),
        "eval_rmse": round(float(np.sqrt(np.mean(errors**2))), 5),
    }


# ------------------------------------------------------------------- the project (worker)


def run_project(spec: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """Build and train one of the project's models in this fresh process; its RMSE curve."""
    from memory_efficient_embeddings.embeddings import (  # noqa: PLC0415
        embedding_parameter_count,
    )
    from memory_efficient_embeddings.modeling import nodes as modeling  # noqa: PLC0415

    plan = modeling.assign_blocks(
        data["users"], data["movies"], spec["model_params"], spec["evaluation"]
    )
    model = modeling.build_model(plan, spec["model_params"])
    _, report = modeling.train_model(
        model, data["train"], data["eval"], data["users"], data["movies"], spec["training"]
    )
    elapsed, seconds = [], 0.0
    for epoch_seconds in report["epoch_seconds"]:
        seconds += epoch_seconds
        elapsed.append(round(seconds, 3))
    return {
        "model": spec["model"],
        "embedding_parameters": int(embedding_parameter_count(model)),
        "elapsed_seconds": elapsed,
        "eval_rmse": [round(v, 5) for v in report["history"]["val_rmse"]],
        "fit_seconds": report["train_seconds"],
    }


def worker_main(spec_path: Path, out_path: Path) -> None:
    """Entry point of one project subprocess (``--worker``)."""
    spec = json.loads(spec_path.read_text())
    with open(spec["data_pickle"], "rb") as handle:
        data = pickle.load(handle)  # noqa: S301 - written by this run's parent process
    out_path.write_text(json.dumps(run_project(spec, data)), encoding="utf-8")


def seconds_to_reach(run: dict[str, Any], target: float) -> float | None:
    """Training seconds at the end of the first epoch whose eval RMSE is <= target."""
    for seconds, rmse in zip(run["elapsed_seconds"], run["eval_rmse"], strict=True):
        if rmse <= target:
            return seconds
    return None


# ---------------------------------------------------------------------------- the parent


def spread(values: list[float]) -> dict[str, float] | None:
    """Median, min and max of repeated measurements (None when nothing was measured)."""
    if not values:
        return None
    return {
        "median": round(statistics.median(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
        "n": len(values),
    }


def project_spec(params: dict[str, Any], model: str, args: argparse.Namespace) -> dict[str, Any]:
    """What one project subprocess trains: conf/base's model and regime, the whole curve."""
    training = copy.deepcopy(params["training"])
    training["epochs"] = args.epochs
    training["early_stopping"] = {**(training.get("early_stopping") or {}), "enabled": False}
    training["verbose"] = 0
    return {
        "model": model,
        "model_params": copy.deepcopy(params[model]["model"]),
        "training": training,
        "evaluation": params["evaluation"],
    }


def run_subprocess(spec: dict[str, Any], workdir: Path, index: int) -> dict[str, Any]:
    """Run one project spec in a fresh interpreter and return its result."""
    spec_path, out_path = workdir / f"spec_{index}.json", workdir / f"out_{index}.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "KEDRO_DISABLE_TELEMETRY": "1"}
    completed = subprocess.run(
        [sys.executable, __file__, "--worker", str(spec_path), str(out_path)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{spec['model']} run failed:\n{completed.stderr[-3000:]}")
    return json.loads(out_path.read_text())


def summarise(peers: list[dict], projects: list[dict], data: dict[str, Any]) -> dict[str, Any]:
    """Targets, time to accuracy per model and the ratio to the peer's fit time."""
    by_config: dict[str, list[dict]] = {}
    for run in peers:
        by_config.setdefault(json.dumps(run["config"], sort_keys=True), []).append(run)
    peer_rows = [
        {
            "config": runs[0]["config"],
            "parameters": runs[0]["parameters"],
            "eval_rmse": statistics.median(r["eval_rmse"] for r in runs),
            "fit_seconds": spread([r["fit_seconds"] for r in runs]),
        }
        for runs in by_config.values()
    ]
    full_size = [row for row in peer_rows if not row["config"].get("matched")]
    best_peer = min(full_size, key=lambda row: row["eval_rmse"])
    models = {}
    for model in MODELS:
        runs = [run for run in projects if run["model"] == model]
        if not runs:
            continue
        if model == "baseline":
            peer = best_peer
        else:
            matched = [row for row in peer_rows if row["config"].get("matched") == model]
            peer = matched[0] if matched else best_peer
        target = peer["eval_rmse"]
        reached = [seconds_to_reach(run, target) for run in runs]
        times = [t for t in reached if t is not None]
        peer_fit = peer["fit_seconds"]["median"]
        median_time = statistics.median(times) if len(times) == len(runs) else None
        models[model] = {
            "embedding_parameters": runs[0]["embedding_parameters"],
            "peer": peer,
            "target_rmse": target,
            "best_eval_rmse": spread([min(run["eval_rmse"]) for run in runs]),
            "final_eval_rmse": spread([run["eval_rmse"][-1] for run in runs]),
            "seconds_to_target": spread(times),
            "runs_reaching_target": f"{len(times)}/{len(runs)}",
            "ratio_to_peer_fit": None if median_time is None else round(median_time / peer_fit, 2),
            "verdict": (
                "PASS"
                if median_time is not None and median_time <= PEER_TIME_TARGET * peer_fit
                else "FAIL"
            ),
            "curves": [
                {"elapsed_seconds": r["elapsed_seconds"], "eval_rmse": r["eval_rmse"]} for r in runs
            ],
        }
    return {
        "peers": peer_rows,
        "best_peer": best_peer,
        "models": models,
        "train_rows": len(data["train"]),
        "eval_rows": len(data["eval"]),
    }


def format_report(result: dict[str, Any]) -> str:
    """The human-readable report."""
    lines = [
        f"Data: {result['data']}; {result['train_rows']:,} train / "
        f"{result['eval_rows']:,} eval ratings; load average {result['load_average']}"
    ]
    lines.append("\nPeer: scikit-surprise SVD (median eval RMSE; fit seconds median [min-max])")
    for row in result["peers"]:
        c, s = row["config"], row["fit_seconds"]
        tag = f"  matched to {c['matched']}" if c.get("matched") else ""
        lines.append(
            f"  factors {c['n_factors']:>3}, epochs {c['n_epochs']:>2}, lr {c['lr_all']}, "
            f"reg {c['reg_all']}: {row['parameters']:>9,} params, RMSE {row['eval_rmse']:.4f}, "
            f"{s['median']:.2f} s [{s['min']:.2f}-{s['max']:.2f}]{tag}"
        )
    lines.append("\nProject (conf/base regime): seconds of training to reach the peer's RMSE")
    for model, row in result["models"].items():
        t, best = row["seconds_to_target"], row["best_eval_rmse"]
        reached = "never" if t is None else f"{t['median']:.2f} s [{t['min']:.2f}-{t['max']:.2f}]"
        ratio = row["ratio_to_peer_fit"]
        lines.append(
            f"  {model}: {row['embedding_parameters']:,} params, target {row['target_rmse']:.4f} "
            f"(peer {row['peer']['config']['n_factors']} factors, "
            f"{row['peer']['fit_seconds']['median']:.2f} s); reached in {reached} "
            f"({row['runs_reaching_target']} runs); "
            f"{'-' if ratio is None else f'{ratio:.2f}x'} the peer's fit time "
            f"{row['verdict']} (<= {PEER_TIME_TARGET:g}x); best RMSE {best['median']:.4f} "
            f"[{best['min']:.4f}-{best['max']:.4f}]"
        )
    return "\n".join(lines)


def run_interleaved(
    params: dict[str, Any], data: dict[str, Any], args: argparse.Namespace
) -> tuple[list[dict], list[dict]]:
    """Every repeat runs the peer and each model once, rotating who goes first."""
    peers = [parse_peer(text) for text in (args.peer or DEFAULT_PEERS)]
    peer_runs: list[dict] = []
    project_runs: list[dict] = []
    with tempfile.TemporaryDirectory() as directory:
        workdir = Path(directory)
        data_pickle = workdir / "data.pkl"
        with open(data_pickle, "wb") as handle:
            pickle.dump(data, handle)
        specs = [
            {**project_spec(params, model, args), "data_pickle": str(data_pickle)}
            for model in args.models
        ]
        for repeat in range(args.repeats):
            jobs = [None, *specs]  # None: the peer's runs
            shift = repeat % len(jobs)  # drifting load then hits every path alike
            for spec in jobs[shift:] + jobs[:shift]:
                if spec is None:
                    peer_runs += [run_peer(data, config, seed=repeat) for config in peers]
                    continue
                run = run_subprocess(spec, workdir, len(project_runs))
                project_runs.append(run)
                if run["model"] != "baseline":  # the peer at the compact model's size
                    factors = matched_factors(
                        run["embedding_parameters"], len(data["users"]), len(data["movies"])
                    )
                    config = parse_peer(f"{factors},{args.matched_peer}")
                    matched = run_peer(data, config, seed=repeat)
                    matched["config"] = {**config, "matched": run["model"]}
                    peer_runs.append(matched)
    return peer_runs, project_runs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--worker", nargs=2, type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--archive", type=Path, help="MovieLens zip, folder or ratings file")
    parser.add_argument("--dataset", default="ml-1m")
    parser.add_argument("--no-verify-checksum", action="store_true")
    parser.add_argument("--num-ratings", type=int, default=None, help="shrink synthetic data")
    parser.add_argument("--env", default="base", help="Kedro environment of the parameters")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=12, help="project epochs (no early stop)")
    parser.add_argument(
        "--peer",
        action="append",
        default=None,
        help="factors,epochs,lr,reg of an SVD run (repeatable)",
    )
    parser.add_argument(
        "--matched-peer",
        default=DEFAULT_MATCHED_PEER,
        help="epochs,lr,reg of the SVD matched to the compact model's size",
    )
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.worker:
        worker_main(*args.worker)
        return
    try:
        import surprise  # noqa: F401, PLC0415
    except ImportError:
        parser.exit(2, "scikit-surprise is not installed: pip install -e '.[benchmark]'\n")

    params = load_parameters(args.env)
    data = prepare_data(data_parameters(params, args), params)
    peer_runs, project_runs = run_interleaved(params, data, args)
    result = summarise(peer_runs, project_runs, data)
    result["data"] = (
        f"{args.archive} ({args.dataset})" if args.archive else f"synthetic {args.dataset}"
    )
    result["load_average"] = " ".join(f"{v:.2f}" for v in os.getloadavg())
    result["machine"] = machine_info((None, None))
    print(format_report(result))
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
