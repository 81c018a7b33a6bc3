"""Training-speed benchmark that noise cannot fool: the keras-io recipe vs the project, interleaved.

Two comparisons, both on the same data (same split, same train/eval rows):

1. **Per epoch** (``--mode epochs``), for each model (baseline and memory-efficient, the recipe's
   architecture on both paths):

   * ``recipe``: the faithful re-implementation of the keras-io recipe in
     ``benchmarks/recipe_reference.py`` (``|`` CSVs re-parsed by ``make_csv_dataset`` every
     epoch, ``StringLookup`` inside the model, Keras Adam, one step per call);
   * ``project``: the project's fit-and-score path (``common.fit_and_score_model``:
     ``assign_blocks`` -> ``build_model`` -> ``fit_and_score``) with the ``recipe`` environment's
     model parameters (same architecture and parameter counts) and ``conf/base``'s training
     section (ids encoded once, LazyAdam, several steps per call); only epochs, batch size and
     early stopping (off) are set to the recipe's. It validates on the validation split each
     epoch and scores the eval split once after training.

   Every run is a fresh subprocess (no state leaks from one run into the next: the recipe's
   tf.data pipelines slow whatever trains after them in a process). Runs are interleaved, and
   each repeat swaps which path goes first (project, recipe, recipe, project, ...), so drifting
   machine load hits both paths alike. Per path it reports the median and min-max of each run's
   mean epoch time (validation and, in the first epoch, tracing included, on both paths), the
   ratio of the medians with its range (slowest recipe run / fastest project run and the other
   way round), and PASS/FAIL against >= 10x per epoch with an eval MAE no worse than the
   recipe's + 0.005 (medians over the runs). Both MAEs are the eval split's after the last epoch
   (no early stopping on either path): the project's scored once after training, the recipe's
   its own last-epoch ``val_mae``, since the recipe validates on the eval split.

   Both paths train on the same train split (``conf/base``'s ``split``: the training part less
   the validation split) with the recipe's ``all`` vocabulary. Per epoch the project validates
   on the validation split and the recipe on the eval split, so with conf/base's fractions the
   recipe's epoch validates on more rows (15% of the ratings against 8.5%).

2. **Whole run** (``--mode whole-run``): ``kedro run`` (the default pipeline: data processing,
   both models with early stopping, the report) in a temporary copy of the project, against the
   recipe's whole script (``recipe_reference.py --ratings``: read, split, write CSVs, train and
   validate both models), back to back, each repeat swapping the order. It reports wall time and
   the peak RSS of each process (``wait4``), the ratio of the medians, and where the time of a
   project run goes (start-up before the first node, data processing, training, evaluation and
   reports, saving and loading), from the node timing logs.

Data: ``--archive PATH`` (an official MovieLens zip, its extracted folder or its ratings file;
``--dataset`` names the release, ``--no-verify-checksum`` accepts a zip with another MD5), or the
project's synthetic generator in the release's shape (default ml-1m; ``--num-ratings`` shrinks
it). Where the recipe's fixed memory-efficient sizes (``users // 50`` QR buckets, movie blocks
400 / 1,300 / rest) cannot index the data (ml-100k), both paths use the same scaled sizes
(``recipe_reference.recipe_sizes``) and the output says so.

One command, from the repository root in the project's virtualenv (estimated 8-10 min on ml-100k
on an idle 2-core machine; 28 min under a load average of 20)::

    PYTHONPATH=src python benchmarks/training_speed.py --archive data/01_raw/ml-100k.zip \\
        --dataset ml-100k --threads 2 --json-out data/08_reporting/training_speed.json

    python benchmarks/training_speed.py                        # synthetic ml-1m-shaped data
    python benchmarks/training_speed.py --num-ratings 100000 --repeats 1 --mode epochs  # quick

``--threads N`` pins TensorFlow's intra-op and inter-op thread pools (``--inter-op-threads``
sets the latter apart) in every run, both paths alike; ``--repeats`` (default 3) sets the runs
per path. No assertions on timings: they depend on the machine and its load, printed at the end.

``--backend tensorflow jax`` runs the project path (per epoch and whole runs) once per Keras
backend, each run a fresh subprocess with its ``KERAS_BACKEND`` (Keras picks its backend at
import), interleaved with the recipe's runs, which stay on TensorFlow (``tf.data`` and
``StringLookup``); the report adds the backends' ratio of median epoch times and their eval MAEs.
``--threads`` pins TensorFlow's pools only (XLA on JAX has no such switch): to compare backends
on equal cores, run the whole benchmark under ``taskset -c 0-1`` (children inherit it)::

    taskset -c 0-1 python benchmarks/training_speed.py --archive ml-100k.zip --dataset ml-100k \
        --no-verify-checksum --backend tensorflow jax --json-out speed_backends.json
"""

from __future__ import annotations

import argparse
import copy
import importlib.metadata
import json
import logging
import os
import pickle
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from memory_efficient_embeddings.model_names import MODEL_NAMES

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCHMARK_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARK_DIR))

