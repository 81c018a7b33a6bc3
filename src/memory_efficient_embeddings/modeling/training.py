"""Training helpers shared by the nodes, the sweep and the benchmark: encode ids, fit, score.

`score` is the one scoring function: evaluation, the sweep and the recommender all predict
through it, and `error_metrics` is the one definition of RMSE and MAE.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from memory_efficient_embeddings.embeddings import LazyAdam, RowWiseAdagrad
from memory_efficient_embeddings.embeddings.cce import CCEReclusterCallback
from memory_efficient_embeddings.modeling.batches import shuffled_batches
from memory_efficient_embeddings.modeling.progress import AUTO, fit_progress
from memory_efficient_embeddings.modeling.resources import ResourceMonitor
from memory_efficient_embeddings.modeling.specs import block_of

logger = logging.getLogger(__name__)

OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "lazy_adam": LazyAdam,
    "rowwise_adagrad": RowWiseAdagrad,
    "sgd": keras.optimizers.SGD,
}


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
    if training.get("cce_recluster_epochs"):  # does nothing to a model without CCE layers
        callbacks.append(CCEReclusterCallback(training["cce_recluster_epochs"]))
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
        # The loss holds the regularization terms too, so the RMSE is tracked on its own: it is
        # what early stopping watches and what the time-to-accuracy benchmark reads per epoch.
        metrics=[
            keras.metrics.MeanAbsoluteError(name="mae"),
            keras.metrics.RootMeanSquaredError(name="rmse"),
        ],
        # Several steps per call amortise Python and dispatch overhead at small batch sizes.
        steps_per_execution=training["steps_per_execution"],
        # LazyAdam's and RowWiseAdagrad's row-sparse updates deduplicate rows (tf.unique), which
        # XLA cannot compile (and Keras turns XLA off under op determinism anyway).
        jit_compile=False,
    )
    timer = _EpochTimer()
    keras_verbose, progress_callbacks = fit_progress(
        training.get("verbose", AUTO), rating_model.name, training["epochs"]
    )
    with ResourceMonitor() as monitor:
        history = rating_model.fit(
            shuffled_batches(*train_data, training["batch_size"], training["seed"]),
            epochs=training["epochs"],
            validation_data=eval_data,
            validation_batch_size=training.get("validation_batch_size", 8192),
            shuffle=False,  # shuffled_batches draws a new order every epoch
            callbacks=[timer, *_callbacks(training), *progress_callbacks],
            verbose=keras_verbose,
        )
    epochs_run = len(timer.epoch_seconds)
    # The best epoch by the metric early stopping watches (the one whose weights it restores).
    monitor_name = (training.get("early_stopping") or {}).get("monitor", "val_rmse")
    monitored = history.history.get(monitor_name, history.history["val_rmse"])
    resources = monitor.as_dict()
    report = {
        "history": {name: [float(v) for v in values] for name, values in history.history.items()},
        "epoch_seconds": [round(s, 3) for s in timer.epoch_seconds],
        "epochs_run": epochs_run,
        "best_epoch": int(np.argmin(monitored)) + 1,
        "train_seconds": resources["seconds"],
        "train_samples_per_second": round(len(train_data[1]) * epochs_run / monitor.seconds, 1),
        "peak_rss_mib": resources["peak_rss_mib"],
        "peak_rss_increase_mib": resources["peak_rss_increase_mib"],
        "model": rating_model.name,
        "optimizer": training["optimizer"],
        "batch_size": training["batch_size"],
    }
    logger.info(
        "Trained %s: %d epochs in %.1f s (best epoch %d, val RMSE %.4f)",
        rating_model.name,
        epochs_run,
        monitor.seconds,
        report["best_epoch"],
        history.history["val_rmse"][report["best_epoch"] - 1],
    )
    return report


def uncompiled_copy(rating_model: keras.Model) -> keras.Model:
    """A copy with the same weights and no optimizer, for scoring, saving or quantizing."""
    # The optimizer's slots would triple a saved file (m, v and LazyAdam's per-row steps).
    copy = keras.models.clone_model(rating_model)
    copy.set_weights(rating_model.get_weights())
    copy.name = rating_model.name
    return copy


def score(
    model: keras.Model, user_ids: Any, movie_ids: Any, batch_size: int = 65_536
) -> np.ndarray:
    """Predicted ratings for aligned user and movie ids (strings or indices, as the model takes)."""
    user_ids, movie_ids = np.asarray(user_ids).reshape(-1), np.asarray(movie_ids).reshape(-1)
    if len(user_ids) != len(movie_ids):
        raise ValueError(
            f"score got {len(user_ids)} user ids and {len(movie_ids)} movie ids: it scores "
            "aligned (user, movie) pairs, so both need the same length."
        )
    if user_ids.dtype.kind in "OUS":
        user_ids, movie_ids = user_ids.astype(object), movie_ids.astype(object)
    # Eager calls in batches: `predict` would trace a new function for every model of the sweep.
    batches = [
        keras.ops.convert_to_numpy(
            model(
                {
                    "user_id": user_ids[start : start + batch_size],
                    "movie_id": movie_ids[start : start + batch_size],
                },
                training=False,
            )
        ).reshape(-1)
        for start in range(0, len(user_ids), batch_size)
    ]
    return np.concatenate(batches) if batches else np.zeros(0, np.float32)


def error_metrics(predictions: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """MSE, RMSE and MAE of predictions against targets (float64)."""
    errors = np.asarray(predictions, np.float64) - np.asarray(targets, np.float64)
    mse = float(np.mean(errors**2))
    return {"mse": mse, "rmse": float(np.sqrt(mse)), "mae": float(np.mean(np.abs(errors)))}


def errors_by_block(
    predictions: np.ndarray,
    targets: np.ndarray,
    indices: np.ndarray,
    report_blocks: dict[str, Any],
) -> list[dict[str, Any]]:
    """RMSE, MAE and row count per popularity block of one side; out-of-vocabulary ids last."""
    boundaries = report_blocks["boundaries"]
    blocks = block_of(indices, boundaries)
    starts = [0, *boundaries[:-1]]
    groups = [
        (label, end - start, blocks == b)
        for b, (label, start, end) in enumerate(
            zip(report_blocks["labels"], starts, boundaries, strict=True)
        )
    ]
    if np.any(blocks < 0):
        groups.append(("unseen", 0, blocks < 0))
    rows = []
    for label, num_ids, mask in groups:
        scores = error_metrics(predictions[mask], targets[mask]) if mask.any() else {}
        rows.append(
            {
                "block": label,
                "ids": int(num_ids),
                "eval_rows": int(mask.sum()),
                "eval_rmse": scores.get("rmse"),
                "eval_mae": scores.get("mae"),
            }
        )
    return rows
