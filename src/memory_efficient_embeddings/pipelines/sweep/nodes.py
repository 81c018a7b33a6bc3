"""Nodes of the sweep: plan the grid, train every point over seeds, summarise and chart it."""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import logging
import math
import os
import re
import warnings
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from memory_efficient_embeddings.embeddings import (
    embedding_bytes,
    embedding_parameter_count,
    serving_bytes,
    training_bytes,
)
from memory_efficient_embeddings.embeddings.mlet import fold_if_smaller
from memory_efficient_embeddings.modeling.nodes import build_model
from memory_efficient_embeddings.modeling.specs import (
    SIDES,
    BlocksDoNotFitError,
    resolve_embedding_plan,
)
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
from memory_efficient_embeddings.tracking import log_sweep_run

logger = logging.getLogger(__name__)

RECIPE = "recipe"  # technique name of the keras-io recipe's models: marked, not a frontier
# Bumped when a run's row gains or loses columns, so that checkpoints of the old form are retrained.
ROW_FORMAT = 2
KIB, MIB = 1024, 1024**2


def quantize_modes(quantize: str | list[str] | None) -> list[str]:
    """`sweep.quantize` as a list of modes: null -> [], "int8" -> ["int8"], a list as it is."""
    if quantize is None:
        return []
    return [quantize] if isinstance(quantize, str) else list(quantize)


def _deep_merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _set_path(target: dict[str, Any], dotted_key: str, value: Any) -> None:
    *parents, leaf = dotted_key.split(".")
    for key in parents:
        target = target.setdefault(key, {})
    target[leaf] = value


def _format_value(value: Any) -> str:
    return "auto" if value is None else str(value)


def _model_overrides(template: dict[str, Any]) -> dict[str, Any]:
    """Expand the `embedding` shorthand (both sides) into user_ and movie_embedding specs."""
    overrides = copy.deepcopy(template)
    shared = overrides.pop("embedding", None)
    if shared is not None:
        for side in SIDES:
            overrides[side] = _deep_merge(shared, overrides.get(side, {}))
    return overrides


def plan_sweep(sweep: dict[str, Any], base_model: dict[str, Any]) -> list[dict[str, Any]]:
    """Expand each technique's grid into named points, each with its full model parameters."""
    plan = []
    # (technique, its entry, a fixed label): the recipe's models are named, not gridded.
    # A null entry is switched off: parameters merge softly, so an overlay cannot remove a key.
    entries = [(name, spec, None) for name, spec in sweep["techniques"].items() if spec is not None]
    entries += [
        (RECIPE, spec, name)
        for name, spec in (sweep.get("recipe") or {}).items()
        if spec is not None
    ]
    for technique, entry, fixed_label in entries:
        spec = dict(entry)
        grid = spec.pop("grid", None) or {}
        # Grid keys tuned per point: the summary keeps, for each setting of the other keys, the
        # value with the lowest mean val RMSE (e.g. a uniform table with its own best L2).
        tuned = spec.pop("tune", None) or []
        unknown = sorted(set(tuned) - set(grid))
        if unknown:
            raise ValueError(f"sweep.techniques.{technique}.tune names no grid key: {unknown}")
        keys = list(grid)
        for values in itertools.product(*(grid[key] for key in keys)):
            settings = dict(zip(keys, values, strict=True))
            template = copy.deepcopy(spec)
            for key, value in settings.items():
                _set_path(template, key, value)
            # Top-level keys replace the base model's: an embedding spec is replaced whole, since
            # a leftover key of another type (say num_buckets on a full table) would be an error.
            model = {**copy.deepcopy(base_model), **_model_overrides(template)}
            label = fixed_label or ", ".join(
                f"{k.split('.')[-1]}={_format_value(v)}" for k, v in settings.items()
            )
            # Parentheses, not brackets: rich log output would read [..] as markup.
            name = f"{technique}({label})" if label else technique
            # Keras model names must be valid TensorFlow scope names.
            model["name"] = re.sub(r"[^A-Za-z0-9_.]+", "_", name).strip("_")
            point = {"point": name, "technique": technique, "settings": label, "model": model}
            if tuned:
                fixed = [
                    f"{k.split('.')[-1]}={_format_value(v)}"
                    for k, v in settings.items()
                    if k not in tuned
                ]
                point["tuning_group"] = f"{technique}({', '.join(fixed)})"
            plan.append(point)
    names = [p["point"] for p in plan]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"sweep points must be unique; repeated: {duplicates}")
    if not any(p["technique"] == sweep["reference"] for p in plan):
        raise ValueError(f"sweep.reference {sweep['reference']!r} is not a technique of the grid.")
    logger.info("Sweep plan: %d points × %d seeds", len(plan), len(sweep["seeds"]))
    return plan