from common import (  # noqa: E402
    add_backend_argument,
    check_backends,
    data_parameters,
    fit_and_score_model,
    load_parameters,
    prepare_data,
)

PATHS = ("project", "recipe")
BACKENDS = ("tensorflow", "jax")
RECIPE_BACKEND = "tensorflow"  # the recipe's tf.data input and StringLookup layers
SPEEDUP_TARGET = 10.0
WHOLE_RUN_TARGET = 5.0
MAE_TOLERANCE = 0.005
logger = logging.getLogger("training_speed")


# ---------------------------------------------------------------------- configuration


def training_parameters(
    params: dict[str, Any], args: argparse.Namespace
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The project path's training parameters: conf/base's, with the recipe's epochs and batch."""
    training = copy.deepcopy(params["training"])
    overrides: dict[str, Any] = {
        "batch_size": args.batch_size,
        "epochs": args.epochs,
        "early_stopping.enabled": False,
        "verbose": 0,
    }
    for option in ("optimizer", "steps_per_execution", "learning_rate", "jit_compile"):
        if getattr(args, option, None) is not None:
            overrides[option] = getattr(args, option)
    for key, value in overrides.items():
        *parents, leaf = key.split(".")
        target = training
        for parent in parents:
            target = target.setdefault(parent, {}) or {}
        target[leaf] = value
    return training, overrides


def memory_efficient_model(model: dict[str, Any], sizes: dict[str, Any]) -> dict[str, Any]:
    """The recipe environment's memory-efficient model with explicit QR buckets and blocks."""
    model = copy.deepcopy(model)
    user = model["user_embedding"]
    user.pop("ids_per_bucket", None)
    user["num_buckets"] = sizes["num_buckets"]
    model["movie_embedding"]["blocks"]["boundaries"] = list(sizes["boundaries"])
    return model


# ------------------------------------------------------------------------------ data


def write_ratings_file(ratings: Any, path: Path) -> Path:
    """The ratings as an ml-1m ``ratings.dat`` (``::``-separated), for both whole runs.

    A ``movies.dat`` beside it names each movie, as a release's folder does (``kedro run``'s
    ingest reads the titles from there).
    """
    columns = ["user_id", "movie_id", "rating", "timestamp"]
    lines = ratings[columns].astype("int64").astype(str).agg("::".join, axis=1)
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    movies = sorted(int(movie) for movie in ratings["movie_id"].unique())
    titles = [f"{movie}::Synthetic movie {movie} (2000)::Drama" for movie in movies]
    path.with_name("movies.dat").write_text("\n".join(titles) + "\n", encoding="ascii")
    return path


# ------------------------------------------------------------------------ one run (worker)


def _pin_threads(intra: int | None, inter: int | None) -> None:
    import tensorflow as tf  # noqa: PLC0415

    if intra:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
    if inter:
        tf.config.threading.set_inter_op_parallelism_threads(inter)


def _fit_probe() -> Any:
    """A Keras callback noting the model's parameter count and the CPU time when ``fit`` ends."""
    import keras  # noqa: PLC0415

    class FitProbe(keras.callbacks.Callback):
        def on_train_begin(self, logs: dict | None = None) -> None:
            self.parameters = self.model.count_params()

        def on_train_end(self, logs: dict | None = None) -> None:
            self.cpu_end = time.process_time()

    return FitProbe()


def run_one(spec: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """Train one model on one path in this (fresh) process; return its measurements."""
    import keras  # noqa: PLC0415

    from memory_efficient_embeddings.modeling.resources import ResourceMonitor  # noqa: PLC0415

    model_name, path = spec["model"], spec["path"]
    sizes = spec["sizes"]
    cpu_start = time.process_time()
    if path == "project":
        # The pipelines' path: fit on train validating on the validation split, then the eval
        # split scored once (the probe only observes; the eval scoring falls after its CPU mark).
        probe = _fit_probe()
        record = fit_and_score_model(
            spec["model_params"],
            spec["training"],
            data,
            {"popularity_blocks": 3},
            callbacks=[probe],
        )
        parameters = probe.parameters
        epoch_seconds = record["epoch_seconds"]
        eval_mae = record["eval_mae"]
        fit_seconds = record["train_seconds"]
        peak_rss_mib = record["peak_rss_mib"]
        cpu_end = probe.cpu_end
    else:
        # Imported here only: it imports TensorFlow, which a JAX project run must not pay for.
        sys.path.insert(0, str(BENCHMARK_DIR))
        import recipe_reference as recipe  # noqa: PLC0415

        # The recipe as the recipe runs it: it validates on the eval split every epoch, and its
        # last epoch's val_mae is the eval MAE after training (no early stopping: nothing is
        # selected on it).
        keras.utils.set_random_seed(spec["seed"])
        users = data["users"]["id"].astype(str).tolist()
        movies = data["movies"]["id"].astype(str).tolist()
        if model_name == "baseline":
            model = recipe.build_recipe_baseline(users, movies, base_embedding_dim=64)
        else:
            # The vocabulary is sorted by training count: the recipe's popularity-sorted list.
            model = recipe.build_recipe_memory_efficient(
                users,
                movies,
                movies,
                base_embedding_dim=64,
                num_buckets=sizes["num_buckets"],
                boundaries=sizes["boundaries"],
            )
        parameters = model.count_params()
        with ResourceMonitor() as monitor:
            result = recipe.train_recipe(
                model,
                spec["csvs"][0],
                spec["csvs"][1],
                epochs=spec["epochs"],
                batch_size=spec["batch_size"],
                verbose=0,
            )
        cpu_end = time.process_time()
        epoch_seconds = result["epoch_seconds"]
        eval_mae = result["val_mae"]
        fit_seconds = monitor.seconds
        peak_rss_mib = monitor.as_dict()["peak_rss_mib"]
    # CPU seconds of this process (all threads) from model building to the end of training:
    # unlike wall time, barely inflated when other processes compete for the cores.
    cpu_seconds = cpu_end - cpu_start
    return {
        "model": model_name,
        "path": path,
        "parameters": int(parameters),
        "epoch_seconds": [round(s, 4) for s in epoch_seconds],
        "mean_epoch_seconds": round(sum(epoch_seconds) / len(epoch_seconds), 4),
        "later_epoch_seconds": (
            round(sum(epoch_seconds[1:]) / (len(epoch_seconds) - 1), 4)
            if len(epoch_seconds) > 1
            else None
        ),
        "fit_seconds": round(fit_seconds, 3),
        "cpu_seconds": round(cpu_seconds, 3),
        "peak_rss_mib": peak_rss_mib,
        "eval_mae": round(float(eval_mae), 5),
    }


def worker_main(spec_path: Path, out_path: Path) -> None:
    """Entry point of one benchmark subprocess (``--worker``)."""
    spec = json.loads(spec_path.read_text())
    import keras  # noqa: PLC0415 - the parent set KERAS_BACKEND for this process

    if keras.backend.backend() != spec["backend"]:
        raise RuntimeError(f"worker runs on {keras.backend.backend()}, spec says {spec['backend']}")
    if spec["backend"] == "tensorflow":
        _pin_threads(spec.get("intra_op_threads"), spec.get("inter_op_threads"))
    with open(spec["data_pickle"], "rb") as handle:
        data = pickle.load(handle)  # noqa: S301 - written by the parent process of this run
    result = run_one(spec, data) | {"backend": spec["backend"]}
    out_path.write_text(json.dumps(result), encoding="utf-8")


# ---------------------------------------------------------------------------- statistics


def spread(values: list[float]) -> dict[str, float]:
    """Median, min and max of repeated measurements."""
    return {
        "median": round(statistics.median(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
        "n": len(values),
    }


def compare_paths(recipe_runs: list[dict], project_runs: list[dict]) -> dict[str, Any]:
    """Ratio of the median epoch times (with its range) and the eval MAE gap, against targets."""
    recipe_epoch = spread([r["mean_epoch_seconds"] for r in recipe_runs])
    project_epoch = spread([r["mean_epoch_seconds"] for r in project_runs])
    ratio = recipe_epoch["median"] / project_epoch["median"]
    recipe_mae = statistics.median(r["eval_mae"] for r in recipe_runs)
    project_mae = statistics.median(r["eval_mae"] for r in project_runs)
    mae_diff = project_mae - recipe_mae
    later = None
    if all(r["later_epoch_seconds"] for r in recipe_runs + project_runs):
        later = statistics.median(r["later_epoch_seconds"] for r in recipe_runs) / (
            statistics.median(r["later_epoch_seconds"] for r in project_runs)
        )
    recipe_cpu = statistics.median(r["cpu_seconds"] for r in recipe_runs)
    project_cpu = statistics.median(r["cpu_seconds"] for r in project_runs)
    return {
        "recipe_cpu_seconds": round(recipe_cpu, 3),
        "project_cpu_seconds": round(project_cpu, 3),
        # Load-robust cross-check of the wall-time ratio (whole training, all threads).
        "cpu_ratio_of_medians": round(recipe_cpu / project_cpu, 2),
        "recipe_epoch_seconds": recipe_epoch,
        "project_epoch_seconds": project_epoch,
        "speedup_of_medians": round(ratio, 2),
        # The ratio's range across runs: slowest-recipe/fastest-project and the reverse.
        "speedup_range": [
            round(recipe_epoch["min"] / project_epoch["max"], 2),
            round(recipe_epoch["max"] / project_epoch["min"], 2),
        ],
        "speedup_later_epochs": round(later, 2) if later else None,
        "recipe_eval_mae": round(recipe_mae, 5),
        "project_eval_mae": round(project_mae, 5),
        "eval_mae_diff": round(mae_diff, 5),
        "speedup_pass": ratio >= SPEEDUP_TARGET,
        "mae_pass": mae_diff <= MAE_TOLERANCE,
        "pass": ratio >= SPEEDUP_TARGET and mae_diff <= MAE_TOLERANCE,
    }


# -------------------------------------------------------------------------- subprocesses


def run_measured(
    command: list[str], env: dict[str, str], log_path: Path, cwd: Path | None = None
) -> dict[str, Any]:
    """Run a command to completion; its wall time, exit status and peak RSS (from ``wait4``)."""
    start = time.time()
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(  # noqa: S603
            command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=cwd
        )
        _, status, usage = os.wait4(process.pid, 0)
    seconds = time.time() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    return {
        "start": start,
        "seconds": round(seconds, 3),
        "returncode": process.returncode,
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),  # Linux: KiB
    }


def child_env(threads: tuple[int | None, int | None], backend: str) -> dict[str, str]:
    env = dict(os.environ)
    env["KERAS_BACKEND"] = backend  # read once, at Keras' import in the child
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT / "src"), *filter(None, [env.get("PYTHONPATH")])]
    )
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["KEDRO_DISABLE_TELEMETRY"] = "1"
    intra, inter = threads
    # Read by TensorFlow at start-up: pins `kedro run` and the recipe's script too.
    if intra:
        env["TF_NUM_INTRAOP_THREADS"] = str(intra)
    if inter:
        env["TF_NUM_INTEROP_THREADS"] = str(inter)
    return env


