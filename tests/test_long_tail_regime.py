"""benchmarks/long_tail_regime.py: its Ciao reader, grouping, prototypes and one tiny run."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import scipy.io

from memory_efficient_embeddings.modeling.nodes import assign_blocks, build_model
from memory_efficient_embeddings.modeling.training import Split
from memory_efficient_embeddings.parameters import ParameterError

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def regime():
    sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(
        "long_tail_regime", BENCHMARKS / "long_tail_regime.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["long_tail_regime"] = module
    spec.loader.exec_module(module)
    return module


def _write_ciao(path: Path, rows: list[list[int]]) -> Path:
    # Ciao's columns: user, item, category, rating, helpfulness.
    scipy.io.savemat(path, {"rating": np.asarray(rows, np.int32)})
    return path


def test_the_ciao_reader_drops_zero_ratings_and_keeps_a_repeated_pairs_last_row(
    regime, tmp_path
) -> None:
    path = _write_ciao(
        tmp_path / "rating.mat",
        [
            [1, 10, 7, 4, 1],
            [1, 11, 7, 0, 1],  # rated 0: not on the 1-5 scale, dropped
            [2, 10, 7, 2, 1],
            [1, 10, 7, 5, 1],  # (1, 10) again: this later row wins
            [3, 12, 8, 1, 1],
        ],
    )
    ratings = regime.load_ciao_ratings(path)
    expected = pd.DataFrame(
        {"user_id": [2, 1, 3], "movie_id": [10, 10, 12], "rating": [2.0, 5.0, 1.0]}
    )
    pd.testing.assert_frame_equal(
        ratings.sort_values(["user_id", "movie_id"]).reset_index(drop=True),
        expected.sort_values(["user_id", "movie_id"])
        .reset_index(drop=True)
        .astype({"rating": np.float32}),
    )


def test_the_ciao_reader_names_a_file_without_a_rating_array(regime, tmp_path) -> None:
    path = tmp_path / "other.mat"
    scipy.io.savemat(path, {"trust": np.ones((2, 2))})
    with pytest.raises(SystemExit, match=r"other\.mat.*`rating` array"):
        regime.load_ciao_ratings(path)


def test_grouped_rmse_matches_a_loop_over_rows(regime) -> None:
    rng = np.random.default_rng(0)
    counts = rng.choice([0, 1, 2, 3, 4, 5, 7, 19, 20, 50], size=200)
    predictions = rng.uniform(1, 5, size=200)
    targets = rng.integers(1, 6, size=200).astype(float)
    record = regime.grouped_rmse(predictions, targets, counts)

    def oracle(keep) -> float:
        squares = [(p - t) ** 2 for p, t, c in zip(predictions, targets, counts) if keep(c)]
        return (sum(squares) / len(squares)) ** 0.5

    assert record["rmse"] == pytest.approx(oracle(lambda c: True))
    assert record["seen"] == pytest.approx(oracle(lambda c: c > 0))
    assert record["unseen"] == pytest.approx(oracle(lambda c: c == 0))
    assert record["by_count"]["1"] == pytest.approx(oracle(lambda c: c == 1))
    assert record["by_count"]["2-4"] == pytest.approx(oracle(lambda c: 2 <= c <= 4))
    assert record["by_count"]["5-19"] == pytest.approx(oracle(lambda c: 5 <= c <= 19))
    assert record["by_count"]["20+"] == pytest.approx(oracle(lambda c: c >= 20))
    unseen = [p - t for p, t, c in zip(predictions, targets, counts) if c == 0]
    assert record["unseen_mean_error"] == pytest.approx(sum(unseen) / len(unseen))


USERS = pd.DataFrame({"id": ["u0", "u1"], "train_count": [4, 1]})
MOVIES = pd.DataFrame({"id": ["m0", "m1", "m2"], "train_count": [5, 2, 1]})
MODEL = {
    "name": "tiny",
    "seed": 0,
    "embedding_dim": 2,
    "use_biases": True,
    "embedding_l2": 0.0,
    "bias_l2": 0.0,
    "output": {"activation": "linear"},
    "user_embedding": {"type": "full"},
    "movie_embedding": {"type": "full"},
}
WEIGHTS = {
    "user_embedding": [[1.0, 2.0], [0.5, -1.0]],
    "movie_embedding": [[3.0, 0.0], [-1.0, 1.0], [2.0, 2.0]],
    "user_bias": [[0.25], [-0.5]],
    "movie_bias": [[1.0], [0.0], [-2.0]],
}


def _tiny_model(output: dict | None = None) -> keras.Model:
    params = {**MODEL, "output": output or MODEL["output"]}
    model = build_model(assign_blocks(USERS, MOVIES, params, {"popularity_blocks": 1}), params)
    for name, values in WEIGHTS.items():
        model.get_layer(name).set_weights([np.asarray(values, np.float32)])
    return model


def test_the_count_scaled_l2_adds_strength_over_count_per_rating_by_hand(regime) -> None:
    model = regime.with_count_scaled_l2(
        _tiny_model(), {"users": USERS, "movies": MOVIES}, vector_l2=3.0, bias_l2=0.5
    )
    # (u0, m0), (u1, m2), (u0, OOV movie 3), (u1, m1): an OOV row is zero and adds nothing.
    inputs = {
        "user_id": np.array([0, 1, 0, 1], np.int32),
        "movie_id": np.array([0, 2, 3, 1], np.int32),
    }
    targets = np.array([4.0, 1.0, 2.0, 0.0], np.float32)
    model.compile(optimizer="sgd", loss="mse")
    loss = float(model.evaluate(inputs, targets, batch_size=4, verbose=0))

    user_count, movie_count = [4, 1], [5, 2, 1]
    p, q = np.array(WEIGHTS["user_embedding"]), np.array(WEIGHTS["movie_embedding"])
    bu, bi = np.array(WEIGHTS["user_bias"])[:, 0], np.array(WEIGHTS["movie_bias"])[:, 0]
    squared, prior = [], []
    for u, i, r in zip(inputs["user_id"], inputs["movie_id"], targets, strict=True):
        known = i < 3
        prediction = p[u] @ q[i] + bu[u] + bi[i] if known else bu[u]  # global bias starts at 0
        squared.append((prediction - r) ** 2)
        vectors = p[u] @ p[u] / user_count[u] + (q[i] @ q[i] / movie_count[i] if known else 0)
        biases = bu[u] ** 2 / user_count[u] + (bi[i] ** 2 / movie_count[i] if known else 0)
        prior.append(3.0 * vectors + 0.5 * biases)
    assert loss == pytest.approx(np.mean(squared) + np.mean(prior), rel=1e-5)


@pytest.mark.parametrize(
    "output",
    [
        {"activation": "sigmoid", "min_rating": 0.0, "max_rating": 5.0},
        {"activation": "sigmoid", "min_rating": 0.5, "max_rating": 5.5},
        {"activation": "linear"},
    ],
)
def test_the_mean_start_makes_an_unknown_user_and_item_score_the_train_mean(regime, output) -> None:
    model = _tiny_model(output)
    targets = np.array([5.0, 4.0, 4.0, 2.0, 5.0], np.float32)  # mean 4.0
    regime.start_global_bias_at_mean(model, {"min_rating": 0.0, **output}, targets)
    unknown = {"user_id": np.array([2], np.int32), "movie_id": np.array([3], np.int32)}
    assert float(model(unknown)[0]) == pytest.approx(4.0, abs=1e-5)


def test_a_setting_is_applied_to_both_models_and_checked_by_the_schema(regime) -> None:
    base = regime.load_parameters("base")
    params, _ = regime.setting_parameters(
        base, {"model.embedding_l2": 0.5, "training.learning_rate": 0.01}
    )
    assert params["baseline"]["model"]["embedding_l2"] == 0.5
    assert params["memory_efficient"]["model"]["embedding_l2"] == 0.5
    assert params["training"]["learning_rate"] == 0.01
    assert base["training"]["learning_rate"] != 0.01  # conf/base's copy is left alone
    with pytest.raises(ParameterError, match="learning_rate"):
        regime.setting_parameters(base, {"training.learning_rate": 3})


def test_a_bad_override_says_how_to_write_one(regime) -> None:
    with pytest.raises(SystemExit, match="training.<key>=<value>"):
        regime.parse_overrides(["learning_rate=0.01"])
    assert regime.parse_overrides(["model.output.activation=linear"]) == {
        "model.output.activation": "linear"
    }


def test_a_tiny_run_scores_the_project_and_the_peers_on_the_same_split(regime, tmp_path) -> None:
    rng = np.random.default_rng(1)
    users = rng.integers(1, 40, 1500)
    # Each user rates around a level of their own, so biases beat the global mean.
    levels = rng.uniform(1, 5, 40)
    stars = np.clip(np.rint(levels[users] + rng.normal(0, 0.5, 1500)), 1, 5)
    rows = [
        [int(u), int(i), 1, int(r), 1]
        for u, i, r in zip(users, rng.zipf(1.6, 1500) % 300 + 1, stars, strict=True)
    ]
    path = _write_ciao(tmp_path / "rating.mat", rows)
    out = tmp_path / "result.json"
    regime.main(
        [
            "--path",
            str(path),
            "--models",
            "dim4",
            "--peers",
            "BaselineOnly",
            "--set",
            "training.epochs=2",
            "--json-out",
            str(out),
        ]
    )
    result = json.loads(out.read_text())
    ratings = regime.load_ciao_ratings(path)
    rows_by_split = result["data"]["rows"]
    assert sum(rows_by_split.values()) == len(ratings)
    (run,) = result["runs"]
    assert run["epochs_run"] <= 2
    # The validation RMSE recomputed from the kept weights is the one Keras watched.
    assert run["val"]["rmse"] == pytest.approx(run["val_rmse_keras"], abs=1e-4)
    assert "eval" not in run  # eval only with --eval
    peers = result["peers"]["1"]
    assert set(peers) == {"global mean", "BaselineOnly"}
    # The peers' train and validation splits are the project's: the global mean by hand.
    split = regime.prepare_ratings(ratings, regime.load_parameters("base"))
    assert len(split["validation"]) == rows_by_split["validation"]
    by_hand = np.sqrt(
        np.mean((split["validation"]["rating"] - split["train"]["rating"].mean()) ** 2)
    )
    assert peers["global mean"]["validation"]["rmse"] == pytest.approx(by_hand, rel=1e-6)
    assert peers["BaselineOnly"]["validation"]["rmse"] < peers["global mean"]["validation"]["rmse"]


def test_the_mean_item_row_diagnostic_scores_unseen_items_by_hand(regime) -> None:
    model = _tiny_model({"activation": "sigmoid", "min_rating": 0.0, "max_rating": 5.0})
    model.get_layer("score").global_bias.assign(0.3)
    # Rows: (u0, m1) seen; (u1, OOV) and (OOV user 2, OOV) unseen.
    inputs = {"user_id": np.array([0, 1, 2], np.int32), "movie_id": np.array([1, 3, 3], np.int32)}
    targets = np.array([3.0, 4.0, 2.0], np.float32)
    prepared = {"movies": MOVIES, "splits": {"validation": Split(inputs, targets)}}
    result = regime.unseen_with_mean_item_row(
        model,
        {"activation": "sigmoid", "min_rating": 0.0, "max_rating": 5.0},
        prepared,
        "validation",
    )
    counts = np.array([5.0, 2.0, 1.0])
    q = np.array(WEIGHTS["movie_embedding"])
    mean_vector = (counts[:, None] * q).sum(0) / counts.sum()
    mean_bias = (counts * np.array(WEIGHTS["movie_bias"])[:, 0]).sum() / counts.sum()
    p_u1, b_u1 = np.array(WEIGHTS["user_embedding"][1]), WEIGHTS["user_bias"][1][0]
    known_user = 5 / (1 + np.exp(-(0.3 + b_u1 + mean_bias + p_u1 @ mean_vector)))
    unknown_user = 5 / (1 + np.exp(-(0.3 + mean_bias)))  # an unknown user adds nothing
    errors = np.array([known_user - 4.0, unknown_user - 2.0])
    assert result["rmse"] == pytest.approx(np.sqrt(np.mean(errors**2)), rel=1e-5)
    assert result["mean_error"] == pytest.approx(errors.mean(), rel=1e-5)


def test_every_table_row_has_a_cell_per_column(regime) -> None:
    record = {
        "rmse": 1.0,
        "seen": 0.9,
        "unseen": 1.2,
        "unseen_mean_error": -0.1,
        "unseen_mean_item_row": {"rmse": 1.1, "mean_error": 0.0},
        "by_count": {"1": 1.0, "2-4": 1.0, "5-19": 1.0, "20+": 1.0},
    }
    runs = [
        {"setting": "s", "model": "dim4", "seed": seed, "best_epoch": 3, "val": record}
        for seed in (1, 2)
    ]
    peers = {1: {"global mean": {"validation": record, "eval": record}}}
    table = regime.render(runs, peers, False, {"validation": 0.25})
    rows = [line for line in table.splitlines() if line.startswith("|")]
    assert len(rows) == 6  # header, rule and one row for the project; the same for the peers
    for header, rule, row in (rows[:3], rows[3:]):
        assert header.count("|") == rule.count("|") == row.count("|")
    # The overall RMSE with the mean item row: seen and unseen rows by their shares, by hand.
    assert f"{np.sqrt(0.75 * 0.9**2 + 0.25 * 1.1**2):.4f} ± 0.0000" in rows[2]


def test_the_long_tail_env_changes_only_the_vectors_l2_of_both_models(regime) -> None:
    base, long_tail = regime.load_parameters("base"), regime.load_parameters("long_tail")
    for model in ("baseline", "memory_efficient"):
        assert long_tail[model]["model"]["embedding_l2"] == 0.3
        long_tail[model]["model"]["embedding_l2"] = base[model]["model"]["embedding_l2"]
    assert long_tail == base  # the rest (frequency blocks, training) stays conf/base's