def assign_sweep_blocks(
    sweep_plan: list[dict[str, Any]],
    user_vocabulary: pd.DataFrame,
    movie_vocabulary: pd.DataFrame,
    evaluation: dict[str, Any],
) -> dict[str, dict[str, Any]]:
    """Resolve every point's embedding plan (blocks, dims, sizes); record points that cannot fit."""
    # Resolving every point before training anything surfaces a configuration error in
    # seconds, not after an hour of training.
    plans = {}
    for point in sweep_plan:
        try:
            plans[point["point"]] = resolve_embedding_plan(
                user_vocabulary, movie_vocabulary, point["model"], evaluation["popularity_blocks"]
            )
        except BlocksDoNotFitError as error:  # e.g. the recipe's fixed boundaries on ml-100k
            logger.warning("Sweep point %s skipped: %s", point["point"], error)
            plans[point["point"]] = {"skipped": str(error)}
        except (ValueError, TypeError, KeyError) as error:
            raise ValueError(f"Sweep point {point['point']} is misconfigured: {error}") from error
    return plans


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
    training = _deep_merge(training, sweep.get("training") or {})
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


def _pareto_mask(sizes: np.ndarray, errors: np.ndarray) -> np.ndarray:
    """Points that no other point beats on both size and error (ties kept)."""
    order = np.lexsort((errors, sizes))
    mask = np.zeros(len(sizes), dtype=bool)
    best = math.inf
    for i in order:
        if errors[i] < best:
            mask[i] = True
            best = errors[i]
    return mask


def best_tuned_points(runs: pd.DataFrame) -> pd.DataFrame:
    """Of each tuning group's points, keep the runs of the one with the lowest mean val RMSE.

    Its settings then say how many candidates it beat. Points without a group pass unchanged.
    """
    if "tuning_group" not in runs or runs["tuning_group"].isna().all():
        return runs
    tuned = runs[runs["tuning_group"].notna()]
    means = tuned.groupby(["tuning_group", "point"], sort=False)["val_rmse"].mean()
    best = means.groupby(level="tuning_group", sort=False).idxmin().map(lambda key: key[1])
    candidates = tuned.groupby("tuning_group", sort=False)["point"].nunique()
    keep = runs["tuning_group"].isna() | runs["point"].isin(set(best))
    kept = runs[keep].copy()
    chosen = kept["tuning_group"].notna()
    kept.loc[chosen, "settings"] = [
        f"{settings} (best of {candidates[group]})"
        for settings, group in zip(
            kept.loc[chosen, "settings"], kept.loc[chosen, "tuning_group"], strict=True
        )
    ]
    return kept