def order_for(repeat: int, items: tuple[Any, ...]) -> tuple[Any, ...]:
    """Rotate which one goes first each repeat: a, b, then b, a (drifting load hits all alike)."""
    shift = repeat % len(items)
    return tuple(items[shift:]) + tuple(items[:shift])


def jobs_for(backends: list[str]) -> tuple[tuple[str, str], ...]:
    """(path, backend) of one repeat: the project on each backend, the recipe on TensorFlow."""
    return (*(("project", backend) for backend in backends), ("recipe", RECIPE_BACKEND))


def backend_comparison(runs: list[dict], backends: list[str], key: str) -> dict[str, Any]:
    """The project's medians per backend and each backend's ratio to the first (>1: faster)."""
    medians = {b: statistics.median(r[key] for r in runs if r["backend"] == b) for b in backends}
    first = backends[0]
    return {
        "median": {b: round(m, 4) for b, m in medians.items()},
        "speedup_over_" + first: {b: round(medians[first] / medians[b], 2) for b in backends[1:]},
    }


def run_epoch_comparison(
    args: argparse.Namespace, workdir: Path, threads: tuple[int | None, int | None]
) -> dict[str, Any]:
    """Per-epoch comparison: fresh subprocesses, interleaved, ``--repeats`` runs per path."""
    sys.path.insert(0, str(BENCHMARK_DIR))
    import recipe_reference as recipe  # noqa: PLC0415

    params = load_parameters("recipe")
    base = load_parameters("base")
    training, overrides = training_parameters(base, args)
    # conf/base's split (the recipe environment has no validation split: it validates on eval)
    # and the recipe's train ∪ eval vocabularies, for both paths.
    data = prepare_data(
        data_parameters(params, args), {**params, "split": base["split"]}, vocabulary_source="all"
    )
    sizes = recipe.recipe_sizes(len(data["users"]), len(data["movies"]))
    data_pickle = workdir / "data.pkl"
    with open(data_pickle, "wb") as handle:
        pickle.dump({k: v for k, v in data.items() if k != "ratings"}, handle)
    # The recipe trains on the train split and validates on the eval split, as it does.
    csvs = recipe.write_recipe_csvs(data["train"], data["eval"], workdir)
    provenance = data["provenance"]
    print(
        f"Data: {provenance['description']}; {len(data['train']):,} train / "
        f"{len(data['validation']):,} validation / {len(data['eval']):,} eval rows; "
        f"{len(data['users']):,} users, {len(data['movies']):,} movies (vocabulary source: all)"
    )
    print(f"Project path: conf/base's training section, overrides {overrides}")
    if sizes["rule"] != "recipe":
        print(
            f"The recipe's memory-efficient sizes do not fit this data; both paths use "
            f"{sizes['num_buckets']} QR buckets and movie blocks at {sizes['boundaries']}."
        )
    runs: list[dict[str, Any]] = []
    for repeat in range(args.repeats):
        for model_name in args.models:
            for path, backend in order_for(repeat, jobs_for(args.backends)):
                model_params = params[model_name]["model"]
                if model_name == "memory_efficient":
                    model_params = memory_efficient_model(model_params, sizes)
                spec = {
                    "model": model_name,
                    "path": path,
                    "backend": backend,
                    "model_params": model_params,
                    "training": training,
                    "sizes": sizes,
                    "seed": training["seed"],
                    "epochs": args.epochs,
                    "batch_size": args.batch_size,
                    "csvs": [str(c) for c in csvs],
                    "data_pickle": str(data_pickle),
                    "intra_op_threads": threads[0],
                    "inter_op_threads": threads[1],
                }
                spec_path = workdir / "spec.json"
                out_path = workdir / "result.json"
                out_path.unlink(missing_ok=True)
                spec_path.write_text(json.dumps(spec, default=str), encoding="utf-8")
                command = [sys.executable, str(Path(__file__).resolve()), "--worker"]
                command += [str(spec_path), str(out_path)]
                env = child_env(threads, backend)
                process = run_measured(command, env, workdir / "worker.log")
                if process["returncode"] != 0 or not out_path.exists():
                    log_tail = (workdir / "worker.log").read_text()[-3000:]
                    raise RuntimeError(
                        f"{path} run of {model_name} on {backend} failed:\n{log_tail}"
                    )
                result = json.loads(out_path.read_text())
                result["repeat"] = repeat
                result["process_peak_rss_mib"] = process["peak_rss_mib"]
                runs.append(result)
                print(
                    f"  repeat {repeat + 1}/{args.repeats} {model_name:<16} {path:<8} "
                    f"{backend:<10} epochs {result['epoch_seconds']} s, "
                    f"eval MAE {result['eval_mae']:.4f}",
                    flush=True,
                )
    # Per model and project backend: that backend's project runs against the recipe's runs.
    comparisons: dict[str, dict[str, Any]] = {}
    backend_comparisons: dict[str, Any] = {}
    for model_name in args.models:
        recipe_runs = [r for r in runs if r["model"] == model_name and r["path"] == "recipe"]
        project_runs = [r for r in runs if r["model"] == model_name and r["path"] == "project"]
        comparisons[model_name] = {}
        for backend in args.backends:
            by_path = {
                "recipe": recipe_runs,
                "project": [r for r in project_runs if r["backend"] == backend],
            }
            comparisons[model_name][backend] = {
                **compare_paths(by_path["recipe"], by_path["project"]),
                "parameters": {p: by_path[p][0]["parameters"] for p in PATHS},
                "peak_rss_mib": {p: spread([r["peak_rss_mib"] for r in by_path[p]]) for p in PATHS},
            }
        if len(args.backends) > 1:
            backend_comparisons[model_name] = {
                "mean_epoch_seconds": backend_comparison(
                    project_runs, args.backends, "mean_epoch_seconds"
                ),
                "cpu_seconds": backend_comparison(project_runs, args.backends, "cpu_seconds"),
                "eval_mae": {
                    b: round(
                        statistics.median(r["eval_mae"] for r in project_runs if r["backend"] == b),
                        5,
                    )
                    for b in args.backends
                },
            }
    return {
        "data": {
            "description": provenance["description"],
            "train_rows": len(data["train"]),
            "validation_rows": len(data["validation"]),
            "eval_rows": len(data["eval"]),
            "num_users": len(data["users"]),
            "num_movies": len(data["movies"]),
            "vocabulary_source": "all",
            "memory_efficient_sizes": sizes,
        },
        "settings": {
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "repeats": args.repeats,
            "recipe": {"optimizer": "adam", "learning_rate": 0.001, "steps_per_execution": 1},
            "project": {
                "overrides": overrides,
                "training": training,
                "backends": list(args.backends),
            },
        },
        "runs": runs,
        "comparisons": comparisons,
        "backend_comparisons": backend_comparisons,
    }


