"""The synthetic generator: exact shape, scale, determinism, long tail, no hard rank, signal."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from memory_efficient_embeddings.ingest import (
    RELEASES,
    SyntheticConfigError,
    SyntheticSpec,
    generate_ratings,
)
from memory_efficient_embeddings.ingest.synthetic import latent_model, signal_matrix

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


def test_ratings_are_whole_stars_with_the_requested_histogram(ratings):
    values = ratings["rating"].to_numpy()
    assert set(np.unique(values)) == {1.0, 2.0, 3.0, 4.0, 5.0}
    shares = np.bincount(values.astype(int), minlength=6)[1:] / len(values)
    # Stars are cut at score quantiles: each share is the requested one up to ties (1 / 60,000).
    np.testing.assert_allclose(shares, [0.056, 0.108, 0.261, 0.349, 0.226], atol=1e-4)


def test_every_user_has_the_minimum_even_when_most_have_only_that():
    params = {"num_users": 500, "num_movies": 300, "num_ratings": 500 * 25, "seed": 5}
    ratings = generate_ratings(SyntheticSpec.from_params(params, RELEASES["ml-1m"]))
    per_user = ratings.groupby("user_id").size()
    assert len(ratings) == 12_500 and len(per_user) == 500
    assert per_user.min() == 20


def test_long_tail(ratings):
    counts = ratings["movie_id"].value_counts().to_numpy()
    assert counts[: len(counts) // 10].sum() > 0.4 * counts.sum()
    # Real ml-100k: the median movie has 27 ratings for a mean of 59, the 10% quantile 2.
    assert np.median(counts) < 0.6 * counts.mean()
    per_user = ratings.groupby("user_id").size()
    assert per_user.max() > 4 * per_user.median()


def test_popular_movies_are_rated_more_and_higher(ratings):
    model = latent_model(SyntheticSpec.from_params(SMALL, RELEASES["ml-1m"]))
    per_movie = ratings.groupby("movie_id")["rating"].agg(["count", "mean"])
    weight = model.popularity[per_movie.index.to_numpy() - 1]
    top = weight >= np.quantile(weight, 0.9)
    bottom = weight <= np.quantile(weight, 0.5)
    # Counts follow the sampling weights, and popular movies get better ratings (MovieLens:
    # correlation 0.52 between a movie's mean rating and its log count).
    assert per_movie["count"][top].mean() > 10 * per_movie["count"][bottom].mean()
    assert np.corrcoef(np.log(per_movie["count"]), per_movie["mean"])[0, 1] > 0.2


def test_interaction_concentrates_on_popular_movies_and_heavy_users():
    concentrated = {**SMALL, "popularity_interaction": 1.0, "activity_interaction": 1.0}
    flat = {**SMALL, "popularity_interaction": 0.0, "activity_interaction": 0.0}

    def strength(params: dict) -> tuple[float, float, float]:
        spec = SyntheticSpec.from_params(params, RELEASES["ml-1m"])
        model = latent_model(spec)
        movie_norm = np.linalg.norm(model.item_factors, axis=1)
        user_norm = np.linalg.norm(model.user_factors, axis=1)
        popular = model.popularity >= np.quantile(model.popularity, 0.9)
        rare = model.popularity <= np.quantile(model.popularity, 0.5)
        heavy = model.activity >= np.quantile(model.activity, 0.9)
        light = model.activity <= np.quantile(model.activity, 0.5)
        # Per rating (movies weighted by popularity) a movie's factors keep mean square 1 each.
        per_rating = np.average(movie_norm**2, weights=model.popularity) / spec.num_factors
        return (
            movie_norm[popular].mean() / movie_norm[rare].mean(),
            user_norm[heavy].mean() / user_norm[light].mean(),
            per_rating,
        )

    movie_ratio, user_ratio, per_rating = strength(concentrated)
    assert movie_ratio > 3 and user_ratio > 2
    assert per_rating == pytest.approx(1.0, rel=0.05)
    movie_ratio, user_ratio, per_rating = strength(flat)
    assert 0.9 < movie_ratio < 1.1 and 0.9 < user_ratio < 1.1
    assert per_rating == pytest.approx(1.0, rel=0.05)


def _interaction_singular_values(params: dict) -> np.ndarray:
    signal = signal_matrix(latent_model(SyntheticSpec.from_params(params, RELEASES["ml-1m"])))
    # Double centring removes the user and movie biases: what is left is the interaction.
    centred = signal - signal.mean(1, keepdims=True) - signal.mean(0, keepdims=True) + signal.mean()
    return np.linalg.svd(centred, compute_uv=False)


# No per-user scale here: it multiplies the movie bias into a rank-1 term that double centring
# cannot remove, and these tests look at the factor interaction alone. Nor the concentration on
# popular movies and heavy users: on 100 movies it piles the interaction onto a few rows, whose
# weight, not the factors' spectrum, would then set the singular values (tested above).
TINY = {
    "num_users": 120,
    "num_movies": 100,
    "num_ratings": 3000,
    "user_scale_sigma": 0.0,
    "popularity_interaction": 0.0,
    "activity_interaction": 0.0,
}


def test_no_hard_rank():
    values = _interaction_singular_values(TINY)
    leading = values[:40]
    # No cliff: each leading singular value is at least 0.4 times the one before (the first
    # two factors' variances are in ratio 2^-1.5, so about 0.6 is expected),
    assert (leading[1:] / leading[:-1]).min() > 0.4
    # and the signal beyond the 16 leading directions still matters (wider tables keep helping).
    assert (values[16:] ** 2).sum() / (values**2).sum() > 0.05


def test_a_hard_rank_would_show_as_a_cliff():
    # The check above can fail: a rank-8 interaction drops by orders of magnitude after 8.
    values = _interaction_singular_values({**TINY, "num_factors": 8})
    assert values[8] < 1e-4 * values[7]


def _top_share(singular_values: np.ndarray, k: int) -> float:
    return (singular_values[:k] ** 2).sum() / (singular_values**2).sum()


def test_spectrum_decays_as_configured():
    steep = _interaction_singular_values({**TINY, "spectrum_decay": 3.0})
    flat = _interaction_singular_values({**TINY, "spectrum_decay": 0.0})
    assert _top_share(steep, 4) > 0.8
    assert _top_share(flat, 4) < 0.3


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
        {"user_activity_shape": 0},
        {"noise_sd": -0.1},
        {"popularity_curve": [[0.0, 1.0], [0.5, 2.0], [1.0, 0.0]]},  # popularity rising
        {"popularity_curve": [[0.1, 1.0], [1.0, 0.0]]},  # not starting at rank 0
        {"unknown_knob": 1},
        {"max_user_fraction": 2},  # a share of the movies: at most 1
        {"span_s": -1},  # users start within [0, span_s)
        {"max_gap_s": 1},  # gaps drawn in [1, max_gap_s)
    ],
)
def test_impossible_specs_are_refused(override):
    with pytest.raises(SyntheticConfigError):
        generate_ratings(SyntheticSpec.from_params({**SMALL, **override}, RELEASES["ml-1m"]))


@pytest.mark.parametrize(
    ("override", "named"),
    [
        (
            {"interaction_sd": "big"},
            "data.synthetic.interaction_sd is 'big', which is not a number",
        ),
        ({"seed": True}, "data.synthetic.seed is True, which is not an int"),
        ({"num_ratings": 2.5}, "data.synthetic.num_ratings is 2.5, which is not an int"),
        ({"rating_distribution": "abc"}, "data.synthetic.rating_distribution is 'abc'"),
        ({"popularity_curve": [[0.0, "a"], [1.0, 0.0]]}, "data.synthetic.popularity_curve is"),
    ],
)
def test_a_knob_of_the_wrong_type_is_refused_by_name_before_generating(override, named):
    # Before the fix these failed deep in numpy with a TypeError naming no key.
    with pytest.raises(SyntheticConfigError, match=re.escape(named)):
        SyntheticSpec.from_params({**SMALL, **override}, RELEASES["ml-1m"])


def test_an_int_where_a_float_knob_is_expected_is_fine():
    spec = SyntheticSpec.from_params(
        {**SMALL, "noise_sd": 1, "max_user_fraction": 1}, RELEASES["ml-1m"]
    )
    assert spec.noise_sd == 1 and spec.max_user_fraction == 1


@pytest.mark.parametrize("num_movies", [750, 1500, 3000])
def test_sparse_shapes_still_give_every_movie_a_rating(num_movies):
    # Many movies for few ratings: most movies start unrated and must borrow a row.
    params = {"seed": 3, "num_ratings": 3000, "num_users": 150, "num_movies": num_movies}
    ratings = generate_ratings(SyntheticSpec.from_params(params, RELEASES["ml-1m"]))
    assert ratings["movie_id"].nunique() == num_movies
    assert ratings.groupby("user_id").size().min() >= 20
    assert not ratings.duplicated(["user_id", "movie_id"]).any()
