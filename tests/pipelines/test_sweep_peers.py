"""The sweep's peers: the global mean and Surprise's BaselineOnly and SVD, checked by numpy."""

from __future__ import annotations

import logging
import sys

import numpy as np
import pandas as pd
import pytest

from memory_efficient_embeddings.pipelines.sweep.peers import (
    PEER_COLUMNS,
    SURPRISE_MISSING,
    score_sweep_peers,
)

PEERS = {
    "svd_factors": [2],
    "svd": {"n_epochs": 5, "lr_all": 0.01, "reg_all": 0.05},
    "baseline_only": {"n_epochs": 4, "reg_u": 3.0, "reg_i": 2.0},
}
SWEEP = {"seeds": [1, 2], "peers": PEERS}


def _ratings(rng: np.random.Generator, rows: int, users: int, movies: int) -> pd.DataFrame:
    user = rng.integers(0, users, rows)
    movie = rng.integers(0, movies, rows)
    rating = np.clip(np.round(3 + 0.1 * user - 0.05 * movie + rng.normal(0, 1, rows)), 1, 5)
    return pd.DataFrame(
        {
            "user_id": [f"user_{u}" for u in user],
            "movie_id": [f"movie_{m}" for m in movie],
            "rating": rating.astype(np.float32),
        }
    )


@pytest.fixture(scope="module")
def splits() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(3)
    train = _ratings(rng, 600, 20, 30).drop_duplicates(["user_id", "movie_id"], keep="last")
    # Held-out rows also name ids the train split never saw (users 20-21, movies 30-31).
    validation = _ratings(rng, 120, 22, 32)
    evaluation = _ratings(rng, 150, 22, 32)
    return {"train": train, "validation": validation, "eval": evaluation}


@pytest.fixture(scope="module")
def peers(splits) -> pd.DataFrame:
    return score_sweep_peers(splits["train"], splits["validation"], splits["eval"], SWEEP)


def _rmse(predictions: np.ndarray, frame: pd.DataFrame) -> float:
    return float(np.sqrt(np.mean((predictions - frame["rating"].to_numpy(np.float64)) ** 2)))


def _rows(peers: pd.DataFrame, point: str) -> pd.DataFrame:
    return peers[peers["point"] == point].sort_values("seed")


def test_one_row_per_peer_and_seed_in_the_listed_columns(peers) -> None:
    assert list(peers.columns) == PEER_COLUMNS
    assert peers["point"].tolist() == [
        "peer(global mean)",
        "peer(global mean)",
        "peer(BaselineOnly)",
        "peer(BaselineOnly)",
        "peer(SVD, 2 factors)",
        "peer(SVD, 2 factors)",
    ]
    assert peers["seed"].tolist() == [1, 2] * 3
    assert set(peers["technique"]) == {"peer"} and peers["skipped"].isna().all()


def test_the_global_mean_by_numpy(peers, splits) -> None:
    mean = splits["train"]["rating"].to_numpy(np.float64).mean()
    rows = _rows(peers, "peer(global mean)")
    for prefix, split in (("val", "validation"), ("eval", "eval")):
        expected = _rmse(np.full(len(splits[split]), mean), splits[split])
        np.testing.assert_allclose(rows[f"{prefix}_rmse"], expected, rtol=1e-12)
        mae = np.mean(np.abs(mean - splits[split]["rating"].to_numpy(np.float64)))
        np.testing.assert_allclose(rows[f"{prefix}_mae"], mae, rtol=1e-12)
    assert (rows["serving_bytes"] == 0).all()  # one value in all, no per-id weights


def _als_baselines(train: pd.DataFrame, options: dict) -> tuple[float, dict, dict]:
    """Biases by alternating least squares, as Surprise documents them (items, then users)."""
    ratings = train["rating"].to_numpy(np.float64)
    mean = ratings.mean()
    user_bias = dict.fromkeys(train["user_id"], 0.0)
    item_bias = dict.fromkeys(train["movie_id"], 0.0)
    for _ in range(options["n_epochs"]):
        for item, rows in train.groupby("movie_id"):
            deviations = rows["rating"].to_numpy(np.float64) - mean - rows["user_id"].map(user_bias)
            item_bias[item] = deviations.sum() / (options["reg_i"] + len(rows))
        for user, rows in train.groupby("user_id"):
            deviations = (
                rows["rating"].to_numpy(np.float64) - mean - rows["movie_id"].map(item_bias)
            )
            user_bias[user] = deviations.sum() / (options["reg_u"] + len(rows))
    return mean, user_bias, item_bias