# ------------------------------------------------------------------------------ whole run

_LOGGING_YML = """\
version: 1
disable_existing_loggers: False
formatters:
  timed:
    format: "%(created).3f %(name)s %(levelname)s %(message)s"
handlers:
  console:
    class: logging.StreamHandler
    formatter: timed
    stream: ext://sys.stdout
loggers:
  kedro:
    level: INFO
  memory_efficient_embeddings:
    level: INFO
root:
  level: WARNING
  handlers: [console]
"""

_RUNNING = re.compile(r"^(\d+\.\d+) kedro\.pipeline\.node INFO Running node: ")
_TOOK = re.compile(r"^(\d+\.\d+) \S+hooks INFO Node (\S+) took ")
_COMPLETED = re.compile(r"^(\d+\.\d+) kedro\.runner\.\S+ INFO Completed node: (\S+)")
DATA_NODES = {
    "ingest_ratings",
    "ingest_movies",
    "prefix_ids",
    "split_ratings",
    "build_vocabularies",
}


def node_category(name: str) -> str:
    """Which part of a run a node belongs to: data, training or evaluation and reports."""
    short = name.rsplit(".", 1)[-1]
    if short in DATA_NODES:
        return "data"
    # Node names as `kedro run` logs them (the modeling pipeline's training nodes), not calls.
    # select_layout fits every candidate layout; fit_and_score fits (and scores) the uniform table.
    if short in ("assign_blocks", "build_model", "train_model", "select_layout", "fit_and_score"):
        return "training"
    return "evaluation_and_reports"


