"""Nodes shared by the model pipelines and the sweep: build, train, evaluate, plot."""

from __future__ import annotations

import logging
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import keras
import matplotlib

matplotlib.use("Agg")  # Nodes run headless; never open a window.
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import tensorflow as tf  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from memory_efficient_embeddings.embeddings import (  # noqa: E402
    LazyAdam,
    alpha_power_dims,
    build_rating_model,
    embedding_bytes,
    embedding_parameter_count,
    popularity_blocks,
    with_string_ids,
)
from memory_efficient_embeddings.modeling.resources import ResourceMonitor  # noqa: E402

logger = logging.getLogger(__name__)

OPTIMIZERS = {"adam": keras.optimizers.Adam, "lazy_adam": LazyAdam, "sgd": keras.optimizers.SGD}


class BlocksDoNotFitError(ValueError):
    """Explicit block boundaries that the vocabulary is too small for."""


def assign_blocks(vocabulary: pd.DataFrame, blocks: dict[str, Any]) -> dict[str, Any]:
    """Group ids into popularity blocks and give each block its dimension."""
    frequencies = vocabulary["train_count"].to_numpy()
    boundaries = blocks.get("boundaries")
    if boundaries is not None and max(boundaries) >= len(frequencies):
        raise BlocksDoNotFitError(
            f"blocks.boundaries {list(boundaries)} must be below the vocabulary size "
            f"{len(frequencies)}; use smaller boundaries or blocks.num_blocks for this dataset."
        )
    grouped = popularity_blocks(
        frequencies, boundaries=boundaries, num_blocks=blocks.get("num_blocks")
    )
    if blocks.get("dims") is not None:
        dims = [int(d) for d in blocks["dims"]]
        if len(dims) != len(grouped.sizes):
            raise ValueError(
                f"blocks.dims has {len(dims)} entries but there are {len(grouped.sizes)} blocks."
            )
        rule = "explicit"
    else:
        rule = "alpha_power"
        budget = blocks.get("budget")
        if blocks.get("mean_dim") is not None:
            # A budget that scales with the vocabulary: the memory of a uniform mean_dim table.
            budget = blocks["mean_dim"] * len(frequencies)
        dims = alpha_power_dims(
            grouped.sizes,
            grouped.row_probabilities,
            alpha=blocks["alpha"],
            base_dim=blocks.get("base_dim"),
            budget=budget,
            min_dim=blocks.get("min_dim", 1),
            max_dim=blocks.get("max_dim"),
            power_of_two=blocks.get("power_of_two", False),
        )
    assignment = {
        "rule": rule,
        "alpha": blocks.get("alpha") if rule == "alpha_power" else None,
        "sizes": [int(s) for s in grouped.sizes],
        "boundaries": [int(b) for b in grouped.boundaries],
        "dims": [int(d) for d in dims],
        "query_shares": [round(float(s), 6) for s in grouped.query_shares],
        "row_probabilities": [float(p) for p in grouped.row_probabilities],
    }
    logger.info("Blocks: sizes %s, dims %s (%s)", assignment["sizes"], dims, rule)
    return assignment


