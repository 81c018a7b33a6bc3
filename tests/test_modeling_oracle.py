"""Every number the model pipelines report, on tiny models whose predictions are known by hand.

Zero-initialised embedding tables make every dot product 0, so a model predicts its biases (linear
output) or 5 · sigmoid(0) = 2.5 (the recipe's output) whatever it is trained on: the metrics then
have closed forms.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from memory_efficient_embeddings.embeddings import (
    EMBEDDING_TYPES,
    TTEmbedding,
    build_rating_model,
    embedding_bytes,
    embedding_parameter_count,
    with_string_ids,
)
from memory_efficient_embeddings.modeling.nodes import assign_blocks, build_model, evaluate_model
from memory_efficient_embeddings.modeling.recommend import recommend
from memory_efficient_embeddings.modeling.specs import BlocksDoNotFitError, resolve_blocks
from memory_efficient_embeddings.modeling.training import encode_split, fit_rating_model
from memory_efficient_embeddings.pipelines.sweep.plan import assign_sweep_blocks
from memory_efficient_embeddings.pipelines.sweep.runs import run_sweep

ZEROS = {"type": "full", "embeddings_initializer": "zeros"}
EVALUATION = {"popularity_blocks": 3}


def _vocabulary(prefix: str, size: int) -> pd.DataFrame:
    return pd.DataFrame(
        {"id": [f"{prefix}{i}" for i in range(size)], "train_count": range(size, 0, -1)}
    )


USERS, MOVIES = _vocabulary("u", 2), _vocabulary("m", 6)


def _model_params(**overrides) -> dict:
    params = {
        "name": "tiny",
        "seed": 0,
        "user_embedding": ZEROS,
        "movie_embedding": ZEROS,
        "embedding_dim": 2,
        "use_biases": True,
        "output": {"activation": "linear"},
    }
    return {**params, **overrides}


def _build(params: dict, users: pd.DataFrame = USERS, movies: pd.DataFrame = MOVIES):
    """The modeling pipeline's two nodes: resolve the embedding plan, then build from it."""
    return build_model(assign_blocks(users, movies, params, EVALUATION), params)


def _biased_model(user_bias: list[float], movie_bias: list[float]):
    """String-id model predicting user_bias[u] + movie_bias[m]."""
    model = _build(_model_params())
    for layer, values in (("user_bias", user_bias), ("movie_bias", movie_bias)):
        (table,) = model.get_layer(layer).get_weights()
        assert table.shape == (len(values), 1)
        model.get_layer(layer).set_weights([np.asarray(values, np.float32)[:, None]])
    string_model = with_string_ids(model, USERS["id"].tolist(), MOVIES["id"].tolist())
    string_model.name = "tiny"
    return string_model