def time_breakdown(log_text: str, start: float, end: float) -> dict[str, float]:
    """Where a ``kedro run``'s wall time went, from its timestamped node logs.

    start-up: process start to the first node (imports, TensorFlow, config, catalog); per node
    category, the node's own time (node hook); saving: from a node's end to its completion (the
    catalog writing its outputs); loading: from a completion to the next node's start; shutdown:
    the last completion to process exit.
    """
    seconds = {
        "startup": 0.0,
        "data": 0.0,
        "training": 0.0,
        "evaluation_and_reports": 0.0,
        "saving": 0.0,
        "loading": 0.0,
        "shutdown": 0.0,
    }
    first_start = last_completed = None
    node_start = node_end = None
    for line in log_text.splitlines():
        if match := _RUNNING.match(line):
            node_start = float(match.group(1))
            if first_start is None:
                first_start = node_start
            elif last_completed is not None:
                seconds["loading"] += node_start - last_completed
        elif (match := _TOOK.match(line)) and node_start is not None:
            node_end = float(match.group(1))
            seconds[node_category(match.group(2))] += node_end - node_start
        elif (match := _COMPLETED.match(line)) and node_end is not None:
            last_completed = float(match.group(1))
            seconds["saving"] += last_completed - node_end
    if first_start is None or last_completed is None:
        raise ValueError("No node timings found in the kedro run's log.")
    seconds["startup"] = first_start - start
    seconds["shutdown"] = end - last_completed
    return {k: round(v, 2) for k, v in seconds.items()}


