"""Nodes that compare trained models: a table, a JSON summary and charts."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")  # Nodes run headless; never open a window.
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

MIB = 1024 * 1024


def compare_models(reference: str, **metrics: dict[str, Any]) -> dict[str, Any]:
    """Summarise each model's size and accuracy against the reference model."""
    if reference not in metrics:
        raise ValueError(f"Reference model {reference!r} is not among {sorted(metrics)}.")
    reference_parameters = metrics[reference]["embedding_parameters"]
    rows = [
        {
            "model": name,
            "total_parameters": m["total_parameters"],
            "embedding_parameters": m["embedding_parameters"],
            "embedding_mib": round(m["embedding_bytes_float32"] / MIB, 3),
            "compression_vs_reference": round(reference_parameters / m["embedding_parameters"], 2),
            "saved_model_mib": round(m["saved_model_bytes"] / MIB, 3),
            "eval_mse": round(m["eval_mse"], 4),
            "eval_rmse": round(m["eval_rmse"], 4),
            "eval_mae": round(m["eval_mae"], 4),
            "epochs": m["epochs_run"],
            "train_seconds": m["train_seconds"],
        }
        for name, m in metrics.items()
    ]
    provenance = metrics[reference]["data"]
    return {
        "reference": reference,
        "data": provenance,
        "global_mean_rmse": round(metrics[reference]["global_mean_rmse"], 4),
        "global_mean_mae": round(metrics[reference]["global_mean_mae"], 4),
        "models": rows,
        "by_popularity": _by_popularity(metrics),
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _by_popularity(metrics: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per model, side and popularity block: ids, eval rows, RMSE and MAE."""
    return [
        {
            "model": name,
            "side": side,
            "block": block["block"],
            "ids": block["ids"],
            "eval_rows": block["eval_rows"],
            "eval_rmse": _rounded(block["eval_rmse"]),
            "eval_mae": _rounded(block["eval_mae"]),
        }
        for name, m in metrics.items()
        for side, blocks in m["by_popularity"].items()
        for block in blocks
    ]


def render_comparison_table(comparison: dict[str, Any]) -> str:
    """Render the comparison as a markdown report."""
    header = (
        "| model | parameters | embedding parameters | embedding MiB (float32) | compression "
        "| eval MSE | eval RMSE | eval MAE | epochs | train s |"
    )
    lines = [
        "# Model comparison",
        "",
        f"Data: {comparison['data'].get('description', comparison['data'])}",
        "",
        header,
        "|" + "---|" * (header.count("|") - 1),
    ]
    for row in comparison["models"]:
        lines.append(
            f"| {row['model']} | {row['total_parameters']:,} | {row['embedding_parameters']:,} "
            f"| {row['embedding_mib']:.3f} | {row['compression_vs_reference']:.2f}× "
            f"| {row['eval_mse']:.4f} | {row['eval_rmse']:.4f} | {row['eval_mae']:.4f} "
            f"| {row['epochs']} | {row['train_seconds']:.1f} |"
        )
    lines += [
        "",
        f"Compression is measured in embedding parameters against `{comparison['reference']}`. "
        f"Predicting the training mean gives RMSE {comparison['global_mean_rmse']:.4f}, "
        f"MAE {comparison['global_mean_mae']:.4f}.",
        "",
        "## Error by popularity block",
        "",
        "Ids are grouped by their number of training ratings, most popular first: a model with "
        "frequency blocks is reported over its own blocks, a plain table over equal-rating-mass "
        "blocks; `unseen` ids have no training rating (out of vocabulary).",
        "",
        "| model | side | block | ids | eval rows | eval RMSE | eval MAE |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in comparison["by_popularity"]:
        rmse, mae = (
            ("–", "–")
            if row["eval_rmse"] is None
            else (f"{row['eval_rmse']:.4f}", f"{row['eval_mae']:.4f}")
        )
        lines.append(
            f"| {row['model']} | {row['side']} | {row['block']} | {row['ids']:,} "
            f"| {row['eval_rows']:,} | {rmse} | {mae} |"
        )
    lines.append("")
    return "\n".join(lines)


def plot_accuracy_vs_parameters(comparison: dict[str, Any]) -> plt.Figure:
    """Plot eval RMSE and MAE against embedding parameters, one point per model."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("eval_rmse", "eval_mae")):
        for row in comparison["models"]:
            ax.scatter(row["embedding_parameters"], row[metric], s=60)
            ax.annotate(
                row["model"],
                (row["embedding_parameters"], row[metric]),
                textcoords="offset points",
                xytext=(6, 6),
            )
        ax.axhline(
            comparison[metric.replace("eval", "global_mean")],
            color="grey",
            linestyle=":",
            label="predict the mean",
        )
        ax.set_xscale("log")
        ax.set_xlabel("embedding parameters (log)")
        ax.set_ylabel(metric.replace("_", " ").upper().replace("EVAL ", "eval "))
        ax.legend(loc="best")
    fig.suptitle("Accuracy against embedding size (lower left is better)")
    fig.tight_layout()
    return fig


def plot_error_by_popularity(comparison: dict[str, Any]) -> plt.Figure:
    """Plot each model's eval RMSE per popularity block, users and movies side by side."""
    rows = comparison["by_popularity"]
    models = list(dict.fromkeys(row["model"] for row in rows))
    sides = list(dict.fromkeys(row["side"] for row in rows))
    fig, axes = plt.subplots(1, len(sides), figsize=(5.5 * len(sides), 4.2), squeeze=False)
    width = 0.8 / len(models)
    for ax, side in zip(axes[0], sides, strict=True):
        blocks = list(dict.fromkeys(r["block"] for r in rows if r["side"] == side))
        for index, model in enumerate(models):
            by_block = {r["block"]: r for r in rows if r["side"] == side and r["model"] == model}
            positions = [b + (index - (len(models) - 1) / 2) * width for b in range(len(blocks))]
            # A block with no eval rows (or absent for this model) draws no bar.
            values = [(by_block.get(b) or {}).get("eval_rmse") or 0.0 for b in blocks]
            ax.bar(positions, values, width=width, color=f"C{index}", label=model)
        ax.set_xticks(range(len(blocks)))
        ax.set_xticklabels(blocks)
        ax.axhline(
            comparison["global_mean_rmse"], color="grey", linestyle=":", label="predict the mean"
        )
        present = [r["eval_rmse"] for r in rows if r["side"] == side and r["eval_rmse"]]
        ax.set_ylim(min(present) * 0.95, max(*present, comparison["global_mean_rmse"]) * 1.03)
        ax.set_title(f"{side}s, most popular first")
        ax.set_ylabel("eval RMSE")
        ax.legend(fontsize=8)
    fig.suptitle("Where compression costs accuracy: eval RMSE by popularity block")
    fig.tight_layout()
    return fig


def plot_loss_curves(**training_histories: dict[str, Any]) -> plt.Figure:
    """Overlay the models' training and validation loss curves."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for index, (name, report) in enumerate(training_histories.items()):
        history = report["history"]
        epochs = range(1, len(history["loss"]) + 1)
        color = f"C{index}"
        ax.plot(epochs, history["loss"], color=color, linestyle="--", label=f"{name} train")
        ax.plot(epochs, history["val_loss"], color=color, marker="o", label=f"{name} eval")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("MSE")
    ax.set_title("Loss curves")
    ax.legend()
    fig.tight_layout()
    return fig
