"""Tuned sweep points: each budget keeps the grid value with the lowest mean val RMSE."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from memory_efficient_embeddings.modeling.grid import plan_sweep
from memory_efficient_embeddings.pipelines.sweep.summary import best_tuned_points, summarize_sweep

BASE_MODEL = {
    "name": "baseline",
    "seed": 42,
    "embedding_dim": 64,
    "use_biases": True,
    "embedding_l2": 0.04,
    "user_embedding": {"type": "full"},
    "movie_embedding": {"type": "full"},
}


def _sweep(tune: list[str]) -> dict:
    return {
        "seeds": [1, 2],
        "reference": "full",
        "target": {"min_compression": 2, "max_rmse_gap": 0.5},
        "techniques": {
            "full": {"embedding": {"type": "full"}, "grid": {"embedding_dim": [64]}},
            "uniform_tuned": {
                "embedding": {"type": "full"},
                "tune": tune,
                "grid": {"embedding_dim": [4, 8], "embedding_l2": [0.01, 0.1]},
            },
        },
    }


def test_plan_groups_tuned_points_by_their_other_settings() -> None:
    plan = plan_sweep(_sweep(["embedding_l2"]), BASE_MODEL)
    tuned = [p for p in plan if p["technique"] == "uniform_tuned"]
    assert [(p["settings"], p["tuning_group"]) for p in tuned] == [
        ("embedding_dim=4, embedding_l2=0.01", "uniform_tuned(embedding_dim=4)"),
        ("embedding_dim=4, embedding_l2=0.1", "uniform_tuned(embedding_dim=4)"),
        ("embedding_dim=8, embedding_l2=0.01", "uniform_tuned(embedding_dim=8)"),
        ("embedding_dim=8, embedding_l2=0.1", "uniform_tuned(embedding_dim=8)"),
    ]
    # The tuned value reaches the model; `tune` itself is no model key.
    assert [p["model"]["embedding_l2"] for p in tuned] == [0.01, 0.1, 0.01, 0.1]
    assert all("tune" not in p["model"] for p in plan)
    assert all("tuning_group" not in p for p in plan if p["technique"] == "full")


def test_plan_refuses_to_tune_a_key_outside_the_grid() -> None:
    with pytest.raises(ValueError, match=r"uniform_tuned.tune names no grid key: \['bias_l2'\]"):
        plan_sweep(_sweep(["bias_l2"]), BASE_MODEL)


def _runs() -> pd.DataFrame:
    # (point, group, seed, val RMSE); dim 4: l2 0.01 has mean 0.95, l2 0.1 has mean 0.90 -> 0.1;
    # dim 8: 0.85 against 0.875 -> 0.01, although its seed 2 alone (0.90) is worse than 0.875.
    rows = [
        ("full(embedding_dim=64)", None, 1, 0.80),
        ("full(embedding_dim=64)", None, 2, 0.80),
        ("u(embedding_dim=4, embedding_l2=0.01)", "u(embedding_dim=4)", 1, 0.90),
        ("u(embedding_dim=4, embedding_l2=0.01)", "u(embedding_dim=4)", 2, 1.00),
        ("u(embedding_dim=4, embedding_l2=0.1)", "u(embedding_dim=4)", 1, 0.92),
        ("u(embedding_dim=4, embedding_l2=0.1)", "u(embedding_dim=4)", 2, 0.88),
        ("u(embedding_dim=8, embedding_l2=0.01)", "u(embedding_dim=8)", 1, 0.80),
        ("u(embedding_dim=8, embedding_l2=0.01)", "u(embedding_dim=8)", 2, 0.90),
        ("u(embedding_dim=8, embedding_l2=0.1)", "u(embedding_dim=8)", 1, 0.875),
        ("u(embedding_dim=8, embedding_l2=0.1)", "u(embedding_dim=8)", 2, 0.875),
    ]
    return pd.DataFrame(
        [
            {
                "point": point,
                "technique": point.split("(")[0],
                "settings": point.split("(")[1].rstrip(")"),
                "tuning_group": group,
                "seed": seed,
                "val_rmse": rmse,
                # The eval split ranks the candidates the other way round: selection must not
                # read it.
                "eval_rmse": 2.0 - rmse,
                "eval_mae": (2.0 - rmse) / 2,
                "train_seconds": 1.0,
                "epochs_run": 3,
                "embedding_parameters": 100 if "64" in point else 10,
                "embedding_bytes_float32": 400 if "64" in point else 40,
                "serving_bytes": 400 if "64" in point else 40,
                "training_bytes": 1200 if "64" in point else 120,
            }
            for point, group, seed, rmse in rows
        ]
    )


def test_best_tuned_points_keeps_the_lowest_mean_per_group_by_hand() -> None:
    kept = best_tuned_points(_runs())
    assert sorted(kept["point"].unique()) == [
        "full(embedding_dim=64)",
        "u(embedding_dim=4, embedding_l2=0.1)",
        "u(embedding_dim=8, embedding_l2=0.01)",
    ]
    assert len(kept) == 6  # every seed of the kept points
    settings = kept.drop_duplicates("point").set_index("point")["settings"]
    assert settings["u(embedding_dim=4, embedding_l2=0.1)"] == (
        "embedding_dim=4, embedding_l2=0.1 (best of 2)"
    )
    assert settings["full(embedding_dim=64)"] == "embedding_dim=64"


def test_summary_of_tuned_points_reports_the_chosen_value() -> None:
    sweep = {
        "techniques": {"full": {}, "u": {}},
        "reference": "full",
        "seeds": [1, 2],
        "target": {"min_compression": 2, "max_rmse_gap": 0.5},
    }
    summary = summarize_sweep(_runs(), sweep).set_index("point")
    assert len(summary) == 3
    chosen = summary.loc["u(embedding_dim=4, embedding_l2=0.1)"]
    assert chosen["val_rmse_mean"] == pytest.approx(0.9)
    assert chosen["eval_rmse_mean"] == pytest.approx(1.1)  # 2 - 0.92, 2 - 0.88
    # Reported on eval: (2 - 0.85) / (2 - 0.80) - 1
    assert summary.loc["u(embedding_dim=8, embedding_l2=0.01)", "rmse_gap"] == pytest.approx(
        1.15 / 1.2 - 1
    )


def test_the_tuned_value_does_not_move_when_the_eval_figures_are_scrambled() -> None:
    runs = _runs()
    chosen = set(best_tuned_points(runs)["point"])
    rng = np.random.default_rng(0)
    for _ in range(5):
        scrambled = runs.assign(eval_rmse=rng.permutation(runs["eval_rmse"].to_numpy()))
        assert set(best_tuned_points(scrambled)["point"]) == chosen


def test_runs_without_tuning_pass_unchanged() -> None:
    runs = _runs().drop(columns="tuning_group")
    assert best_tuned_points(runs) is runs