def test_baseline_only_against_alternating_least_squares_by_numpy(peers, splits) -> None:
    mean, user_bias, item_bias = _als_baselines(splits["train"], PEERS["baseline_only"])
    low, high = splits["train"]["rating"].min(), splits["train"]["rating"].max()
    rows = _rows(peers, "peer(BaselineOnly)")
    for prefix, split in (("val", "validation"), ("eval", "eval")):
        frame = splits[split]
        estimate = (
            mean
            + frame["user_id"].map(user_bias).fillna(0.0).to_numpy()  # unknown: no bias
            + frame["movie_id"].map(item_bias).fillna(0.0).to_numpy()
        )
        expected = _rmse(np.clip(estimate, low, high), frame)
        np.testing.assert_allclose(rows[f"{prefix}_rmse"], expected, rtol=1e-9)
    # One bias per train user and movie, counted as float32.
    ids = splits["train"]["user_id"].nunique() + splits["train"]["movie_id"].nunique()
    assert (rows["embedding_parameters"] == ids).all() and (rows["serving_bytes"] == 4 * ids).all()


def test_svd_per_seed_against_its_factors_by_numpy(peers, splits) -> None:
    surprise = pytest.importorskip("surprise")
    train = splits["train"]
    low, high = float(train["rating"].min()), float(train["rating"].max())
    trainset = surprise.Dataset.load_from_df(
        train[["user_id", "movie_id", "rating"]], surprise.Reader(rating_scale=(low, high))
    ).build_full_trainset()
    rows = _rows(peers, "peer(SVD, 2 factors)")
    for seed, (_, row) in zip((1, 2), rows.iterrows(), strict=True):
        svd = surprise.SVD(n_factors=2, random_state=seed, **PEERS["svd"]).fit(trainset)
        users = {trainset.to_raw_uid(u): u for u in trainset.all_users()}
        items = {trainset.to_raw_iid(i): i for i in trainset.all_items()}
        for prefix, split in (("val", "validation"), ("eval", "eval")):
            frame = splits[split]
            estimates = []
            for user, movie in zip(frame["user_id"], frame["movie_id"], strict=True):
                u, i = users.get(user), items.get(movie)
                estimate = trainset.global_mean
                estimate += svd.bu[u] if u is not None else 0.0
                estimate += svd.bi[i] if i is not None else 0.0
                if u is not None and i is not None:
                    estimate += float(np.dot(svd.pu[u], svd.qi[i]))
                estimates.append(estimate)
            expected = _rmse(np.clip(estimates, low, high), frame)
            assert row[f"{prefix}_rmse"] == pytest.approx(expected, rel=1e-9)
    assert rows["eval_rmse"].nunique() == 2  # the seed reaches the initialisation
    ids = train["user_id"].nunique() + train["movie_id"].nunique()
    assert (rows["embedding_parameters"] == 3 * ids).all()  # 2 factors and a bias per id


def test_without_surprise_the_peers_are_skipped_with_one_warning(splits, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "surprise", None)  # `import surprise` raises ImportError
    with caplog.at_level(logging.WARNING):
        peers = score_sweep_peers(splits["train"], splits["validation"], splits["eval"], SWEEP)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and SURPRISE_MISSING in warnings[0].getMessage()
    assert peers["point"].tolist() == [
        "peer(global mean)",
        "peer(global mean)",
        "peer(BaselineOnly)",
        "peer(SVD, 2 factors)",
    ]
    skipped = peers[peers["skipped"].notna()]
    assert skipped["skipped"].tolist() == [SURPRISE_MISSING] * 2
    assert skipped["eval_rmse"].isna().all() and skipped["serving_bytes"].isna().all()


def test_no_peers_give_an_empty_table_with_its_columns(splits) -> None:
    peers = score_sweep_peers(splits["train"], splits["validation"], splits["eval"], {"seeds": [1]})
    assert peers.empty and list(peers.columns) == PEER_COLUMNS
