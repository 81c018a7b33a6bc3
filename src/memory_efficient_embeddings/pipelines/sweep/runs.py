"""The sweep's runs: every point trained once per seed, scored in float32 and quantized, each
finished run checkpointed so that a killed sweep resumes."""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import math
import os
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from memory_efficient_embeddings.modeling.grid import deep_merge, quantize_modes
from memory_efficient_embeddings.modeling.nodes import build_model
from memory_efficient_embeddings.modeling.training import encode_split, fit_and_score
from memory_efficient_embeddings.parameters import ParameterError
from memory_efficient_embeddings.pipelines.sweep.executors import (
    TaskOutcome,
    run_tasks,
    validate_executor,
)
from memory_efficient_embeddings.pipelines.sweep.summary import format_bytes
from memory_efficient_embeddings.tracking import log_sweep_run, one_line

logger = logging.getLogger(__name__)

# Bumped when a run's row gains or loses columns or changes meaning, or the checkpoint layout
# changes, so that checkpoints of the old form are retrained (3: val_* is the validation split,
# eval_* the eval split; 4: a checkpoint holds its run's identity beside the row).
ROW_FORMAT = 4
# The training keys that cannot change a run's result, left out of its checkpoint key so that
# changing them still reuses finished runs: how much Keras logs and how many steps run per
# compiled call (conf/base: "does not change the maths"). `deterministic` stays in the key, and
# so does `validation_batch_size`: other batches sum the validation RMSE in another order, which
# can move its last bits and with them early stopping's choice.
TRAINING_KEYS_NOT_IN_RESULT = ("verbose", "steps_per_execution")
SPLITS = ("train", "validation", "eval")
# The fit-and-score record's fields that make a run's row (history and timings stay out).
ROW_FIELDS = (
    "embedding_parameters",
    "embedding_bytes_float32",
    "serving_bytes",
    "training_bytes",
    "val_rmse",
    "val_mae",
    "eval_rmse",
    "eval_mae",
    "epochs_run",
    "best_epoch",
    "train_seconds",
)


def quantized_fields(modes: list[str]) -> list[str]:
    """The row's fields of each quantization mode."""
    return [
        f"{field}_{mode}" for mode in modes for field in ("serving_bytes", "eval_rmse", "eval_mae")
    ]


def train_sweep_point(
    data: dict[str, Any],
    point: dict[str, Any],
    embedding_plan: dict[str, Any],
    seed: int,
    training: dict[str, Any],
    quantize: str | list[str] | None,
) -> dict[str, Any]:
    """Build, fit (selecting on validation) and score on eval one point with one seed.

    One sweep task, one run row, through the project's one fit-and-score path. ``data`` holds
    what every task reads (the encoded train, validation and eval splits); all inputs are
    explicit and picklable, so any executor can run this on any worker.
    """
    keras.backend.clear_session()  # keeps graphs and names from piling up over many models
    modes = quantize_modes(quantize)
    model = build_model(embedding_plan, {**point["model"], "seed": seed})
    record = fit_and_score(model, data, {**training, "seed": seed}, quantize=modes)
    return {field: record[field] for field in (*ROW_FIELDS, *quantized_fields(modes))}


def data_fingerprint(data: dict[str, Any]) -> str:
    """A digest of the encoded splits: a checkpoint is only reused on the same data."""
    digest = hashlib.sha256()
    for split in SPLITS:
        inputs, targets = data[split].inputs, data[split].targets
        for name in sorted(inputs):
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(inputs[name]).tobytes())
        digest.update(np.ascontiguousarray(targets).tobytes())
    return digest.hexdigest()


class SweepCheckpoints:
    """One JSON file per finished (point, seed) run, so that a killed sweep resumes.

    A run's file is named by a digest of everything that decides its result (the point's
    model, its embedding plan, the seed, the training regime less
    ``TRAINING_KEYS_NOT_IN_RESULT``, quantization and the data), so a re-run with another plan,
    regime or data never reuses a stale result. A file holds its run's identity (the whole
    digest, the point, the seed, ``ROW_FORMAT``) beside the row, and is reused only if that
    identity is this run's and the row has exactly the expected fields, each a finite number;
    any other file is named in a warning and its run trained again. Files are written whole (a
    temporary file, then a rename) as each run finishes.
    """

    def __init__(self, folder: str | Path, data_digest: str) -> None:
        self.folder = Path(folder)
        self.data_digest = data_digest

    def identity(
        self,
        point: dict[str, Any],
        plan: dict[str, Any],
        seed: int,
        training: dict[str, Any],
        quantize: list[str],
    ) -> dict[str, Any]:
        """One run's identity: the digest of its inputs, its point, seed and row format."""
        regime = {
            name: value
            for name, value in training.items()
            if name not in TRAINING_KEYS_NOT_IN_RESULT
        }
        inputs = [point["model"], plan, seed, regime, quantize, self.data_digest, ROW_FORMAT]
        text = json.dumps(inputs, sort_keys=True, default=str)
        return {
            "inputs_digest": hashlib.sha256(text.encode()).hexdigest(),
            "point": point["point"],
            "seed": seed,
            "row_format": ROW_FORMAT,
        }

    def path(self, identity: dict[str, Any]) -> Path:
        """The file of one run's checkpoint, named by its digest."""
        return self.folder / f"{identity['inputs_digest'][:32]}.json"

    def files(self) -> list[Path]:
        """The checkpoint files in the folder (of any run)."""
        return sorted(self.folder.glob("*.json")) if self.folder.is_dir() else []

    def load(self, identity: dict[str, Any], fields: list[str]) -> dict[str, Any] | None:
        """The finished run's row values, or None (absent, or not this run's valid row)."""
        path = self.path(identity)
        try:
            content = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:  # torn or unreadable
            return self._reject(path, f"not readable JSON ({error})")
        problem = _checkpoint_problem(content, identity, fields)
        if problem is not None:
            return self._reject(path, problem)
        return content["row"]

    @staticmethod
    def _reject(path: Path, reason: str) -> None:
        logger.warning(
            "Sweep: checkpoint %s is not reused: %s; training that run again (its file is "
            "overwritten when it finishes)",
            path,
            reason,
        )

    def save(self, identity: dict[str, Any], row: dict[str, Any]) -> None:
        """Record one finished run."""
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.path(identity)
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(json.dumps({"identity": identity, "row": row}, default=float))
        os.replace(temporary, path)


