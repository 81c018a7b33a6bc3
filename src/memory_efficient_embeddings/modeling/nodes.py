"""Thin Kedro nodes of the modeling template (assign blocks, build, train, evaluate, plot), of the
layout choice on the validation split, and of the uniform table at the same bytes (size it, fit
and score it)."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from memory_efficient_embeddings.embeddings import (
    build_rating_model,
    embedding_parameter_count,
    with_string_ids,
)
from memory_efficient_embeddings.ingest import dataset_name, side_label
from memory_efficient_embeddings.model_names import UNIFORM_AT_SAME_BYTES
from memory_efficient_embeddings.modeling.layouts import layout_candidates, pick_layout
from memory_efficient_embeddings.modeling.specs import (
    SIDES,
    resolve_embedding_plan,
    uniform_model_at_bytes,
)
from memory_efficient_embeddings.modeling.training import (
    Split,
    encode_split,
    error_metrics,
    fit_and_score,
    fit_rating_model,
    model_inputs,
    score_on_eval,
    size_record,
    uncompiled_copy,
)

logger = logging.getLogger(__name__)


def assign_blocks(
    user_vocabulary: pd.DataFrame,
    movie_vocabulary: pd.DataFrame,
    model: dict[str, Any],
    evaluation: dict[str, Any],
) -> dict[str, Any]:
    """Resolve the model's embedding specs into per-side popularity blocks, dims and sizes."""
    return resolve_embedding_plan(
        user_vocabulary, movie_vocabulary, model, evaluation["popularity_blocks"]
    )


def build_model(embedding_plan: dict[str, Any], model: dict[str, Any]) -> keras.Model:
    """Build the integer-index rating model from its resolved embedding plan."""
    keras.utils.set_random_seed(model["seed"])
    rating_model = build_rating_model(
        num_users=embedding_plan["user_embedding"]["num_ids"],
        num_movies=embedding_plan["movie_embedding"]["num_ids"],
        user_embedding=embedding_plan["user_embedding"]["layer"],
        movie_embedding=embedding_plan["movie_embedding"]["layer"],
        embedding_dim=embedding_plan["embedding_dim"],
        use_biases=model["use_biases"],
        bias_l2=model.get("bias_l2", 0.0),
        # L2 on the looked-up vectors (per rating, as in classic MF): it touches only the rows in
        # the batch, so it keeps gradients row-sparse, unlike weight decay on whole tables.
        embedding_l2=model.get("embedding_l2", 0.0),
        # The plan's layers were sized for this layout (one column wider for in_embedding).
        bias_layout=embedding_plan.get("bias_layout") or "separate",
        output=model["output"],
    )
    rating_model.name = model["name"]
    logger.info(
        "Built %s: %s parameters, %s in embeddings",
        rating_model.name,
        f"{rating_model.count_params():,}",
        f"{embedding_parameter_count(rating_model):,}",
    )
    return rating_model


def train_model(
    rating_model: keras.Model,
    train_ratings: pd.DataFrame,
    validation_ratings: pd.DataFrame,
    user_vocabulary: pd.DataFrame,
    movie_vocabulary: pd.DataFrame,
    training: dict[str, Any],
) -> tuple[keras.Model, dict[str, Any]]:
    """Fit on the train split, selecting on validation; return the string-id model and history."""
    # Ids are encoded once, up front: no text parsing or string lookups inside the training loop.
    report = fit_rating_model(
        rating_model,
        encode_split(train_ratings, user_vocabulary, movie_vocabulary),
        encode_split(validation_ratings, user_vocabulary, movie_vocabulary),
        training,
    )
    string_model = with_string_ids(
        uncompiled_copy(rating_model),
        user_vocabulary["id"].astype(str).tolist(),
        movie_vocabulary["id"].astype(str).tolist(),
    )
    string_model.name = rating_model.name
    return string_model, report


