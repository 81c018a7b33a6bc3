"""Time to accuracy: the project's models against scikit-surprise's SVD, the CPU peer users pick.

For MovieLens rating prediction on a CPU, the tool a user would reach for first is
scikit-surprise's ``SVD`` (biased matrix factorisation trained by Cython SGD). This benchmark
puts the project beside it on the **same split** (the project's data-processing nodes: ingest,
prefix, seeded 85/15 split into a training part and eval, the validation split carved from the
training part, training vocabularies) and asks whether the project reaches the peer's eval RMSE
within twice the peer's fit time. Stopping and selection read the validation split only; the eval
split is scored once per run, after training, on both sides.

* **Peer runs**: ``SVD`` at each configuration of ``--peer`` (factors, epochs, learning rate,
  regularisation), fitted on the train split (the same rows the project trains on; not the
  validation split, which the peer has no use for) and scored once on the eval split; its fit
  time and eval RMSE (unknown ids get surprise's fallback: the global mean plus the known side's
  bias). The best full-size configuration (by median eval RMSE) sets the baseline's target. The
  compact model's target is the peer **at the same parameter count**: ``SVD`` with ``f``
  factors holds ``(users + movies) · (f + 1)`` parameters (vectors and biases), so ``f`` is the
  compact model's embedding parameters over the ids, minus one, rounded down.
* **Project runs**: ``baseline`` and ``memory_efficient`` with conf/base's parameters (the
  training regime the pipelines use), each in a fresh subprocess (tracing included, as a user
  pays it), through the project's fit-and-score path (``common.fit_and_score_model``): early
  stopping on the validation RMSE with the best epoch's weights restored (``--epochs`` caps the
  epochs; default conf/base's), then the eval split scored once. Its **accuracy** is that eval
  RMSE; its **time to accuracy** is the training wall time (``fit``: tracing, steps and the
  per-epoch validation) up to and including the validation-selected epoch, the sum of
  ``epoch_seconds[:best_epoch]`` (the patience epochs after it are not counted: they only
  confirm the choice).
* **Verdict**: PASS when the median eval RMSE over repeats is at most the peer's and the median
  time to accuracy is at most 2x the peer's median fit time; FAIL otherwise, and the report says
  which condition failed.
* Runs are interleaved (peer, baseline, compact, then rotated each repeat) and the report gives
  medians with min-max over ``--repeats``. Quote ``uptime``'s load average with any figure: on a
  loaded machine ratios mean little.

``--backend tensorflow jax`` runs each project model once per Keras backend (a fresh subprocess
with its ``KERAS_BACKEND``, interleaved with the peer and the other runs) and reports each backend
against the peer; the peer's runs are shared.

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

from common import (  # noqa: E402
    add_backend_argument,
    add_data_arguments,
    check_backends,
    data_parameters,
    fit_and_score_model,
    load_parameters,
    prepare_data,
)
from training_speed import machine_info  # noqa: E402

MODELS = ("baseline", "memory_efficient")
PEER_TIME_TARGET = 2.0  # goal: reach the peer's accuracy within 2x the peer's fit time
# The peer configurations: (factors, epochs, learning rate, regularisation).
DEFAULT_PEERS = ("64,20,0.01,0.05", "128,40,0.01,0.06")
DEFAULT_MATCHED_PEER = "30,0.01,0.05"  # the 4-factor SVD: 30 epochs, lr 0.01, reg 0.05


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
    """Fit scikit-surprise's SVD on the train split only; its eval RMSE and fit seconds."""
    import numpy as np  # noqa: PLC0415
    from surprise import SVD, Dataset, Reader  # noqa: PLC0415

    # The train split: the rows the project trains on (the validation split is left out, as it
    # is from the project's gradient steps), so both sides learn from the same ratings.
    train, evaluation = data["train"], data["eval"]
    scale = (float(train["rating"].min()), float(train["rating"].max()))
    trainset = Dataset.load_from_df(
        train[["user_id", "movie_id", "rating"]], Reader(rating_scale=scale)
    ).build_full_trainset()
    algorithm = SVD(random_state=seed, **config)
    start = time.perf_counter()
    algorithm.fit(trainset)  # scikit-surprise's own SGD fit, not a Keras model's
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
    """Fit and score one of the project's models in this fresh process (the pipelines' path).

    Early stopping and the restored epoch read the validation split; the eval split is scored
    once, after training, by ``fit_and_score``.
    """
    import keras  # noqa: PLC0415 - the parent set KERAS_BACKEND for this process

    if keras.backend.backend() != spec["backend"]:
        raise RuntimeError(f"worker runs on {keras.backend.backend()}, spec says {spec['backend']}")
    record = fit_and_score_model(spec["model_params"], spec["training"], data, spec["evaluation"])
    return {
        "model": spec["model"],
        "backend": spec["backend"],
        "embedding_parameters": int(record["embedding_parameters"]),
        "epoch_seconds": record["epoch_seconds"],
        "epochs_run": record["epochs_run"],
        "best_epoch": record["best_epoch"],
        # Validation RMSE per epoch (what early stopping read) and at the kept epoch.
        "val_rmse_curve": [round(v, 5) for v in record["history"]["val_rmse"]],
        "val_rmse": round(record["val_rmse"], 5),
        "eval_rmse": round(record["eval_rmse"], 5),  # scored once, at the kept epoch
        "fit_seconds": record["train_seconds"],
    }


