"""The memory_efficient layout chosen on the validation split among `memory_efficient.layouts`.

Tiny data where the answer is known before training: ratings made of item biases alone (pooling
every item's bias into one shared row must lose to own biases), and ratings made of a user-item
interaction (a biases-only model must lose to one with vectors). The winner is listed second in
one case and first in the other, so neither "first" nor "last" passes by luck.
"""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from memory_efficient_embeddings.hooks import ParameterValidationHooks
from memory_efficient_embeddings.modeling import nodes
from memory_efficient_embeddings.modeling.layouts import layout_candidates, pick_layout
from memory_efficient_embeddings.modeling.nodes import select_layout
from memory_efficient_embeddings.parameters import ParameterError, validate_parameters
from memory_efficient_embeddings.pipelines.memory_efficient.pipeline import create_pipeline

EVALUATION = {"popularity_blocks": 2}
TRAINING = {
    "seed": 5,
    "optimizer": "adam",
    "learning_rate": 0.05,
    "batch_size": 128,
    "epochs": 8,
    "steps_per_execution": 4,
    "validation_batch_size": 1024,
    "early_stopping": {
        "enabled": True,
        "monitor": "val_rmse",
        "patience": 2,
        "min_delta": 0.0,
        "restore_best_weights": True,
    },
    "deterministic": True,
    "verbose": 0,
}
MODEL = {
    "name": "memory_efficient",
    "seed": 3,
    "embedding_dim": 4,
    "use_biases": True,
    "bias_layout": "separate",
    "embedding_l2": 0.0,
    "bias_l2": 0.0,
    "output": {"activation": "linear", "min_rating": 0.0, "max_rating": 6.0},
    "user_embedding": {"type": "full"},
    "movie_embedding": {"type": "full"},
}
# Candidate layouts, as overrides of MODEL.
VECTORS = {}  # MODEL as written: full dim-4 tables with separate biases
OWN_BIASES = {"embedding_dim": 0, "bias_layout": "in_embedding"}
POOLED_ITEM_BIASES = {
    "embedding_dim": 0,
    "bias_layout": "in_embedding",
    # Every item in one block that reads one shared row: one bias for all items.
    "movie_embedding": {
        "type": "mixed_dimension",
        "projection": "pad",
        "blocks": {
            "num_blocks": 1,
            "dims": [0],
            "shared": [True],
            "tail": {"share": "hashed", "ids_per_bucket": 1_000_000},
        },
    },
}
NUM_USERS, NUM_ITEMS = 40, 30


def _ratings(kind: str, rows: int, seed: int) -> pd.DataFrame:
    """Ratings of one fixed population: item biases alone, or a user-item interaction alone."""
    truth = np.random.default_rng(0)
    item_bias = truth.choice([-1.5, 1.5], NUM_ITEMS)
    user_factor = truth.choice([-1.0, 1.0], (NUM_USERS, 2))
    item_factor = truth.choice([-1.0, 1.0], (NUM_ITEMS, 2))
    rng = np.random.default_rng(seed)
    users, items = rng.integers(0, NUM_USERS, rows), rng.integers(0, NUM_ITEMS, rows)
    if kind == "item_bias":
        signal = item_bias[items]
    else:
        signal = 0.8 * (user_factor[users] * item_factor[items]).sum(axis=1)
    return pd.DataFrame(
        {
            "user_id": [f"user_{u}" for u in users],
            "movie_id": [f"movie_{m}" for m in items],
            "rating": (3.0 + signal + rng.normal(0, 0.3, rows)).astype(np.float32),
        }
    )


def _vocabulary(ratings: pd.DataFrame, column: str) -> pd.DataFrame:
    counts = ratings[column].value_counts()
    frame = pd.DataFrame({"id": counts.index.astype(str), "train_count": counts.to_numpy()})
    return frame.sort_values(["train_count", "id"], ascending=[False, True], ignore_index=True)


def _splits(kind: str) -> dict[str, pd.DataFrame]:
    train = _ratings(kind, 4000, 1)
    return {
        "train_ratings": train,
        "validation_ratings": _ratings(kind, 600, 2),
        "eval_ratings": _ratings(kind, 600, 3),
        "user_vocabulary": _vocabulary(train, "user_id"),
        "movie_vocabulary": _vocabulary(train, "movie_id"),
    }


def _select(kind: str, layouts: dict | None, model: dict = MODEL):
    data = _splits(kind)
    return select_layout(
        data["train_ratings"],
        data["validation_ratings"],
        data["user_vocabulary"],
        data["movie_vocabulary"],
        model,
        layouts,
        TRAINING,
        EVALUATION,
    ), data