def select_layout(
    train_ratings: pd.DataFrame,
    validation_ratings: pd.DataFrame,
    user_vocabulary: pd.DataFrame,
    movie_vocabulary: pd.DataFrame,
    model: dict[str, Any],
    layouts: dict[str, Any] | None,
    training: dict[str, Any],
    evaluation: dict[str, Any],
) -> tuple[dict[str, Any], pd.DataFrame, dict[str, Any], keras.Model, dict[str, Any]]:
    """Fit each candidate layout as train_model does and keep the lowest validation RMSE."""
    # No eval split here: the choice, like early stopping, reads the validation split only. The
    # winner comes out trained (no refit); a single candidate is just the model's own fit.
    num_ids = len(user_vocabulary) + len(movie_vocabulary)
    fitted, rows = {}, []
    for name, spec in layout_candidates(model, layouts).items():
        plan = assign_blocks(user_vocabulary, movie_vocabulary, spec, evaluation)
        trained, history = train_model(
            build_model(plan, spec),
            train_ratings,
            validation_ratings,
            user_vocabulary,
            movie_vocabulary,
            training,
        )
        fitted[name] = (spec, plan, trained, history | {"layout": name})
        serving = size_record(trained)["serving_bytes"]
        rows.append(
            {
                "layout": name,
                "serving_bytes": serving,
                "bytes_per_id": round(serving / num_ids, 4),
                "floats_per_id": round(serving / 4 / num_ids, 4),
                "val_rmse": history["val_rmse"],
                "best_epoch": history["best_epoch"],
                "epochs_run": history["epochs_run"],
            }
        )
    chosen = pick_layout(rows)
    table = pd.DataFrame(rows).assign(chosen=lambda frame: frame["layout"] == chosen)
    spec, plan, trained, history = fitted[chosen]
    logger.info(
        "%s: layout %s chosen on validation (RMSE %.4f) among %s",
        model["name"],
        chosen,
        history["val_rmse"],
        ", ".join(f"{row['layout']} {row['val_rmse']:.4f}" for row in rows),
    )
    return spec, table, plan, trained, history


def _saved_size_bytes(model: keras.Model) -> int:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "model.keras"
        model.save(path)
        return path.stat().st_size


def evaluate_model(
    model: keras.Model,
    eval_ratings: pd.DataFrame,
    train_ratings: pd.DataFrame,
    training_history: dict[str, Any],
    data_provenance: dict[str, Any],
    split_summary: dict[str, Any],
    embedding_plan: dict[str, Any],
    user_vocabulary: pd.DataFrame,
    movie_vocabulary: pd.DataFrame,
) -> dict[str, Any]:
    """Score the served string-id model once on the eval split, overall and per popularity block."""
    # The served model takes the string ids; popularity blocks group by vocabulary index.
    eval_split = Split(
        {
            "user_id": eval_ratings["user_id"].to_numpy(),
            "movie_id": eval_ratings["movie_id"].to_numpy(),
        },
        eval_ratings["rating"].to_numpy(np.float32),
        model_inputs(eval_ratings, user_vocabulary, movie_vocabulary),
    )
    scores = score_on_eval(
        model, eval_split, {side: embedding_plan[side]["report_blocks"] for side in SIDES}
    )
    targets = eval_split.targets.astype(np.float64)
    global_mean = error_metrics(np.full_like(targets, train_ratings["rating"].mean()), targets)
    sizes = size_record(model)
    metrics = {
        "model": model.name,
        # The candidate layout chosen on validation (models with `layouts`; select_layout).
        **({"layout": training_history["layout"]} if "layout" in training_history else {}),
        # What ids unseen in training read, per side: zeros, or a shared block's trained row.
        "unseen_ids": {SIDES[side]: embedding_plan[side]["unknown_ids"] for side in SIDES},
        **scores,
        "val_rmse": training_history["val_rmse"],
        "val_mae": training_history["val_mae"],
        "global_mean_rmse": global_mean["rmse"],
        "global_mean_mae": global_mean["mae"],
        "total_parameters": int(model.count_params()),
        **sizes,
        "saved_model_bytes": _saved_size_bytes(model),
        "train_seconds": training_history["train_seconds"],
        "epochs_run": training_history["epochs_run"],
        "best_epoch": training_history["best_epoch"],
        "train_samples_per_second": training_history["train_samples_per_second"],
        "train_peak_rss_mib": training_history["peak_rss_mib"],
        "optimizer": training_history["optimizer"],
        "keras_backend": training_history.get("keras_backend"),
        "splits": split_summary,
        "data": data_provenance,
    }
    logger.info(
        "%s: eval RMSE %.4f, MAE %.4f with %s embedding parameters (validation RMSE %.4f)",
        model.name,
        metrics["eval_rmse"],
        metrics["eval_mae"],
        f"{sizes['embedding_parameters']:,}",
        metrics["val_rmse"],
    )
    return metrics