def _resolve_embedding_spec(
    spec: dict[str, Any], vocabulary: pd.DataFrame, embedding_l2: float = 0.0
) -> dict[str, Any]:
    """Turn a parameter-file embedding spec into layer arguments for this vocabulary.

    Sizes are given relative to the vocabulary: ``ids_per_bucket`` (hashed and
    quotient-remainder: ``num_buckets = n // ids_per_bucket``) and, for mixed dimensions, a
    ``blocks`` spec that `assign_blocks` turns into block sizes and dims from id popularity.
    """
    spec = dict(spec)
    num_ids = len(vocabulary)
    if embedding_l2:
        # L2 on the looked-up vectors (per rating, as in classic MF): it touches only the rows in
        # the batch, so it keeps gradients row-sparse, unlike weight decay on whole tables.
        spec["activity_regularizer"] = keras.regularizers.L2(embedding_l2)
    ids_per_bucket = spec.pop("ids_per_bucket", None)
    if ids_per_bucket is not None:  # e.g. the recipe's QR rule: num_buckets = n // 50.
        if spec.get("type") not in ("hashed", "quotient_remainder"):
            raise ValueError(f"`ids_per_bucket` does not apply to {spec.get('type')!r} embeddings.")
        spec["num_buckets"] = max(1, num_ids // int(ids_per_bucket))
    if spec.get("type") == "quotient_remainder":
        if spec.pop("quotient_rows_equal_buckets", False):  # The recipe sizes both tables alike.
            spec["quotient_rows"] = max(
                spec["num_buckets"], math.ceil(num_ids / spec["num_buckets"])
            )
    if spec.get("type") == "mixed_dimension":
        if "blocks" not in spec:
            raise ValueError("A mixed_dimension embedding spec needs `blocks` (see assign_blocks).")
        block_assignment = assign_blocks(vocabulary, spec.pop("blocks"))
        spec["block_sizes"] = block_assignment["sizes"]
        spec["block_dims"] = block_assignment["dims"]
    return spec


def build_model(
    user_vocabulary: pd.DataFrame,
    movie_vocabulary: pd.DataFrame,
    model: dict[str, Any],
) -> keras.Model:
    """Build the integer-index rating model that the parameters describe."""
    keras.utils.set_random_seed(model["seed"])
    num_users, num_movies = len(user_vocabulary), len(movie_vocabulary)
    rating_model = build_rating_model(
        num_users=num_users,
        num_movies=num_movies,
        user_embedding=_resolve_embedding_spec(
            model["user_embedding"], user_vocabulary, model.get("embedding_l2", 0.0)
        ),
        movie_embedding=_resolve_embedding_spec(
            model["movie_embedding"], movie_vocabulary, model.get("embedding_l2", 0.0)
        ),
        embedding_dim=model["embedding_dim"],
        use_biases=model["use_biases"],
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


def encode_ids(ratings: pd.DataFrame, vocabulary: pd.DataFrame, column: str) -> np.ndarray:
    """Map string ids to vocabulary indices; unknown ids get the out-of-vocabulary index n."""
    indices = pd.Index(vocabulary["id"]).get_indexer(ratings[column])
    indices[indices < 0] = len(vocabulary)
    return indices.astype(np.int32)


class _EpochTimer(keras.callbacks.Callback):
    """Records each epoch's wall time, validation included."""

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.epoch_seconds: list[float] = []

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch_seconds.append(time.perf_counter() - self._start)


def _callbacks(training: dict[str, Any]) -> list[keras.callbacks.Callback]:
    callbacks: list[keras.callbacks.Callback] = []
    stopping = training.get("early_stopping") or {}
    if stopping.get("enabled", False):
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=stopping["monitor"],
                patience=stopping["patience"],
                min_delta=stopping.get("min_delta", 0.0),
                restore_best_weights=stopping.get("restore_best_weights", True),
            )
        )
    return callbacks


def model_inputs(
    ratings: pd.DataFrame, user_vocabulary: pd.DataFrame, movie_vocabulary: pd.DataFrame
) -> dict[str, np.ndarray]:
    """Integer-encoded model inputs for a ratings table."""
    return {
        "user_id": encode_ids(ratings, user_vocabulary, "user_id"),
        "movie_id": encode_ids(ratings, movie_vocabulary, "movie_id"),
    }


def fit_rating_model(
    rating_model: keras.Model,
    train_data: tuple[dict[str, np.ndarray], np.ndarray],
    eval_data: tuple[dict[str, np.ndarray], np.ndarray],
    training: dict[str, Any],
) -> dict[str, Any]:
    """Compile and fit an integer-id model in place; return its training report.

    With ``training.deterministic`` TensorFlow's op determinism is switched on for the rest of
    the process (TensorFlow has no public switch back), so reruns give identical metrics.
    """
    keras.utils.set_random_seed(training["seed"])
    if training.get("deterministic", True):
        tf.config.experimental.enable_op_determinism()
    # Options for the chosen optimizer live under its own name, e.g. training.lazy_adam.
    optimizer_options = training.get(training["optimizer"]) or {}
    optimizer = OPTIMIZERS[training["optimizer"]](
        learning_rate=training["learning_rate"], **optimizer_options
    )
    rating_model.compile(
        optimizer=optimizer,
        loss=keras.losses.MeanSquaredError(),
        # MAE only, as the recipe: the loss is the MSE, and evaluate_model computes the RMSE.
        metrics=[keras.metrics.MeanAbsoluteError(name="mae")],
        # Several steps per call amortise Python and dispatch overhead at small batch sizes.
        steps_per_execution=training["steps_per_execution"],
        # LazyAdam's row-sparse update deduplicates rows (tf.unique), which XLA cannot compile.
        jit_compile=False,
    )
    timer = _EpochTimer()
    with ResourceMonitor() as monitor:
        history = rating_model.fit(
            *train_data,
            batch_size=training["batch_size"],
            epochs=training["epochs"],
            validation_data=eval_data,
            validation_batch_size=training.get("validation_batch_size", 8192),
            shuffle=True,
            callbacks=[timer, *_callbacks(training)],
            verbose=training.get("verbose", "auto"),
        )
    epochs_run = len(timer.epoch_seconds)
    val_loss = history.history["val_loss"]
    resources = monitor.as_dict()
    report = {
        "history": {name: [float(v) for v in values] for name, values in history.history.items()},
        "epoch_seconds": [round(s, 3) for s in timer.epoch_seconds],
        "epochs_run": epochs_run,
        "best_epoch": int(np.argmin(val_loss)) + 1,
        "train_seconds": resources["seconds"],
        "train_samples_per_second": round(len(train_data[1]) * epochs_run / monitor.seconds, 1),
        "peak_rss_mib": resources["peak_rss_mib"],
        "peak_rss_increase_mib": resources["peak_rss_increase_mib"],
        "model": rating_model.name,
        "optimizer": training["optimizer"],
        "batch_size": training["batch_size"],
    }
    logger.info(
        "Trained %s: %d epochs in %.1f s (best epoch %d, val MAE %.4f)",
        rating_model.name,
        epochs_run,
        monitor.seconds,
        report["best_epoch"],
        history.history["val_mae"][report["best_epoch"] - 1],
    )
    return report


