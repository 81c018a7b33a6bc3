"""Modeling nodes: model building from parameters, training, evaluation and recommendation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from kedro.config import OmegaConfigLoader

from memory_efficient_embeddings.embeddings import embedding_parameter_count, with_string_ids
from memory_efficient_embeddings.modeling.nodes import (
    assign_blocks,
    build_model,
    evaluate_model,
    train_model,
)
from memory_efficient_embeddings.modeling.recommend import recommend, score
from memory_efficient_embeddings.modeling.specs import BlocksDoNotFitError, resolve_blocks
from memory_efficient_embeddings.modeling.training import encode_ids
from memory_efficient_embeddings.settings import CONFIG_LOADER_ARGS
from tests.test_project_run import PROJECT_ROOT


def _parameters(env: str) -> dict:
    # The project's own loader settings, so the tests see parameters exactly as `kedro run` does.
    loader = OmegaConfigLoader(
        str(PROJECT_ROOT / "conf"), **{**CONFIG_LOADER_ARGS, "default_run_env": env}
    )
    return loader["parameters"]


EVALUATION = {"popularity_blocks": 3}


def _build(users: pd.DataFrame, movies: pd.DataFrame, model: dict):
    """The template's two steps: resolve the embedding plan, then build from it."""
    return build_model(assign_blocks(users, movies, model, EVALUATION), model)


def _vocabulary(prefix: str, size: int, rng: np.random.Generator) -> pd.DataFrame:
    counts = np.sort(rng.zipf(1.5, size=size).clip(max=5000))[::-1]
    return pd.DataFrame({"id": [f"{prefix}_{i}" for i in range(size)], "train_count": counts})


@pytest.fixture(scope="module")
def ml_1m_vocabularies() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    return _vocabulary("user", 6040, rng), _vocabulary("movie", 3706, rng)


def test_recipe_environment_reproduces_the_recipe_parameter_counts(ml_1m_vocabularies) -> None:
    users, movies = ml_1m_vocabularies
    params = _parameters("recipe")
    baseline = _build(users, movies, params["baseline"]["model"])
    memory_efficient = _build(users, movies, params["memory_efficient"]["model"])
    movie_layer = memory_efficient.get_layer("movie_embedding")
    assert movie_layer.block_sizes == [400, 1300, 2006]
    assert movie_layer.block_dims == [64, 32, 16]
    assert baseline.count_params() == 623_744
    assert memory_efficient.count_params() == 117_968


def test_base_environment_memory_efficient_model_is_over_5x_smaller(ml_1m_vocabularies) -> None:
    users, movies = ml_1m_vocabularies
    params = _parameters("base")
    baseline = _build(users, movies, params["baseline"]["model"])
    memory_efficient = _build(users, movies, params["memory_efficient"]["model"])
    ratio = embedding_parameter_count(baseline) / embedding_parameter_count(memory_efficient)
    assert ratio >= 5


def test_alpha_rule_gives_smaller_dims_to_rarer_blocks(ml_1m_vocabularies) -> None:
    _, movies = ml_1m_vocabularies
    blocks = resolve_blocks(
        movies["train_count"].to_numpy(),
        {
            "boundaries": [400, 1700],
            "num_blocks": None,
            "dims": None,
            "alpha": 0.4,
            "base_dim": 64,
            "budget": None,
            "min_dim": 1,
            "max_dim": 64,
            "power_of_two": True,
        },
        "movie_embedding",
    )
    assert blocks["rule"] == "alpha_power"
    assert blocks["dims"][0] == 64
    assert blocks["dims"] == sorted(blocks["dims"], reverse=True)
    assert blocks["dims"][-1] < 64
    assert sum(blocks["query_shares"]) == pytest.approx(1.0)


def test_block_boundaries_beyond_the_vocabulary_are_refused(ml_1m_vocabularies) -> None:
    _, movies = ml_1m_vocabularies
    with pytest.raises(
        BlocksDoNotFitError,
        match="movie_embedding.blocks.boundaries.*below the vocabulary size 1000",
    ):
        resolve_blocks(
            movies.head(1000)["train_count"].to_numpy(),
            {"boundaries": [400, 1700], "dims": [64, 32, 16]},
            "movie_embedding",
        )