def assign_uniform_at_same_bytes(
    matched_metrics: dict[str, Any],
    user_vocabulary: pd.DataFrame,
    movie_vocabulary: pd.DataFrame,
    model: dict[str, Any],
    evaluation: dict[str, Any],
) -> dict[str, Any]:
    """Plan the widest plain full table whose serving bytes fit the matched model's."""
    target = int(matched_metrics["serving_bytes"])
    num_users, num_movies = len(user_vocabulary), len(movie_vocabulary)
    uniform = uniform_model_at_bytes(model, num_users, num_movies, target, UNIFORM_AT_SAME_BYTES)
    matched = {"model": matched_metrics["model"], "serving_bytes": target}
    if uniform is None:
        smallest = 4 * (num_users + num_movies)  # per-id biases alone, or width 1 without them
        logger.info(
            "%s: no plain table fits in %s bytes (the smallest takes %s)",
            UNIFORM_AT_SAME_BYTES,
            f"{target:,}",
            f"{smallest:,}",
        )
        return {
            "model": UNIFORM_AT_SAME_BYTES,
            "fits": False,
            "matched": matched,
            "smallest_serving_bytes": smallest,
        }
    plan = resolve_embedding_plan(
        user_vocabulary, movie_vocabulary, uniform, evaluation["popularity_blocks"]
    )
    return {**plan, "fits": True, "matched": matched, "model_parameters": uniform}


def fit_uniform_at_same_bytes(
    embedding_plan: dict[str, Any],
    train_ratings: pd.DataFrame,
    validation_ratings: pd.DataFrame,
    eval_ratings: pd.DataFrame,
    user_vocabulary: pd.DataFrame,
    movie_vocabulary: pd.DataFrame,
    training: dict[str, Any],
    data_provenance: dict[str, Any],
    split_summary: dict[str, Any],
) -> dict[str, Any]:
    """Build, fit (selecting on validation) and score once on eval the uniform table's model."""
    record = {
        "model": embedding_plan["model"],
        "fits": embedding_plan["fits"],
        "matched": embedding_plan["matched"],
        "splits": split_summary,
        "data": data_provenance,
    }
    if not embedding_plan["fits"]:
        return record | {"smallest_serving_bytes": embedding_plan["smallest_serving_bytes"]}
    rating_model = build_model(embedding_plan, embedding_plan["model_parameters"])
    splits = {
        name: encode_split(ratings, user_vocabulary, movie_vocabulary)
        for name, ratings in (
            ("train", train_ratings),
            ("validation", validation_ratings),
            ("eval", eval_ratings),
        )
    }
    scores = fit_and_score(
        rating_model,
        splits,
        training,
        report_blocks={side: embedding_plan[side]["report_blocks"] for side in SIDES},
    )
    served = with_string_ids(
        uncompiled_copy(rating_model),
        user_vocabulary["id"].astype(str).tolist(),
        movie_vocabulary["id"].astype(str).tolist(),
    )
    targets = splits["eval"].targets.astype(np.float64)
    global_mean = error_metrics(np.full_like(targets, train_ratings["rating"].mean()), targets)
    per_epoch = ("history", "epoch_seconds")  # in the training report, not the metrics
    return (
        record
        | {key: value for key, value in scores.items() if key not in per_epoch}
        | {
            "embedding_dim": embedding_plan["embedding_dim"],
            "bias_layout": embedding_plan["bias_layout"],
            "total_parameters": int(rating_model.count_params()),
            "saved_model_bytes": _saved_size_bytes(served),
            "global_mean_rmse": global_mean["rmse"],
            "global_mean_mae": global_mean["mae"],
        }
    )


def _byte_count(count: float) -> str:
    """1536 -> "1.5 KiB": bytes as a reader compares them."""
    for size, unit in ((1024**3, "GiB"), (1024**2, "MiB"), (1024, "KiB")):
        if count >= size:
            return f"{count / size:.3g} {unit}"
    return f"{count:.0f} B"


