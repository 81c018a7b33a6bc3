"""The uniform table at the memory_efficient model's bytes: its width, and its fit and score."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from memory_efficient_embeddings.embeddings import serving_bytes
from memory_efficient_embeddings.modeling.nodes import (
    assign_blocks,
    assign_uniform_at_same_bytes,
    build_model,
    fit_uniform_at_same_bytes,
)
from memory_efficient_embeddings.modeling.specs import SIDES
from memory_efficient_embeddings.modeling.training import encode_split, fit_and_score
from memory_efficient_embeddings.pipelines.reporting.nodes import compare_models

EVALUATION = {"popularity_blocks": 2}
USERS = pd.DataFrame({"id": [f"user_{i}" for i in range(4)], "train_count": [9, 7, 5, 3]})
MOVIES = pd.DataFrame({"id": [f"movie_{i}" for i in range(7)], "train_count": range(7, 0, -1)})
MODEL = {
    "name": "memory_efficient",
    "seed": 3,
    "embedding_dim": None,
    "use_biases": True,
    "bias_layout": "separate",
    "embedding_l2": 0.01,
    "bias_l2": 0.02,
    "output": {"activation": "sigmoid", "min_rating": 0.0, "max_rating": 5.0},
    "user_embedding": {"type": "mixed_dimension", "blocks": {"num_blocks": 2, "dims": [4, 1]}},
    "movie_embedding": {"type": "full"},
}


def _matched(target: int) -> dict:
    return {"model": "memory_efficient", "serving_bytes": target}


def _bytes_at(width: int, use_biases: bool = True) -> int:
    """Serving bytes of the built model, measured (not computed by the sizing rule)."""
    model = {
        **MODEL,
        "name": "probe",
        "use_biases": use_biases,
        "bias_layout": "in_embedding",
        "embedding_dim": width,
        "user_embedding": {"type": "full"},
    }
    return serving_bytes(build_model(assign_blocks(USERS, MOVIES, model, EVALUATION), model))


@pytest.mark.parametrize(("target", "use_biases", "width"), [(500, True, 10), (500, False, 11)])
def test_the_widest_table_that_fits(target: int, use_biases: bool, width: int) -> None:
    # 11 ids, 44 bytes a column: with biases 44 · (10 + 1) = 484 <= 500 < 528.
    plan = assign_uniform_at_same_bytes(
        _matched(target), USERS, MOVIES, {**MODEL, "use_biases": use_biases}, EVALUATION
    )
    assert plan["fits"] and plan["embedding_dim"] == width
    assert plan["model"] == "uniform_at_same_bytes"
    assert plan["model_parameters"]["user_embedding"] == {"type": "full"}
    assert plan["model_parameters"]["seed"] == 3 and plan["model_parameters"]["bias_l2"] == 0.02
    # The matched model's bias layout (a full table's bytes are the same in either).
    assert plan["bias_layout"] == ("separate" if use_biases else None)
    assert _bytes_at(width, use_biases) <= target < _bytes_at(width + 1, use_biases)


def test_a_biases_only_table_is_the_smallest() -> None:
    plan = assign_uniform_at_same_bytes(_matched(50), USERS, MOVIES, MODEL, EVALUATION)
    assert (plan["embedding_dim"], plan["bias_layout"]) == (0, "in_embedding")
    assert _bytes_at(0) == 44  # fits in 50
    none = assign_uniform_at_same_bytes(_matched(43), USERS, MOVIES, MODEL, EVALUATION)
    assert none == {
        "model": "uniform_at_same_bytes",
        "fits": False,
        "matched": _matched(43),
        "smallest_serving_bytes": 44,
    }


def _ratings(seed: int, rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "user_id": [f"user_{i}" for i in rng.integers(0, 4, rows)],
            "movie_id": [f"movie_{i}" for i in rng.integers(0, 7, rows)],
            "rating": rng.integers(1, 6, rows).astype("float32"),
        }
    )


TRAINING = {
    "optimizer": "adam",
    "learning_rate": 0.01,
    "batch_size": 16,
    "epochs": 3,
    "steps_per_execution": 1,
    "early_stopping": {"enabled": True, "monitor": "val_rmse", "patience": 1},
    "seed": 3,
    "verbose": 0,
}


def test_it_trains_and_scores_through_fit_and_score_under_the_same_regime() -> None:
    train, validation, held_out = _ratings(1, 120), _ratings(2, 30), _ratings(3, 30)
    plan = assign_uniform_at_same_bytes(_matched(180), USERS, MOVIES, MODEL, EVALUATION)
    assert plan["embedding_dim"] == 3  # 44 · 4 = 176 <= 180
    metrics = fit_uniform_at_same_bytes(
        plan, train, validation, held_out, USERS, MOVIES, TRAINING, {"source": "x"}, {"s": 1}
    )
    assert metrics["serving_bytes"] == 176 and metrics["embedding_dim"] == 3
    assert metrics["bias_layout"] == "separate"
    assert (metrics["data"], metrics["splits"]) == ({"source": "x"}, {"s": 1})
    assert "history" not in metrics
    # The same model through fit_and_score by hand (deterministic by seed): the same figures.
    model = build_model(plan, plan["model_parameters"])
    splits = {
        name: encode_split(ratings, USERS, MOVIES)
        for name, ratings in (("train", train), ("validation", validation), ("eval", held_out))
    }
    blocks = {side: plan[side]["report_blocks"] for side in SIDES}
    expected = fit_and_score(model, splits, TRAINING, report_blocks=blocks)
    for key in ("val_rmse", "eval_rmse", "eval_mae", "best_epoch", "embedding_parameters"):
        assert metrics[key] == expected[key], key
    # The training mean on eval, by numpy.
    mean_rmse = np.sqrt(np.mean((held_out["rating"] - train["rating"].mean()) ** 2))
    assert metrics["global_mean_rmse"] == pytest.approx(mean_rmse, rel=1e-6)
    # The comparison takes the record as it is.
    matched = {**metrics, "model": "memory_efficient", "serving_bytes": 180}
    comparison = compare_models(
        "memory_efficient", uniform_at_same_bytes=metrics, memory_efficient=matched
    )
    assert comparison["uniform_at_same_bytes"]["embedding_dim"] == 3


def test_nothing_to_train_when_nothing_fits() -> None:
    plan = assign_uniform_at_same_bytes(_matched(10), USERS, MOVIES, MODEL, EVALUATION)
    empty = pd.DataFrame(columns=["user_id", "movie_id", "rating"])
    metrics = fit_uniform_at_same_bytes(plan, empty, empty, empty, USERS, MOVIES, TRAINING, {}, {})
    assert metrics == {
        "model": "uniform_at_same_bytes",
        "fits": False,
        "matched": _matched(10),
        "splits": {},
        "data": {},
        "smallest_serving_bytes": 44,
    }
