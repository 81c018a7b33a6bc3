"""The sweep's chart: every technique's frontier and the peers, in serving and training bytes per id."""

from __future__ import annotations

from typing import Any

import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from memory_efficient_embeddings.modeling.grid import RECIPE, quantize_modes
from memory_efficient_embeddings.pipelines.sweep.peers import PEER
from memory_efficient_embeddings.pipelines.sweep.summary import format_bytes

# Hollow markers of the quantized models, one shape per mode.
QUANTIZED_MARKERS = {"int8": "o", "int4": "s"}
# One colour and marker per technique: tab10's ten colours as circles, then Dark2's eight as
# diamonds, so the grid's 14 techniques never share a colour.
TECHNIQUE_STYLES = [(color, "o") for color in colormaps["tab10"].colors] + [
    (color, "D") for color in colormaps["Dark2"].colors
]


def _byte_axis(ax: Any, sizes: pd.Series, label: str, per_id: bool) -> None:
    """A log x axis of bytes (B, KiB, MiB) or of bytes per id."""
    sizes = sizes[sizes > 0]
    ax.set_xscale("log")
    ax.set_xlim(sizes.min() / 1.6, sizes.max() * 1.6)
    # Powers of 4 fall on round sizes (1, 4, 16, 64, 256 KiB, 1 MiB), powers of 10 do not.
    ax.xaxis.set_major_locator(LogLocator(base=4))
    formatter = (
        (lambda value, _: f"{value:g} B") if per_id else (lambda value, _: format_bytes(value))
    )
    ax.xaxis.set_major_formatter(FuncFormatter(formatter))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(label)
    ax.grid(True, which="both", alpha=0.2)


def _plot_marked(ax: Any, rows: pd.DataFrame, x: pd.Series, marker: str, label: str) -> None:
    """Points that are no technique's frontier (the recipe's models, the peers), labelled."""
    if rows.empty:  # none in this sweep: no legend entry either
        return
    ax.scatter(
        x, rows["eval_rmse_mean"], marker=marker, s=160, color="black", zorder=5, label=label
    )
    for (_, row), size in zip(rows.iterrows(), x, strict=True):
        ax.annotate(
            row["settings"]
            if row["technique"] == RECIPE
            else row["point"].removeprefix(f"{PEER}(").removesuffix(")"),
            (size, row["eval_rmse_mean"]),
            textcoords="offset points",
            xytext=(8, -4),
            fontsize=8,
        )