def summarize_sweep(sweep_runs: pd.DataFrame, sweep: dict[str, Any]) -> pd.DataFrame:
    """Average each point over its seeds and measure it against the reference technique."""
    runs = sweep_runs
    if "skipped" in runs:
        runs = runs[runs["skipped"].isna()]
    failed_seeds = {}
    if "failed" in runs:
        failed = runs[runs["failed"].notna()]
        failed_seeds = failed.groupby("point")["seed"].agg(lambda s: ", ".join(map(str, s)))
        runs = runs[runs["failed"].isna()]
        lost = sorted(set(failed["point"]) - set(runs["point"]))
        if lost:
            logger.warning("Sweep points with no finished run, left out: %s", lost)
    if runs.empty:
        raise ValueError("Every sweep run was skipped or failed; see the warnings above.")
    runs = best_tuned_points(runs)
    modes = quantize_modes(sweep.get("quantize"))
    metrics = [
        "val_rmse",
        "val_mae",
        *[f"{metric}_{mode}" for mode in modes for metric in ("val_rmse", "val_mae")],
        "train_seconds",
        "epochs_run",
    ]
    sizes = [
        "embedding_parameters",
        "embedding_bytes_float32",
        "serving_bytes",
        *[f"serving_bytes_{mode}" for mode in modes],
        "training_bytes",
    ]
    grouped = runs.groupby("point", sort=False)
    summary = grouped[["technique", "settings", *sizes]].first()
    for metric in metrics:
        summary[f"{metric}_mean"] = grouped[metric].mean()
        summary[f"{metric}_std"] = grouped[metric].std(ddof=1).fillna(0.0)
    summary["seeds"] = grouped["seed"].nunique()
    # Seeds whose run failed (the error is in sweep_runs); the means are over the others.
    summary["failed_seeds"] = summary.index.map(lambda point: failed_seeds.get(point, ""))
    summary = summary.reset_index()
    summary[sizes] = summary[sizes].astype("int64")  # skipped runs had made them float

    reference_rows = summary[summary["technique"] == sweep["reference"]]
    if reference_rows.empty:
        raise ValueError(f"The reference technique {sweep['reference']!r} has no finished run.")
    reference = reference_rows.loc[reference_rows["serving_bytes"].idxmax()]
    # In serving bytes, not parameters: index maps (CCE's assignments) count, and a folded MLET
    # table counts at the size it is served at.
    summary["compression"] = reference["serving_bytes"] / summary["serving_bytes"]
    summary["rmse_gap"] = summary["val_rmse_mean"] / reference["val_rmse_mean"] - 1.0
    target = sweep["target"]
    summary["meets_target"] = (summary["compression"] >= target["min_compression"]) & (
        summary["rmse_gap"] <= target["max_rmse_gap"]
    )
    summary["is_reference"] = summary["point"] == reference["point"]
    summary["on_frontier"] = False
    for technique, rows in summary.groupby("technique"):
        if technique != RECIPE:
            mask = _pareto_mask(rows["serving_bytes"].to_numpy(), rows["val_rmse_mean"].to_numpy())
            summary.loc[rows.index[mask], "on_frontier"] = True
    # Techniques in the order the parameters list them, each from its smallest point up.
    order = {name: i for i, name in enumerate([*sweep["techniques"], RECIPE])}
    return summary.sort_values(
        ["technique", "embedding_parameters"],
        key=lambda column: column.map(order) if column.name == "technique" else column,
    ).reset_index(drop=True)


def _mean_std(row: pd.Series, metric: str) -> str:
    return f"{row[f'{metric}_mean']:.4f} ± {row[f'{metric}_std']:.4f}"


def format_bytes(size: float) -> str:
    """Bytes in the unit that reads best: ``512 B``, ``1.5 KiB``, ``2.25 MiB``."""
    for unit, scale in (("MiB", MIB), ("KiB", KIB)):
        if size >= scale:
            return f"{size / scale:,.3g} {unit}"
    return f"{size:,.0f} B"