def project_copy(directory: Path) -> Path:
    """A copy of the project (conf without local, src, pyproject) for ``kedro run``."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(REPO_ROOT / "src", directory / "src", ignore=ignore)
    shutil.copytree(REPO_ROOT / "conf", directory / "conf", ignore=shutil.ignore_patterns("local"))
    (directory / "conf" / "local").mkdir()
    shutil.copy(REPO_ROOT / "pyproject.toml", directory / "pyproject.toml")
    (directory / "data").mkdir()
    return directory


def run_whole_comparison(
    args: argparse.Namespace, workdir: Path, threads: tuple[int | None, int | None]
) -> dict[str, Any]:
    """``kedro run`` against the recipe's whole script on the same ratings file, interleaved."""
    params = load_parameters("base")
    data = data_parameters(params, args)
    if args.archive:
        ratings_path = Path(args.archive)
        kedro_data = {"dataset": args.dataset, "path": str(ratings_path)}
        kedro_data["verify_checksum"] = str(not args.no_verify_checksum).lower()
    else:  # the synthetic ratings, written once as a ratings.dat both sides read
        from memory_efficient_embeddings.pipelines.data_processing import (  # noqa: PLC0415
            nodes as data_nodes,
        )

        ratings, _ = data_nodes.ingest_ratings(data)
        ratings_path = write_ratings_file(ratings, workdir / "ratings.dat")
        kedro_data = {"dataset": args.dataset, "path": str(ratings_path)}
    kedro_data["source"] = "movielens"
    kedro_params = ",".join(f"data.{k}={v}" for k, v in kedro_data.items())
    project = project_copy(workdir / "project")
    (workdir / "logging.yml").write_text(_LOGGING_YML, encoding="utf-8")

    def env_for(backend: str) -> dict[str, str]:
        env = child_env(threads, backend)
        env["KEDRO_LOGGING_CONFIG"] = str(workdir / "logging.yml")
        env["PYTHONPATH"] = os.pathsep.join([str(project / "src"), env["PYTHONPATH"]])
        return env

    kedro = Path(sys.executable).with_name("kedro")
    commands = {
        "project": [str(kedro), "run", "--params", kedro_params],
        "recipe": [
            sys.executable,
            str(BENCHMARK_DIR / "recipe_reference.py"),
            "--ratings",
            str(ratings_path),
            "--epochs",
            str(args.epochs),
            "--batch-size",
            str(args.batch_size),
            "--seed",
            str(params["split"]["seed"]),
        ],
    }
    print(f"Whole runs on {ratings_path}: `kedro run --params {kedro_params}` vs the recipe script")
    runs: list[dict[str, Any]] = []
    for repeat in range(args.repeats):
        for path, backend in order_for(repeat, jobs_for(args.backends)):
            label = whole_run_label(path, backend)
            cwd_log = workdir / f"{label}_{repeat}.log"
            cwd = project if path == "project" else workdir
            result = run_measured(commands[path], env_for(backend), cwd_log, cwd)
            if result["returncode"] != 0:
                raise RuntimeError(f"whole {label} run failed:\n{cwd_log.read_text()[-3000:]}")
            run = {"path": path, "backend": backend, "repeat": repeat, **result}
            del run["start"]
            if path == "project":
                run["breakdown_seconds"] = time_breakdown(
                    cwd_log.read_text(), result["start"], result["start"] + result["seconds"]
                )
            runs.append(run)
            print(
                f"  repeat {repeat + 1}/{args.repeats} {label:<18} {result['seconds']:.1f} s, "
                f"peak RSS {result['peak_rss_mib']:.0f} MiB",
                flush=True,
            )
            shutil.rmtree(project / "data", ignore_errors=True)
            (project / "data").mkdir()
    labels = [whole_run_label(path, backend) for path, backend in jobs_for(args.backends)]

    def of(label: str) -> list[dict[str, Any]]:
        return [r for r in runs if whole_run_label(r["path"], r["backend"]) == label]

    seconds = {label: spread([r["seconds"] for r in of(label)]) for label in labels}
    rss = {label: spread([r["peak_rss_mib"] for r in of(label)]) for label in labels}
    by_backend = {}
    for backend in args.backends:
        label = whole_run_label("project", backend)
        breakdowns = [r["breakdown_seconds"] for r in of(label)]
        speedup = seconds["recipe"]["median"] / seconds[label]["median"]
        by_backend[backend] = {
            "speedup_of_medians": round(speedup, 2),
            "speedup_pass": speedup >= WHOLE_RUN_TARGET,
            "rss_pass": rss[label]["median"] <= rss["recipe"]["median"],
            "project_breakdown_median_seconds": {
                key: round(statistics.median(b[key] for b in breakdowns), 2)
                for key in breakdowns[0]
            },
        }
    return {
        "ratings": str(ratings_path),
        "commands": {p: " ".join(c) for p, c in commands.items()},
        "runs": runs,
        "seconds": seconds,
        "peak_rss_mib": rss,
        "by_backend": by_backend,
    }


