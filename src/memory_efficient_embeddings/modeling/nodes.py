"""Thin Kedro nodes of the modeling template: assign blocks, build, train, evaluate, plot."""

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
from memory_efficient_embeddings.ingest import dataset_name
from memory_efficient_embeddings.modeling.specs import (
    SIDES,
    resolve_embedding_plan,
)
from memory_efficient_embeddings.modeling.training import (
    Split,
    encode_split,
    error_metrics,
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
    layers = {side: dict(embedding_plan[side]["layer"]) for side in SIDES}
    if model.get("embedding_l2", 0.0):
        # L2 on the looked-up vectors (per rating, as in classic MF): it touches only the rows in
        # the batch, so it keeps gradients row-sparse, unlike weight decay on whole tables.
        for layer in layers.values():
            layer["activity_regularizer"] = keras.regularizers.L2(model["embedding_l2"])
    rating_model = build_rating_model(
        num_users=embedding_plan["user_embedding"]["num_ids"],
        num_movies=embedding_plan["movie_embedding"]["num_ids"],
        user_embedding=layers["user_embedding"],
        movie_embedding=layers["movie_embedding"],
        embedding_dim=embedding_plan["embedding_dim"],
        use_biases=model["use_biases"],
        bias_l2=model.get("bias_l2", 0.0),
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


def plot_popularity_blocks(
    user_vocabulary: pd.DataFrame,
    movie_vocabulary: pd.DataFrame,
    embedding_plan: dict[str, Any],
    data_provenance: dict[str, Any],
) -> Figure:
    """Plot id popularity (rank vs training count, log-log) with each block's range and dim."""
    fig = Figure(figsize=(11, 4.4), layout="constrained")
    axes = fig.subplots(1, 2)
    vocabularies = {"user_embedding": user_vocabulary, "movie_embedding": movie_vocabulary}
    for ax, side in zip(axes, SIDES, strict=True):
        plan = embedding_plan[side]
        counts = vocabularies[side]["train_count"].to_numpy()
        ranks = np.arange(1, len(counts) + 1)
        seen = counts > 0  # log scale: ids with no training rating are left out of the curve
        ax.loglog(ranks[seen], counts[seen], color="C0", linewidth=1.5)
        starts = [0, *plan["boundaries"][:-1]]
        for b, (start, end, dim) in enumerate(
            zip(starts, plan["boundaries"], plan["dims"], strict=True)
        ):
            ax.axvspan(start + 1, end, color=f"C{b + 1}", alpha=0.12)
            if b > 0:
                ax.axvline(start + 0.5, color="grey", linestyle="--", linewidth=0.8)
            ax.text(
                np.sqrt((start + 1) * end),
                0.97 - 0.16 * (b % 2),  # staggered: narrow neighbouring blocks stay readable
                f"dim {dim}\n{end - start:,} ids\n{plan['query_shares'][b]:.0%} of ratings",
                transform=ax.get_xaxis_transform(),
                ha="center",
                va="top",
                fontsize=8,
            )
        rule = plan["rule"] + (f", α {plan['alpha']}" if plan["alpha"] is not None else "")
        ax.set_title(
            f"{SIDES[side]}s: {plan['type']} ({rule}), {plan['parameter_count']:,} parameters",
            fontsize=10,
        )
        ax.set_xlabel("popularity rank (log)")
        ax.set_ylabel("training ratings (log)")
        ax.grid(True, which="both", alpha=0.2)
    fig.suptitle(
        f"{embedding_plan['model']}: id popularity and embedding blocks, "
        f"{dataset_name(data_provenance)}"
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
