"""The sweep's budget axis: budgeted points in the grid, and placement against hand counts.

Vocabularies are tiny (10 users, 20 movies: 30 ids), so every model's weights can be counted by
hand: a budget of b float32 values per id allows 4·b·30 serving bytes, biases included.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest

from memory_efficient_embeddings.modeling.grid import UNPLACED_KNOB_VALUE, plan_sweep
from memory_efficient_embeddings.parameters import ParameterError, validate_parameters
from memory_efficient_embeddings.pipelines.sweep.placement import (
    PER_ID_STEPS,
    PER_ID_TOLERANCE,
    KnobSearch,
    ModelSizer,
    Probe,
    in_embedding_available,
    largest_fitting,
    place_sweep_budgets,
)
from memory_efficient_embeddings.pipelines.sweep.plan import assign_sweep_blocks
from tests.test_modeling import _parameters

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

NUM_USERS, NUM_MOVIES = 10, 20
NUM_IDS = NUM_USERS + NUM_MOVIES
BASE_MODEL = {
    "name": "baseline",
    "seed": 42,
    "embedding_dim": 8,
    "use_biases": True,
    "embedding_l2": 0.04,
    "bias_l2": 0.04,
    "output": {"activation": "sigmoid", "min_rating": 0.0, "max_rating": 5.0},
    "user_embedding": {"type": "full"},
    "movie_embedding": {"type": "full"},
}


def _vocabulary(prefix: str, size: int) -> pd.DataFrame:
    counts = np.arange(size, 0, -1) * 3  # popularity-sorted, as build_vocabularies leaves them
    return pd.DataFrame({"id": [f"{prefix}_{i}" for i in range(size)], "train_count": counts})


USERS, MOVIES = _vocabulary("user", NUM_USERS), _vocabulary("movie", NUM_MOVIES)


def _sweep(techniques: dict, budgets: list[float]) -> dict:
    return {
        "seeds": [1],
        "reference": "full",
        "target": {"min_compression": 2, "max_rmse_gap": 0.5},
        "budgets": {"floats_per_id": budgets},
        "techniques": {
            "full": {"embedding": {"type": "full"}, "grid": {"embedding_dim": [8]}},
            **techniques,
        },
    }


def _placed(technique: dict, budgets: list[float]) -> dict[float, dict]:
    """The technique's placed points, by budget."""
    grid = plan_sweep(_sweep({"t": technique}, budgets), BASE_MODEL)
    plan = place_sweep_budgets(grid, USERS, MOVIES)
    return {p["budget"]["floats_per_id"]: p for p in plan if p["technique"] == "t"}


# --- the grid -----------------------------------------------------------------------------------


def test_a_budgeted_technique_gets_one_point_per_budget_and_grid_setting() -> None:
    technique = {
        "embedding": {"type": "full"},
        "budget_knob": "embedding_dim",
        "tune": ["embedding_l2"],
        "grid": {"embedding_l2": [0.01, 0.1]},
    }
    plan = plan_sweep(_sweep({"uniform": technique}, [0.5, 2]), BASE_MODEL)
    points = [p for p in plan if p["technique"] == "uniform"]
    assert [(p["point"], p["tuning_group"]) for p in points] == [
        ("uniform(budget=0.5, embedding_l2=0.01)", "uniform(budget=0.5)"),
        ("uniform(budget=0.5, embedding_l2=0.1)", "uniform(budget=0.5)"),
        ("uniform(budget=2, embedding_l2=0.01)", "uniform(budget=2)"),
        ("uniform(budget=2, embedding_l2=0.1)", "uniform(budget=2)"),
    ]
    assert [p["budget"] for p in points] == [
        {"floats_per_id": 0.5, "knob": "embedding_dim"}
    ] * 2 + [{"floats_per_id": 2, "knob": "embedding_dim"}] * 2
    # Unplaced: the knob holds its placeholder; the grid's values reach the model.
    assert {p["model"]["embedding_dim"] for p in points} == {UNPLACED_KNOB_VALUE}
    assert [p["model"]["embedding_l2"] for p in points] == [0.01, 0.1, 0.01, 0.1]
    assert all("budget_knob" not in p["model"] for p in plan)
    full = next(p for p in plan if p["technique"] == "full")
    assert "budget" not in full and full["model"]["embedding_dim"] == 8


