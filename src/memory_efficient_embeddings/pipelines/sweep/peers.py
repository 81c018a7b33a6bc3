"""The sweep's peers on its own split: the global mean, and scikit-surprise's BaselineOnly and SVD.

Each peer is fitted on the sweep's train split (the validation split is left out, as it is from
the sweep's gradient steps), scored on the validation split (``val_*``) and once on the eval split
(``eval_*``), once per sweep seed (SVD's initialisation; the mean and BaselineOnly's ALS are
deterministic, so their seeds agree). Nothing is selected: each peer runs with the options in
``sweep.peers`` (Surprise's own defaults in conf/base).

scikit-surprise is the optional ``benchmark`` extra. Without it the Surprise peers are skipped with
one WARNING, kept as rows that say why, and the reports note it; the global mean needs nothing.

Sizes count per-id weights as float32 values, as the sweep counts its models (Surprise itself
holds float64): SVD with k factors holds k + 1 per id (its vector and its bias), BaselineOnly 1,
the global mean none (one value in all, like a model's global bias, which is not counted either).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd

from memory_efficient_embeddings.modeling.training import error_metrics

logger = logging.getLogger(__name__)

PEER = "peer"  # the peers' technique name in the sweep's reports: marked, not a frontier
BYTES_PER_FLOAT = 4
SURPRISE_MISSING = (
    "scikit-surprise is not installed (the `benchmark` extra: pip install -e '.[benchmark]')"
)
PEER_COLUMNS = [
    "point",
    "technique",
    "settings",
    "seed",
    "embedding_parameters",
    "embedding_bytes_float32",
    "serving_bytes",
    "training_bytes",
    "val_rmse",
    "val_mae",
    "eval_rmse",
    "eval_mae",
    "epochs_run",
    "train_seconds",
    "skipped",
]


def _row(point: str, settings: str, parameters: int | None, seed: int | None) -> dict[str, Any]:
    size = None if parameters is None else BYTES_PER_FLOAT * parameters
    return {
        "point": f"{PEER}({point})",
        "technique": PEER,
        "settings": settings,
        "seed": seed,
        "embedding_parameters": parameters,
        "embedding_bytes_float32": size,
        "serving_bytes": size,
        # Surprise's SGD and ALS keep no optimizer state: training holds the weights only.
        "training_bytes": size,
    }


def _scores(predict: Any, splits: dict[str, pd.DataFrame]) -> dict[str, float]:
    """val_* and eval_* RMSE and MAE of a predictor of (user ids, movie ids) -> ratings."""
    scores = {}
    for prefix, split in (("val", "validation"), ("eval", "eval")):
        frame = splits[split]
        metrics = error_metrics(
            predict(frame["user_id"].to_numpy(), frame["movie_id"].to_numpy()),
            frame["rating"].to_numpy(np.float64),
        )
        scores |= {f"{prefix}_rmse": metrics["rmse"], f"{prefix}_mae": metrics["mae"]}
    return scores


def _global_mean_rows(splits: dict[str, pd.DataFrame], seeds: list[int]) -> list[dict]:
    mean = float(splits["train"]["rating"].to_numpy(np.float64).mean())
    scores = _scores(lambda users, movies: np.full(len(users), mean), splits)
    return [
        _row("global mean", "the train split's mean rating", 0, seed)
        | scores
        | {"epochs_run": 0, "train_seconds": 0.0}
        for seed in seeds
    ]


def _surprise_peers(peers: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(point, settings, Surprise class, its options) of each Surprise peer."""
    baseline = peers["baseline_only"]
    listed = [
        (
            "BaselineOnly",
            f"Surprise BaselineOnly (ALS, {baseline['n_epochs']} epochs)",
            "BaselineOnly",
            {"bsl_options": {"method": "als", **baseline}},
        )
    ]
    svd = peers["svd"]
    for factors in peers["svd_factors"]:
        listed.append(
            (
                f"SVD, {factors} factors",
                f"Surprise SVD, {factors} factors, {svd['n_epochs']} epochs",
                "SVD",
                {"n_factors": factors, **svd},
            )
        )
    return listed


def _fit_surprise(
    kind: str, options: dict[str, Any], splits: dict[str, pd.DataFrame], seed: int
) -> dict[str, Any]:
    """Fit one Surprise peer on the train split; its scores, size and fit seconds."""
    import surprise  # noqa: PLC0415  (optional: checked by the caller)

    train = splits["train"]
    scale = (float(train["rating"].min()), float(train["rating"].max()))
    trainset = surprise.Dataset.load_from_df(
        train[["user_id", "movie_id", "rating"]], surprise.Reader(rating_scale=scale)
    ).build_full_trainset()
    if kind == "SVD":
        algorithm = surprise.SVD(random_state=seed, **options)
        per_id = options["n_factors"] + 1
        epochs = options["n_epochs"]
    else:
        algorithm = surprise.BaselineOnly(verbose=False, **options)
        per_id = 1
        epochs = options["bsl_options"]["n_epochs"]
    start = time.perf_counter()
    algorithm.fit(trainset)
    seconds = time.perf_counter() - start

    def predict(users: np.ndarray, movies: np.ndarray) -> np.ndarray:
        # Surprise's own estimate, clipped to the rating scale; an unknown id falls back to the
        # global mean plus the known side's bias (as the sweep's models fall back to theirs).
        return np.array([algorithm.predict(u, m).est for u, m in zip(users, movies, strict=True)])

    return {
        "parameters": per_id * (trainset.n_users + trainset.n_items),
        "scores": _scores(predict, splits),
        "epochs_run": epochs,
        "train_seconds": round(seconds, 3),
    }


def score_sweep_peers(
    train_ratings: pd.DataFrame,
    validation_ratings: pd.DataFrame,
    eval_ratings: pd.DataFrame,
    sweep: dict[str, Any],
) -> pd.DataFrame:
    """Fit each peer on the train split per sweep seed; score validation, and eval once."""
    peers = sweep.get("peers")
    if peers is None:
        return pd.DataFrame(columns=PEER_COLUMNS)
    splits = {"train": train_ratings, "validation": validation_ratings, "eval": eval_ratings}
    seeds = list(sweep["seeds"])
    rows = _global_mean_rows(splits, seeds)
    listed = _surprise_peers(peers)
    try:
        import surprise  # noqa: F401, PLC0415
    except ImportError:
        logger.warning(
            "Sweep peers: %s, so Surprise's %s are skipped; the global mean is scored.",
            SURPRISE_MISSING,
            ", ".join(point for point, *_ in listed),
        )
        rows += [
            _row(point, settings, None, None) | {"skipped": SURPRISE_MISSING}
            for point, settings, *_ in listed
        ]
        return pd.DataFrame(rows).reindex(columns=PEER_COLUMNS)
    for point, settings, kind, options in listed:
        for seed in seeds:
            fitted = _fit_surprise(kind, options, splits, seed)
            row = _row(point, settings, fitted["parameters"], seed) | fitted["scores"]
            rows.append(
                row | {"epochs_run": fitted["epochs_run"], "train_seconds": fitted["train_seconds"]}
            )
            logger.info(
                "Sweep peer %s seed %d: eval RMSE %.4f (validation %.4f)",
                row["point"],
                seed,
                row["eval_rmse"],
                row["val_rmse"],
            )
    return pd.DataFrame(rows).reindex(columns=PEER_COLUMNS)