def plot_compression_frontier(
    sweep_summary: pd.DataFrame, data_provenance: dict[str, Any], sweep: dict[str, Any]
) -> Figure:
    """Eval RMSE against serving bytes per id (left) and training bytes per id (right), log axes.

    Left: every point in float32 with its technique's frontier, the same models after each
    post-training quantization (hollow markers), the budgets (dotted verticals), the target
    region, the recipe's models (stars) and the peers (crosses; the global mean, which holds no
    per-id weights, as a dashed line). Right: the float32 points against what training them
    holds (weights and optimizer slots). Sizes are per id (users + movies) when the summary has
    them, else whole.
    """
    modes = quantize_modes(sweep.get("quantize"))
    summary = sweep_summary
    for column in ("unreachable", "skipped"):  # rows that did not run have no figures
        if column in summary:
            summary = summary[summary[column].isna() | (summary[column].astype(str) == "")]
    reference = summary[summary["is_reference"]].iloc[0]
    per_id = "bytes_per_id" in summary and pd.notna(reference.get("bytes_per_id"))
    scale = reference["serving_bytes"] / reference["bytes_per_id"] if per_id else 1.0

    def sized(column: str, rows: pd.DataFrame) -> pd.Series:
        return rows[column].astype(float) / scale

    target = sweep["target"]
    # A bare Figure: no pyplot backend or global state, safe in any runner's threads.
    fig = Figure(figsize=(16, 6.5))
    serving_ax, training_ax = fig.subplots(1, 2, sharey=True)
    for ax in (serving_ax, training_ax):
        ax.axhline(reference["eval_rmse_mean"], color="grey", linewidth=0.8, linestyle=":")
    # The target region: at least min_compression× smaller, at most max_rmse_gap worse.
    serving_ax.fill_between(
        [1e-9, reference["serving_bytes"] / scale / target["min_compression"]],
        0,
        reference["eval_rmse_mean"] * (1 + target["max_rmse_gap"]),
        color="green",
        alpha=0.08,
        label=f"target: ≥{target['min_compression']}× smaller, RMSE ≤ +{target['max_rmse_gap']:.0%}",
    )
    budgets = (sweep.get("budgets") or {}).get("floats_per_id") or []
    if per_id:
        for index, budget in enumerate(budgets):
            serving_ax.axvline(
                4 * budget,
                color="grey",
                linewidth=0.7,
                linestyle=":",
                label="budgets (float32 per id × 4 B)" if index == 0 else None,
            )
    peers = summary[summary["technique"] == PEER]
    plotted = summary[summary["technique"] != PEER]
    techniques = [t for t in plotted["technique"].unique() if t != RECIPE]
    for index, technique in enumerate(techniques):
        rows = plotted[plotted["technique"] == technique]
        color, marker = TECHNIQUE_STYLES[index % len(TECHNIQUE_STYLES)]
        for ax, size in ((serving_ax, "serving_bytes"), (training_ax, "training_bytes")):
            ax.errorbar(
                sized(size, rows),
                rows["eval_rmse_mean"],
                yerr=rows["eval_rmse_std"],
                fmt=marker,
                color=color,
                markersize=6,
                capsize=2,
                label=technique if ax is serving_ax else None,
            )
        frontier = rows[rows["on_frontier"]].sort_values("serving_bytes")
        serving_ax.plot(
            sized("serving_bytes", frontier),
            frontier["eval_rmse_mean"],
            color=color,
            linewidth=1.2,
            drawstyle="steps-post",
        )
        for mode in modes:
            serving_ax.scatter(
                sized(f"serving_bytes_{mode}", rows),
                rows[f"eval_rmse_{mode}_mean"],
                marker=QUANTIZED_MARKERS.get(mode, "^"),
                facecolors="none",
                edgecolors=color,
                s=36,
                label=f"{mode}, after training (hollow)" if index == 0 else None,
            )
    recipe = plotted[plotted["technique"] == RECIPE]
    _plot_marked(
        serving_ax, recipe, sized("serving_bytes", recipe), "*", "keras-io recipe's models"
    )
    _plot_marked(
        training_ax, recipe, sized("training_bytes", recipe), "*", "keras-io recipe's models"
    )
    sized_peers = peers[peers["serving_bytes"].astype(float) > 0]
    for ax, size in ((serving_ax, "serving_bytes"), (training_ax, "training_bytes")):
        _plot_marked(ax, sized_peers, sized(size, sized_peers), "X", "peers (same split)")
        for _, row in peers[peers["serving_bytes"].astype(float) <= 0].iterrows():
            ax.axhline(
                row["eval_rmse_mean"],
                color="black",
                linewidth=0.9,
                linestyle="--",
                label=(
                    f"{row['point']}: eval RMSE {row['eval_rmse_mean']:.4f}, no per-id weights"
                    if ax is serving_ax
                    else None
                ),
            )
    meeting = plotted[plotted["meets_target"]]
    serving_ax.scatter(
        sized("serving_bytes", meeting),
        meeting["eval_rmse_mean"],
        s=260,
        facecolors="none",
        edgecolors="green",
        linewidths=1.5,
        zorder=4,
        label="meets the target",
    )
    served = pd.concat(
        [
            sized("serving_bytes", summary),
            *[sized(f"serving_bytes_{m}", plotted) for m in modes],
            pd.Series([4.0 * b for b in budgets] if per_id else [], dtype=float),
        ]
    ).dropna()
    unit = "per id " if per_id else ""
    _byte_axis(
        serving_ax,
        served,
        f"serving bytes {unit}of the embeddings, biases included (log); hollow: quantized",
        per_id,
    )
    _byte_axis(
        training_ax,
        sized("training_bytes", summary).dropna(),
        f"training bytes {unit}of the embeddings: float32 weights + optimizer slots (log)",
        per_id,
    )
    # The global mean (a peer without per-id weights) may sit far above: its line and legend
    # entry say where, and the axis keeps to the models.
    errors = summary.loc[summary["serving_bytes"].astype(float) > 0, "eval_rmse_mean"]
    serving_ax.set_ylim(
        errors.min() - 0.01, min(errors.max(), reference["eval_rmse_mean"] * 1.35) + 0.01
    )
    serving_ax.set_ylabel(f"eval RMSE (mean ± std over {len(sweep['seeds'])} seeds)")
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
