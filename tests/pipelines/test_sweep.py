"""The sweep: grid expansion, runs over seeds with int8/int4 re-scoring, bytes, summary, chart."""

from __future__ import annotations

import copy

import keras
import numpy as np
import pandas as pd
import pytest

from memory_efficient_embeddings.embeddings import (
    build_rating_model,
    embedding_bytes,
    embedding_parameter_count,
)
from memory_efficient_embeddings.embeddings.mlet import fold_if_smaller
from memory_efficient_embeddings.modeling.grid import RECIPE, plan_sweep
from memory_efficient_embeddings.modeling.nodes import build_model
from memory_efficient_embeddings.modeling.specs import resolve_embedding_plan
from memory_efficient_embeddings.parameters import validate_parameters
from memory_efficient_embeddings.pipelines.data_processing.nodes import (
    build_vocabularies,
    ingest_ratings,
    prefix_ids,
    split_ratings,
)
from memory_efficient_embeddings.pipelines.sweep import runs as runs_module
from memory_efficient_embeddings.pipelines.sweep.chart import plot_compression_frontier
from memory_efficient_embeddings.pipelines.sweep.plan import assign_sweep_blocks
from memory_efficient_embeddings.pipelines.sweep.runs import run_sweep
from memory_efficient_embeddings.pipelines.sweep.summary import (
    _pareto_mask,
    render_sweep_table,
    summarize_sweep,
)
from tests.test_modeling import _parameters, _vocabulary

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Layer .* does not have a `quantize` method:UserWarning"),
]

# How far post-training int4 may move a small model's val RMSE (measured: see the test).
INT4_RMSE_SHIFT = 0.1

SMALL_SWEEP = {
    "seeds": [1, 2],
    "reference": "full",
    "quantize": ["int8", "int4"],
    "target": {"min_compression": 5, "max_rmse_gap": 0.01},
    "training": {"epochs": 2},
    "techniques": {
        "full": {"embedding": {"type": "full"}, "grid": {"embedding_dim": [32]}},
        "uniform_low_dim": {"embedding": {"type": "full"}, "grid": {"embedding_dim": [2, 4]}},
        "hashing": {
            "embedding": {"type": "hashed"},
            "grid": {"embedding.ids_per_bucket": [4]},
        },
        # Trained as a dim-16 table projected to 4, served folded into a plain dim-4 table.
        "mlet": {
            "embedding": {"type": "projected", "embedding_dim": 16},
            "grid": {"embedding_dim": [4]},
        },
    },
    "recipe": {
        "baseline": {"use_biases": False, "embedding": {"type": "full"}},
        # The recipe's fixed boundaries need more than 1,700 movies: skipped on this small data.
        "memory_efficient": {
            "movie_embedding": {
                "type": "mixed_dimension",
                "blocks": {"boundaries": [400, 1700], "dims": [64, 32, 16]},
            }
        },
    },
}


@pytest.fixture(scope="module")
def parameters() -> dict:
    return _parameters("base")


@pytest.fixture(scope="module")
def small_data(parameters) -> dict:
    data = copy.deepcopy(parameters["data"])
    data["source"] = "synthetic"
    data["synthetic"] |= {"num_users": 300, "num_movies": 200, "num_ratings": 12_000, "seed": 7}
    ratings, provenance = ingest_ratings(data)
    train, validation, evaluation = split_ratings(prefix_ids(ratings), parameters["split"])
    users, movies = build_vocabularies(train, validation, evaluation, parameters["vocabulary"])
    return {
        "train": train,
        "validation": validation,
        "eval": evaluation,
        "users": users,
        "movies": movies,
        "provenance": provenance,
    }


@pytest.fixture(scope="module")
def small_training(parameters) -> dict:
    return {**parameters["training"], "steps_per_execution": 8, "verbose": 0}


def _run(plan: list, d: dict, training: dict, sweep: dict) -> pd.DataFrame:
    embedding_plans = assign_sweep_blocks(plan, d["users"], d["movies"], {"popularity_blocks": 3})
    return run_sweep(
        plan,
        embedding_plans,
        d["train"],
        d["validation"],
        d["eval"],
        d["users"],
        d["movies"],
        training,
        sweep,
    )


