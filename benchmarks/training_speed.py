"""Training-speed benchmark: the keras-io recipe's training path vs the project's nodes.

In one process and on the same data (same split, same ``vocabulary.source: all``
vocabularies, same train/eval rows) it trains, for each model (baseline and
memory-efficient):

(a) ``recipe``: the faithful re-implementation of the keras-io recipe in
    ``benchmarks/recipe_reference.py``: ``|`` CSVs re-parsed by
    ``make_csv_dataset`` every epoch, ``StringLookup`` inside the model, Keras
    Adam, one step per call;
(b) ``project``: the project's nodes (``build_model``
    -> ``train_model``) with the ``recipe`` environment's model parameters (same
    architecture and parameter counts) and ``conf/base``'s training section, the
    project's fast path: ids encoded once to int32, LazyAdam (row-sparse Adam with
    deferred momentum), several steps per call. Only epochs, batch size and early
    stopping (off) are set to the recipe's.

Every project run comes before any recipe run (the recipe's tf.data CSV pipelines
slow down whatever trains after them in the process). Both paths train for the
same number of epochs at the same batch size (no early
stopping) and are measured the same way: wall time per epoch (validation
included; the first epoch also includes tracing and is reported separately),
samples per second (train rows x epochs / total time of the training call), RSS
sampled in a background thread (``ResourceMonitor``) and the final val MAE. It
prints a table, the speed-up of (b) over (a) with PASS/FAIL against the targets
(>= 5x mean epoch time, val MAE no worse by more than 0.005), then the same as
JSON.

Usage (from the repository root, in the project's virtualenv)::

    python benchmarks/training_speed.py                       # synthetic ml-1m-shaped data
    python benchmarks/training_speed.py --archive data/01_raw/ml-1m.zip   # real MovieLens
    python benchmarks/training_speed.py --num-ratings 100000 --epochs 1   # quick run

Options: ``--archive PATH`` (an official MovieLens zip or its extracted folder),
``--dataset ml-1m`` (release the archive / synthetic shape follows),
``--no-verify-checksum`` (accept a zip whose MD5 differs from the published one),
``--epochs 3``, ``--batch-size 128``, ``--models baseline memory_efficient``,
``--optimizer``, ``--steps-per-execution`` and ``--learning-rate`` (path (b)
only; default: ``conf/base``'s training section),
``--num-ratings N`` (smaller synthetic data for quick runs; users and movies
shrink with it), ``--json-out PATH``.

Model parameters come from ``conf/base`` with the ``conf/recipe`` overlay, loaded
with Kedro's ``OmegaConfigLoader`` exactly as ``kedro run --env=recipe`` does;
training parameters from ``conf/base``; only the keys printed as "overrides" are
changed by this script.
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from kedro.config import OmegaConfigLoader
from tensorflow.python.framework import config as _tf_config

from memory_efficient_embeddings.model_names import MODEL_NAMES
from memory_efficient_embeddings.modeling import nodes as modeling
from memory_efficient_embeddings.modeling import specs
from memory_efficient_embeddings.modeling.resources import ResourceMonitor
from memory_efficient_embeddings.modeling.training import OPTIMIZERS
from memory_efficient_embeddings.movielens import get_release
from memory_efficient_embeddings.pipelines.data_processing import nodes as data_nodes
from memory_efficient_embeddings.settings import CONFIG_LOADER_ARGS

sys.path.insert(0, str(Path(__file__).resolve().parent))
import recipe_reference as recipe  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
SPEEDUP_TARGET = 5.0
MAE_TOLERANCE = 0.005
logger = logging.getLogger("training_speed")


# ---------------------------------------------------------------------- configuration


def load_parameters(env: str, conf_source: Path = REPO_ROOT / "conf") -> dict[str, Any]:
    """The project's parameters as ``kedro run --env=<env>`` sees them."""
    loader = OmegaConfigLoader(str(conf_source), **{**CONFIG_LOADER_ARGS, "default_run_env": env})
    return copy.deepcopy(dict(loader["parameters"]))