def whole_run_label(path: str, backend: str) -> str:
    """``recipe``, or ``project_<backend>``: one label per kind of whole run."""
    return path if path == "recipe" else f"project_{backend}"


# ----------------------------------------------------------------------------- output


def _fmt(s: dict[str, float], unit: str = "s") -> str:
    return f"{s['median']:.2f} {unit} [{s['min']:.2f}-{s['max']:.2f}]"


def format_report(result: dict[str, Any]) -> str:
    """The human-readable summary printed at the end."""
    lines = []
    epochs = result.get("epochs")
    if epochs:
        lines += [
            f"Per epoch, median [min-max] of {epochs['settings']['repeats']} interleaved runs per "
            f"path, {epochs['settings']['epochs']} epochs, batch {epochs['settings']['batch_size']}"
            f" (the recipe on {RECIPE_BACKEND})",
            f"{'model':<17} {'backend':<11} {'recipe epoch':>22} {'project epoch':>22} "
            f"{'speed-up':>16} {'eval MAE recipe / project':>26}",
        ]
        comparisons = [
            (model_name, backend, c)
            for model_name, by_backend in epochs["comparisons"].items()
            for backend, c in by_backend.items()
        ]
        for model_name, backend, c in comparisons:
            lo, hi = c["speedup_range"]
            lines.append(
                f"{model_name:<17} {backend:<11} {_fmt(c['recipe_epoch_seconds']):>22} "
                f"{_fmt(c['project_epoch_seconds']):>22} "
                f"{c['speedup_of_medians']:>6.2f}x [{lo:.1f}-{hi:.1f}] "
                f"{c['recipe_eval_mae']:>13.4f} / {c['project_eval_mae']:.4f}"
            )
        for model_name, backend, c in comparisons:
            lines.append(
                f"{model_name} ({backend}): training CPU seconds (all threads), median recipe "
                f"{c['recipe_cpu_seconds']:.1f} / project {c['project_cpu_seconds']:.1f} = "
                f"{c['cpu_ratio_of_medians']:.2f}x (less sensitive to load than wall time)"
            )
        for model_name, backend, c in comparisons:
            lines.append(
                f"{model_name} ({backend}): {c['speedup_of_medians']:.2f}x "
                f"[{'PASS' if c['speedup_pass'] else 'FAIL'} >= {SPEEDUP_TARGET:g}x]; "
                f"eval MAE project - recipe {c['eval_mae_diff']:+.4f} "
                f"[{'PASS' if c['mae_pass'] else 'FAIL'} <= {MAE_TOLERANCE}]"
            )
        for model_name, b in epochs.get("backend_comparisons", {}).items():
            first = next(iter(b["eval_mae"]))
            for backend, ratio in b["mean_epoch_seconds"][f"speedup_over_{first}"].items():
                lines.append(
                    f"{model_name}: project epoch on {backend} vs {first}: {ratio:.2f}x faster "
                    f"(median epoch {b['mean_epoch_seconds']['median'][backend]:.3f} s against "
                    f"{b['mean_epoch_seconds']['median'][first]:.3f} s; CPU "
                    f"{b['cpu_seconds'][f'speedup_over_{first}'][backend]:.2f}x); eval MAE "
                    f"{b['eval_mae'][backend]:.4f} against {b['eval_mae'][first]:.4f}"
                )
    whole = result.get("whole_run")
    if whole:
        lines += [
            "",
            f"Whole run, median [min-max] of {whole['seconds']['recipe']['n']} interleaved runs",
        ]
        for label, seconds in whole["seconds"].items():
            name = "recipe script" if label == "recipe" else f"kedro run ({label[8:]})"
            lines.append(
                f"  {name + ':':<24}{_fmt(seconds)}, peak RSS {_fmt(whole['peak_rss_mib'][label], 'MiB')}"
            )
        for backend, b in whole["by_backend"].items():
            lines += [
                f"  {backend}: speed-up {b['speedup_of_medians']:.2f}x "
                f"[{'PASS' if b['speedup_pass'] else 'FAIL'} >= {WHOLE_RUN_TARGET:g}x]; "
                f"peak RSS [{'PASS' if b['rss_pass'] else 'FAIL'} <= recipe's]",
                f"  {backend}: kedro run time (median s): "
                + ", ".join(
                    f"{k} {v:.1f}" for k, v in b["project_breakdown_median_seconds"].items()
                ),
            ]
    machine = result["machine"]
    lines += [
        "",
        f"Machine: {machine['cpu_count']} CPUs, threads {machine['threads']}, load average "
        f"{machine['load_average_start']} at start, {machine['load_average_end']} at end "
        "(other processes inflate timings; compare only ratios of interleaved runs).",
    ]
    return "\n".join(lines)


