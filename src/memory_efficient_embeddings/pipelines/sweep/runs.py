"""The sweep's runs: every point trained once per seed, scored in float32 and quantized, each
finished run checkpointed so that a killed sweep resumes."""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import os
import warnings
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from memory_efficient_embeddings.embeddings import (
    embedding_bytes,
    embedding_parameter_count,
    serving_bytes,
    training_bytes,
)
from memory_efficient_embeddings.embeddings.mlet import fold_if_smaller
from memory_efficient_embeddings.modeling.grid import deep_merge, quantize_modes
from memory_efficient_embeddings.modeling.nodes import build_model
from memory_efficient_embeddings.modeling.training import (
    error_metrics,
    fit_rating_model,
    model_inputs,
    score,
    uncompiled_copy,
)
from memory_efficient_embeddings.pipelines.sweep.executors import (
    TaskOutcome,
    run_tasks,
    validate_executor,
)
from memory_efficient_embeddings.pipelines.sweep.summary import format_bytes
from memory_efficient_embeddings.tracking import log_sweep_run

logger = logging.getLogger(__name__)

# Bumped when a run's row gains or loses columns, so that checkpoints of the old form are retrained.
ROW_FORMAT = 2


def _scores(
    model: keras.Model, inputs: dict[str, np.ndarray], targets: np.ndarray, batch_size: int
) -> dict[str, float]:
    predictions = score(model, inputs["user_id"], inputs["movie_id"], batch_size)
    return error_metrics(predictions, targets)


def _worth_quantizing(layer: keras.layers.Layer) -> bool:
    # A bias table (width 1) would hold an int8 value plus a float32 scale per row: 5 bytes
    # instead of 4. Keep it in float32.
    return not (isinstance(layer, keras.layers.Embedding) and layer.output_dim == 1)


def quantization_config(mode: str) -> Any:
    """Keras' config for a sweep mode: int4 with one scale per row, like int8's layout.

    Keras' own int4 default groups 128 columns with an int8 zero point per group and a float32
    column-to-group map per table: a byte more per row, and more than int8 for narrow tables.
    One symmetric scale per row keeps int4 at ``ceil(d/2) + 4`` bytes a row against int8's
    ``d + 4``.
    """
    if mode == "int4":
        return keras.quantizers.Int4QuantizationConfig(block_size=-1)
    return keras.quantizers.Int8QuantizationConfig()


def _quantized(model: keras.Model, mode: str) -> keras.Model:
    quantized = uncompiled_copy(model)
    with warnings.catch_warnings():
        # Layers without weights (inputs, the score) warn that there is nothing to quantize; CCE,
        # TT-Rec and ROBE layers that they cannot be (they stay float32 and count so).
        warnings.filterwarnings("ignore", message=".*does not have a `quantize` method.*")
        warnings.filterwarnings("ignore", message=".*not quantizable.*")
        warnings.filterwarnings("ignore", message=".*cannot be quantized.*")
        quantized.quantize(config=quantization_config(mode), filters=_worth_quantizing)
    return quantized