@pytest.fixture(scope="module")
def small_runs(parameters, small_data, small_training) -> pd.DataFrame:
    plan = plan_sweep(SMALL_SWEEP, parameters["baseline"]["model"])
    return _run(plan, small_data, small_training, SMALL_SWEEP)


def test_plan_expands_every_combination_over_the_base_model(parameters) -> None:
    sweep = copy.deepcopy(SMALL_SWEEP)
    sweep["techniques"]["qr"] = {
        "user_embedding": {"type": "quotient_remainder"},
        "movie_embedding": {"type": "full"},
        "grid": {
            "user_embedding.combiner": ["multiply", "add"],
            "user_embedding.ids_per_bucket": [4, None],
        },
    }
    base = parameters["baseline"]["model"]
    plan = {point["point"]: point for point in plan_sweep(sweep, base)}
    assert len(plan) == 1 + 2 + 1 + 1 + 4 + 2
    qr = plan["qr(combiner=add, ids_per_bucket=auto)"]["model"]
    assert qr["user_embedding"] == {
        "type": "quotient_remainder",
        "combiner": "add",
        "ids_per_bucket": None,
    }
    assert qr["movie_embedding"] == {"type": "full"}
    # Everything the technique does not set comes from the base model.
    assert qr["output"] == base["output"] and qr["use_biases"] == base["use_biases"]
    # The `embedding` shorthand sets both sides.
    hashed = plan["hashing(ids_per_bucket=4)"]["model"]
    assert hashed["user_embedding"] == hashed["movie_embedding"]
    assert hashed["user_embedding"] == {"type": "hashed", "ids_per_bucket": 4}
    assert plan["uniform_low_dim(embedding_dim=2)"]["model"]["embedding_dim"] == 2
    recipe = plan["recipe(baseline)"]
    assert recipe["technique"] == RECIPE and recipe["model"]["use_biases"] is False
    # Keras model names must be valid TensorFlow scope names.
    assert all(
        " " not in p["model"]["name"] and "(" not in p["model"]["name"] for p in plan.values()
    )


def test_a_null_technique_or_recipe_model_is_switched_off(parameters) -> None:
    # How an overlay (conf/local) restricts the grid: parameters merge softly, keys stay.
    sweep = copy.deepcopy(SMALL_SWEEP)
    sweep["techniques"]["hashing"] = None
    sweep["recipe"]["memory_efficient"] = None
    plan = plan_sweep(sweep, parameters["baseline"]["model"])
    assert {p["technique"] for p in plan} == {"full", "uniform_low_dim", "mlet", RECIPE}
    assert [p["point"] for p in plan if p["technique"] == RECIPE] == ["recipe(baseline)"]
    validated = validate_parameters({**parameters, "sweep": sweep})
    assert validated.sweep.techniques["hashing"] is None


def test_plan_rejects_an_unknown_reference(parameters) -> None:
    with pytest.raises(ValueError, match="reference 'nope'"):
        plan_sweep({**SMALL_SWEEP, "reference": "nope"}, parameters["baseline"]["model"])


def test_default_grid_builds_on_ml_1m_and_its_recipe_points_match_the_recipe(parameters) -> None:
    rng = np.random.default_rng(0)
    users, movies = _vocabulary("user", 6040, rng), _vocabulary("movie", 3706, rng)
    plan = plan_sweep(parameters["sweep"], parameters["baseline"]["model"])
    techniques = {p["technique"] for p in plan}
    assert {"full", "hashing", "quotient_remainder", "mixed_dimension", RECIPE} <= techniques
    counts = {}
    # Budgeted points are built only once placed (their knob set, the hybrid's unseen-id fallback
    # kept where a block is shared): tests/pipelines/test_sweep_budgets.py builds them.
    for point in (p for p in plan if "budget" not in p):
        embedding_plan = resolve_embedding_plan(users, movies, point["model"], 3)
        model = build_model(embedding_plan, point["model"])
        # As served: an MLET table is trained wider than the reference's, and served folded.
        served = fold_if_smaller(model)
        counts[point["point"]] = (model.count_params(), embedding_parameter_count(served))
    # The sweep's copy of the recipe builds exactly the recipe's two models.
    assert counts["recipe(baseline)"][0] == 623_744
    assert counts["recipe(memory_efficient)"][0] == 117_968
    # Budgeted points are sized for the data by place_sweep_budgets: the default grid placed on
    # ml-100k-sized vocabularies is checked in tests/pipelines/test_sweep_budgets.py.
    assert {p["point"] for p in plan if "budget" not in p} == {
        "full(embedding_dim=64)",
        "recipe(baseline)",
        "recipe(memory_efficient)",
    }


