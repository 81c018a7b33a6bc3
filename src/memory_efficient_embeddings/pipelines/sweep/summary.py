"""The sweep's summary: each point averaged over its seeds against the reference, and its table."""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pandas as pd

from memory_efficient_embeddings.modeling.grid import RECIPE, quantize_modes
from memory_efficient_embeddings.pipelines.sweep.peers import PEER

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


def _size_columns(modes: list[str]) -> list[str]:
    return [
        "embedding_parameters",
        "embedding_bytes_float32",
        "serving_bytes",
        *[f"serving_bytes_{mode}" for mode in modes],
        "training_bytes",
    ]


def _over_seeds(runs: pd.DataFrame, metrics: list[str], sizes: list[str]) -> pd.DataFrame:
    """One row per point: its sizes, and each metric's mean and sample std over seeds."""
    runs = runs.reindex(columns=[*runs.columns, *[c for c in metrics + sizes if c not in runs]])
    grouped = runs.groupby("point", sort=False)
    summary = grouped[["technique", "settings", *sizes]].first()
    for metric in metrics:
        summary[f"{metric}_mean"] = grouped[metric].mean()
        summary[f"{metric}_std"] = grouped[metric].std(ddof=1).fillna(0.0)
    summary["seeds"] = grouped["seed"].nunique()
    return summary