def _validation_rmse_by_hand(model, validation: pd.DataFrame) -> float:
    """The served model's predictions on validation, RMSE in numpy (not Keras' metric)."""
    predicted = np.asarray(
        model(
            {
                "user_id": validation["user_id"].to_numpy(object),
                "movie_id": validation["movie_id"].to_numpy(object),
            },
            training=False,
        )
    ).reshape(-1)
    return float(np.sqrt(np.mean((predicted - validation["rating"].to_numpy(np.float64)) ** 2)))


@pytest.mark.parametrize(
    ("kind", "layouts", "winner"),
    [
        # Item biases carry all the signal: one pooled item bias cannot hold them.
        ("item_bias", {"pooled": POOLED_ITEM_BIASES, "own_biases": OWN_BIASES}, "own_biases"),
        # An interaction with no bias at all: biases alone cannot hold it.
        ("interaction", {"vectors": VECTORS, "own_biases": OWN_BIASES}, "vectors"),
    ],
)
def test_the_layout_that_must_win_on_validation_is_chosen(kind, layouts, winner) -> None:
    (spec, table, plan, model, history), data = _select(kind, layouts)
    assert list(table["layout"]) == list(layouts)
    assert table.loc[table["chosen"], "layout"].tolist() == [winner]
    by_name = table.set_index("layout")
    loser = next(name for name in layouts if name != winner)
    # Not a close call: the loser cannot represent the signal.
    assert by_name.loc[winner, "val_rmse"] < by_name.loc[loser, "val_rmse"] - 0.2
    # What comes out is the winner, trained: its spec, its plan, its weights and its history.
    assert spec == layout_candidates(MODEL, layouts)[winner]
    assert history["layout"] == winner and plan["embedding_dim"] == spec["embedding_dim"]
    assert history["val_rmse"] == pytest.approx(by_name.loc[winner, "val_rmse"])
    by_hand = _validation_rmse_by_hand(model, data["validation_ratings"])
    assert by_hand == pytest.approx(by_name.loc[winner, "val_rmse"], abs=1e-4)


def test_the_table_sizes_each_candidate_by_hand() -> None:
    layouts = {"pooled": POOLED_ITEM_BIASES, "own_biases": OWN_BIASES}
    (_, table, _, _, _), data = _select("item_bias", layouts)
    num_users, num_items = len(data["user_vocabulary"]), len(data["movie_vocabulary"])
    ids = num_users + num_items
    # Own biases: one float32 per user and per item. Pooled: one per user, one shared item row.
    expected = {"own_biases": 4 * ids, "pooled": 4 * (num_users + 1)}
    for row in table.to_dict("records"):
        assert row["serving_bytes"] == expected[row["layout"]]
        assert row["floats_per_id"] == pytest.approx(expected[row["layout"]] / 4 / ids, abs=1e-4)
        assert row["bytes_per_id"] == pytest.approx(expected[row["layout"]] / ids, abs=1e-4)
        assert 1 <= row["best_epoch"] <= row["epochs_run"] <= TRAINING["epochs"]


def test_ties_go_to_fewer_serving_bytes_then_to_the_first() -> None:
    rows = [
        {"layout": "wide", "val_rmse": 0.9, "serving_bytes": 800},
        {"layout": "narrow", "val_rmse": 0.9, "serving_bytes": 400},
        {"layout": "worse", "val_rmse": 0.95, "serving_bytes": 100},
        {"layout": "narrow_too", "val_rmse": 0.9, "serving_bytes": 400},
    ]
    assert pick_layout(rows) == "narrow"
    assert pick_layout(rows[::-1]) == "narrow_too"  # the first of an exact tie
    # A diverged fit (NaN) never wins, whatever its bytes.
    nan = {"layout": "nan", "val_rmse": float("nan"), "serving_bytes": 1}
    assert pick_layout([nan, *rows]) == "narrow"
    assert pick_layout([rows[0], nan]) == "wide"
    assert pick_layout([nan]) == "nan"


def test_the_selection_never_receives_the_eval_split() -> None:
    # `evaluation` is the popularity-block setting for the plan, not a split.
    assert not [p for p in inspect.signature(select_layout).parameters if p.startswith("eval_")]
    select = next(n for n in create_pipeline().nodes if n.name == "memory_efficient.select_layout")
    assert not [name for name in select.inputs if "eval_" in name]
    assert "validation_ratings" in select.inputs  # the shared split, not a namespaced copy


