"""The sweep's chart: the compression frontier of every technique, in serving and training bytes."""

from __future__ import annotations

from typing import Any

import pandas as pd
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from memory_efficient_embeddings.modeling.grid import RECIPE, quantize_modes
from memory_efficient_embeddings.pipelines.sweep.summary import format_bytes

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
        recipe["eval_rmse_mean"],
        marker="*",
        s=220,
        color="black",
        zorder=5,
        label="keras-io recipe's models",
    )
    for _, row in recipe.iterrows():
        ax.annotate(
            row["settings"],
            (row[size], row["eval_rmse_mean"]),
            textcoords="offset points",
            xytext=(8, -4),
            fontsize=8,
        )


def plot_compression_frontier(
    sweep_summary: pd.DataFrame, data_provenance: dict[str, Any], sweep: dict[str, Any]
) -> Figure:
    """Eval RMSE against serving bytes (left) and training bytes (right), both on log axes.

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
        ax.axhline(reference["eval_rmse_mean"], color="grey", linewidth=0.8, linestyle=":")
    serving_ax.fill_between(
        [1, reference["serving_bytes"] / target["min_compression"]],
        0,
        reference["eval_rmse_mean"] * (1 + target["max_rmse_gap"]),
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
            frontier["serving_bytes"],
            frontier["eval_rmse_mean"],
            color=color,
            linewidth=1.2,
            drawstyle="steps-post",
        )
        for mode in modes:
            serving_ax.scatter(
                rows[f"serving_bytes_{mode}"],
                rows[f"eval_rmse_{mode}_mean"],
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
        meeting["eval_rmse_mean"],
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
    errors = sweep_summary["eval_rmse_mean"]
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