def _ratings(rows: list[tuple[str, str, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user_id", "movie_id", "rating"]).astype(
        {"rating": "float32"}
    )


def test_evaluation_metrics_by_hand() -> None:
    model = _biased_model([0.5, 1.0], [3.0, 2.0, 1.0, 0.0, 0.0, 0.0])
    # Predictions 3.5, 2.0, 2.5, 4.0 against 4, 1, 3, 5: errors -0.5, 1, -0.5, -1.
    evaluation = _ratings([("u0", "m0", 4), ("u1", "m2", 1), ("u0", "m1", 3), ("u1", "m0", 5)])
    train = _ratings([("u0", "m0", r) for r in (1, 2, 3, 4, 5, 3)])  # mean 3
    report = {
        "train_seconds": 1.5,
        "epochs_run": 4,
        "best_epoch": 2,
        "val_rmse": 0.9,
        "val_mae": 0.7,
        "train_samples_per_second": 10.0,
        "peak_rss_mib": 100.0,
        "optimizer": "adam",
    }
    plan = assign_blocks(USERS, MOVIES, _model_params(), EVALUATION)
    splits = {"validation_is_eval": False}
    metrics = evaluate_model(
        model, evaluation, train, report, {"source": "test"}, splits, plan, USERS, MOVIES
    )
    assert metrics["eval_mse"] == pytest.approx(0.625, abs=1e-6)
    assert metrics["eval_rmse"] == pytest.approx(math.sqrt(0.625), abs=1e-6)
    assert metrics["eval_mae"] == pytest.approx(0.75, abs=1e-6)
    # The training mean (3) against 4, 1, 3, 5: errors -1, 2, 0, -2.
    assert metrics["global_mean_rmse"] == pytest.approx(1.5, abs=1e-9)
    assert metrics["global_mean_mae"] == pytest.approx(1.25, abs=1e-9)
    assert metrics["eval_rows"] == 4
    # Tables: 2 users and 6 movies at width 2, plus one bias per id; one global bias.
    assert metrics["embedding_parameters"] == (2 + 6) * 2 + 2 + 6
    assert metrics["embedding_bytes_float32"] == 4 * 24
    assert metrics["total_parameters"] == 25
    assert (metrics["best_epoch"], metrics["epochs_run"]) == (2, 4)
    assert metrics["train_seconds"] == 1.5
    assert metrics["model"] == "tiny"
    assert metrics["data"] == {"source": "test"}
    assert metrics["splits"] == splits
    # What selection read, passed through under its own name, never mixed with eval.
    assert (metrics["val_rmse"], metrics["val_mae"]) == (0.9, 0.7)
    # Full tables are reported over equal-rating-mass blocks. Users (counts 2, 1): u0 | u1.
    # Movies (counts 6..1, 21 in all; cumulative 6, 11, 15, 18, 20, 21): the first block ends
    # where the share reaches 1/3 (11/21, m1), the second at 2/3 (15/21, m2): head m0-m1,
    # torso m2, tail m3-m5.
    by_popularity = metrics["by_popularity"]
    assert list(by_popularity) == ["user", "movie"]

    def block(label, ids, rows, rmse, mae):
        return {"block": label, "ids": ids, "eval_rows": rows, "eval_rmse": rmse, "eval_mae": mae}

    approx = pytest.approx
    # u0 rows: errors -0.5, -0.5; u1 rows: 1, -1.
    assert by_popularity["user"] == [
        block("block_0", 1, 2, approx(0.5, abs=1e-6), approx(0.5, abs=1e-6)),
        block("block_1", 1, 2, approx(1.0, abs=1e-6), approx(1.0, abs=1e-6)),
    ]
    # Head (m0, m1, m0): errors -0.5, -0.5, -1, MSE 1.5 / 3; torso (m2): 1; tail: no eval rows.
    assert by_popularity["movie"] == [
        block("head", 2, 3, approx(math.sqrt(0.5), abs=1e-6), approx(2 / 3, abs=1e-6)),
        block("torso", 1, 1, approx(1.0, abs=1e-6), approx(1.0, abs=1e-6)),
        block("tail", 3, 0, None, None),
    ]


def test_recommend_returns_the_k_highest_unseen_movies_in_order() -> None:
    model = _biased_model([0.0, 0.0], [0.1, 0.9, 0.5, -0.3, 0.7, 0.2])
    seen = pd.DataFrame({"user_id": ["u0", "u1"], "movie_id": ["m1", "m4"]})
    top = recommend(model, "u0", MOVIES, seen_ratings=seen, top_k=3)
    assert top["movie_id"].tolist() == ["m4", "m2", "m5"]  # m1 (0.9) was seen by u0
    np.testing.assert_allclose(top["predicted_rating"], [0.7, 0.5, 0.2], rtol=1e-6)
    every = recommend(model, "u1", MOVIES, seen_ratings=seen, top_k=10)
    assert every["movie_id"].tolist() == ["m1", "m2", "m5", "m0", "m3"]
    assert recommend(model, "u1", MOVIES, top_k=1)["movie_id"].tolist() == ["m1"]


def test_recommend_breaks_ties_in_vocabulary_order() -> None:
    model = _biased_model([0.0, 0.0], [0.5, 0.5, 0.9, 0.5, 0.0, 0.0])
    assert recommend(model, "u0", MOVIES, top_k=4)["movie_id"].tolist() == ["m2", "m0", "m1", "m3"]


def _training(**overrides) -> dict:
    training = {
        "seed": 0,
        "optimizer": "adam",
        "learning_rate": 0.1,
        "batch_size": 64,
        "epochs": 5,
        "steps_per_execution": 1,
        "early_stopping": {"enabled": False},
        "verbose": 0,
    }
    return {**training, **overrides}


def _fit(train_rating: float, validation_rating: float, training: dict) -> dict:
    # Only the biases learn (the tables stay at zero): predictions move towards train_rating.
    model = _build(_model_params())
    train = _ratings([("u0", "m0", train_rating), ("u1", "m1", train_rating)])
    validation = _ratings([("u0", "m0", validation_rating), ("u1", "m1", validation_rating)])
    return fit_rating_model(
        model,
        encode_split(train, USERS, MOVIES),
        encode_split(validation, USERS, MOVIES),
        training,
    )


def test_best_epoch_is_the_last_while_validation_loss_keeps_falling() -> None:
    report = _fit(5.0, 5.0, _training())
    val_loss = report["history"]["val_loss"]
    assert all(later < earlier for earlier, later in zip(val_loss, val_loss[1:], strict=False))
    assert (report["epochs_run"], report["best_epoch"]) == (5, 5)
    assert len(report["epoch_seconds"]) == 5


def test_best_epoch_is_the_first_when_validation_loss_only_rises_and_early_stopping_stops() -> None:
    stopping = {"enabled": True, "monitor": "val_loss", "patience": 2}
    report = _fit(5.0, 0.0, _training(early_stopping=stopping))
    assert report["best_epoch"] == 1
    assert report["epochs_run"] == 3  # the best epoch and `patience` more
    assert len(report["history"]["val_loss"]) == 3


def test_sweep_scores_rmse_and_mae_by_hand_and_skips_points_whose_blocks_do_not_fit() -> None:
    # The recipe's output on all-zero tables: every prediction is 2.5, trained or not.
    constant = _model_params(use_biases=False, output={"activation": "sigmoid"})
    blocks = {"type": "mixed_dimension", "blocks": {"boundaries": [10], "dims": [2, 1]}}
    sweep = {"seeds": [3], "quantize": None, "training": {"epochs": 1}}
    plan = [
        {"point": "zeros", "technique": "full", "settings": "", "model": constant},
        {
            "point": "too big",
            "technique": "md",
            "settings": "",
            "model": {**constant, "movie_embedding": blocks},
        },
    ]
    train = _ratings([("u0", "m0", 4), ("u1", "m1", 2)])
    validation = _ratings([("u0", "m1", 3), ("u1", "m0", 4.5)])
    evaluation = _ratings([("u0", "m0", 1), ("u1", "m1", 2), ("u0", "m2", 5), ("u1", "m3", 5)])
    embedding_plans = assign_sweep_blocks(plan, USERS, MOVIES, EVALUATION)
    runs = run_sweep(
        plan, embedding_plans, train, validation, evaluation, USERS, MOVIES, _training(), sweep
    )
    scored = runs.set_index("point").loc["zeros"]
    # Eval errors 1.5, 0.5, -2.5, -2.5: MSE 3.75, MAE 1.75.
    assert scored["eval_rmse"] == pytest.approx(math.sqrt(3.75), abs=1e-6)
    assert scored["eval_mae"] == pytest.approx(1.75, abs=1e-6)
    # Validation errors -0.5, -2: MSE 2.125, MAE 1.25 (what selection read).
    assert scored["val_rmse"] == pytest.approx(math.sqrt(2.125), abs=1e-6)
    assert scored["val_mae"] == pytest.approx(1.25, abs=1e-6)
    assert scored["embedding_parameters"] == (2 + 6) * 2
    assert scored["embedding_bytes_float32"] == 4 * 16
    assert (scored["seed"], scored["epochs_run"], scored["best_epoch"]) == (3, 1, 1)
    assert not [column for column in runs.columns if "int8" in column]
    skipped = runs.set_index("point").loc["too big", "skipped"]
    assert skipped.startswith(
        "tiny.movie_embedding.blocks.boundaries [10] must be below the vocabulary size 6"
    )
    assert "failed" not in runs


def test_a_misconfigured_sweep_point_names_itself() -> None:
    plan = [
        {
            "point": "bad(x=1)",
            "technique": "full",
            "settings": "x=1",
            "model": _model_params(user_embedding={**ZEROS, "ids_per_bucket": 2}),
        }
    ]
    # Caught while resolving the plans, before anything trains.
    with pytest.raises(ValueError) as info:
        assign_sweep_blocks(plan, USERS, MOVIES, EVALUATION)
    assert str(info.value) == (
        "Sweep point bad(x=1) is misconfigured: tiny.user_embedding: `ids_per_bucket` does not "
        "apply to 'full'."
    )


def test_a_registered_type_needs_no_list_in_specs(monkeypatch) -> None:
    # The plan reads which spec keys apply, and which sizes to record, from the layer class.
    monkeypatch.setitem(EMBEDDING_TYPES, "tensor_train", TTEmbedding)
    params = _model_params(movie_embedding={"type": "tensor_train", "budget_dim": 2})
    movie = assign_blocks(USERS, MOVIES, params, EVALUATION)["movie_embedding"]
    assert movie["layer"] == {"type": "tensor_train", "parameter_budget": 12}
    assert movie["layer_sizes"] == {"tt_rank": 1}  # 8 weights at rank 1, 20 at rank 2


@pytest.mark.parametrize(
    ("movie_embedding", "error", "message"),
    [
        (
            {"type": "tt"},
            ValueError,
            r"^Unknown embedding type 'tt'; valid types: \['cce', 'dhe', 'full', ",
        ),
        ({}, ValueError, r"^tiny.movie_embedding needs a `type`.$"),
        ({"type": "full", "num_ids": 3}, ValueError, r"^`num_ids` is set by the model, not by "),
        ({"type": "full", "output_dim": 3}, ValueError, "^`output_dim` is set by the model"),
        ({"type": "full", "name": "x"}, ValueError, "^`name` is set by the model"),
        (
            {"type": "projected", "ids_per_bucket": 2},
            ValueError,
            "^tiny.movie_embedding: `ids_per_bucket` does not apply to 'projected'.$",
        ),
        (
            {"type": "mixed_dimension"},
            ValueError,
            "^tiny.movie_embedding: a mixed_dimension spec needs `blocks`.$",
        ),
        (
            {"type": "mixed_dimension", "blocks": {"boundaries": [6], "dims": [2, 1]}},
            BlocksDoNotFitError,
            r"^tiny.movie_embedding.blocks.boundaries \[6\] must be below the vocabulary size 6; use smaller "
            "boundaries or blocks.num_blocks for this dataset.$",
        ),
        (
            {"type": "mixed_dimension", "blocks": {"boundaries": [2], "dims": [2, 1, 1]}},
            ValueError,
            r"^tiny.movie_embedding.blocks.dims has 3 entries but there are 2 blocks.$",
        ),
    ],
)
def test_embedding_spec_errors_say_what_is_wrong(movie_embedding, error, message) -> None:
    with pytest.raises(error, match=message):
        _build(_model_params(movie_embedding=movie_embedding))


def test_ids_per_bucket_sizes_hashed_and_quotient_remainder_tables() -> None:
    users, movies = _vocabulary("u", 10), _vocabulary("m", 7)
    hashed = {"type": "hashed", "ids_per_bucket": 3}  # 10 // 3 = 3 buckets
    qr = {"type": "quotient_remainder", "ids_per_bucket": 2, "quotient_rows_equal_buckets": True}
    model = _build(
        _model_params(user_embedding=hashed, movie_embedding=qr, use_biases=False, embedding_dim=4),
        users,
        movies,
    )
    assert model.get_layer("user_embedding").num_buckets == 3
    # 7 // 2 = 3 buckets; both tables get max(3, ceil(7 / 3)) = 3 rows.
    assert embedding_parameter_count(model) == 3 * 4 + (3 + 3) * 4
    huge = {"type": "hashed", "ids_per_bucket": 50}  # never fewer than one bucket
    model = _build(_model_params(user_embedding=huge, use_biases=False), users, movies)
    assert model.get_layer("user_embedding").num_buckets == 1


def test_resolve_blocks_by_hand() -> None:
    # Counts 8, 4, 2, 1, 1 (16 in all); blocks [0, 1), [1, 3), [3, 5).
    counts = np.array([8, 4, 2, 1, 1])

    def assign_blocks(frequencies, blocks):
        return resolve_blocks(frequencies, blocks, "tiny.movie_embedding")

    # α = 1 with a budget: d_i = B · p_i, p = [8/16, 6/32, 2/32]; B = mean_dim · 5 = 20.
    budget = assign_blocks(counts, {"boundaries": [1, 3], "alpha": 1.0, "mean_dim": 4})
    assert budget == {
        "rule": "alpha_power",
        "alpha": 1.0,
        "sizes": [1, 2, 2],
        "boundaries": [1, 3, 5],
        "dims": [10, 4, 1],  # 10, 3.75, 1.25
        "rule_dims": [10.0, 3.75, 1.25],
        "storage": ["own", "own", "own"],
        "buckets": [0, 0, 0],
        "query_shares": [0.5, 0.375, 0.125],
        "row_probabilities": [0.5, 0.1875, 0.0625],
    }
    # α = 0.5 from a base dim: 8 · sqrt(p_i / p_0) = 8, 4.90, 2.83.
    base = assign_blocks(counts, {"boundaries": [1, 3], "alpha": 0.5, "base_dim": 8})
    assert base["dims"] == [8, 5, 3]
    explicit = assign_blocks(counts, {"num_blocks": 2, "dims": [6, 2]})
    assert (explicit["rule"], explicit["alpha"], explicit["sizes"], explicit["dims"]) == (
        "explicit",
        None,
        [1, 4],
        [6, 2],
    )


def test_embedding_parameters_and_bytes_by_hand_for_compact_tables() -> None:
    model = build_rating_model(
        num_users=10,
        num_movies=5,
        user_embedding={"type": "quotient_remainder", "num_buckets": 3},  # 4 + 3 rows
        movie_embedding={"type": "mixed_dimension", "block_sizes": [2, 3], "block_dims": [4, 2]},
        embedding_dim=4,
        use_biases=True,
    )
    # QR: (4 + 3) · 4; MD: 2 · 4 + 3 · 2 + a 2→4 projection with bias (12); biases 10 + 5.
    assert embedding_parameter_count(model) == 28 + 26 + 15
    assert embedding_bytes(model) == 4 * (28 + 26 + 15)
    assert model.count_params() == 28 + 26 + 15 + 1  # and the global bias


def test_embedding_plan_sizes_and_report_blocks_by_hand() -> None:
    # Users: a full table, 2 ids at width 2 -> 4 parameters, reported over equal-mass blocks
    # (counts 2, 1: u0 | u1). Movies (counts 6..1, 21 in all): explicit blocks [0, 2) at dim 2
    # and [2, 6) at dim 1 with a dense 1 -> 2 projection with bias: 2·2 + 4·1 + (1·2 + 2) = 12.
    # Biases: one per id, 2 + 6.
    blocks = {"boundaries": [2], "dims": [2, 1]}
    params = _model_params(movie_embedding={"type": "mixed_dimension", "blocks": blocks})
    plan = assign_blocks(USERS, MOVIES, params, EVALUATION)
    users, movies = plan["user_embedding"], plan["movie_embedding"]
    assert (plan["model"], plan["embedding_dim"]) == ("tiny", 2)
    assert (users["rule"], users["sizes"], users["dims"], users["parameter_count"]) == (
        "one_block",
        [2],
        [2],
        4,
    )
    assert users["report_blocks"] == {
        "source": "equal_mass",
        "boundaries": [1, 2],
        "labels": ["block_0", "block_1"],
    }
    assert (movies["rule"], movies["sizes"], movies["dims"], movies["parameter_count"]) == (
        "explicit",
        [2, 4],
        [2, 1],
        12,
    )
    # Shares 11/21 and 10/21; per row 11/42 and 10/84.
    assert movies["query_shares"] == [0.52381, 0.47619]
    assert movies["row_probabilities"] == pytest.approx([11 / 42, 10 / 84], rel=1e-12)
    assert movies["report_blocks"] == {
        "source": "model",
        "boundaries": [2, 6],
        "labels": ["block_0", "block_1"],
    }
    assert (plan["bias_parameters"], plan["embedding_parameters"]) == (8, 4 + 12 + 8)
    # The built model holds exactly what the plan counted.
    assert embedding_parameter_count(build_model(plan, params)) == 24