def _checkpoint_problem(content: Any, identity: dict[str, Any], fields: list[str]) -> str | None:
    """Why a checkpoint's content is not this run's valid row; None when it is."""
    if not isinstance(content, dict):
        return f"not a JSON object (a JSON {type(content).__name__})"
    if "identity" not in content:
        return "no run identity (an older checkpoint layout, or not a checkpoint)"
    if content["identity"] != identity:
        return f"another run's checkpoint (its identity: {content['identity']!r})"
    return _row_problem(content.get("row"), fields)


def _row_problem(row: Any, fields: list[str]) -> str | None:
    """Why a checkpoint's row is not exactly ``fields``, each a finite number; None when it is."""
    if not isinstance(row, dict):
        return "its row is not a JSON object"
    missing = [field for field in fields if field not in row]
    if missing:
        return f"missing fields: {', '.join(missing)}"
    unexpected = sorted(set(row) - set(fields))
    if unexpected:
        return f"unexpected fields: {', '.join(unexpected)}"
    for field in fields:
        value = row[field]
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"field {field} is not a number ({value!r})"
        if not math.isfinite(value):
            return f"field {field} is not finite ({value!r})"
    return None


def check_checkpoint_dir(folder: str) -> None:
    """Refuse, before any training, a checkpoint folder that cannot be created or written."""
    path = Path(folder)
    probe = path / f".write-probe-{os.getpid()}"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe.write_text("")
        probe.unlink()
    except OSError as error:
        raise ParameterError(
            f"`sweep.checkpoint_dir` is {folder!r}, where the sweep cannot write its checkpoints "
            f"({type(error).__name__}: {error.strerror or error}). Point it at a folder you can "
            "write, or set it to null to sweep without checkpoints (a killed sweep then starts "
            "over)."
        ) from error


class RunBookkeeping:
    """What is written as each run finishes: its checkpoint first, then its MLflow run.

    Neither failing stops the sweep or loses the run, whose row stays in memory for sweep_runs:
    a checkpoint that cannot be written is tried again after every later run and at the end
    (then reported); MLflow logging is best effort (a failure is a warning). The checkpoint goes
    first so that a run whose MLflow logging hangs or is killed is kept.
    """

    def __init__(self, checkpoints: SweepCheckpoints | None) -> None:
        self.checkpoints = checkpoints
        # label -> (identity, row values) of the finished runs whose checkpoint is not written
        self.unwritten: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        self.checkpoint_error: str | None = None
        self.untracked: list[str] = []

    def finished(
        self,
        label: str,
        identity: dict[str, Any] | None,
        values: dict[str, Any],
        row: dict[str, Any],
    ) -> None:
        """Record one finished run: checkpoint, then MLflow."""
        if identity is not None:
            self.unwritten[label] = (identity, values)
            self.write_checkpoints()
        try:
            log_sweep_run(row)  # a nested MLflow run, when tracking is on
        except Exception as error:  # noqa: BLE001 - the store's own error, reported
            if not self.untracked:
                logger.warning(
                    "Sweep: MLflow could not log run %s (%s); the sweep goes on (its rows and "
                    "checkpoints do not depend on MLflow)",
                    label,
                    one_line(error),
                )
            self.untracked.append(label)

    def write_checkpoints(self) -> None:
        """Write the checkpoints not written yet, in order; stop at the first failure."""
        if self.checkpoints is None:
            return
        for label, (identity, values) in list(self.unwritten.items()):
            try:
                self.checkpoints.save(identity, values)
            except OSError as error:
                if self.checkpoint_error is None:
                    logger.warning(
                        "Sweep: could not write the checkpoint of %s to %s (%s: %s); the run is "
                        "kept (its row goes to sweep_runs), and its checkpoint is written again "
                        "after the next run",
                        label,
                        self.checkpoints.folder,
                        type(error).__name__,
                        error.strerror or error,
                    )
                self.checkpoint_error = f"{type(error).__name__}: {error.strerror or error}"
                return
            del self.unwritten[label]
        if self.checkpoint_error is not None:
            logger.info("Sweep: checkpoints are written again to %s", self.checkpoints.folder)
            self.checkpoint_error = None

    def report(self) -> None:
        """Try the unwritten checkpoints once more; name what is left unwritten or untracked."""
        self.write_checkpoints()
        if self.unwritten and self.checkpoints is not None:
            logger.warning(
                "Sweep: %d finished run(s) have no checkpoint in %s (%s): %s. Their rows are in "
                "sweep_runs; resuming this sweep would train them again.",
                len(self.unwritten),
                self.checkpoints.folder,
                self.checkpoint_error,
                "; ".join(self.unwritten),
            )
        if self.untracked:
            logger.warning(
                "Sweep: %d run(s) were not logged to MLflow: %s. Their rows are in sweep_runs.",
                len(self.untracked),
                "; ".join(self.untracked),
            )


