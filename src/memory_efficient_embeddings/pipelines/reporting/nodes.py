"""Nodes that compare trained models: a table, a JSON summary and charts."""

from __future__ import annotations

from typing import Any

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, NullFormatter

from memory_efficient_embeddings.ingest import dataset_name, side_label

MIB = 1024 * 1024
METRIC_LABELS = {"eval_rmse": "eval RMSE (stars)", "eval_mae": "eval MAE (stars)"}


def compare_models(
    reference: str,
    uniform_at_same_bytes: dict[str, Any] | None = None,
    layout_selection: pd.DataFrame | None = None,
    **metrics: dict[str, Any],
) -> dict[str, Any]:
    """Summarise each model's size and accuracy against the reference model, the matched model
    against the uniform table at its bytes, and the layout chosen on validation."""
    if reference not in metrics:
        raise ValueError(f"Reference model {reference!r} is not among {sorted(metrics)}.")
    matched = _matched_bytes(uniform_at_same_bytes, metrics)
    selection = _layout_selection(layout_selection, metrics)
    if uniform_at_same_bytes is not None and uniform_at_same_bytes["fits"]:
        metrics = {**metrics, uniform_at_same_bytes["model"]: uniform_at_same_bytes}
    reference_parameters = metrics[reference]["embedding_parameters"]
    rows = [
        {
            "model": name,
            "total_parameters": m["total_parameters"],
            "embedding_parameters": m["embedding_parameters"],
            "embedding_mib": round(m["embedding_bytes_float32"] / MIB, 3),
            # As served, float32, biases included: what the uniform table is matched on.
            "serving_bytes": m.get("serving_bytes"),
            "compression_vs_reference": round(reference_parameters / m["embedding_parameters"], 2),
            "saved_model_mib": round(m["saved_model_bytes"] / MIB, 3),
            "eval_mse": round(m["eval_mse"], 4),
            "eval_rmse": round(m["eval_rmse"], 4),
            "eval_mae": round(m["eval_mae"], 4),
            # The validation split at the kept epoch: what selection read (not a result).
            "val_rmse": round(m["val_rmse"], 4),
            "epochs": m["epochs_run"],
            "train_seconds": m["train_seconds"],
        }
        for name, m in metrics.items()
    ]
    provenance = metrics[reference]["data"]
    comparison = {
        "reference": reference,
        "data": provenance,
        "splits": metrics[reference]["splits"],
        "global_mean_rmse": round(metrics[reference]["global_mean_rmse"], 4),
        "global_mean_mae": round(metrics[reference]["global_mean_mae"], 4),
        "models": rows,
        "by_popularity": _by_popularity(metrics),
    }
    if matched is not None:
        comparison["uniform_at_same_bytes"] = matched
    if selection is not None:
        comparison["layout_selection"] = selection
    # Models whose unseen ids read a trained row instead of the split summary's zero fallback.
    unseen = {
        name: {"layout": m.get("layout"), "unseen_ids": m["unseen_ids"]}
        for name, m in metrics.items()
        if any(value != "zero" for value in (m.get("unseen_ids") or {}).values())
    }
    if unseen:
        comparison["unseen_ids_by_model"] = unseen
    return comparison


def _layout_selection(
    table: pd.DataFrame | None, metrics: dict[str, dict[str, Any]]
) -> dict[str, Any] | None:
    """The candidate layouts of the model that chose one on validation, and the one it kept."""
    if table is None:
        return None
    candidates = [
        {
            "layout": str(row["layout"]),
            "serving_bytes": int(row["serving_bytes"]),
            "floats_per_id": round(float(row["floats_per_id"]), 4),
            "val_rmse": round(float(row["val_rmse"]), 4),
            "best_epoch": int(row["best_epoch"]),
            "chosen": bool(row["chosen"]),
        }
        for row in table.to_dict("records")
    ]
    chosen = next(row["layout"] for row in candidates if row["chosen"])
    selecting = [name for name, m in metrics.items() if "layout" in m]
    if [metrics[name]["layout"] for name in selecting] != [chosen]:
        raise ValueError(
            f"The layout selection chose {chosen!r}, but the compared models' metrics say "
            f"{ {name: metrics[name]['layout'] for name in selecting} }: they come from different "
            "runs. Re-run `kedro run --pipelines=memory_efficient` before the report."
        )
    return {"model": selecting[0], "chosen": chosen, "candidates": candidates}