@pytest.mark.parametrize("layouts", [None, {"only": OWN_BIASES}])
def test_one_candidate_costs_one_fit(monkeypatch, layouts) -> None:
    fits = []
    real_train = nodes.train_model

    def counted(*args, **kwargs):
        fits.append(1)
        return real_train(*args, **kwargs)

    monkeypatch.setattr(nodes, "train_model", counted)
    (spec, table, _, _, history), _ = _select("item_bias", layouts)
    assert len(fits) == 1  # the model's own fit: no refit of the winner, no selection fit
    assert table["chosen"].tolist() == [True]
    assert history["layout"] == ("model" if layouts is None else "only")
    fits.clear()
    _select("item_bias", {"a": OWN_BIASES, "b": VECTORS})
    assert len(fits) == 2  # one per candidate, the winner not trained again


# --- the memory_efficient pipeline end to end --------------------------------------------------


class _KeptDataset(MemoryDataset):
    """A memory dataset the runner cannot release, so the test reads it after the run."""

    def _release(self) -> None:
        pass


def _run_pipeline(data: dict, layouts: dict) -> DataCatalog:
    parameters = {
        "memory_efficient.model": MODEL,
        "memory_efficient.layouts": layouts,
        "training": TRAINING,
        "evaluation": EVALUATION,
    }
    catalog = DataCatalog(
        datasets={f"params:{k}": MemoryDataset(v) for k, v in parameters.items()}
        | {k: MemoryDataset(v) for k, v in data.items()}
        | {
            "data_provenance": MemoryDataset({"description": "test", "source": "synthetic"}),
            "split_summary": MemoryDataset({"validation_is_eval": False}),
        }
    )
    catalog["memory_efficient.model"] = _KeptDataset(copy_mode="assign")
    for name in (
        "memory_efficient.layout_selection",
        "memory_efficient.metrics",
        "memory_efficient.chosen_model_parameters",
        "uniform_at_same_bytes.matched_plan",
        "uniform_at_same_bytes.metrics",
    ):
        catalog[name] = _KeptDataset()
    # Data processing is given; the plots are left out.
    pipeline = create_pipeline().only_nodes_with_tags("training", "evaluation")
    SequentialRunner().run(pipeline, catalog)
    return catalog


@pytest.mark.slow
def test_the_pipeline_reports_the_chosen_layout_and_sizes_the_uniform_table_at_its_bytes() -> None:
    # The winner (own biases, in the embedding) differs from MODEL in its bytes and bias layout,
    # and sets its own L2: the uniform table must take all three from the chosen layout.
    layouts = {"pooled": POOLED_ITEM_BIASES, "own_biases": OWN_BIASES | {"bias_l2": 0.001}}
    data = _splits("item_bias")
    catalog = _run_pipeline(data, layouts)
    table = catalog.load("memory_efficient.layout_selection")
    metrics = catalog.load("memory_efficient.metrics")
    chosen = table.loc[table["chosen"]].iloc[0]
    assert chosen["layout"] == metrics["layout"] == "own_biases"
    assert metrics["serving_bytes"] == chosen["serving_bytes"]
    assert metrics["val_rmse"] == pytest.approx(chosen["val_rmse"])
    assert metrics["unseen_ids"] == {"user": "zero", "movie": "zero"}
    assert catalog.load("memory_efficient.chosen_model_parameters")["bias_l2"] == 0.001
    plan = catalog.load("uniform_at_same_bytes.matched_plan")
    assert plan["matched"] == {
        "model": "memory_efficient",
        "serving_bytes": chosen["serving_bytes"],
    }
    # Own biases take 4 bytes an id: the widest plain table in them is width 0 (biases only).
    assert plan["embedding_dim"] == 0
    assert plan["model_parameters"]["bias_l2"] == 0.001
    uniform = catalog.load("uniform_at_same_bytes.metrics")
    assert uniform["serving_bytes"] <= chosen["serving_bytes"]
    # Eval scrambled: the choice and every candidate's validation figures stay as they were.
    scrambled = data | {
        "eval_ratings": data["eval_ratings"].assign(
            rating=np.random.default_rng(9).uniform(0, 6, len(data["eval_ratings"]))
        )
    }
    again = _run_pipeline(scrambled, layouts)
    pd.testing.assert_frame_equal(again.load("memory_efficient.layout_selection"), table)
    assert abs(again.load("memory_efficient.metrics")["eval_rmse"] - metrics["eval_rmse"]) > 0.1


# --- candidates checked before any node -------------------------------------------------------


def _parameters(layouts, **sections) -> dict:
    return {"memory_efficient": {"model": MODEL, "layouts": layouts}, **sections}