def _log_run(index: int, total: int, row: dict[str, Any], modes: list[str]) -> None:
    quantized = "".join(f", {mode} {row.get(f'eval_rmse_{mode}', math.nan):.4f}" for mode in modes)
    logger.info(
        "Sweep run %d/%d %s seed %s: eval RMSE %.4f%s (validation %.4f), %s embedding "
        "parameters, serving %s, training %s, %d epochs in %.1f s",
        index,
        total,
        row["point"],
        row["seed"],
        row["eval_rmse"],
        quantized,
        row["val_rmse"],
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
) -> tuple[list[int], dict[int, dict[str, Any]]]:
    """Fill in the rows finished earlier (checkpoints); the indices still to train, their
    checkpoint identities."""
    identities: dict[int, dict[str, Any]] = {}
    fields = [*ROW_FIELDS, *quantized_fields(quantize)]
    to_train = []
    for index, (point, seed) in enumerate(runs):
        if "skipped" in rows[index]:
            continue
        if checkpoints is not None:
            identities[index] = checkpoints.identity(
                point, embedding_plans[point["point"]], seed, training, quantize
            )
            finished_earlier = checkpoints.load(identities[index], fields)
            if finished_earlier is not None:
                rows[index].update(finished_earlier)
                continue
        to_train.append(index)
    return to_train, identities


def run_sweep(
    plan: list[dict[str, Any]],
    embedding_plans: dict[str, dict[str, Any]],
    train_ratings: pd.DataFrame,
    validation_ratings: pd.DataFrame,
    eval_ratings: pd.DataFrame,
    user_vocabulary: pd.DataFrame,
    movie_vocabulary: pd.DataFrame,
    training: dict[str, Any],
    sweep: dict[str, Any],
) -> pd.DataFrame:
    """Train every point once per seed selecting on validation; score eval, float32 and quantized."""
    training = deep_merge(training, sweep["training"])
    executor = validate_executor(sweep.get("executor"))
    checkpoint_dir = sweep.get("checkpoint_dir") if sweep.get("resume", True) else None
    if checkpoint_dir:
        check_checkpoint_dir(checkpoint_dir)
    ratings = dict(zip(SPLITS, (train_ratings, validation_ratings, eval_ratings), strict=True))
    data = {
        split: encode_split(frame, user_vocabulary, movie_vocabulary)
        for split, frame in ratings.items()
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
        SweepCheckpoints(checkpoint_dir, data_fingerprint(data)) if checkpoint_dir else None
    )
    earlier_files = len(checkpoints.files()) if checkpoints is not None else 0
    to_train, identities = _runs_to_train(
        runs, rows, embedding_plans, training, quantize, checkpoints
    )
    reused = len(rows) - len(to_train) - sum("skipped" in row for row in rows)
    if earlier_files and not reused and to_train:
        logger.info(
            "Sweep: none of the %d checkpoint files in %s is of a run of this sweep, so every "
            "run trains again; that happens when the plan, the training regime, the seeds, "
            "quantization or the data changed since they were written",
            earlier_files,
            sweep["checkpoint_dir"],
        )
    if reused:
        logger.info(
            "Sweep: %d of %d runs finished earlier with this plan, regime and data; reusing them "
            "(from %s; sweep.resume: false trains every run again)",
            reused,
            reused + len(to_train),
            sweep["checkpoint_dir"],
        )
    finished = 0
    bookkeeping = RunBookkeeping(checkpoints)

    def log_outcome(task_index: int, outcome: TaskOutcome) -> None:
        nonlocal finished
        finished += 1
        if not outcome.failed:
            index = to_train[task_index]
            row = rows[index] | outcome.value
            _log_run(finished, len(to_train), row, quantize)
            # As it finishes, so that a killed sweep keeps it.
            bookkeeping.finished(outcome.label, identities.get(index), outcome.value, row)

    try:
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
    finally:  # a killed sweep, too, writes the checkpoints it could not write before
        bookkeeping.report()
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
