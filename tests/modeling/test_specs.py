"""The block-assignment node: blocks follow popularity, dims follow the α rule, sizes add up."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from memory_efficient_embeddings.embeddings import embedding_parameter_count
from memory_efficient_embeddings.modeling.nodes import assign_blocks, build_model
from memory_efficient_embeddings.modeling.specs import BlocksDoNotFitError

EVALUATION = {"popularity_blocks": 3}
BASE_MODEL = {
    "name": "test",
    "seed": 0,
    "embedding_dim": 16,
    "use_biases": True,
    "embedding_l2": 0.0,
    "output": {"activation": "sigmoid", "min_rating": 0.0, "max_rating": 5.0},
    "user_embedding": {"type": "full"},
    "movie_embedding": {"type": "full"},
}

# Seven movies with 100 training ratings in all; cumulative shares 0.5, 0.8, 0.9, 0.95, 0.98,
# 0.99, 1.0. Equal thirds of the ratings: the first block ends at the first id whose cumulative
# share reaches 1/3 (movie_a), the second at the first reaching 2/3 (movie_b): sizes 1, 1, 5.
MOVIES = pd.DataFrame(
    {
        "id": [f"movie_{c}" for c in "abcdefg"],
        "train_count": [50, 30, 10, 5, 3, 1, 1],
    }
)
USERS = pd.DataFrame({"id": [f"user_{i}" for i in range(4)], "train_count": [40, 30, 20, 10]})


def _md_model(**blocks) -> dict:
    return {
        **BASE_MODEL,
        "movie_embedding": {"type": "mixed_dimension", "projection": "pad", "blocks": blocks},
    }


def test_equal_mass_blocks_follow_popularity_and_cover_the_vocabulary() -> None:
    plan = assign_blocks(USERS, MOVIES, _md_model(num_blocks=3, dims=[16, 8, 4]), EVALUATION)
    movies = plan["movie_embedding"]
    assert movies["sizes"] == [1, 1, 5]
    assert sum(movies["sizes"]) == len(MOVIES)
    assert movies["boundaries"] == [1, 2, 7]
    assert movies["query_shares"] == pytest.approx([0.5, 0.3, 0.2])
    # Per-row query probability: the block's share over its rows.
    assert movies["row_probabilities"] == pytest.approx([0.5, 0.3, 0.04])


def test_alpha_rule_dims_match_a_hand_computation() -> None:
    plan = assign_blocks(
        USERS,
        MOVIES,
        _md_model(num_blocks=3, alpha=0.5, base_dim=16, min_dim=1, max_dim=16),
        EVALUATION,
    )
    # λ = 16 / 0.5^0.5 = 22.627; d1 = λ · 0.3^0.5 = 12.39 -> 12; d2 = λ · 0.04^0.5 = 4.53 -> 5.
    assert plan["movie_embedding"]["dims"] == [16, 12, 5]
    assert plan["movie_embedding"]["rule"] == "alpha_power"
    assert plan["movie_embedding"]["alpha"] == 0.5


def test_a_budget_spreads_dims_by_the_alpha_rule() -> None:
    # mean_dim 8 over 7 movies: B = 56 = λ (1·0.5^0.5 + 1·0.3^0.5 + 5·0.04^0.5) = 2.2548 λ,
    # so λ = 24.835 and dims 17.56, 13.60, 4.97 -> capped at 16, then 14 and 5.
    plan = assign_blocks(
        USERS,
        MOVIES,
        _md_model(num_blocks=3, alpha=0.5, mean_dim=8, min_dim=1, max_dim=16),
        EVALUATION,
    )
    assert plan["movie_embedding"]["dims"] == [16, 14, 5]


def test_same_input_gives_the_same_json_plan() -> None:
    model = _md_model(num_blocks=3, alpha=0.3, base_dim=16, min_dim=1, max_dim=16)
    first = assign_blocks(USERS, MOVIES, model, EVALUATION)
    second = assign_blocks(USERS.copy(), MOVIES.copy(), model, EVALUATION)
    assert first == second
    assert json.loads(json.dumps(first)) == first  # a JSON catalog artifact as is


def test_the_plan_counts_the_parameters_the_built_model_holds() -> None:
    model = _md_model(num_blocks=3, dims=[16, 8, 4])
    plan = assign_blocks(USERS, MOVIES, model, EVALUATION)
    # Movies: 1·16 + 1·8 + 5·4 = 44 (zero padding has no weights); users: 4 · 16; biases 4 + 7.
    assert plan["movie_embedding"]["parameter_count"] == 44
    assert plan["user_embedding"]["parameter_count"] == 64
    assert plan["embedding_parameters"] == 44 + 64 + 11
    assert embedding_parameter_count(build_model(plan, model)) == plan["embedding_parameters"]


def test_a_plain_table_is_a_one_block_plan_reported_over_equal_mass_blocks() -> None:
    plan = assign_blocks(USERS, MOVIES, BASE_MODEL, EVALUATION)
    movies = plan["movie_embedding"]
    assert (movies["rule"], movies["sizes"], movies["dims"]) == ("one_block", [7], [16])
    assert movies["report_blocks"] == {
        "source": "equal_mass",
        "boundaries": [1, 2, 7],
        "labels": ["head", "torso", "tail"],
    }


def test_frequency_blocks_are_reported_over_the_models_own_blocks() -> None:
    plan = assign_blocks(USERS, MOVIES, _md_model(boundaries=[3], dims=[16, 4]), EVALUATION)
    report = plan["movie_embedding"]["report_blocks"]
    assert report == {"source": "model", "boundaries": [3, 7], "labels": ["block_0", "block_1"]}


def test_a_null_embedding_dim_takes_the_top_block_dim() -> None:
    model = {**_md_model(num_blocks=3, dims=[12, 8, 4]), "embedding_dim": None}
    plan = assign_blocks(USERS, MOVIES, model, EVALUATION)
    assert plan["embedding_dim"] == 12
    assert plan["user_embedding"]["dims"] == [12]  # the plain side takes the same width


def test_boundaries_beyond_the_vocabulary_name_the_side() -> None:
    with pytest.raises(BlocksDoNotFitError, match=r"test\.movie_embedding\.blocks\.boundaries"):
        assign_blocks(USERS, MOVIES, _md_model(boundaries=[400], dims=[16, 8]), EVALUATION)


def test_a_vocabulary_out_of_popularity_order_is_refused() -> None:
    shuffled = MOVIES.iloc[::-1].reset_index(drop=True)
    with pytest.raises(ValueError, match="sorted by popularity"):
        assign_blocks(USERS, shuffled, _md_model(num_blocks=3, dims=[16, 8, 4]), EVALUATION)


def test_recipe_blocks_on_an_ml_1m_shaped_vocabulary() -> None:
    movies = pd.DataFrame(
        {"id": [f"movie_{i}" for i in range(3706)], "train_count": np.arange(3706, 0, -1)}
    )
    model = _md_model(boundaries=[400, 1700], dims=[64, 32, 16])
    model["embedding_dim"] = 64
    model["movie_embedding"] |= {"projection": "dense", "extra_rows_per_block": 1}
    plan = assign_blocks(USERS, movies, model, EVALUATION)
    movie_plan = plan["movie_embedding"]
    assert movie_plan["sizes"] == [400, 1300, 2006]
    # The recipe's count: (400+1)·64 + (1300+1)·32 + 32·64 + 64 + (2006+1)·16 + 16·64 + 64.
    assert movie_plan["parameter_count"] == 102_608