def test_embedding_bytes_follow_the_stored_dtypes() -> None:
    model = build_rating_model(50, 30, {"type": "full"}, {"type": "full"}, 8, use_biases=True)
    model.build({"user_id": (None,), "movie_id": (None,)})
    assert embedding_bytes(model) == 4 * embedding_parameter_count(model) == 4 * 80 * 9
    model.quantize("int8", filters=lambda layer: getattr(layer, "output_dim", 0) != 1)
    # int8 rows plus one float32 scale per row for the two tables; biases stay float32.
    assert embedding_bytes(model) == 80 * 8 + 80 * 4 + 80 * 4


@pytest.mark.slow
def test_runs_cover_every_point_and_seed_in_float32_int8_and_int4(small_runs) -> None:
    assert len(small_runs) == 7 * 2
    assert set(small_runs["seed"]) == {1, 2}
    skipped = small_runs[small_runs["skipped"].notna()]
    assert set(skipped["point"]) == {"recipe(memory_efficient)"}
    # Synthetic movies with one or two ratings may fall in eval only: 199 or 200 in training.
    assert "must be below the vocabulary size" in skipped["skipped"].iloc[0]
    small_runs = small_runs[small_runs["skipped"].isna()]
    assert (small_runs["serving_bytes_int8"] < small_runs["serving_bytes"]).all()
    assert (small_runs["serving_bytes_int4"] < small_runs["serving_bytes_int8"]).all()
    # Post-training int8 moves the error a little, not a lot; int4 (16 levels a row) more.
    assert (small_runs["eval_rmse_int8"] - small_runs["eval_rmse"]).abs().max() < 0.02
    assert (small_runs["eval_rmse_int4"] - small_runs["eval_rmse"]).abs().max() < INT4_RMSE_SHIFT
    # Seeds change initialisation and shuffling, hence the metrics.
    full = small_runs[small_runs["technique"] == "full"]
    assert full["eval_rmse"].iloc[0] != full["eval_rmse"].iloc[1]


@pytest.mark.slow
def test_bytes_of_the_runs_by_hand(small_runs) -> None:
    runs = small_runs[small_runs["skipped"].isna()].set_index(["point", "seed"])
    full = runs.loc[("full(embedding_dim=32)", 1)]
    # Two dim-32 tables and two bias columns: n_users + n_movies ids, 33 floats each.
    ids = full["embedding_parameters"] // 33
    assert full["embedding_parameters"] == 33 * ids
    assert full["serving_bytes"] == full["embedding_bytes_float32"] == 4 * 33 * ids
    # LazyAdam (the regime's optimizer): m and v per weight, and one int64 step per table row
    # (catch-up) for the 4 tables: 2 * ids rows.
    assert full["training_bytes"] == 3 * 4 * 33 * ids + 8 * 2 * ids
    # int8: one byte per table weight and a float32 scale per row; bias columns stay float32.
    assert full["serving_bytes_int8"] == 32 * ids + 4 * ids + 4 * ids
    # int4, one scale per row: two values per byte (16 bytes per 32-wide row) and the scale.
    assert full["serving_bytes_int4"] == 16 * ids + 4 * ids + 4 * ids


@pytest.mark.slow
def test_mlet_serves_at_the_bytes_of_the_plain_table_of_its_width(small_runs) -> None:
    runs = small_runs[small_runs["skipped"].isna()].set_index(["point", "seed"])
    mlet = runs.loc[("mlet(embedding_dim=4)", 1)]
    plain = runs.loc[("uniform_low_dim(embedding_dim=4)", 1)]
    assert mlet["serving_bytes"] == plain["serving_bytes"]
    # Trained as dim-16 tables with 16 x 4 projections, which is what it holds while training.
    ids = plain["embedding_parameters"] // 5
    assert mlet["embedding_bytes_float32"] == 4 * (17 * ids + 2 * 16 * 4)
    assert mlet["training_bytes"] > plain["training_bytes"]