def render_sweep_table(
    sweep_summary: pd.DataFrame, data_provenance: dict[str, Any], sweep: dict[str, Any]
) -> str:
    """Render the sweep summary as a markdown report."""
    modes = quantize_modes(sweep.get("quantize"))
    target = sweep["target"]
    header = (
        "| technique | settings | embedding params | KiB float32 | "
        + "".join(f"KiB {mode} | " for mode in modes)
        + "train KiB | compression | val RMSE | val MAE | "
        + "".join(f"val RMSE {mode} | " for mode in modes)
        + "RMSE vs ref | train s | epochs | target |"
    )
    reference = sweep_summary[sweep_summary["is_reference"]].iloc[0]
    lines = [
        "# Compression sweep",
        "",
        f"Data: {data_provenance.get('description', data_provenance)}",
        "",
        f"Each point trained with seeds {list(sweep['seeds'])}; metrics are mean ± sample std. "
        f"Compression is in float32 serving bytes against `{reference['point']}`. "
        f"Target: at least {target['min_compression']}× compression and val RMSE at most "
        f"{target['max_rmse_gap']:.0%} above the reference's. "
        "KiB: serving bytes of the embedding layers as stored (float32, then after post-training "
        "quantization: scales, zero points and index maps included); train KiB adds the "
        "optimizer's slots for them. "
        "★ marks a point on its technique's Pareto frontier (float32 serving bytes against RMSE).",
        "",
        header,
        "|" + "---|" * (header.count("|") - 1),
    ]
    for _, row in sweep_summary.iterrows():
        cells = [
            row["technique"] + (" ★" if row["on_frontier"] else ""),
            row["settings"] or "–",
            f"{row['embedding_parameters']:,}",
            f"{row['serving_bytes'] / KIB:,.1f}",
            *[f"{row[f'serving_bytes_{mode}'] / KIB:,.1f}" for mode in modes],
            f"{row['training_bytes'] / KIB:,.1f}",
            f"{row['compression']:.2f}×",
            _mean_std(row, "val_rmse"),
            _mean_std(row, "val_mae"),
            *[_mean_std(row, f"val_rmse_{mode}") for mode in modes],
            f"{row['rmse_gap']:+.2%}",
            f"{row['train_seconds_mean']:.1f}",
            f"{row['epochs_run_mean']:.1f}",
            "✓" if row["meets_target"] else "",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    failed = (
        sweep_summary.get("failed_seeds", pd.Series(dtype=object))
        .astype(object)
        .fillna("")
        .astype(str)
    )
    if (failed != "").any():
        listed = "; ".join(
            f"{point} (seeds {seeds})"
            for point, seeds in zip(sweep_summary["point"], failed, strict=True)
            if seeds
        )
        lines += ["", f"Failed runs, left out of the means (errors in sweep_runs): {listed}."]
    lines.append("")
    return "\n".join(lines)


# Hollow markers of the quantized models, one shape per mode.
QUANTIZED_MARKERS = {"int8": "o", "int4": "s"}
# One colour and marker per technique: tab10's ten colours as circles, then Dark2's eight as
# diamonds, so the grid's 14 techniques never share a colour.
TECHNIQUE_STYLES = [(color, "o") for color in colormaps["tab10"].colors] + [
    (color, "D") for color in colormaps["Dark2"].colors
]


def _byte_axis(ax: Any, sizes: pd.Series, label: str) -> None:
    """A log x axis of bytes, ticks labelled in B, KiB or MiB."""
    ax.set_xscale("log")
    ax.set_xlim(sizes.min() / 1.6, sizes.max() * 1.6)
    # Powers of 4 fall on round sizes (1, 4, 16, 64, 256 KiB, 1 MiB), powers of 10 do not.
    ax.xaxis.set_major_locator(LogLocator(base=4))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: format_bytes(value)))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(label)
    ax.grid(True, which="both", alpha=0.2)


def _plot_recipe(ax: Any, recipe: pd.DataFrame, size: str) -> None:
    if recipe.empty:  # no recipe models in this sweep: no legend entry either
        return
    ax.scatter(
        recipe[size],
        recipe["val_rmse_mean"],
        marker="*",
        s=220,
        color="black",
        zorder=5,
        label="keras-io recipe's models",
    )
    for _, row in recipe.iterrows():
        ax.annotate(
            row["settings"],
            (row[size], row["val_rmse_mean"]),
            textcoords="offset points",
            xytext=(8, -4),
            fontsize=8,
        )