def test_a_side_knob_is_set_on_both_sides_before_placement() -> None:
    technique = {"embedding": {"type": "hashed"}, "budget_knob": "embedding.ids_per_bucket"}
    (point,) = [
        p for p in plan_sweep(_sweep({"t": technique}, [2]), BASE_MODEL) if p["technique"] == "t"
    ]
    assert point["model"]["user_embedding"] == {"type": "hashed", "ids_per_bucket": 1}
    assert point["model"]["movie_embedding"] == {"type": "hashed", "ids_per_bucket": 1}


@pytest.fixture(scope="module")
def parameters() -> dict:
    return _parameters("base")


def _problems(parameters: dict) -> list[str]:
    with pytest.raises(ParameterError) as error:
        validate_parameters(parameters)
    return str(error.value).split("\n  - ")[1:]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"budget_knob": "embedding.combiner"},
            "`sweep.techniques.hashing.budget_knob` is 'embedding.combiner'; allowed values: a "
            "size key of the technique's model ending in embedding_dim, num_buckets, "
            "ids_per_bucket, budget_dim, mean_dim",
        ),
        (
            {"budget_knob": "embedding.num_bucket"},
            "`sweep.techniques.hashing.budget_knob` is 'embedding.num_bucket'; allowed values",
        ),
        (
            {"budget_knob": "embeding.ids_per_bucket"},
            "`sweep.techniques.hashing.budget_knob.embeding.ids_per_bucket` is not a known key of "
            "a sweep point's model. Allowed: bias_l2,",
        ),
        (
            {"grid": {"embedding.ids_per_bucket": [2]}},
            "`sweep.techniques.hashing.budget_knob` is 'embedding.ids_per_bucket', which is also a "
            "grid key",
        ),
    ],
)
def test_a_bad_budget_knob_is_named_before_any_work(parameters, change, expected) -> None:
    changed = copy.deepcopy(parameters)
    changed["sweep"]["techniques"]["hashing"] |= change
    (problem,) = _problems(changed)
    assert problem.startswith(expected), problem


def test_a_knob_without_budgets_is_named(parameters) -> None:
    changed = copy.deepcopy(parameters)
    changed["sweep"]["budgets"] = None
    changed["sweep"]["techniques"] = {
        "full": changed["sweep"]["techniques"]["full"],
        "hashing": changed["sweep"]["techniques"]["hashing"],
    }
    assert _problems(changed) == [
        "`sweep.techniques.hashing.budget_knob` is 'embedding.ids_per_bucket', but "
        "`sweep.budgets.floats_per_id` gives no budget to place it at: set the budgets, or "
        "budget_knob: null with the sizes in the grid."
    ]


@pytest.mark.parametrize(
    ("budgets", "expected"),
    [
        ([1, 0.5, 1], "`sweep.budgets.floats_per_id` is [1, 0.5, 1], which repeats a budget"),
        ([0.5, 0], "`sweep.budgets.floats_per_id.1` is 0: Input should be greater than 0."),
        ([], "`sweep.budgets.floats_per_id` is []: List should have at least 1 item"),
    ],
)
def test_bad_budgets_are_named(parameters, budgets, expected) -> None:
    changed = copy.deepcopy(parameters)
    changed["sweep"]["budgets"]["floats_per_id"] = budgets
    (problem,) = _problems(changed)
    assert problem.startswith(expected), problem


def test_the_default_grid_and_its_environments_are_valid() -> None:
    for env in ("base", "budget_sweep"):
        loaded = _parameters(env)
        validate_parameters(loaded)
        plan = plan_sweep(loaded["sweep"], loaded["baseline"]["model"])
        budgets = loaded["sweep"]["budgets"]["floats_per_id"]
        budgeted = [t for t, e in loaded["sweep"]["techniques"].items() if e.get("budget_knob")]
        for technique in budgeted:
            placed = {p["budget"]["floats_per_id"] for p in plan if p["technique"] == technique}
            assert placed == set(budgets), technique
    assert _parameters("budget_sweep")["sweep"]["budgets"]["floats_per_id"] == [
        0.125,
        0.25,
        0.5,
        1,
        2,
        4,
        8,
    ]


def _next_step_up(point: dict, sizer: ModelSizer) -> dict:
    """The placed model with its knob one search step larger (past the search's tolerance)."""
    search = KnobSearch(point["budget"]["knob"], sizer.num_ids, point["budget"]["floats_per_id"])
    value = point["placement"]["value"]
    if search.kind == "per_id":
        step = math.ceil(round(value * PER_ID_STEPS) * (1 + 2 * PER_ID_TOLERANCE)) + 1
    elif search.kind == "inverse_int":
        step = search.ids_per_bucket.index(value) + 2  # steps count from 1
    else:
        step = value + 1
    return search.apply(point["model"], step)