def test_unknown_ids_encode_to_the_out_of_vocabulary_index() -> None:
    vocabulary = pd.DataFrame({"id": ["user_3", "user_1"], "train_count": [5, 2]})
    ratings = pd.DataFrame({"user_id": ["user_1", "user_9", "user_3"]})
    np.testing.assert_array_equal(encode_ids(ratings, vocabulary, "user_id"), [1, 2, 0])


def test_training_learns_and_evaluation_scores_the_string_model() -> None:
    rng = np.random.default_rng(1)
    users = pd.DataFrame({"id": [f"user_{i}" for i in range(40)], "train_count": 1})
    movies = pd.DataFrame({"id": [f"movie_{i}" for i in range(30)], "train_count": 1})
    user_factor, movie_factor = rng.normal(size=40), rng.normal(size=30)
    u, m = rng.integers(0, 40, 3000), rng.integers(0, 30, 3000)
    ratings = pd.DataFrame(
        {
            "user_id": [f"user_{i}" for i in u],
            "movie_id": [f"movie_{i}" for i in m],
            "rating": np.clip(np.round(3 + user_factor[u] * movie_factor[m]), 1, 5).astype(
                "float32"
            ),
        }
    )
    train, validation, evaluation = (
        ratings.iloc[:2200],
        ratings.iloc[2200:2500],
        ratings.iloc[2500:],
    )
    params = _parameters("base")
    model_params = {**params["baseline"]["model"], "embedding_dim": 8}
    training = {
        **params["training"],
        "epochs": 15,
        "verbose": 0,
        "learning_rate": 0.01,
        "early_stopping": {"enabled": False},
    }
    embedding_plan = assign_blocks(users, movies, model_params, EVALUATION)
    rating_model = build_model(embedding_plan, model_params)
    model, report = train_model(rating_model, train, validation, users, movies, training)
    assert report["history"]["loss"][-1] < report["history"]["loss"][0]
    assert report["epochs_run"] == 15
    splits = {"validation_is_eval": False}
    metrics = evaluate_model(
        model, evaluation, train, report, {"source": "test"}, splits, embedding_plan, users, movies
    )
    assert metrics["eval_rmse"] < metrics["global_mean_rmse"]
    assert metrics["saved_model_bytes"] > 0
    assert metrics["embedding_parameters"] == (40 + 30) * 8 + 40 + 30


def test_recommend_ranks_unseen_movies_for_a_raw_user_id() -> None:
    users = pd.DataFrame({"id": ["user_1", "user_2"], "train_count": 1})
    movies = pd.DataFrame({"id": [f"movie_{i}" for i in range(6)], "train_count": 1})
    params = _parameters("base")
    rating_model = _build(users, movies, {**params["baseline"]["model"], "embedding_dim": 4})
    model = with_string_ids(rating_model, users["id"].tolist(), movies["id"].tolist())
    seen = pd.DataFrame({"user_id": ["user_1", "user_1"], "movie_id": ["movie_0", "movie_3"]})
    top = recommend(model, "user_1", movies, seen_ratings=seen, top_k=3)
    assert len(top) == 3
    assert not set(top["movie_id"]) & {"movie_0", "movie_3"}
    assert top["predicted_rating"].is_monotonic_decreasing
    expected = score(model, ["user_1"] * 3, top["movie_id"].tolist())
    np.testing.assert_allclose(top["predicted_rating"], expected, rtol=1e-6)
    # An id the model never saw is scored through the out-of-vocabulary row instead of failing.
    assert np.isfinite(score(model, ["user_unknown"], ["movie_1"])).all()


def test_embedding_l2_adds_a_regularisation_loss() -> None:
    users = pd.DataFrame({"id": ["user_1", "user_2"], "train_count": 1})
    movies = pd.DataFrame({"id": ["movie_1", "movie_2"], "train_count": 1})
    params = _parameters("base")["baseline"]["model"]
    plain = _build(users, movies, {**params, "embedding_l2": 0.0, "bias_l2": 0.0})
    regularised = _build(users, movies, {**params, "embedding_l2": 0.1, "bias_l2": 0.0})
    inputs = {"user_id": np.array([0, 1], np.int32), "movie_id": np.array([1, 0], np.int32)}
    plain(inputs)
    regularised(inputs)
    assert not plain.losses
    assert float(sum(regularised.losses)) > 0