def uncompiled_copy(rating_model: keras.Model) -> keras.Model:
    """A copy with the same weights and no optimizer, for scoring, saving or quantizing."""
    # The optimizer's slots would triple a saved file (m, v and LazyAdam's per-row steps).
    copy = keras.models.clone_model(rating_model)
    copy.set_weights(rating_model.get_weights())
    copy.name = rating_model.name
    return copy


def train_model(
    rating_model: keras.Model,
    train_ratings: pd.DataFrame,
    eval_ratings: pd.DataFrame,
    user_vocabulary: pd.DataFrame,
    movie_vocabulary: pd.DataFrame,
    training: dict[str, Any],
) -> tuple[keras.Model, dict[str, Any]]:
    """Fit on integer-encoded ids and return the string-id model and its training history."""
    # Ids are encoded once, up front: no text parsing or string lookups inside the training loop.
    report = fit_rating_model(
        rating_model,
        (
            model_inputs(train_ratings, user_vocabulary, movie_vocabulary),
            train_ratings["rating"].to_numpy(np.float32),
        ),
        (
            model_inputs(eval_ratings, user_vocabulary, movie_vocabulary),
            eval_ratings["rating"].to_numpy(np.float32),
        ),
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
    training_report: dict[str, Any],
    data_provenance: dict[str, Any],
) -> dict[str, Any]:
    """Score the saved string-id model on the eval split and gather its costs."""
    targets = eval_ratings["rating"].to_numpy(np.float64)
    predictions = model.predict(
        {
            "user_id": eval_ratings["user_id"].to_numpy(dtype=object),
            "movie_id": eval_ratings["movie_id"].to_numpy(dtype=object),
        },
        batch_size=8192,
        verbose=0,
    ).reshape(-1)
    errors = predictions.astype(np.float64) - targets
    global_mean_errors = float(train_ratings["rating"].mean()) - targets
    embedding_parameters = embedding_parameter_count(model)
    metrics = {
        "model": model.name,
        "eval_mse": float(np.mean(errors**2)),
        "eval_rmse": float(np.sqrt(np.mean(errors**2))),
        "eval_mae": float(np.mean(np.abs(errors))),
        "global_mean_rmse": float(np.sqrt(np.mean(global_mean_errors**2))),
        "global_mean_mae": float(np.mean(np.abs(global_mean_errors))),
        "eval_rows": len(targets),
        "total_parameters": int(model.count_params()),
        "embedding_parameters": int(embedding_parameters),
        "embedding_bytes_float32": embedding_bytes(model),
        "saved_model_bytes": _saved_size_bytes(model),
        "train_seconds": training_report["train_seconds"],
        "epochs_run": training_report["epochs_run"],
        "best_epoch": training_report["best_epoch"],
        "train_samples_per_second": training_report["train_samples_per_second"],
        "train_peak_rss_mib": training_report["peak_rss_mib"],
        "optimizer": training_report["optimizer"],
        "data": data_provenance,
    }
    logger.info(
        "%s: eval RMSE %.4f, MAE %.4f with %s embedding parameters",
        model.name,
        metrics["eval_rmse"],
        metrics["eval_mae"],
        f"{embedding_parameters:,}",
    )
    return metrics


def plot_training_curves(training_report: dict[str, Any]) -> plt.Figure:
    """Plot per-epoch training and validation loss and MAE."""
    history = training_report["history"]
    epochs = np.arange(1, len(history["loss"]) + 1)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric, label in ((axes[0], "loss", "MSE"), (axes[1], "mae", "MAE")):
        ax.plot(epochs, history[metric], marker="o", label="train")
        ax.plot(epochs, history[f"val_{metric}"], marker="o", label="eval")
        ax.axvline(training_report["best_epoch"], color="grey", linestyle=":", label="best epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.legend()
    fig.suptitle(f"{training_report['model']}: training curves")
    fig.tight_layout()
    return fig