def test_the_default_grid_placed_on_ml_100k_sized_vocabularies() -> None:
    loaded = _parameters("base")
    rng = np.random.default_rng(0)
    users, movies = (
        pd.DataFrame(
            {
                "id": [f"{prefix}_{i}" for i in range(size)],
                "train_count": np.sort(rng.zipf(1.5, size).clip(max=500))[::-1],
            }
        )
        for prefix, size in (("user", 943), ("movie", 1682))
    )
    plan = place_sweep_budgets(
        plan_sweep(loaded["sweep"], loaded["baseline"]["model"]), users, movies
    )
    sizer = ModelSizer(users, movies)
    for point in plan:
        if "placement" in point:
            budget = point["budget"]["floats_per_id"]
            limit = 4 * budget * sizer.total_ids
            assert point["placement"]["serving_bytes"] <= limit, point["point"]
            # The largest model the knob allows: its next step up does not fit (or build).
            larger = _next_step_up(point, sizer)
            size = sizer.serving_bytes(larger)
            assert isinstance(size, str) or size > limit, point["point"]
    unreachable = {p["point"] for p in plan if "unreachable" in p}
    # Uniform tables need 2 floats per id, CCE's 4 int32 assignments per id 4 more.
    always = {
        "uniform(budget=0.5, embedding_l2=0.04)",
        "uniform(budget=0.5, embedding_l2=0.08)",
        "cce(budget=0.5)",
        "cce(budget=2)",
    }
    compact = ("hashing", "quotient_remainder", "mixed_dimension", "tt_rec", "robe")
    compact += ("hash_embedding", "dhe")
    if in_embedding_available():  # every other technique fits 0.5 with the biases in the table
        assert unreachable == always
        assert sum("placement" in p for p in plan) == 26
        assert all(
            p["placement"]["bias_layout"] == "in_embedding"
            for p in plan
            if "placement" in p and p["budget"]["floats_per_id"] == 0.5
        )
    else:  # per-id bias tables take 1 float per id: nothing fits 0.5 beside them
        assert unreachable == always | {f"{t}(budget=0.5)" for t in compact}
        assert sum("placement" in p for p in plan) == 19


# --- the search ---------------------------------------------------------------------------------


@pytest.mark.parametrize("start", [1, 3, 17, 40, 64])
@pytest.mark.parametrize("limit", [0, 5, 99, 100, 101, 10_000])
def test_largest_fitting_finds_the_largest_step_from_any_start(start, limit) -> None:
    sizes = {step: 7 + 3 * step for step in range(1, 65)}  # 10, 13, ... 199

    def probe(step: int) -> Probe:
        return Probe(step, step, {}, sizes[step], None)

    best, probes = largest_fitting(probe, limit, start, 64)
    fitting = [step for step, size in sizes.items() if size <= limit]  # the naive scan
    assert (best.step if best else None) == (max(fitting) if fitting else None)
    assert len(probes) <= 2 * math.ceil(math.log2(64)) + 2


def test_a_step_the_layer_refuses_does_not_fit() -> None:
    # Steps below 5 do not build (say, a budget below the smallest tensor train).
    def probe(step: int) -> Probe:
        if step < 5:
            return Probe(step, step, {}, None, "too small to build")
        return Probe(step, step, {}, 10 * step, None)

    best, _ = largest_fitting(probe, 73, 1, 64)
    assert best.step == 7
    best, probes = largest_fitting(probe, 45, 32, 64)
    assert best is None and {p.refused for p in probes if p.step < 5} == {"too small to build"}


# --- placement against hand counts -------------------------------------------------------------


def test_uniform_tables_get_the_widest_width_that_fits() -> None:
    technique = {"embedding": {"type": "full"}, "budget_knob": "embedding_dim"}
    placed = _placed(technique, [2, 4, 4.5, 8])
    # Width d with separate biases holds (d + 1) floats per id: d = floor(b) - 1.
    for budget, width in ((2, 1), (4, 3), (4.5, 3), (8, 7)):
        point = placed[budget]
        assert point["model"]["embedding_dim"] == width, budget
        assert point["placement"]["serving_bytes"] == 4 * (width + 1) * NUM_IDS
        assert point["placement"]["bytes_per_id"] == 4 * (width + 1)
        assert point["placement"]["bias_layout"] == "separate"
        assert point["settings"] == f"budget={budget:g} → embedding_dim={width}"