def _matched_bytes(
    uniform: dict[str, Any] | None, metrics: dict[str, dict[str, Any]]
) -> dict[str, Any] | None:
    """The matched model against the uniform table at its serving bytes (validation and eval)."""
    if uniform is None:
        return None
    name = uniform["matched"]["model"]
    if name not in metrics:
        raise ValueError(
            f"{uniform['model']} was sized at the bytes of {name!r}, which is not among the "
            f"compared models {sorted(metrics)}: run `kedro run --pipelines={name}` first."
        )
    matched = metrics[name]
    summary: dict[str, Any] = {
        "model": uniform["model"],
        "matched_model": name,
        "matched_serving_bytes": uniform["matched"]["serving_bytes"],
        "fits": uniform["fits"],
    }
    if not uniform["fits"]:
        # Not even per-id biases fit: the compact layout holds less than any plain table.
        return summary | {
            "smallest_serving_bytes": uniform["smallest_serving_bytes"],
            "blocks_win": None,
        }
    return summary | {
        "embedding_dim": uniform["embedding_dim"],
        "bias_layout": uniform.get("bias_layout"),
        "serving_bytes": uniform["serving_bytes"],
        "val_rmse": {name: round(matched["val_rmse"], 4), "uniform": round(uniform["val_rmse"], 4)},
        "eval_rmse": {
            name: round(matched["eval_rmse"], 4),
            "uniform": round(uniform["eval_rmse"], 4),
        },
        # Reported on the eval split (scored once); unrounded, so a tie is a tie.
        "blocks_win": bool(matched["eval_rmse"] < uniform["eval_rmse"]),
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


def _count(value: int | None) -> str:
    return "–" if value is None else f"{value:,}"


def _selection_note(
    splits: dict[str, Any], unseen_ids: dict[str, dict[str, Any]] | None = None
) -> str:
    """Which split selected the models, how many eval rows have an id unseen in training, and
    how those rows are scored (by each model whose layout does not give them zeros)."""
    held_out = splits["eval"]
    unseen = (
        f"{held_out['unseen_either_rows']:,} of its {held_out['rows']:,} rows have a user or "
        "item unseen in training"
    )
    if "unseen_user_rows" in held_out and "unseen_movie_rows" in held_out:
        unseen += (
            f" ({held_out['unseen_user_rows']:,} an unseen user, "
            f"{held_out['unseen_movie_rows']:,} an unseen item)"
        )
    if splits.get("unseen_id_fallback"):
        unseen += f"; they are scored by the fallback: {splits['unseen_id_fallback']}"
    for name, entry in (unseen_ids or {}).items():
        layout = f" (layout `{entry['layout']}`)" if entry.get("layout") else ""
        reads = "; ".join(
            f"an unseen {side_label(side)} reads the trained shared row of the rarest "
            f"{side_label(side)}s ({where}), not zeros"
            for side, where in entry["unseen_ids"].items()
            if where != "zero"
        )
        unseen += f". Except in `{name}`{layout}: {reads}"
    if splits["validation_is_eval"]:
        return (
            "**Selection read the eval split** (`split.validation_fraction: 0`, the keras-io "
            f"recipe's behaviour): these eval figures are optimistic. Eval: {unseen}."
        )
    return (
        f"Early stopping selected on the validation split ({splits['validation']['rows']:,} rows "
        f"carved from training); the eval split was scored once, after training. Eval: {unseen}."
    )


def _matched_bytes_lines(matched: dict[str, Any] | None) -> list[str]:
    """A paragraph: the matched model against a plain full table at its serving bytes."""
    if matched is None:
        return []
    name, target = matched["matched_model"], matched["matched_serving_bytes"]
    if not matched["fits"]:
        text = (
            f"**A uniform table at the same bytes:** none fits. `{name}` serves {target:,} "
            f"bytes, less than any plain table: per-id biases alone take "
            f"{matched['smallest_serving_bytes']:,}."
        )
        return [text, ""]
    val, held_out = matched["val_rmse"], matched["eval_rmse"]
    verdict = (
        f"the compact layout earns its place (eval RMSE {held_out[name]:.4f} against "
        f"{held_out['uniform']:.4f})"
        if matched["blocks_win"]
        else f"a plain table of the same size does as well or better (eval RMSE "
        f"{held_out['uniform']:.4f} against {held_out[name]:.4f})"
    )
    biases = {
        "in_embedding": "biases in the embedding",
        "separate": "separate bias tables",
        None: "no biases",
    }[matched["bias_layout"]]
    text = (
        f"**A uniform table at the same bytes:** `{matched['model']}` is plain full tables of "
        f"width {matched['embedding_dim']} ({biases}), {matched['serving_bytes']:,} "
        f"serving bytes against `{name}`'s {target:,}, trained and scored the same way "
        f"(validation RMSE {val['uniform']:.4f} against {val[name]:.4f}): {verdict}."
    )
    return [text, ""]


def _layout_selection_lines(selection: dict[str, Any] | None) -> list[str]:
    """A paragraph and a table: the candidate layouts and the one validation chose."""
    if selection is None:
        return []
    lines = [
        f"**`{selection['model']}`'s layout, chosen on the validation split:** "
        f"`{selection['chosen']}` (the lowest validation RMSE; ties go to fewer serving bytes).",
        "",
        "| layout | floats per id | serving bytes | val RMSE | best epoch | chosen |",
        "|---|---|---|---|---|---|",
    ]
    for row in selection["candidates"]:
        lines.append(
            f"| {row['layout']} | {row['floats_per_id']:.3f} | {row['serving_bytes']:,} "
            f"| {row['val_rmse']:.4f} | {row['best_epoch']} | {'yes' if row['chosen'] else ''} |"
        )
    return [*lines, ""]


def render_comparison_table(comparison: dict[str, Any]) -> str:
    """Render the comparison as a markdown report."""
    header = (
        "| model | parameters | embedding parameters | embedding MiB (float32) | serving bytes "
        "| compression | eval MSE | eval RMSE | eval MAE | epochs | train s |"
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
            f"| {row['embedding_mib']:.3f} | {_count(row['serving_bytes'])} "
            f"| {row['compression_vs_reference']:.2f}× "
            f"| {row['eval_mse']:.4f} | {row['eval_rmse']:.4f} | {row['eval_mae']:.4f} "
            f"| {row['epochs']} | {row['train_seconds']:.1f} |"
        )
    lines += [
        "",
        *_layout_selection_lines(comparison.get("layout_selection")),
        *_matched_bytes_lines(comparison.get("uniform_at_same_bytes")),
        f"Compression is measured in embedding parameters against `{comparison['reference']}`. "
        f"Predicting the training mean gives RMSE {comparison['global_mean_rmse']:.4f}, "
        f"MAE {comparison['global_mean_mae']:.4f}.",
        "",
        _selection_note(comparison["splits"], comparison.get("unseen_ids_by_model")),
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
            f"| {row['model']} | {side_label(row['side'])} | {row['block']} | {row['ids']:,} "
            f"| {row['eval_rows']:,} | {rmse} | {mae} |"
        )
    lines.append("")
    return "\n".join(lines)


def _compact_count(value: float, _position: Any = None) -> str:
    """4500 -> "4.5k", 1_250_000 -> "1.25M": tick labels that do not collide."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:.3g}{suffix}"
    return f"{value:.0f}"


def plot_accuracy_vs_parameters(comparison: dict[str, Any]) -> Figure:
    """Plot eval RMSE and MAE against embedding parameters (log x), one labelled point per model."""
    # A bare Figure: no pyplot backend or global state, safe in any runner's threads.
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    axes = fig.subplots(1, 2)
    rows = comparison["models"]
    parameters = [row["embedding_parameters"] for row in rows]
    for ax, metric in zip(axes, ("eval_rmse", "eval_mae"), strict=True):
        values = [row[metric] for row in rows]
        for index, row in enumerate(rows):
            ax.scatter(row["embedding_parameters"], row[metric], s=90, color=f"C{index}", zorder=3)
            size = (
                "reference"
                if row["model"] == comparison["reference"]
                else f"{row['compression_vs_reference']:.1f}× smaller"
            )
            ax.annotate(
                f"{row['model']}\n{size}, {row[metric]:.4f}",
                (row["embedding_parameters"], row[metric]),
                textcoords="offset points",
                xytext=(0, 12),
                ha="center",
                va="bottom",
                color=f"C{index}",
            )
        ax.set_xscale("log")
        # Room around the points (x: a factor of 3 each side; y: a third of the spread, at
        # least 0.02 stars) so that no point or label sits on an edge.
        ax.set_xlim(min(parameters) / 3, max(parameters) * 3)
        spread = max(max(values) - min(values), 0.02)
        ax.set_ylim(min(values) - spread / 3, max(values) + spread)
        ax.xaxis.set_major_locator(FixedLocator(sorted(set(parameters))))
        ax.xaxis.set_major_formatter(FuncFormatter(_compact_count))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("embedding parameters (log scale)")
        ax.set_ylabel(METRIC_LABELS[metric])
        ax.grid(True, which="major", alpha=0.3)
        mean_metric = comparison[metric.replace("eval", "global_mean")]
        ax.set_title(
            f"{METRIC_LABELS[metric].split(' (')[0]} (predicting the mean: {mean_metric:.3f})"
        )
    fig.suptitle(
        f"Accuracy against embedding size on {dataset_name(comparison['data'])} "
        "(lower is better; left is smaller)"
    )
    return fig


def plot_error_by_popularity(comparison: dict[str, Any]) -> Figure:
    """Plot each model's eval RMSE per popularity block, users and items side by side."""
    rows = comparison["by_popularity"]
    models = list(dict.fromkeys(row["model"] for row in rows))
    sides = list(dict.fromkeys(row["side"] for row in rows))
    fig = Figure(figsize=(5.5 * len(sides), 4.4), layout="constrained")
    axes = fig.subplots(1, len(sides), squeeze=False)
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
        ax.set_title(f"{side_label(side)}s, most popular first")
        ax.set_ylabel("eval RMSE (stars)")
        ax.legend(fontsize=8)
    fig.suptitle(
        "Where compression costs accuracy: eval RMSE by popularity block, "
        f"{dataset_name(comparison['data'])}"
    )
    return fig


def plot_loss_curves(
    data_provenance: dict[str, Any], **training_histories: dict[str, Any]
) -> Figure:
    """Overlay the models' training and validation RMSE curves (the loss less its L2 terms)."""
    fig = Figure(figsize=(8, 4.8), layout="constrained")
    ax = fig.subplots()
    for index, (name, report) in enumerate(training_histories.items()):
        history = report["history"]
        epochs = range(1, len(history["loss"]) + 1)
        color = f"C{index}"
        ax.plot(epochs, history["rmse"], color=color, linestyle="--", label=f"{name}: train")
        ax.plot(epochs, history["val_rmse"], color=color, marker="o", label=f"{name}: validation")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel("root mean squared error (stars)")
    ax.grid(True, alpha=0.3)
    ax.set_title(f"Training curves on {dataset_name(data_provenance)}")
    ax.legend()
    return fig