@pytest.mark.slow
def test_a_rerun_reproduces_a_point_exactly(parameters, small_data, small_training, small_runs):
    sweep = {**SMALL_SWEEP, "seeds": [2], "recipe": {}}
    sweep["techniques"] = {"full": SMALL_SWEEP["techniques"]["full"]}
    d = small_data
    plan = plan_sweep(sweep, parameters["baseline"]["model"])
    rerun = _run(plan, d, small_training, sweep)
    first = small_runs[(small_runs["technique"] == "full") & (small_runs["seed"] == 2)]
    assert rerun["eval_rmse"].iloc[0] == first["eval_rmse"].iloc[0]


@pytest.mark.slow
def test_summary_averages_seeds_and_measures_against_the_reference(small_runs) -> None:
    summary = summarize_sweep(small_runs, SMALL_SWEEP).set_index("point")
    low = small_runs[small_runs["point"] == "uniform_low_dim(embedding_dim=2)"]["eval_rmse"]
    row = summary.loc["uniform_low_dim(embedding_dim=2)"]
    assert row["eval_rmse_mean"] == pytest.approx(low.mean())
    assert row["eval_rmse_std"] == pytest.approx(low.std(ddof=1))
    reference = summary.loc["full(embedding_dim=32)"]
    assert reference["is_reference"] and reference["compression"] == 1.0
    assert row["compression"] == pytest.approx(reference["serving_bytes"] / row["serving_bytes"])
    assert row["rmse_gap"] == pytest.approx(row["eval_rmse_mean"] / reference["eval_rmse_mean"] - 1)
    expected = (summary["compression"] >= 5) & (summary["rmse_gap"] <= 0.01)
    assert (summary["meets_target"] == expected).all()
    assert summary.loc["full(embedding_dim=32)", "on_frontier"]  # a lone point is its frontier
    assert not summary.loc["recipe(baseline)", "on_frontier"]  # the recipe is marked, not ranked


@pytest.mark.slow
def test_skipped_points_are_left_out_of_the_summary(small_runs) -> None:
    summary = summarize_sweep(small_runs, SMALL_SWEEP)
    assert "recipe(memory_efficient)" not in set(summary["point"])
    assert summary["embedding_parameters"].dtype == np.int64


def test_a_misconfigured_point_fails_before_any_training(
    parameters, small_data, small_training, monkeypatch
) -> None:
    sweep = copy.deepcopy(SMALL_SWEEP)
    sweep["techniques"]["typo"] = {
        "embedding": {"type": "hashd"},
        "grid": {"embedding.ids_per_bucket": [2]},
    }
    plan = plan_sweep(sweep, parameters["baseline"]["model"])
    monkeypatch.setattr(runs_module, "fit_and_score", lambda *a, **k: pytest.fail("trained"))
    d = small_data
    with pytest.raises(ValueError, match=r"typo\(ids_per_bucket=2\) is misconfigured.*'hashd'"):
        _run(plan, d, small_training, sweep)


def test_pareto_mask_keeps_only_undominated_points() -> None:
    sizes = np.array([10, 20, 30, 40, 20])
    errors = np.array([0.9, 0.8, 0.85, 0.7, 0.95])
    assert _pareto_mask(sizes, errors).tolist() == [True, True, False, True, False]


@pytest.mark.slow
def test_table_and_chart_show_every_point(small_runs, small_data) -> None:
    summary = summarize_sweep(small_runs, SMALL_SWEEP)
    table = render_sweep_table(summary, small_data["provenance"], SMALL_SWEEP)
    body = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(body) == 1 + len(summary)  # header + one row per point
    assert "synthetic" in table and "± " in table
    figure = plot_compression_frontier(summary, small_data["provenance"], SMALL_SWEEP)
    ax = figure.axes[0]
    assert ax.get_xscale() == "log"
    labels = ax.get_legend_handles_labels()[1]
    assert {"full", "uniform_low_dim", "hashing", "mlet", "keras-io recipe's models"} <= set(labels)
    keras.backend.clear_session()