def data_parameters(params: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The ``data`` parameters with the benchmark's source choice applied."""
    data = copy.deepcopy(params["data"])
    data["dataset"] = args.dataset
    if args.archive:
        data["source"] = "movielens"
        data["path"] = str(args.archive)
        data["verify_checksum"] = not args.no_verify_checksum
    else:
        data["source"] = "synthetic"
        data["path"] = None
        if args.num_ratings:
            release = get_release(args.dataset)
            synthetic = dict(data.get("synthetic") or {})
            per_user = synthetic.get("min_ratings_per_user") or 20
            synthetic["num_ratings"] = int(args.num_ratings)
            # Shrink users and movies with the ratings, leaving room above the per-user minimum
            # and few enough movies that the generator can give every movie a rating.
            users = int(args.num_ratings * 0.8) // per_user
            synthetic["num_users"] = max(1, min(release.num_users, users))
            synthetic["num_movies"] = max(1, min(release.num_movies, args.num_ratings // 20))
            data["synthetic"] = synthetic
    return data


def training_parameters(
    params: dict[str, Any], args: argparse.Namespace
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Path (b)'s training parameters: conf/base's training section, recipe's epochs and batch."""
    training = copy.deepcopy(params["training"])
    overrides = {
        "batch_size": args.batch_size,
        "epochs": args.epochs,
        "early_stopping.enabled": False,
        "verbose": 2,
    }
    for option in ("optimizer", "steps_per_execution", "learning_rate"):
        if getattr(args, option) is not None:
            overrides[option] = getattr(args, option)
    for key, value in overrides.items():
        *parents, leaf = key.split(".")
        target = training
        for parent in parents:
            target = target.setdefault(parent, {}) or {}
        target[leaf] = value
    return training, overrides


# ------------------------------------------------------------------------------ data


def prepare_data(data: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Ingest -> prefix -> split -> vocabularies with the project's data-processing nodes."""
    ratings, provenance = data_nodes.ingest_ratings(data)
    prefixed = data_nodes.prefix_ids(ratings)
    train, evaluation = data_nodes.split_ratings(prefixed, params["split"])
    vocabulary = dict(params["vocabulary"])
    vocabulary["source"] = "all"  # the recipe's train ∪ eval vocabularies, for both paths
    users, movies = data_nodes.build_vocabularies(train, evaluation, vocabulary)
    return {
        "provenance": provenance,
        "train": train,
        "eval": evaluation,
        "users": users,
        "movies": movies,
    }


# ------------------------------------------------------------------------------- runs


def _reset() -> None:
    keras.backend.clear_session()
    gc.collect()


def _summary(
    path: str,
    model_name: str,
    *,
    epoch_seconds: list[float],
    val_mae: float,
    monitor: ResourceMonitor,
    train_rows: int,
    parameters: int,
    extra: dict[str, Any],
) -> dict[str, Any]:
    resources = monitor.as_dict()
    epochs = len(epoch_seconds)
    return {
        "model": model_name,
        "path": path,
        "epochs": epochs,
        "epoch_seconds": [round(s, 3) for s in epoch_seconds],
        "mean_epoch_seconds": round(float(np.mean(epoch_seconds)), 3),
        "first_epoch_seconds": round(epoch_seconds[0], 3),
        "mean_later_epoch_seconds": (
            round(float(np.mean(epoch_seconds[1:])), 3) if epochs > 1 else None
        ),
        "total_seconds": resources["seconds"],
        "samples_per_second": round(train_rows * epochs / monitor.seconds, 1),
        "start_rss_mib": resources["start_rss_mib"],
        "peak_rss_mib": resources["peak_rss_mib"],
        "peak_rss_increase_mib": resources["peak_rss_increase_mib"],
        "val_mae": round(float(val_mae), 5),
        "parameters": int(parameters),
        **extra,
    }


def run_recipe(
    model_name: str,
    data: dict[str, Any],
    csvs: tuple[Path, Path],
    args: argparse.Namespace,
    seed: int,
) -> dict[str, Any]:
    """(a): the recipe's model and training path."""
    _reset()
    # The recipe does not ask for op determinism; the project's train_model turns it on
    # process-wide, so switch it off again for the recipe's run (no public API for that).
    _tf_config.disable_op_determinism()
    keras.utils.set_random_seed(seed)
    users = data["users"]["id"].astype(str).tolist()
    movies = data["movies"]["id"].astype(str).tolist()
    if model_name == "baseline":
        model = recipe.build_recipe_baseline(users, movies, base_embedding_dim=64)
    else:
        # The vocabulary is sorted by training count, so it is the recipe's
        # popularity-sorted movie list.
        model = recipe.build_recipe_memory_efficient(users, movies, movies, base_embedding_dim=64)
    with ResourceMonitor() as monitor:
        result = recipe.train_recipe(
            model, csvs[0], csvs[1], epochs=args.epochs, batch_size=args.batch_size, verbose=2
        )
    return _summary(
        "recipe",
        model_name,
        epoch_seconds=result["epoch_seconds"],
        val_mae=result["val_mae"],
        monitor=monitor,
        train_rows=len(data["train"]),
        parameters=model.count_params(),
        extra={"optimizer": "adam", "steps_per_execution": 1, "val_mse": result["val_mse"]},
    )


def run_project(
    model_name: str, data: dict[str, Any], params: dict[str, Any], training: dict[str, Any]
) -> dict[str, Any]:
    """(b): the project's nodes with the recipe environment's model parameters."""
    _reset()
    model_params = params[model_name]["model"]
    embedding_plan = specs.resolve_embedding_plan(data["users"], data["movies"], model_params, 3)
    model = modeling.build_model(embedding_plan, model_params)
    parameters = model.count_params()
    with ResourceMonitor() as monitor:
        _, report = modeling.train_model(
            model, data["train"], data["eval"], data["users"], data["movies"], training
        )
    return _summary(
        "project",
        model_name,
        epoch_seconds=report["epoch_seconds"],
        val_mae=report["history"]["val_mae"][-1],
        monitor=monitor,
        train_rows=len(data["train"]),
        parameters=parameters,
        extra={
            "optimizer": training["optimizer"],
            "steps_per_execution": training["steps_per_execution"],
            "val_mse": round(float(report["history"]["val_loss"][-1]), 5),
            "fit_seconds": report["train_seconds"],
        },
    )


def compare(recipe_run: dict[str, Any], project_run: dict[str, Any]) -> dict[str, Any]:
    """Speed-up of (b) over (a) and the val MAE difference, against the targets."""
    speedup = recipe_run["mean_epoch_seconds"] / project_run["mean_epoch_seconds"]
    later = None
    if recipe_run["mean_later_epoch_seconds"] and project_run["mean_later_epoch_seconds"]:
        later = recipe_run["mean_later_epoch_seconds"] / project_run["mean_later_epoch_seconds"]
    mae_diff = project_run["val_mae"] - recipe_run["val_mae"]
    return {
        "model": recipe_run["model"],
        "speedup_mean_epoch": round(speedup, 2),
        "speedup_later_epochs": round(later, 2) if later is not None else None,
        "speedup_samples_per_second": round(
            project_run["samples_per_second"] / recipe_run["samples_per_second"], 2
        ),
        "val_mae_diff": round(mae_diff, 5),
        "speedup_pass": speedup >= SPEEDUP_TARGET,
        "mae_pass": mae_diff <= MAE_TOLERANCE,
        "pass": speedup >= SPEEDUP_TARGET and mae_diff <= MAE_TOLERANCE,
    }


# ----------------------------------------------------------------------------- output


def format_table(runs: list[dict[str, Any]], comparisons: list[dict[str, Any]]) -> str:
    header = (
        f"{'model':<17} {'path':<8} {'params':>9} {'mean ep s':>10} {'1st ep s':>9} "
        f"{'samples/s':>11} {'peak +MiB':>10} {'peak MiB':>9} {'val MAE':>8}"
    )
    lines = [header, "-" * len(header)]
    for run in runs:
        lines.append(
            f"{run['model']:<17} {run['path']:<8} {run['parameters']:>9,} "
            f"{run['mean_epoch_seconds']:>10.2f} {run['first_epoch_seconds']:>9.2f} "
            f"{run['samples_per_second']:>11,.0f} {run['peak_rss_increase_mib']:>10.1f} "
            f"{run['peak_rss_mib']:>9.1f} {run['val_mae']:>8.4f}"
        )
    lines.append("")
    for c in comparisons:
        later = (
            f", {c['speedup_later_epochs']:.2f}x after the first"
            if c["speedup_later_epochs"]
            else ""
        )
        lines.append(
            f"{c['model']}: project is {c['speedup_mean_epoch']:.2f}x faster per epoch{later} "
            f"[{'PASS' if c['speedup_pass'] else 'FAIL'} >= {SPEEDUP_TARGET:g}x]; "
            f"val MAE project - recipe = {c['val_mae_diff']:+.4f} "
            f"[{'PASS' if c['mae_pass'] else 'FAIL'} <= {MAE_TOLERANCE}]"
        )
    return "\n".join(lines)


def machine_info() -> dict[str, Any]:
    return {
        "cpu_count": os.cpu_count(),
        "sched_affinity": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        # Other processes competing for the CPUs distort the timings: check this is low.
        "load_average_1_5_15_min_at_end": [round(x, 2) for x in os.getloadavg()],
    }


# ------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Compare the keras-io recipe's training path with the project's nodes.",
    )
    parser.add_argument("--archive", type=Path, help="MovieLens zip or extracted folder")
    parser.add_argument("--dataset", default="ml-1m", help="MovieLens release (default ml-1m)")
    parser.add_argument("--no-verify-checksum", action="store_true")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--models", nargs="+", choices=MODEL_NAMES, default=list(MODEL_NAMES))
    parser.add_argument(
        "--optimizer", choices=sorted(OPTIMIZERS), help="path (b); default: conf/base's"
    )
    parser.add_argument("--steps-per-execution", type=int, help="path (b); default: conf/base's")
    parser.add_argument("--learning-rate", type=float, help="path (b); default: conf/base's")
    parser.add_argument("--num-ratings", type=int, help="synthetic size override (quick runs)")
    parser.add_argument("--json-out", type=Path)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # The recipe's model architecture, trained the project's way (conf/base's training section).
    params = load_parameters("recipe")
    training, overrides = training_parameters(load_parameters("base"), args)
    print(f"Path (b) training parameters: conf/base's training, overrides {overrides}")

    data = prepare_data(data_parameters(params, args), params)
    provenance = data["provenance"]
    print(
        f"Data: {provenance['description']}; {len(data['train']):,} train / "
        f"{len(data['eval']):,} eval rows; {len(data['users']):,} users, "
        f"{len(data['movies']):,} movies (vocabulary source: all)"
    )

    runs: list[dict[str, Any]] = []
    comparisons: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    # Every project run comes before any recipe run: the recipe's tf.data CSV pipelines leave
    # work behind that slows whatever trains next in this process (measured: the project's
    # memory-efficient epochs took 3.1-3.2 s alone, 3.7-6.3 s right after a recipe run).
    project_runs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="recipe_csv_") as tmp:
        csvs = recipe.write_recipe_csvs(data["train"], data["eval"], tmp)
        for model_name in args.models:
            try:
                recipe.check_recipe_applies(model_name, data)
            except ValueError as exc:  # e.g. the recipe's QR / MD rules on a small dataset
                print(f"SKIPPED {model_name}: {exc}")
                skipped[model_name] = str(exc)
                continue
            project_runs[model_name] = run_project(model_name, data, params, training)
            _reset()
        for model_name, project_run in project_runs.items():
            recipe_run = run_recipe(model_name, data, csvs, args, seed=training["seed"])
            runs += [recipe_run, project_run]
            comparisons.append(compare(recipe_run, project_run))
            _reset()

    result = {
        "command": " ".join(
            [Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]
        ),
        "data": {
            "description": provenance["description"],
            "provenance": {k: v for k, v in provenance.items() if k != "generator"},
            "train_rows": len(data["train"]),
            "eval_rows": len(data["eval"]),
            "num_users": len(data["users"]),
            "num_movies": len(data["movies"]),
            "vocabulary_source": "all",
        },
        "settings": {
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "recipe": {"optimizer": "adam", "learning_rate": 0.001, "steps_per_execution": 1},
            "project": {
                "config": "conf/base + conf/recipe",
                "overrides": overrides,
                "training": training,
            },
        },
        "targets": {"speedup_min": SPEEDUP_TARGET, "val_mae_diff_max": MAE_TOLERANCE},
        "runs": runs,
        "comparisons": comparisons,
        "skipped": skipped,
        "all_pass": bool(comparisons) and all(c["pass"] for c in comparisons) and not skipped,
        "machine": machine_info(),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    print()
    print(format_table(runs, comparisons))
    print()
    text = json.dumps(result, indent=2, default=str)
    print(text)
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(text + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main()