@pytest.mark.parametrize(
    ("layouts", "message"),
    [
        (
            {"good": {}, "bad": {"embedding_dim": -1}},
            "`memory_efficient.layouts.bad.embedding_dim` is -1",
        ),
        (
            {"bad": {"user_embedding": {"type": "mixed_dimension"}}},
            "`memory_efficient.layouts.bad.user_embedding`",
        ),
        (
            {"bad": {"movie_embedding": {"blocks": {"num_blocks": 2, "dims": [1, 0]}}}},
            "`memory_efficient.layouts.bad.movie_embedding.blocks` applies only to mixed_dimension",
        ),
        (
            {"bad": {"bias_layot": "in_embedding"}},
            "`memory_efficient.layouts.bad.bias_layot` is not a known parameter. Did you mean "
            "`memory_efficient.layouts.bad.bias_layout`?",
        ),
        ({"bad": {"name": "other"}}, "`memory_efficient.layouts.bad.name` cannot be set"),
        ({"bad": {"output": {"max_rating": 10.0}}}, "`memory_efficient.layouts.bad.output`"),
        ({"bad": None}, "`memory_efficient.layouts` is {'bad': None}"),
        ({}, "`memory_efficient.layouts` is {}"),
    ],
)
def test_a_bad_candidate_is_refused_with_its_key(layouts, message) -> None:
    with pytest.raises(ParameterError) as error:
        validate_parameters(_parameters(layouts))
    assert message in str(error.value)
    assert str(error.value).count("\n  - ") == 1  # one line for one problem


def test_a_layout_that_does_not_fit_the_model_says_how_to_train_the_model_alone() -> None:
    model = MODEL | {"user_embedding": {"type": "quotient_remainder", "ids_per_bucket": 4}}
    layouts = {"blocks": {"user_embedding": {"blocks": {"num_blocks": 2, "dims": [1, 0]}}}}
    with pytest.raises(ParameterError) as error:
        validate_parameters({"memory_efficient": {"model": model, "layouts": layouts}})
    assert str(error.value).endswith(
        "`memory_efficient.layouts.blocks.user_embedding.blocks` applies only to mixed_dimension "
        "embeddings, not quotient_remainder (merged into memory_efficient.model; "
        "`memory_efficient.layouts: null` trains memory_efficient.model alone)."
    )


def test_good_candidates_and_no_layouts_pass() -> None:
    validate_parameters(_parameters(None))
    validate_parameters(_parameters({"a": {}, "b": OWN_BIASES, "c": POOLED_ITEM_BIASES}))


def test_a_choice_needs_a_validation_split() -> None:
    split = {"train_fraction": 0.85, "validation_fraction": 0, "seed": 1}
    with pytest.raises(ParameterError, match="split.validation_fraction is 0"):
        validate_parameters(_parameters({"a": {}, "b": OWN_BIASES}, split=split))
    validate_parameters(_parameters({"a": {}}, split=split))  # one layout: nothing is chosen


def test_the_run_stops_before_any_node_on_a_bad_candidate() -> None:
    """The project's first hook refuses the parameters: no node has run, nothing is written."""
    catalog = DataCatalog(
        datasets={"parameters": MemoryDataset(_parameters({"bad": {"seed": "x"}}))}
    )
    with pytest.raises(ParameterError, match=r"`memory_efficient\.layouts\.bad\.seed` is 'x'"):
        ParameterValidationHooks().before_pipeline_run(catalog)


# --- conf/base's candidates ---------------------------------------------------------------------


def test_conf_base_candidates_are_the_measured_layouts() -> None:
    """docs/parameters.md describes them: the α-blocks model as written, and the shared-tail
    biases below one float per id (one bias per user and per popular item, one for the rest)."""
    from memory_efficient_embeddings.modeling.nodes import assign_blocks  # noqa: PLC0415
    from tests.test_parameters import _parameters  # noqa: PLC0415

    parameters = _parameters("local")
    section = parameters["memory_efficient"]
    assert list(section["layouts"]) == ["alpha_blocks_dim4", "biases_shared_tail"]
    assert section["layouts"]["alpha_blocks_dim4"] == {}
    candidates = layout_candidates(section["model"], section["layouts"])
    assert candidates["alpha_blocks_dim4"] == section["model"]
    tail = candidates["biases_shared_tail"]
    rng = np.random.default_rng(0)
    users = pd.DataFrame({"id": [f"u{i}" for i in range(300)], "train_count": 5})
    counts = np.sort(rng.zipf(1.6, 4000).clip(max=2000))[::-1]
    items = pd.DataFrame({"id": [f"m{i}" for i in range(4000)], "train_count": counts})
    plan = assign_blocks(users, items, tail, {"popularity_blocks": 3})
    rarest = plan["movie_embedding"]["sizes"][-1]
    # By hand: a bias per user and per item of the three popular blocks, one for the rarest.
    assert plan["embedding_parameters"] == 300 + (4000 - rarest) + 1
    assert plan["parameters_per_id"] < 1
    assert plan["movie_embedding"]["unknown_ids"] == "block 3"
    assert plan["user_embedding"]["unknown_ids"] == "zero"
    validate_parameters(parameters)
