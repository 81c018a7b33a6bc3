"""Fit and score: the one path from a built model to its metrics record.

``fit_rating_model`` is the one place a model is fitted: early stopping and best-weight restoring
read the validation split only. ``score_on_eval`` scores the eval split once, after training
(overall, per popularity block, after int8/int4). ``fit_and_score`` joins them into one record in
one vocabulary: ``val_*`` is the validation split (selection only), ``eval_*`` the held-out split
(reported). The model pipelines call the two halves as separate nodes (so the training node never
receives the eval split); the sweep and the benchmarks call ``fit_and_score``. ``score`` is the one
prediction function and ``error_metrics`` the one definition of RMSE and MAE.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import pandas as pd

from memory_efficient_embeddings.embeddings import (
    embedding_bytes,
    embedding_parameter_count,
    serving_bytes,
    training_bytes,
)
from memory_efficient_embeddings.embeddings.cce import CCEReclusterCallback
from memory_efficient_embeddings.embeddings.mlet import fold_if_smaller
from memory_efficient_embeddings.embeddings.models import StringIdModel
from memory_efficient_embeddings.embeddings.optimizers import OPTIMIZERS
from memory_efficient_embeddings.modeling.batches import shuffled_batches
from memory_efficient_embeddings.modeling.progress import AUTO, fit_progress
from memory_efficient_embeddings.modeling.resources import ResourceMonitor
from memory_efficient_embeddings.modeling.specs import SIDES, block_of

logger = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class Split:
    """One split as a model reads it: inputs, float32 targets and vocabulary indices.

    ``inputs`` are what the model takes (indices for the integer model, strings for the served
    one); ``indices`` are the vocabulary indices that popularity blocks group by (the inputs
    themselves when those are indices).
    """

    inputs: dict[str, np.ndarray]
    targets: np.ndarray
    indices: dict[str, np.ndarray] | None = None

    @property
    def block_indices(self) -> dict[str, np.ndarray]:
        return self.inputs if self.indices is None else self.indices

    def __len__(self) -> int:
        return len(self.targets)


def encode_split(
    ratings: pd.DataFrame, user_vocabulary: pd.DataFrame, movie_vocabulary: pd.DataFrame
) -> Split:
    """A ratings table as integer model inputs and float32 targets."""
    return Split(
        model_inputs(ratings, user_vocabulary, movie_vocabulary),
        ratings["rating"].to_numpy(np.float32),
    )


def fit_rating_model(
    rating_model: keras.Model,
    train: Split,
    validation: Split,
    training: dict[str, Any],
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> dict[str, Any]:
    """Compile and fit an integer-id model in place; return its training report.

    The one ``model.fit`` of the project: early stopping and best-weight restoring read the
    validation split (Keras' ``val_*`` metrics); the eval split never reaches it. ``callbacks``
    add observers (a benchmark's per-epoch probe), never selection. With
    ``training.deterministic`` TensorFlow's op determinism is switched on for the rest of the
    process (TensorFlow has no public switch back), so reruns give identical metrics; JAX's XLA
    programs on CPU are deterministic already.

    The backend is Keras' (``KERAS_BACKEND``, see ``keras_backend.py``). On TensorFlow the steps
    run as graphs without XLA: the optimizers' row-sparse updates use ``tf.unique``, which XLA
    cannot compile (and Keras turns XLA off under op determinism anyway). On JAX every step is
    one XLA program (``jit_compile``): JAX has no sparse gradients, so nothing stands against it.
    """
    keras.utils.set_random_seed(training["seed"])
    backend = keras.backend.backend()
    if backend == "tensorflow" and training.get("deterministic", True):
        import tensorflow as tf  # noqa: PLC0415 - only on the TensorFlow backend

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
        jit_compile=backend == "jax",
    )
    timer = _EpochTimer()
    keras_verbose, progress_callbacks = fit_progress(
        training.get("verbose", AUTO), rating_model.name, training["epochs"]
    )
    with ResourceMonitor() as monitor:
        history = rating_model.fit(
            shuffled_batches(train.inputs, train.targets, training["batch_size"], training["seed"]),
            epochs=training["epochs"],
            validation_data=(validation.inputs, validation.targets),
            validation_batch_size=training.get("validation_batch_size", 8192),
            shuffle=False,  # shuffled_batches draws a new order every epoch
            callbacks=[timer, *_callbacks(training), *callbacks, *progress_callbacks],
            verbose=keras_verbose,
        )
    epochs_run = len(timer.epoch_seconds)
    # The best epoch by the metric early stopping watches (the one whose weights it restores).
    monitor_name = (training.get("early_stopping") or {}).get("monitor", "val_rmse")
    monitored = history.history.get(monitor_name, history.history["val_rmse"])
    resources = monitor.as_dict()
    best_epoch = int(np.argmin(monitored)) + 1
    report = {
        "history": {name: [float(v) for v in values] for name, values in history.history.items()},
        "epoch_seconds": [round(s, 3) for s in timer.epoch_seconds],
        "epochs_run": epochs_run,
        "best_epoch": best_epoch,
        # The validation split at the epoch whose weights the model keeps (selection only).
        "val_rmse": float(history.history["val_rmse"][best_epoch - 1]),
        "val_mae": float(history.history["val_mae"][best_epoch - 1]),
        "train_seconds": resources["seconds"],
        "train_samples_per_second": round(len(train) * epochs_run / monitor.seconds, 1),
        "peak_rss_mib": resources["peak_rss_mib"],
        "peak_rss_increase_mib": resources["peak_rss_increase_mib"],
        "model": rating_model.name,
        "keras_backend": backend,
        "optimizer": training["optimizer"],
        "batch_size": training["batch_size"],
    }
    logger.info(
        "Trained %s: %d epochs in %.1f s (best epoch %d, validation RMSE %.4f)",
        rating_model.name,
        epochs_run,
        monitor.seconds,
        best_epoch,
        report["val_rmse"],
    )
    return report


def uncompiled_copy(rating_model: keras.Model) -> keras.Model:
    """A copy with the same weights and no optimizer, for scoring, saving or quantizing."""
    # The optimizer's slots would triple a saved file (m, v and LazyAdam's per-row steps).
    copy = keras.models.clone_model(rating_model)
    copy.set_weights(rating_model.get_weights())
    copy.name = rating_model.name
    return copy


def _count(ids: Any) -> int:
    """How many ids ``ids`` holds (a str or a scalar is one)."""
    return 1 if isinstance(ids, str | bytes) or not hasattr(ids, "__len__") else len(ids)


def score(
    model: keras.Model, user_ids: Any, movie_ids: Any, batch_size: int = 65_536
) -> np.ndarray:
    """Predicted ratings for aligned user and movie ids (strings or indices, as the model takes)."""
    if isinstance(model, StringIdModel) and (_count(user_ids) or _count(movie_ids)):
        # Every id checked once, with errors naming `score`; no pairs score as no predictions.
        ids = model.checked_ids({"user_id": user_ids, "movie_id": movie_ids}, "score")
        user_ids, movie_ids = ids["user_id"], ids["movie_id"]
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


def _worth_quantizing(layer: keras.layers.Layer) -> bool:
    # A bias table (width 1) would hold an int8 value plus a float32 scale per row: 5 bytes
    # instead of 4. Keep it in float32.
    return not (isinstance(layer, keras.layers.Embedding) and layer.output_dim == 1)


def quantization_config(mode: str) -> Any:
    """Keras' config for a quantization mode: int4 with one scale per row, like int8's layout.

    Keras' own int4 default groups 128 columns with an int8 zero point per group and a float32
    column-to-group map per table: a byte more per row, and more than int8 for narrow tables.
    One symmetric scale per row keeps int4 at ``ceil(d/2) + 4`` bytes a row against int8's
    ``d + 4``.
    """
    if mode == "int4":
        return keras.quantizers.Int4QuantizationConfig(block_size=-1)
    return keras.quantizers.Int8QuantizationConfig()


_GC_COLLECT = gc.collect


@contextlib.contextmanager
def _no_collection_per_dropped_table() -> Iterator[None]:
    """Keras' ``Layer.__delattr__`` runs a full ``gc.collect()`` for every float table that
    quantizing drops (to free accelerator buffers sooner): 0.4 s each with TensorFlow loaded and
    0.8 s with JAX (measured), 1.7-11 s per model for int8 and int4, for no gain on a CPU.
    Python's own collector still runs; the real function is restored even if threads overlap."""
    gc.collect = lambda generation=2: 0
    try:
        yield
    finally:
        gc.collect = _GC_COLLECT


def quantized(model: keras.Model, mode: str) -> keras.Model:
    """A copy of the model with its embedding tables quantized after training (int8 or int4)."""
    copy = uncompiled_copy(model)
    with warnings.catch_warnings(), _no_collection_per_dropped_table():
        # Layers without weights (inputs, the score) warn that there is nothing to quantize; CCE,
        # TT-Rec and ROBE layers that they cannot be (they stay float32 and count so).
        warnings.filterwarnings("ignore", message=".*does not have a `quantize` method.*")
        warnings.filterwarnings("ignore", message=".*not quantizable.*")
        warnings.filterwarnings("ignore", message=".*cannot be quantized.*")
        copy.quantize(config=quantization_config(mode), filters=_worth_quantizing)
    return copy


def score_split(model: keras.Model, split: Split, batch_size: int = 65_536) -> dict[str, float]:
    """MSE, RMSE and MAE of the model's predictions on one split."""
    predictions = score(model, split.inputs["user_id"], split.inputs["movie_id"], batch_size)
    return error_metrics(predictions, split.targets)


def score_on_eval(
    model: keras.Model,
    eval_split: Split,
    report_blocks: dict[str, dict[str, Any]] | None = None,
    quantize: Sequence[str] = (),
    batch_size: int = 65_536,
    served: keras.Model | None = None,
) -> dict[str, Any]:
    """Score the eval split once: overall, per popularity block, and after each quantization.

    ``report_blocks`` maps each side (``user_embedding``, ``movie_embedding``) to its plan's
    report blocks; ``quantize`` names post-training modes (int8, int4), each scored and sized on
    the model as served (``served``: a projected table folded where that is smaller, MLET; folded
    here when not given).
    """
    predictions = score(
        model, eval_split.inputs["user_id"], eval_split.inputs["movie_id"], batch_size
    ).astype(np.float64)
    overall = error_metrics(predictions, eval_split.targets)
    record: dict[str, Any] = {
        "eval_mse": overall["mse"],
        "eval_rmse": overall["rmse"],
        "eval_mae": overall["mae"],
        "eval_rows": len(eval_split),
    }
    if report_blocks is not None:
        record["by_popularity"] = {
            SIDES[side]: errors_by_block(
                predictions,
                eval_split.targets,
                eval_split.block_indices[f"{SIDES[side]}_id"],
                report_blocks[side],
            )
            for side in SIDES
        }
    if quantize and served is None:
        served = fold_if_smaller(model)
    for mode in quantize:
        quantized_model = quantized(served, mode)
        scores = score_split(quantized_model, eval_split, batch_size)
        record |= {
            f"serving_bytes_{mode}": serving_bytes(quantized_model),
            f"eval_rmse_{mode}": scores["rmse"],
            f"eval_mae_{mode}": scores["mae"],
        }
    return record


def size_record(model: keras.Model, served: keras.Model | None = None) -> dict[str, int]:
    """Bytes and parameters of the embedding layers: as trained, as served, while training.

    ``serving_bytes`` is the model served in float32 (``served``: a projected table folded into
    a plain one where that is smaller, MLET; folded here when not given); ``training_bytes``
    adds the optimizer's slots.
    """
    served = fold_if_smaller(model) if served is None else served
    sizes = {
        "embedding_parameters": int(embedding_parameter_count(model)),
        "embedding_bytes_float32": int(embedding_bytes(model)),
        "serving_bytes": int(serving_bytes(served)),
    }
    if getattr(model, "optimizer", None) is not None:
        sizes["training_bytes"] = int(training_bytes(model, model.optimizer))
    return sizes


def fit_and_score(
    rating_model: keras.Model,
    splits: dict[str, Split],
    training: dict[str, Any],
    report_blocks: dict[str, dict[str, Any]] | None = None,
    quantize: Sequence[str] = (),
    callbacks: Sequence[keras.callbacks.Callback] = (),
) -> dict[str, Any]:
    """Fit on ``splits["train"]`` selecting on ``splits["validation"]``, then score eval once.

    Returns one record: the training report (``val_rmse`` at the kept epoch, ``best_epoch``,
    ``epochs_run``, timings, history), the eval scores (``eval_*``, per block, quantized) and the
    sizes in bytes. The eval split is touched only after ``fit`` has returned.
    """
    report = fit_rating_model(
        rating_model, splits["train"], splits["validation"], training, callbacks
    )
    served = fold_if_smaller(rating_model)  # once: sized here, quantized in score_on_eval
    eval_scores = score_on_eval(
        rating_model,
        splits["eval"],
        report_blocks,
        quantize,
        training.get("validation_batch_size", 8192),
        served,
    )
    return report | size_record(rating_model, served) | eval_scores