def plot_compression_frontier(
    sweep_summary: pd.DataFrame, data_provenance: dict[str, Any], sweep: dict[str, Any]
) -> Figure:
    """Val RMSE against serving bytes (left) and training bytes (right), both on log axes.

    Left: every point in float32 with its technique's frontier, the same models after each
    post-training quantization (hollow markers), the target region and the recipe's models.
    Right: the float32 points against what training them holds (weights and optimizer slots).
    """
    modes = quantize_modes(sweep.get("quantize"))
    reference = sweep_summary[sweep_summary["is_reference"]].iloc[0]
    target = sweep["target"]
    # A bare Figure: no pyplot backend or global state, safe in any runner's threads.
    fig = Figure(figsize=(16, 6.5))
    serving_ax, training_ax = fig.subplots(1, 2, sharey=True)
    # The target region: at least min_compression× smaller, at most max_rmse_gap worse.
    for ax in (serving_ax, training_ax):
        ax.axhline(reference["val_rmse_mean"], color="grey", linewidth=0.8, linestyle=":")
    serving_ax.fill_between(
        [1, reference["serving_bytes"] / target["min_compression"]],
        0,
        reference["val_rmse_mean"] * (1 + target["max_rmse_gap"]),
        color="green",
        alpha=0.08,
        label=f"target: ≥{target['min_compression']}× smaller, RMSE ≤ +{target['max_rmse_gap']:.0%}",
    )
    techniques = [t for t in sweep_summary["technique"].unique() if t != RECIPE]
    for index, technique in enumerate(techniques):
        rows = sweep_summary[sweep_summary["technique"] == technique]
        color, marker = TECHNIQUE_STYLES[index % len(TECHNIQUE_STYLES)]
        for ax, size in ((serving_ax, "serving_bytes"), (training_ax, "training_bytes")):
            ax.errorbar(
                rows[size],
                rows["val_rmse_mean"],
                yerr=rows["val_rmse_std"],
                fmt=marker,
                color=color,
                markersize=6,
                capsize=2,
                label=technique if ax is serving_ax else None,
            )
        frontier = rows[rows["on_frontier"]].sort_values("serving_bytes")
        serving_ax.plot(
            frontier["serving_bytes"],
            frontier["val_rmse_mean"],
            color=color,
            linewidth=1.2,
            drawstyle="steps-post",
        )
        for mode in modes:
            serving_ax.scatter(
                rows[f"serving_bytes_{mode}"],
                rows[f"val_rmse_{mode}_mean"],
                marker=QUANTIZED_MARKERS.get(mode, "^"),
                facecolors="none",
                edgecolors=color,
                s=36,
                label=f"{mode}, after training (hollow)" if index == 0 else None,
            )
    recipe = sweep_summary[sweep_summary["technique"] == RECIPE]
    _plot_recipe(serving_ax, recipe, "serving_bytes")
    _plot_recipe(training_ax, recipe, "training_bytes")
    meeting = sweep_summary[sweep_summary["meets_target"]]
    serving_ax.scatter(
        meeting["serving_bytes"],
        meeting["val_rmse_mean"],
        s=260,
        facecolors="none",
        edgecolors="green",
        linewidths=1.5,
        zorder=4,
        label="meets the target",
    )
    served = pd.concat(
        [sweep_summary["serving_bytes"], *[sweep_summary[f"serving_bytes_{m}"] for m in modes]]
    )
    _byte_axis(
        serving_ax,
        served,
        "serving bytes of the embeddings (log); hollow: the same model quantized",
    )
    _byte_axis(
        training_ax,
        sweep_summary["training_bytes"],
        "training bytes: float32 weights + optimizer slots (log)",
    )
    errors = sweep_summary["val_rmse_mean"]
    serving_ax.set_ylim(
        errors.min() - 0.01, min(errors.max(), reference["val_rmse_mean"] * 1.35) + 0.01
    )
    serving_ax.set_ylabel(f"val RMSE (mean ± std over {len(sweep['seeds'])} seeds)")
    serving_ax.set_title("Serving: the embedding bytes a deployed model holds", fontsize=10)
    training_ax.set_title("Training: weights plus the optimizer's slots", fontsize=10)
    fig.suptitle(
        "Compression frontier (lower left is smaller and more accurate)\n"
        f"{data_provenance.get('description', '')}",
        fontsize=11,
    )
    # One legend for both panels, right of them.
    fig.legend(*serving_ax.get_legend_handles_labels(), fontsize=8, loc="upper right")
    fig.tight_layout(rect=(0, 0, 0.84, 1))
    return fig