def _finished_runs(sweep_runs: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """The runs that finished (not skipped, not failed) and each point's failed seeds."""
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
    return runs, dict(failed_seeds)


def _not_run_rows(
    sweep_plan: list[dict[str, Any]] | None, sweep_peers: pd.DataFrame | None
) -> pd.DataFrame:
    """Rows for the budgets a technique cannot reach and the peers that were skipped, with why."""
    rows = [
        {
            "point": point["point"],
            "technique": point["technique"],
            "settings": point["settings"],
            "budget_floats_per_id": point["budget"]["floats_per_id"],
            "unreachable": point["unreachable"],
        }
        for point in sweep_plan or []
        if "unreachable" in point
    ]
    if sweep_peers is not None and "skipped" in sweep_peers:
        skipped = sweep_peers[sweep_peers["skipped"].notna()]
        rows += [
            {
                "point": r.point,
                "technique": r.technique,
                "settings": r.settings,
                "skipped": r.skipped,
            }
            for r in skipped.itertuples()
        ]
    return pd.DataFrame(rows)


def summarize_sweep(
    sweep_runs: pd.DataFrame,
    sweep: dict[str, Any],
    sweep_plan: list[dict[str, Any]] | None = None,
    sweep_peers: pd.DataFrame | None = None,
    user_vocabulary: pd.DataFrame | None = None,
    movie_vocabulary: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Average each point (and peer) over its seeds and measure it against the reference.

    With the placed plan, each budgeted point gets its budget and the budgets its technique
    cannot reach get a row that says why; with the peers, the peers get rows of their own (and
    a row saying why where skipped); with the vocabularies, every size is also per id
    (``bytes_per_id``: serving bytes over users + movies).
    """
    runs, failed_seeds = _finished_runs(sweep_runs)
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
    sizes = _size_columns(modes)
    summary = _over_seeds(runs, metrics, sizes)
    # Seeds whose run failed (the error is in sweep_runs); the means are over the others.
    summary["failed_seeds"] = summary.index.map(lambda point: failed_seeds.get(point, ""))
    summary = summary.reset_index()
    summary[sizes] = summary[sizes].astype("int64")  # skipped runs had made them float

    reference_rows = summary[summary["technique"] == sweep["reference"]]
    if reference_rows.empty:
        raise ValueError(f"The reference technique {sweep['reference']!r} has no finished run.")
    reference = reference_rows.loc[reference_rows["serving_bytes"].idxmax()]
    summary["is_reference"] = summary["point"] == reference["point"]
    summary["on_frontier"] = False
    for technique, rows in summary.groupby("technique"):
        if technique != RECIPE:
            mask = _pareto_mask(rows["serving_bytes"].to_numpy(), rows["eval_rmse_mean"].to_numpy())
            summary.loc[rows.index[mask], "on_frontier"] = True
    if sweep_peers is not None and not sweep_peers.empty:
        finished_peers = sweep_peers
        if "skipped" in finished_peers:
            finished_peers = finished_peers[finished_peers["skipped"].isna()]
        if not finished_peers.empty:
            peers = _over_seeds(finished_peers, metrics, sizes).reset_index()
            peers[["is_reference", "on_frontier"]] = False
            summary = pd.concat([summary, peers], ignore_index=True)
    # In serving bytes, not parameters: index maps (CCE's assignments) count, and a folded MLET
    # table counts at the size it is served at.
    summary["compression"] = reference["serving_bytes"] / summary["serving_bytes"]
    summary["rmse_gap"] = summary["eval_rmse_mean"] / reference["eval_rmse_mean"] - 1.0
    target = sweep["target"]
    summary["meets_target"] = (summary["compression"] >= target["min_compression"]) & (
        summary["rmse_gap"] <= target["max_rmse_gap"]
    )
    budgets = {p["point"]: p["budget"]["floats_per_id"] for p in sweep_plan or [] if "budget" in p}
    summary["budget_floats_per_id"] = summary["point"].map(budgets)
    if user_vocabulary is not None and movie_vocabulary is not None:
        num_ids = len(user_vocabulary) + len(movie_vocabulary)
        summary["bytes_per_id"] = summary["serving_bytes"] / num_ids
        summary["training_bytes_per_id"] = summary["training_bytes"] / num_ids
    summary = pd.concat([summary, _not_run_rows(sweep_plan, sweep_peers)], ignore_index=True)
    for column in ("is_reference", "on_frontier", "meets_target"):
        summary[column] = summary[column].fillna(False).astype(bool)
    for size in sizes:  # ints, nullable where a peer or a row not run has none (int8 sizes)
        summary[size] = summary[size].astype("Int64" if summary[size].isna().any() else "int64")
    # Techniques in the order the parameters list them (the recipe's models, then the peers),
    # each by budget, then from its smallest point up; rows not run last within their technique.
    order = {name: i for i, name in enumerate([*sweep["techniques"], RECIPE, PEER])}
    first = ["compression", "rmse_gap", "meets_target", "is_reference", "on_frontier"]
    last = ["budget_floats_per_id", "bytes_per_id", "training_bytes_per_id", "unreachable"]
    columns = [c for c in summary if c not in first + last + ["skipped"]]
    summary = summary.reindex(
        columns=[*columns, *first, *[c for c in [*last, "skipped"] if c in summary]]
    )
    return summary.sort_values(
        ["technique", "budget_floats_per_id", "embedding_parameters"],
        key=lambda column: column.map(order) if column.name == "technique" else column,
        na_position="last",
        kind="stable",
    ).reset_index(drop=True)


def _missing(value: Any) -> bool:
    return (
        value is None or value is pd.NA or (isinstance(value, float) and not math.isfinite(value))
    )


def _mean_std(row: pd.Series, metric: str) -> str:
    if _missing(row.get(f"{metric}_mean")):
        return "–"
    return f"{row[f'{metric}_mean']:.4f} ± {row[f'{metric}_std']:.4f}"


def _number(value: Any, template: str) -> str:
    return "–" if _missing(value) else template.format(value)


def _kib(size: Any) -> str:
    return "–" if _missing(size) else f"{size / KIB:,.1f}"


def format_bytes(size: float) -> str:
    """Bytes in the unit that reads best: ``512 B``, ``1.5 KiB``, ``2.25 MiB``."""
    for unit, scale in (("MiB", MIB), ("KiB", KIB)):
        if size >= scale:
            return f"{size / scale:,.3g} {unit}"
    return f"{size:,.0f} B"


def _not_run(summary: pd.DataFrame, column: str) -> pd.Series:
    """Rows with a reason in ``column`` (unreachable budgets, skipped peers)."""
    if column not in summary:
        return pd.Series(False, index=summary.index)
    return summary[column].notna() & (summary[column].astype(str) != "")


def _bytes_per_id_cell(row: pd.Series) -> str:
    achieved = _number(row.get("bytes_per_id"), "{:,.3g}")
    budget = row.get("budget_floats_per_id")
    if _missing(budget):
        return achieved
    return f"{achieved} of {4 * budget:g}"


def _records(rows: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as JSON objects: numpy scalars as Python's, empty cells left out."""
    return [
        {
            key: value.item() if hasattr(value, "item") else value
            for key, value in row.items()
            if not _missing(value) and value != ""
        }
        for row in rows.to_dict(orient="records")
    ]


def sweep_summary_record(sweep_summary: pd.DataFrame, sweep: dict[str, Any]) -> dict[str, Any]:
    """The summary as JSON: points and peers with their figures, unreachable budgets, skipped peers."""
    unreachable = _not_run(sweep_summary, "unreachable")
    skipped = _not_run(sweep_summary, "skipped")
    finished = sweep_summary[~unreachable & ~skipped]
    peers = finished["technique"] == PEER
    reference = finished[finished["is_reference"]].iloc[0]
    return {
        "reference": reference["point"],
        "seeds": list(sweep["seeds"]),
        "budgets_floats_per_id": list((sweep.get("budgets") or {}).get("floats_per_id") or []),
        "points": _records(finished[~peers]),
        "peers": _records(finished[peers]),
        "unreachable": [
            {
                "technique": row["technique"],
                "point": row["point"],
                "budget_floats_per_id": float(row["budget_floats_per_id"]),
                "budget_bytes_per_id": 4 * float(row["budget_floats_per_id"]),
                "reason": row["unreachable"],
            }
            for _, row in sweep_summary[unreachable].iterrows()
        ],
        "skipped_peers": [
            {"point": row["point"], "reason": row["skipped"]}
            for _, row in sweep_summary[skipped].iterrows()
        ],
    }


def render_sweep_table(
    sweep_summary: pd.DataFrame, data_provenance: dict[str, Any], sweep: dict[str, Any]
) -> str:
    """Render the sweep summary as a markdown report: every point and peer, then what did not run."""
    modes = quantize_modes(sweep.get("quantize"))
    target = sweep["target"]
    header = (
        "| technique | settings | bytes per id | embedding params | KiB float32 | "
        + "".join(f"KiB {mode} | " for mode in modes)
        + "train KiB | compression | eval RMSE | eval MAE | "
        + "".join(f"eval RMSE {mode} | " for mode in modes)
        + "RMSE vs ref | val RMSE | train s | epochs | target |"
    )
    reference = sweep_summary[sweep_summary["is_reference"]].iloc[0]
    unreachable = _not_run(sweep_summary, "unreachable")
    skipped = _not_run(sweep_summary, "skipped")
    budgets = (sweep.get("budgets") or {}).get("floats_per_id") or []
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
        "optimizer's slots for them. Bytes per id: float32 serving bytes of both sides, biases "
        "included, over users + movies"
        + (
            f"; budgets of {', '.join(f'{4 * b:g}' for b in budgets)} bytes per id "
            f"({', '.join(f'{b:g}' for b in budgets)} float32 values), each budgeted technique "
            "at the largest model that fits (`a of b`: its bytes per id of the budget's)"
            if budgets
            else ""
        )
        + ". "
        "★ marks a point on its technique's Pareto frontier (float32 serving bytes against RMSE). "
        "Peers (`peer`) are fitted on the same train split per seed and scored on the same eval "
        "split; their sizes count per-id weights as float32.",
        "",
        header,
        "|" + "---|" * (header.count("|") - 1),
    ]
    for _, row in sweep_summary[~unreachable & ~skipped].iterrows():
        cells = [
            row["technique"] + (" ★" if row["on_frontier"] else ""),
            row["settings"] or "–",
            _bytes_per_id_cell(row),
            _number(row["embedding_parameters"], "{:,.0f}"),
            _kib(row["serving_bytes"]),
            *[_kib(row[f"serving_bytes_{mode}"]) for mode in modes],
            _kib(row["training_bytes"]),
            _number(row["compression"], "{:.2f}×"),
            _mean_std(row, "eval_rmse"),
            _mean_std(row, "eval_mae"),
            *[_mean_std(row, f"eval_rmse_{mode}") for mode in modes],
            _number(row["rmse_gap"], "{:+.2%}"),
            _mean_std(row, "val_rmse"),
            _number(row["train_seconds_mean"], "{:.1f}"),
            _number(row["epochs_run_mean"], "{:.1f}"),
            "✓" if row["meets_target"] else "",
        ]
        lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    if unreachable.any():
        lines += [
            "",
            "## Budgets not reached",
            "",
            "Each (technique, budget) pair that no model of the technique fits, with the reason "
            "(not trained, not in the means):",
            "",
            "| technique | budget (bytes per id) | point | reason |",
            "|---|---|---|---|",
        ]
        for _, row in sweep_summary[unreachable].iterrows():
            lines.append(
                f"| {row['technique']} | {4 * row['budget_floats_per_id']:g} | {row['point']} | "
                f"{row['unreachable']} |"
            )
    if skipped.any():
        listed = "; ".join(
            f"{row['point']}: {row['skipped']}" for _, row in sweep_summary[skipped].iterrows()
        )
        lines += ["", f"Peers skipped: {listed}."]
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
