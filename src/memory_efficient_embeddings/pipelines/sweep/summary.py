"""The sweep's summary: each point averaged over its seeds against the reference, and its table."""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pandas as pd

from memory_efficient_embeddings.modeling.grid import RECIPE, quantize_modes

logger = logging.getLogger(__name__)

KIB, MIB = 1024, 1024**2


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
    """Of each tuning group's points, keep the runs of the one with the lowest mean validation RMSE.

    Selection reads the validation split only (``val_rmse``), never the eval split it is graded
    on. Its settings then say how many candidates it beat. Points without a group pass unchanged.
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
        "eval_rmse",
        "eval_mae",
        *[f"{metric}_{mode}" for mode in modes for metric in ("eval_rmse", "eval_mae")],
        "val_rmse",
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
    summary["rmse_gap"] = summary["eval_rmse_mean"] / reference["eval_rmse_mean"] - 1.0
    target = sweep["target"]
    summary["meets_target"] = (summary["compression"] >= target["min_compression"]) & (
        summary["rmse_gap"] <= target["max_rmse_gap"]
    )
    summary["is_reference"] = summary["point"] == reference["point"]
    summary["on_frontier"] = False
    for technique, rows in summary.groupby("technique"):
        if technique != RECIPE:
            mask = _pareto_mask(rows["serving_bytes"].to_numpy(), rows["eval_rmse_mean"].to_numpy())
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
        + "train KiB | compression | eval RMSE | eval MAE | "
        + "".join(f"eval RMSE {mode} | " for mode in modes)
        + "RMSE vs ref | val RMSE | train s | epochs | target |"
    )
    reference = sweep_summary[sweep_summary["is_reference"]].iloc[0]
    lines = [
        "# Compression sweep",
        "",
        f"Data: {data_provenance.get('description', data_provenance)}",
        "",
        f"Each point trained with seeds {list(sweep['seeds'])}; metrics are mean ± sample std. "
        "Early stopping and tuning read the validation split (val RMSE, selection only); eval "
        "RMSE and MAE are the held-out eval split, scored once after training. "
        f"Compression is in float32 serving bytes against `{reference['point']}`. "
        f"Target: at least {target['min_compression']}× compression and eval RMSE at most "
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
            _mean_std(row, "eval_rmse"),
            _mean_std(row, "eval_mae"),
            *[_mean_std(row, f"eval_rmse_{mode}") for mode in modes],
            f"{row['rmse_gap']:+.2%}",
            _mean_std(row, "val_rmse"),
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