def worker_main(spec_path: Path, out_path: Path) -> None:
    """Entry point of one project subprocess (``--worker``)."""
    spec = json.loads(spec_path.read_text())
    with open(spec["data_pickle"], "rb") as handle:
        data = pickle.load(handle)  # noqa: S301 - written by this run's parent process
    out_path.write_text(json.dumps(run_project(spec, data)), encoding="utf-8")


def seconds_to_selected_epoch(run: dict[str, Any]) -> float:
    """Training seconds up to and including the validation-selected (restored) epoch."""
    return round(sum(run["epoch_seconds"][: run["best_epoch"]]), 3)


def verdict(
    eval_rmse: float, seconds: float, peer_rmse: float, peer_seconds: float
) -> dict[str, Any]:
    """PASS when the eval RMSE is at most the peer's and the time at most 2x the peer's fit."""
    accuracy_pass = eval_rmse <= peer_rmse
    time_pass = seconds <= PEER_TIME_TARGET * peer_seconds
    return {
        "accuracy_pass": accuracy_pass,
        "time_pass": time_pass,
        "verdict": "PASS" if accuracy_pass and time_pass else "FAIL",
    }


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
    """What one project subprocess trains: conf/base's model and regime, early stopping on."""
    training = copy.deepcopy(params["training"])
    if args.epochs is not None:
        training["epochs"] = args.epochs
    # The project's early stopping on the validation split, the best epoch's weights restored.
    training["early_stopping"] = {
        **(training.get("early_stopping") or {}),
        "enabled": True,
        "restore_best_weights": True,
    }
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
    env = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "KEDRO_DISABLE_TELEMETRY": "1",
        "KERAS_BACKEND": spec["backend"],  # read once, at Keras' import in the child
    }
    completed = subprocess.run(
        [sys.executable, __file__, "--worker", str(spec_path), str(out_path)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(
            f"{spec['model']} run on {spec['backend']} failed:\n{completed.stderr[-3000:]}"
        )
    return json.loads(out_path.read_text())


def summarise(peers: list[dict], projects: list[dict], data: dict[str, Any]) -> dict[str, Any]:
    """Targets, accuracy and time to accuracy per model, and the verdict against the peer."""
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
        peer_fit = peer["fit_seconds"]["median"]
        eval_rmse = statistics.median(run["eval_rmse"] for run in runs)
        times = [seconds_to_selected_epoch(run) for run in runs]
        median_time = statistics.median(times)
        models[model] = {
            "embedding_parameters": runs[0]["embedding_parameters"],
            "peer": peer,
            "target_rmse": target,
            "eval_rmse": spread([run["eval_rmse"] for run in runs]),
            "val_rmse": spread([run["val_rmse"] for run in runs]),
            "best_epoch": spread([run["best_epoch"] for run in runs]),
            "epochs_run": spread([run["epochs_run"] for run in runs]),
            "seconds_to_selected_epoch": spread(times),
            "fit_seconds": spread([run["fit_seconds"] for run in runs]),
            "runs_at_or_below_target": (
                f"{sum(run['eval_rmse'] <= target for run in runs)}/{len(runs)}"
            ),
            "ratio_to_peer_fit": round(median_time / peer_fit, 2) if peer_fit else None,
            **verdict(eval_rmse, median_time, target, peer_fit),
            "curves": [
                {
                    "epoch_seconds": run["epoch_seconds"],
                    "val_rmse": run["val_rmse_curve"],
                    "best_epoch": run["best_epoch"],
                }
                for run in runs
            ],
        }
    return {
        "peers": peer_rows,
        "best_peer": best_peer,
        "models": models,
        "train_rows": len(data["train"]),
        "validation_rows": len(data["validation"]),
        "eval_rows": len(data["eval"]),
    }


def _span(s: dict[str, float], digits: int = 2) -> str:
    return f"{s['median']:.{digits}f} [{s['min']:.{digits}f}-{s['max']:.{digits}f}]"


def format_report(result: dict[str, Any]) -> str:
    """The human-readable report."""
    lines = [
        f"Data: {result['data']}; {result['train_rows']:,} train / "
        f"{result['validation_rows']:,} validation / {result['eval_rows']:,} eval ratings; "
        f"load average {result['load_average']}"
    ]
    lines.append(
        "\nPeer: scikit-surprise SVD on the train split (median eval RMSE; fit seconds median "
        "[min-max])"
    )
    for row in result["peers"]:
        c, s = row["config"], row["fit_seconds"]
        tag = f"  matched to {c['matched']}" if c.get("matched") else ""
        lines.append(
            f"  factors {c['n_factors']:>3}, epochs {c['n_epochs']:>2}, lr {c['lr_all']}, "
            f"reg {c['reg_all']}: {row['parameters']:>9,} params, RMSE {row['eval_rmse']:.4f}, "
            f"{_span(s)} s{tag}"
        )
    lines.append(
        "\nProject (conf/base regime, early stopping on the validation split): eval RMSE scored "
        "once at the validation-selected epoch; time = training seconds through that epoch"
    )
    for model, row in result["models"].items():
        peer = row["peer"]
        ratio = row["ratio_to_peer_fit"]
        failed = [
            name
            for name, passed in (("accuracy", row["accuracy_pass"]), ("time", row["time_pass"]))
            if not passed
        ]
        lines.append(
            f"  {model}: {row['embedding_parameters']:,} params; eval RMSE "
            f"{_span(row['eval_rmse'], 4)} against the peer's {row['target_rmse']:.4f} "
            f"({peer['config']['n_factors']} factors; {row['runs_at_or_below_target']} runs at or "
            f"below); {_span(row['seconds_to_selected_epoch'])} s through epoch "
            f"{row['best_epoch']['median']:g} of {row['epochs_run']['median']:g} (validation RMSE "
            f"{row['val_rmse']['median']:.4f}) = {'-' if ratio is None else f'{ratio:.2f}x'} the "
            f"peer's {peer['fit_seconds']['median']:.2f} s fit; {row['verdict']} (eval RMSE <= "
            f"peer's and time <= {PEER_TIME_TARGET:g}x)"
            + (f", failed on {' and '.join(failed)}" if failed else "")
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
            pickle.dump({k: v for k, v in data.items() if k != "ratings"}, handle)
        specs = [
            {**project_spec(params, model, args), "data_pickle": str(data_pickle), "backend": b}
            for model in args.models
            for b in args.backends
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
                # The peer at the compact model's size (once a repeat: backends share it).
                if run["model"] != "baseline" and run["backend"] == args.backends[0]:
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
    add_data_arguments(parser, dataset="ml-1m")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="most project epochs (early stopping on validation ends runs); default conf/base's",
    )
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
    add_backend_argument(parser)
    parser.add_argument("--json-out", type=Path, default=None)
    args = parser.parse_args(argv)
    check_backends(parser, args.backends)
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
    shared = {
        "data": f"{args.archive} ({args.dataset})" if args.archive else f"synthetic {args.dataset}",
        "load_average": " ".join(f"{v:.2f}" for v in os.getloadavg()),
        "machine": machine_info((None, None)),
    }
    # Each backend's project runs against the same peer runs.
    result = {
        **shared,
        "by_backend": {
            backend: summarise(
                peer_runs, [run for run in project_runs if run["backend"] == backend], data
            )
            for backend in args.backends
        },
    }
    print(
        "\n\n".join(
            f"Keras backend: {backend}\n" + format_report({**shared, **summary})
            for backend, summary in result["by_backend"].items()
        )
    )
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