def train_sweep_point(
    data: dict[str, Any],
    point: dict[str, Any],
    embedding_plan: dict[str, Any],
    seed: int,
    training: dict[str, Any],
    quantize: str | list[str] | None,
) -> dict[str, Any]:
    """Build, train and score one point with one seed: one sweep task, one run row.

    Sizes are bytes of the embedding layers' variables as stored: ``training_bytes`` the trained
    model with its optimizer's slots; ``serving_bytes`` the model served in float32 (a projected
    table folded into a plain one where that is smaller: MLET); ``serving_bytes_<mode>`` that
    model after post-training quantization. ``data`` holds what every task reads (the encoded
    train and eval arrays); all inputs are explicit and picklable, so any executor can run this
    on any worker.
    """
    keras.backend.clear_session()  # keeps graphs and names from piling up over many models
    eval_inputs = data["eval"][0]
    eval_targets = data["eval"][1].astype(np.float64)
    eval_batch_size = training.get("validation_batch_size", 8192)
    model = build_model(embedding_plan, {**point["model"], "seed": seed})
    report = fit_rating_model(model, data["train"], data["eval"], {**training, "seed": seed})
    scores = _scores(model, eval_inputs, eval_targets, eval_batch_size)
    served = fold_if_smaller(model)
    row = {
        "embedding_parameters": embedding_parameter_count(model),
        "embedding_bytes_float32": embedding_bytes(model),
        "serving_bytes": serving_bytes(served),
        "training_bytes": training_bytes(model, model.optimizer),
        "val_rmse": scores["rmse"],
        "val_mae": scores["mae"],
        "epochs_run": report["epochs_run"],
        "best_epoch": report["best_epoch"],
        "train_seconds": report["train_seconds"],
    }
    for mode in quantize_modes(quantize):
        quantized = _quantized(served, mode)
        quantized_scores = _scores(quantized, eval_inputs, eval_targets, eval_batch_size)
        row |= {
            f"serving_bytes_{mode}": serving_bytes(quantized),
            f"val_rmse_{mode}": quantized_scores["rmse"],
            f"val_mae_{mode}": quantized_scores["mae"],
        }
    return row


def data_fingerprint(data: dict[str, Any]) -> str:
    """A digest of the encoded train and eval arrays: a checkpoint is only reused on the same data."""
    digest = hashlib.sha256()
    for split in ("train", "eval"):
        inputs, targets = data[split]
        for name in sorted(inputs):
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(inputs[name]).tobytes())
        digest.update(np.ascontiguousarray(targets).tobytes())
    return digest.hexdigest()


