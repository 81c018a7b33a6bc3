"""The synthetic generator: exact shape, determinism, long tail and learnable signal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from memory_efficient_embeddings.movielens import (
    RELEASES,
    SyntheticConfigError,
    SyntheticSpec,
    generate_ratings,
)

SMALL = {"num_users": 2000, "num_movies": 1000, "num_ratings": 60_000, "min_ratings_per_user": 20}


@pytest.fixture(scope="module")
def ratings() -> pd.DataFrame:
    return generate_ratings(SyntheticSpec.from_params(SMALL, RELEASES["ml-1m"]))


def test_exact_shape(ratings):
    assert len(ratings) == 60_000
    assert ratings["user_id"].nunique() == 2000
    assert ratings["movie_id"].nunique() == 1000
    assert ratings.groupby("user_id").size().min() >= 20
    assert not ratings.duplicated(["user_id", "movie_id"]).any()
    assert [str(t) for t in ratings.dtypes] == ["int64", "int64", "float32", "int64"]


def test_release_shape_by_default():
    spec = SyntheticSpec.from_params({"seed": 1}, RELEASES["ml-1m"])
    assert (spec.num_users, spec.num_movies, spec.num_ratings) == (6_040, 3_706, 1_000_209)
    assert spec.min_ratings_per_user == 20


def test_deterministic_by_seed(ratings):
    again = generate_ratings(SyntheticSpec.from_params(SMALL, RELEASES["ml-1m"]))
    pd.testing.assert_frame_equal(ratings, again)
    other = generate_ratings(SyntheticSpec.from_params({**SMALL, "seed": 7}, RELEASES["ml-1m"]))
    assert not ratings["rating"].equals(other["rating"])


def test_ratings_are_whole_stars_with_realistic_marginal(ratings):
    values = ratings["rating"].to_numpy()
    assert set(np.unique(values)) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert 3.4 < values.mean() < 3.7
    assert np.isin(values, [3.0, 4.0]).mean() > 0.5


def test_long_tail(ratings):
    counts = ratings["movie_id"].value_counts().to_numpy()
    assert counts[: len(counts) // 10].sum() > 0.4 * counts.sum()
    per_user = ratings.groupby("user_id").size()
    assert per_user.max() > 4 * per_user.median()


def test_timestamps_increase_per_user(ratings):
    assert ratings.groupby("user_id")["timestamp"].apply(lambda t: t.is_monotonic_increasing).all()


def test_learnable_signal(ratings):
    rng = np.random.default_rng(0)
    train = rng.uniform(size=len(ratings)) <= 0.85
    tr, te = ratings[train], ratings[~train]
    mean = tr["rating"].mean()
    user_dev = (tr.groupby("user_id")["rating"].mean() - mean).reindex(te["user_id"]).fillna(0)
    item_dev = (tr.groupby("movie_id")["rating"].mean() - mean).reindex(te["movie_id"]).fillna(0)
    prediction = mean + user_dev.to_numpy() + item_dev.to_numpy()
    truth = te["rating"].to_numpy()
    mae_mean = np.abs(truth - mean).mean()
    mae_biases = np.abs(truth - np.clip(prediction, 1, 5)).mean()
    assert mae_biases < 0.85 * mae_mean


@pytest.mark.parametrize(
    "override",
    [
        {"num_ratings": 30_000},  # fewer than users × minimum
        {"min_ratings_per_user": 1001},  # more than movies
        {"num_ratings": 2000 * 700},  # above the per-user cap
        {"rating_distribution": [0.5, 0.2]},
        {"unknown_knob": 1},
    ],
)
def test_impossible_specs_are_refused(override):
    with pytest.raises(SyntheticConfigError):
        generate_ratings(SyntheticSpec.from_params({**SMALL, **override}, RELEASES["ml-1m"]))


@pytest.mark.parametrize("num_movies", [750, 1500, 3000])
def test_sparse_shapes_still_give_every_movie_a_rating(num_movies):
    # Many movies for few ratings: most movies start unrated and must borrow a row.
    params = {"seed": 3, "num_ratings": 3000, "num_users": 150, "num_movies": num_movies}
    ratings = generate_ratings(SyntheticSpec.from_params(params, RELEASES["ml-1m"]))
    assert ratings["movie_id"].nunique() == num_movies
    assert ratings.groupby("user_id").size().min() >= 20
    assert not ratings.duplicated(["user_id", "movie_id"]).any()