def _storage_text(row: dict[str, Any]) -> str:
    """What a block stores, in a few words: own rows, shared rows, a bias only, or nothing."""
    storage, dims = row["storage"], row["dims"]
    if storage == "bias_only":
        return "bias only"
    if storage == "none":
        return "nothing stored"
    if storage in ("hashed", "quotient_remainder"):
        shared = "hashed" if storage == "hashed" else "QR"
        what = f"dim {dims}" if dims else "bias"
        return f"{what} {shared}\n{row['table_rows']:,} shared rows"
    return f"dim {dims}" + ("" if storage == "own" else f", {storage}")


def plot_popularity_blocks(
    user_vocabulary: pd.DataFrame,
    movie_vocabulary: pd.DataFrame,
    embedding_plan: dict[str, Any],
    data_provenance: dict[str, Any],
) -> Figure:
    """Plot id popularity (rank vs count, log-log) with each block's rows, share, storage, bytes."""
    fig = Figure(figsize=(11, 4.6), layout="constrained")
    axes = fig.subplots(1, 2)
    vocabularies = {"user_embedding": user_vocabulary, "movie_embedding": movie_vocabulary}
    for ax, side in zip(axes, SIDES, strict=True):
        plan = embedding_plan[side]
        counts = vocabularies[side]["train_count"].to_numpy()
        ranks = np.arange(1, len(counts) + 1)
        seen = counts > 0  # log scale: ids with no training rating are left out of the curve
        ax.loglog(ranks[seen], counts[seen], color="C0", linewidth=1.5)
        starts = [0, *plan["boundaries"][:-1]]
        for b, (start, end, row) in enumerate(
            zip(starts, plan["boundaries"], plan["block_table"], strict=True)
        ):
            ax.axvspan(start + 1, end, color=f"C{b + 1}", alpha=0.12)
            if b > 0:
                ax.axvline(start + 0.5, color="grey", linestyle="--", linewidth=0.8)
            ax.text(
                np.sqrt((start + 1) * end),
                0.97 - 0.2 * (b % 2),  # staggered: narrow neighbouring blocks stay readable
                f"{_storage_text(row)}\n{row['rows']:,} ids\n"
                f"{row['rating_share']:.0%} of ratings\n{_byte_count(row['bytes'])}",
                transform=ax.get_xaxis_transform(),
                ha="center",
                va="top",
                fontsize=8,
            )
        rule = plan["rule"] + (f", α {plan['alpha']}" if plan["alpha"] is not None else "")
        side_bytes = sum(row["bytes"] for row in plan["block_table"])
        ax.set_title(
            f"{side_label(SIDES[side])}s: {plan['type']} ({rule}), {_byte_count(side_bytes)}, "
            f"{side_bytes / 4 / plan['num_ids']:.3g} floats per id",
            fontsize=10,
        )
        ax.set_xlabel("popularity rank (log)")
        ax.set_ylabel("training ratings (log)")
        ax.grid(True, which="both", alpha=0.2)
    biases = {
        "separate": "separate bias tables, counted per block",
        "in_embedding": "biases in the embeddings",
        None: "no biases",
    }[embedding_plan.get("bias_layout")]
    fig.suptitle(
        f"{embedding_plan['model']}: id popularity and embedding blocks, "
        f"{dataset_name(data_provenance)} ({biases})"
    )
    return fig


def plot_training_curves(
    training_history: dict[str, Any], data_provenance: dict[str, Any]
) -> Figure:
    """Plot per-epoch train and validation RMSE and MAE (the eval split is scored only once)."""
    history = training_history["history"]
    epochs = np.arange(1, len(history["loss"]) + 1)
    fig = Figure(figsize=(10, 4.2), layout="constrained")
    axes = fig.subplots(1, 2)
    # RMSE, not the loss: the loss also holds the L2 terms, which are no error a user sees.
    for ax, metric, label in ((axes[0], "rmse", "RMSE"), (axes[1], "mae", "MAE")):
        ax.plot(epochs, history[metric], marker="o", label="train")
        ax.plot(epochs, history[f"val_{metric}"], marker="o", label="validation")
        ax.axvline(training_history["best_epoch"], color="grey", linestyle=":", label="best epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.legend()
    fig.suptitle(f"{training_history['model']}: training curves, {dataset_name(data_provenance)}")
    return fig