class SweepCheckpoints:
    """One JSON file per finished (point, seed) run, so that a killed sweep resumes.

    A run's file is named by a digest of everything that decides its result (the point's
    model, its embedding plan, the seed, the training regime, quantization and the data), so a
    re-run with another plan, regime or data never reuses a stale result. Files are written
    whole (a temporary file, then a rename) as each run finishes.
    """

    def __init__(self, folder: str | Path, data_digest: str) -> None:
        self.folder = Path(folder)
        self.data_digest = data_digest

    def key(
        self,
        point: dict[str, Any],
        plan: dict[str, Any],
        seed: int,
        training: dict[str, Any],
        quantize: list[str],
    ) -> str:
        """The digest naming one run's checkpoint."""
        identity = [point["model"], plan, seed, training, quantize, self.data_digest, ROW_FORMAT]
        text = json.dumps(identity, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def load(self, key: str) -> dict[str, Any] | None:
        """The finished run's row values, or None."""
        path = self.folder / f"{key}.json"
        try:
            return json.loads(path.read_text())
        except (FileNotFoundError, ValueError):  # absent, or unreadable: train it again
            return None

    def save(self, key: str, row: dict[str, Any]) -> None:
        """Record one finished run."""
        self.folder.mkdir(parents=True, exist_ok=True)
        temporary = self.folder / f".{key}.json.tmp"
        temporary.write_text(json.dumps(row, default=float))
        os.replace(temporary, self.folder / f"{key}.json")


def _log_run(index: int, total: int, row: dict[str, Any], modes: list[str]) -> None:
    quantized = "".join(f", {mode} {row.get(f'val_rmse_{mode}', math.nan):.4f}" for mode in modes)
    logger.info(
        "Sweep run %d/%d %s seed %s: val RMSE %.4f%s, %s embedding parameters, serving %s, "
        "training %s, %d epochs in %.1f s",
        index,
        total,
        row["point"],
        row["seed"],
        row["val_rmse"],
        quantized,
        f"{row['embedding_parameters']:,}",
        format_bytes(row["serving_bytes"]),
        format_bytes(row["training_bytes"]),
        row["epochs_run"],
        row["train_seconds"],
    )


def _runs_to_train(
    runs: list[tuple[dict[str, Any], int]],
    rows: list[dict[str, Any]],
    embedding_plans: dict[str, dict[str, Any]],
    training: dict[str, Any],
    quantize: list[str],
    checkpoints: SweepCheckpoints | None,
) -> tuple[list[int], dict[int, str]]:
    """Fill in the rows finished earlier (checkpoints); the indices still to train, their keys."""
    keys: dict[int, str] = {}
    to_train = []
    for index, (point, seed) in enumerate(runs):
        if "skipped" in rows[index]:
            continue
        if checkpoints is not None:
            keys[index] = checkpoints.key(
                point, embedding_plans[point["point"]], seed, training, quantize
            )
            finished_earlier = checkpoints.load(keys[index])
            if finished_earlier is not None:
                rows[index].update(finished_earlier)
                continue
        to_train.append(index)
    return to_train, keys


def run_sweep(
    plan: list[dict[str, Any]],
    embedding_plans: dict[str, dict[str, Any]],
    train_ratings: pd.DataFrame,
    eval_ratings: pd.DataFrame,
    user_vocabulary: pd.DataFrame,
    movie_vocabulary: pd.DataFrame,
    training: dict[str, Any],
    sweep: dict[str, Any],
) -> pd.DataFrame:
    """Train and evaluate every point once per seed, in float32 and after each quantization."""
    training = deep_merge(training, sweep["training"])
    executor = validate_executor(sweep.get("executor"))
    data = {
        "train": (
            model_inputs(train_ratings, user_vocabulary, movie_vocabulary),
            train_ratings["rating"].to_numpy(np.float32),
        ),
        "eval": (
            model_inputs(eval_ratings, user_vocabulary, movie_vocabulary),
            eval_ratings["rating"].to_numpy(np.float32),
        ),
    }
    quantize = quantize_modes(sweep.get("quantize"))
    runs = list(itertools.product(plan, sweep["seeds"]))
    rows = [
        {"point": point["point"], "technique": point["technique"]}
        | {"settings": point["settings"], "seed": seed}
        | ({"tuning_group": point["tuning_group"]} if "tuning_group" in point else {})
        for point, seed in runs
    ]
    for row in rows:  # points whose blocks do not fit this data (see assign_sweep_blocks)
        if "skipped" in embedding_plans[row["point"]]:
            row["skipped"] = embedding_plans[row["point"]]["skipped"]
    checkpoints = (
        SweepCheckpoints(sweep["checkpoint_dir"], data_fingerprint(data))
        if sweep.get("resume", True) and sweep.get("checkpoint_dir")
        else None
    )
    to_train, keys = _runs_to_train(runs, rows, embedding_plans, training, quantize, checkpoints)
    reused = len(rows) - len(to_train) - sum("skipped" in row for row in rows)
    if reused:
        logger.info(
            "Sweep: %d of %d runs finished earlier with this plan, regime and data; reusing them "
            "(from %s; sweep.resume: false trains every run again)",
            reused,
            reused + len(to_train),
            sweep["checkpoint_dir"],
        )
    finished = 0

    def log_outcome(task_index: int, outcome: TaskOutcome) -> None:
        nonlocal finished
        finished += 1
        if not outcome.failed:
            row = rows[to_train[task_index]] | outcome.value
            _log_run(finished, len(to_train), row, quantize)
            log_sweep_run(row)  # a nested MLflow run, when tracking is on
            if checkpoints is not None:  # as it finishes: a killed sweep keeps it
                checkpoints.save(keys[to_train[task_index]], outcome.value)

    outcomes = run_tasks(
        train_sweep_point,
        data,
        [
            (point, embedding_plans[point["point"]], seed, training, quantize)
            for point, seed in (runs[index] for index in to_train)
        ],
        [f"{rows[index]['point']} seed {rows[index]['seed']}" for index in to_train],
        executor,
        log_outcome,
    )
    for index, outcome in zip(to_train, outcomes, strict=True):
        if outcome.failed:
            rows[index]["failed"] = outcome.error
        else:
            rows[index] |= outcome.value
    failures = [outcome for outcome in outcomes if outcome.failed]
    if failures:
        logger.error(
            "Sweep: %d of %d runs failed (kept in sweep_runs, left out of the summary): %s",
            len(failures),
            len(outcomes),
            "; ".join(f"{outcome.label}: {outcome.error}" for outcome in failures),
        )
    return pd.DataFrame(rows)