def machine_info(threads: tuple[int | None, int | None]) -> dict[str, Any]:
    """Versions from package metadata: no backend is imported here."""

    def version(package: str) -> str | None:
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            return None

    return {
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)),
        "threads": {"intra_op": threads[0], "inter_op": threads[1]},
        "platform": platform.platform(),
        "python": platform.python_version(),
        **{package: version(package) for package in ("tensorflow", "jax", "keras", "numpy")},
    }


# ------------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Compare the keras-io recipe with the project: per epoch and whole runs."
    )
    parser.add_argument("--archive", type=Path, help="MovieLens zip, extracted folder or file")
    parser.add_argument("--dataset", default="ml-1m", help="MovieLens release (default ml-1m)")
    parser.add_argument("--no-verify-checksum", action="store_true")
    parser.add_argument("--mode", choices=("all", "epochs", "whole-run"), default="all")
    parser.add_argument("--repeats", type=int, default=3, help="runs per path (default 3)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--models", nargs="+", choices=MODEL_NAMES, default=list(MODEL_NAMES))
    parser.add_argument("--threads", type=int, help="TF intra-op (and inter-op) threads")
    parser.add_argument(
        "--inter-op-threads", type=int, help="TF inter-op threads (default: --threads)"
    )
    parser.add_argument("--optimizer", help="project path; default: conf/base's")
    parser.add_argument("--steps-per-execution", type=int, help="project path; default conf/base's")
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=0.001,
        help="project path; default the recipe's 0.001 (conf/base's regime uses larger batches)",
    )
    parser.add_argument("--num-ratings", type=int, help="synthetic size override (quick runs)")
    add_backend_argument(parser)
    parser.add_argument("--json-out", type=Path)
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    check_backends(parser, args.backends)
    if args.archive is not None:
        # The whole-run mode runs `kedro run` from a scratch project folder.
        args.archive = args.archive.resolve()
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    if argv is None and len(sys.argv) == 4 and sys.argv[1] == "--worker":
        worker_main(Path(sys.argv[2]), Path(sys.argv[3]))
        return {}
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    threads = (args.threads, args.inter_op_threads or args.threads)
    load_start = [round(x, 2) for x in os.getloadavg()]
    result: dict[str, Any] = {
        "command": " ".join(
            [Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]
        ),
        "targets": {
            "epoch_speedup_min": SPEEDUP_TARGET,
            "eval_mae_diff_max": MAE_TOLERANCE,
            "whole_run_speedup_min": WHOLE_RUN_TARGET,
        },
    }
    with tempfile.TemporaryDirectory(prefix="training_speed_") as tmp:
        if args.mode in ("all", "epochs"):
            result["epochs"] = run_epoch_comparison(args, Path(tmp), threads)
        if args.mode in ("all", "whole-run"):
            result["whole_run"] = run_whole_comparison(args, Path(tmp), threads)
    result["machine"] = {
        **machine_info(threads),
        "load_average_start": load_start,
        "load_average_end": [round(x, 2) for x in os.getloadavg()],
    }
    result["timestamp"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    passes = [
        c["pass"]
        for by_backend in result.get("epochs", {}).get("comparisons", {}).values()
        for c in by_backend.values()
    ]
    for b in result.get("whole_run", {}).get("by_backend", {}).values():
        passes += [b["speedup_pass"], b["rss_pass"]]
    result["all_pass"] = bool(passes) and all(passes)
    print()
    print(format_report(result))
    if args.json_out:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
        print(f"JSON: {args.json_out}")
    return result


if __name__ == "__main__":
    main()