def _hashed_bytes(ids_per_bucket: int, width: int, bias_layout: str) -> int:
    rows = max(1, NUM_USERS // ids_per_bucket) + max(1, NUM_MOVIES // ids_per_bucket)
    if bias_layout == "in_embedding":  # one column wider, no bias tables
        return 4 * rows * (width + 1)
    return 4 * (rows * width + NUM_IDS)  # both tables, then the two per-id bias tables


@pytest.mark.parametrize("budget", [0.5, 1.5, 2, 2.2, 3, 4, 6])
def test_hashing_gets_the_fewest_ids_per_bucket_that_fit(budget) -> None:
    technique = {"embedding": {"type": "hashed"}, "budget_knob": "embedding.ids_per_bucket"}
    point = _placed(technique, [budget])[budget]
    limit = 4 * budget * NUM_IDS
    # The naive scan: every ids-per-bucket value with per-id bias tables, then (where none fits)
    # with the biases in the table; the largest model that fits.
    layouts = ["separate", "in_embedding"] if in_embedding_available() else ["separate"]
    for layout in layouts:
        sizes = [_hashed_bytes(k, 8, layout) for k in range(1, NUM_MOVIES + 1)]
        fitting = [size for size in sizes if size <= limit]
        if fitting:
            break
    if not fitting:  # 0.5: two buckets of 8 (9 with the bias) take 16 floats or more, above 15
        assert "placement" not in point and "smallest model that builds" in point["unreachable"]
        return
    assert point["placement"]["bias_layout"] == layout
    assert point["placement"]["serving_bytes"] == max(fitting)
    chosen = point["placement"]["value"]
    assert _hashed_bytes(chosen, 8, layout) == max(fitting)
    for side in ("user_embedding", "movie_embedding"):
        assert point["model"][side] == {"type": "hashed", "ids_per_bucket": chosen}


def test_quotient_remainder_gets_the_widest_width_at_sqrt_n_buckets() -> None:
    technique = {
        "embedding": {"type": "quotient_remainder", "combiner": "multiply"},
        "budget_knob": "embedding_dim",
    }
    placed = _placed(technique, [2, 4])
    # Users: 4 remainder rows (ceil √10) + 3 quotient rows; movies: 5 + 4. 16 rows a column.
    for budget, width in ((2, 1), (4, 5)):  # 16·d + 30 ≤ 30·b
        assert placed[budget]["model"]["embedding_dim"] == width
        assert placed[budget]["placement"]["serving_bytes"] == 4 * (16 * width + NUM_IDS)


def test_a_per_id_budget_is_set_on_each_side_as_its_layers_weights() -> None:
    technique = {
        "embedding": {"type": "robe", "block_size": 4},
        "budget_knob": "embedding.budget_dim",
    }
    point = _placed(technique, [4])[4]
    # One shared array per side of v·n weights, beside 30 bias weights: v·30 + 30 ≤ 120 -> v = 3
    # (or a value a little above that gives the same arrays: the search stops within 0.4%).
    assert 3 <= point["placement"]["value"] < 3.1
    assert point["model"]["user_embedding"] == {"type": "robe", "block_size": 4, "array_size": 30}
    assert point["model"]["movie_embedding"] == {"type": "robe", "block_size": 4, "array_size": 60}
    assert point["placement"]["serving_bytes"] == 4 * (30 + 60 + NUM_IDS)


def test_mixed_dimensions_get_the_largest_mean_width_that_fits() -> None:
    technique = {
        "embedding_dim": None,
        "embedding": {
            "type": "mixed_dimension",
            "projection": "pad",
            "blocks": {"num_blocks": 2, "alpha": 0.0, "min_dim": 1, "max_dim": 8},
        },
        "budget_knob": "embedding.blocks.mean_dim",
    }
    point = _placed(technique, [4])[4]
    # α = 0: every block at round(mean_dim); 3 dims + 1 bias per id is the whole budget.
    assert 2.5 <= point["placement"]["value"] < 3.5
    assert point["placement"]["serving_bytes"] == 4 * 4 * NUM_IDS
    plans = assign_sweep_blocks([point], USERS, MOVIES, {"popularity_blocks": 3})
    assert plans[point["point"]]["user_embedding"]["dims"] == [3, 3]
    assert plans[point["point"]]["movie_embedding"]["dims"] == [3, 3]


def test_the_hybrids_unseen_id_fallback_is_kept_where_a_block_is_shared_and_dropped_above() -> None:
    # unknown_ids: tail needs a shared block to read; above about one float per id the α rule
    # shares none, and placement must still reach the budget (unseen ids then read zeros).
    technique = {
        "embedding_dim": None,
        "embedding": {
            "type": "mixed_dimension",
            "projection": "pad",
            "blocks": {
                "num_blocks": 2,
                "alpha": 0.2,
                "min_dim": 0,
                "max_dim": 8,
                "share_below_dim": 0.5,
                "tail": {"share": "hashed", "ids_per_bucket": 2, "unknown_ids": "tail"},
            },
        },
        "budget_knob": "embedding.blocks.mean_dim",
    }
    placed = _placed(technique, [1, 4])
    plans = assign_sweep_blocks(list(placed.values()), USERS, MOVIES, {"popularity_blocks": 3})
    low, high = (plans[placed[budget]["point"]] for budget in (1, 4))
    # 1 float per id, biases in the table: users 4 own ids × (dim 1 + bias) + 6 // 2 hashed bias
    # rows, movies 6 × 2 + 14 // 2; the rarest (shared) block is what unseen ids read.
    assert placed[1]["placement"]["serving_bytes"] == 4 * (4 * 2 + 3 + 6 * 2 + 7)
    for side in ("user_embedding", "movie_embedding"):
        assert low[side]["storage"] == ["own", "hashed"]
        assert low[side]["unknown_ids"] == "block 1"
        assert placed[1]["model"][side]["blocks"]["tail"]["unknown_ids"] == "tail"
    # 4 floats per id: dims 3 on every own row plus a separate bias: the whole budget.
    assert placed[4]["placement"]["serving_bytes"] == 4 * (3 * NUM_IDS + NUM_IDS)
    for side in ("user_embedding", "movie_embedding"):
        assert high[side]["storage"] == ["own", "own"]
        assert high[side]["dims"] == [3, 3]
        assert high[side]["unknown_ids"] == "zero"
        assert placed[4]["model"][side]["blocks"]["tail"]["unknown_ids"] == "zero"


def test_the_placed_model_serves_at_the_placed_bytes() -> None:
    # Placement's count is the built model's: a budgeted point's plan resolves to the same size.
    technique = {"embedding": {"type": "tt_rec"}, "budget_knob": "embedding.budget_dim"}
    point = _placed(technique, [6])[6]
    sizer = ModelSizer(USERS, MOVIES)
    assert sizer.serving_bytes(point["model"]) == point["placement"]["serving_bytes"]
    assert point["placement"]["serving_bytes"] <= 4 * 6 * NUM_IDS
    # The next step of the knob would not fit: placement stopped at the largest.
    larger = copy.deepcopy(point["model"])
    for side in ("user_embedding", "movie_embedding"):
        larger[side]["parameter_budget"] = int(larger[side]["parameter_budget"] * 1.05) + 1
    bigger = sizer.serving_bytes(larger)
    assert isinstance(bigger, str) or bigger >= point["placement"]["serving_bytes"]


@pytest.mark.skipif(in_embedding_available(), reason="bias_layout in_embedding is in this version")
def test_a_budget_of_at_most_one_float_per_id_is_unreachable_with_separate_biases() -> None:
    technique = {"embedding": {"type": "hashed"}, "budget_knob": "embedding.ids_per_bucket"}
    placed = _placed(technique, [0.5, 1])
    for budget in (0.5, 1):
        point = placed[budget]
        assert "placement" not in point
        assert point["unreachable"] == (
            "with bias_layout separate, the per-id bias tables alone take 4 bytes per id, the "
            "whole budget; bias_layout: in_embedding (biases inside the compact table) is not in "
            "this version"
        )
    plans = assign_sweep_blocks(list(placed.values()), USERS, MOVIES, {"popularity_blocks": 3})
    assert all(plan["skipped"].startswith("budget ") for plan in plans.values())


@pytest.mark.skipif(not in_embedding_available(), reason="needs bias_layout: in_embedding")
def test_below_one_float_per_id_placement_puts_the_biases_in_the_table() -> None:
    technique = {"embedding": {"type": "hashed"}, "budget_knob": "embedding.ids_per_bucket"}
    point = _placed(technique, [1])[1]
    # 9 columns (bias + 8) a bucket and no bias tables: 1 user + 2 movie buckets fit 30 floats.
    assert point["placement"]["bias_layout"] == "in_embedding"
    assert point["model"]["bias_layout"] == "in_embedding"
    assert point["placement"]["value"] == 10
    assert point["placement"]["serving_bytes"] == 4 * 3 * 9


def test_a_budget_too_small_for_the_smallest_model_says_how_small_it_gets() -> None:
    # CCE keeps 4 int32 cluster assignments per id: at least 16 bytes per id before any table.
    technique = {
        "embedding": {"type": "cce", "num_chunks": 4},
        "budget_knob": "embedding.budget_dim",
    }
    point = _placed(technique, [4])[4]
    assert point["unreachable"].startswith(
        "with bias_layout separate, its smallest model that builds (embedding.budget_dim="
    ), point["unreachable"]
    assert "bytes per id, above the budget's 16" in point["unreachable"]


def test_a_technique_that_never_builds_is_refused_as_misconfigured() -> None:
    # CCE needs the width (8, or 9 with the bias column) to be a multiple of num_chunks: no
    # budget can fix that.
    technique = {
        "embedding": {"type": "cce", "num_chunks": 5},
        "budget_knob": "embedding.budget_dim",
    }
    with pytest.raises(ValueError, match=r"sweep.techniques.t: none of its models builds"):
        _placed(technique, [4, 8])


# --- end to end: placed points train at the placed bytes -----------------------------------------


@pytest.mark.slow
def test_a_budgeted_sweep_trains_each_point_at_its_placed_bytes() -> None:
    from memory_efficient_embeddings.pipelines.data_processing.nodes import (  # noqa: PLC0415
        build_vocabularies,
        ingest_ratings,
        prefix_ids,
        split_ratings,
    )
    from memory_efficient_embeddings.pipelines.sweep.runs import run_sweep  # noqa: PLC0415
    from memory_efficient_embeddings.pipelines.sweep.summary import (  # noqa: PLC0415
        render_sweep_table,
        summarize_sweep,
    )

    parameters = _parameters("base")
    data = copy.deepcopy(parameters["data"]) | {"source": "synthetic"}
    data["synthetic"] |= {"num_users": 120, "num_movies": 80, "num_ratings": 4000, "seed": 5}
    ratings, _ = ingest_ratings(data)
    train, validation, evaluation = split_ratings(prefix_ids(ratings), parameters["split"])
    users, movies = build_vocabularies(train, validation, evaluation, parameters["vocabulary"])
    sweep = _sweep(
        {
            "hashing": {"embedding": {"type": "hashed"}, "budget_knob": "embedding.ids_per_bucket"},
            "robe": {"embedding": {"type": "robe"}, "budget_knob": "embedding.budget_dim"},
        },
        [1, 3],
    ) | {"training": {"epochs": 1}, "quantize": None, "resume": False}
    plan = place_sweep_budgets(plan_sweep(sweep, BASE_MODEL), users, movies)
    embedding_plans = assign_sweep_blocks(plan, users, movies, {"popularity_blocks": 3})
    training = {**parameters["training"], "steps_per_execution": 8, "verbose": 0}
    runs = run_sweep(
        plan, embedding_plans, train, validation, evaluation, users, movies, training, sweep
    )
    placed = {p["point"]: p["placement"] for p in plan if "placement" in p}
    # At 1 float per id the per-id bias tables leave nothing: placed only with in_embedding.
    at_one = {"hashing(budget=1)", "robe(budget=1)"}
    assert set(placed) == {"hashing(budget=3)", "robe(budget=3)"} | (
        at_one if in_embedding_available() else set()
    )
    skipped = runs["skipped"].notna() if "skipped" in runs else pd.Series(False, runs.index)
    assert set(runs.loc[skipped, "point"]) == (set() if in_embedding_available() else at_one)
    trained = runs[~skipped].set_index("point")
    num_ids = len(users) + len(movies)
    for point, placement in placed.items():
        # The run's model serves at the bytes placement counted, within the budget.
        assert trained.loc[point, "serving_bytes"] == placement["serving_bytes"]
        budget = next(p["budget"]["floats_per_id"] for p in plan if p["point"] == point)
        assert placement["serving_bytes"] <= 4 * budget * num_ids
    summary = summarize_sweep(runs, sweep, plan, None, users, movies)
    for point, placement in placed.items():
        row = summary.set_index("point").loc[point]
        assert row["bytes_per_id"] == placement["serving_bytes"] / num_ids
    table = render_sweep_table(summary, {"description": "synthetic"}, sweep)
    assert ("## Budgets not reached" in table) == (not in_embedding_available())
