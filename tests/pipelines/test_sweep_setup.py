"""What reaches each sweep run: the points of the grid, each point's plan, seed, regime and data.

No model is trained: the executor (`run_tasks`), the model builder and the fit are replaced by
recorders, and every expectation is written out by hand.
"""

from __future__ import annotations

import copy
import logging

import numpy as np
import pandas as pd
import pytest

from memory_efficient_embeddings.modeling.grid import (
    RECIPE,
    deep_merge,
    plan_sweep,
    quantize_modes,
)
from memory_efficient_embeddings.modeling.specs import BlocksDoNotFitError
from memory_efficient_embeddings.pipelines.sweep import plan as plan_module
from memory_efficient_embeddings.pipelines.sweep import runs as runs_module
from memory_efficient_embeddings.pipelines.sweep.executors import TaskOutcome
from memory_efficient_embeddings.pipelines.sweep.plan import assign_sweep_blocks
from memory_efficient_embeddings.pipelines.sweep.runs import (
    ROW_FIELDS,
    SweepCheckpoints,
    data_fingerprint,
    quantized_fields,
    run_sweep,
    train_sweep_point,
)

BASE_MODEL = {
    "name": "baseline",
    "seed": 42,
    "embedding_dim": 64,
    "use_biases": True,
    "embedding_l2": 0.04,
    "output": {"activation": "sigmoid"},
    "user_embedding": {"type": "full"},
    "movie_embedding": {"type": "full"},
}


def _sweep(**changes) -> dict:
    sweep = {
        "seeds": [7, 3],
        "reference": "full",
        "techniques": {
            "full": {"embedding": {"type": "full"}, "grid": {"embedding_dim": [64]}},
            "qr": {
                "user_embedding": {"type": "quotient_remainder", "combiner": "add"},
                "tune": ["embedding_l2"],
                "grid": {
                    "user_embedding.ids_per_bucket": [4, None],
                    "embedding_l2": [0.01],
                },
            },
            "shared": {
                "embedding": {"type": "hashed", "num_buckets": 8},
                "movie_embedding": {"num_buckets": 16},
                "grid": {"embedding.combiner": ["sum"]},
            },
        },
        "recipe": {"plain": {"use_biases": False, "embedding": {"type": "full"}}, "off": None},
        "training": {},
        "executor": {"progress": False},
    }
    return sweep | changes


# --- the grid: each point's name, settings and full model ---------------------------------


def test_the_grid_expands_to_named_points_with_full_models() -> None:
    plan = plan_sweep(_sweep(), BASE_MODEL)
    assert [(p["point"], p["technique"], p["settings"]) for p in plan] == [
        ("full(embedding_dim=64)", "full", "embedding_dim=64"),
        ("qr(ids_per_bucket=4, embedding_l2=0.01)", "qr", "ids_per_bucket=4, embedding_l2=0.01"),
        (
            "qr(ids_per_bucket=auto, embedding_l2=0.01)",
            "qr",
            "ids_per_bucket=auto, embedding_l2=0.01",
        ),
        ("shared(combiner=sum)", "shared", "combiner=sum"),
        ("recipe(plain)", RECIPE, "plain"),
    ]
    models = {p["point"]: p["model"] for p in plan}
    assert models["full(embedding_dim=64)"] == {
        **BASE_MODEL,
        "name": "full_embedding_dim_64",
        "user_embedding": {"type": "full"},
        "movie_embedding": {"type": "full"},
    }
    assert models["qr(ids_per_bucket=auto, embedding_l2=0.01)"] == {
        **BASE_MODEL,
        "name": "qr_ids_per_bucket_auto_embedding_l2_0.01",
        "embedding_l2": 0.01,
        # The technique's side replaces the base's whole; a dotted grid key sets one argument.
        "user_embedding": {"type": "quotient_remainder", "combiner": "add", "ids_per_bucket": None},
        "movie_embedding": {"type": "full"},
    }
    # `embedding` sets both sides; a side's own keys merge over it.
    assert models["shared(combiner=sum)"]["user_embedding"] == {
        "type": "hashed",
        "num_buckets": 8,
        "combiner": "sum",
    }
    assert models["shared(combiner=sum)"]["movie_embedding"] == {
        "type": "hashed",
        "num_buckets": 16,
        "combiner": "sum",
    }
    assert "embedding" not in models["shared(combiner=sum)"]
    assert models["recipe(plain)"] == {
        **BASE_MODEL,
        "name": "recipe_plain",
        "use_biases": False,
        "user_embedding": {"type": "full"},
        "movie_embedding": {"type": "full"},
    }
    assert all("grid" not in m and "tune" not in m for m in models.values())
    # A tuned key's candidates share a group named by the other settings.
    assert {p["point"]: p.get("tuning_group") for p in plan} == {
        "full(embedding_dim=64)": None,
        "qr(ids_per_bucket=4, embedding_l2=0.01)": "qr(ids_per_bucket=4)",
        "qr(ids_per_bucket=auto, embedding_l2=0.01)": "qr(ids_per_bucket=auto)",
        "shared(combiner=sum)": None,
        "recipe(plain)": None,
    }


def test_a_tuned_key_outside_the_grid_is_refused_by_name() -> None:
    sweep = _sweep()
    sweep["techniques"]["qr"]["tune"] = ["bias_l2", "embedding_l2"]
    with pytest.raises(
        ValueError, match=r"^sweep\.techniques\.qr\.tune names no grid key: \['bias_l2'\]$"
    ):
        plan_sweep(sweep, BASE_MODEL)


def test_a_tuning_group_names_every_other_setting_by_its_last_key_part() -> None:
    sweep = _sweep(
        reference="md",
        techniques={
            "md": {
                "embedding": {"type": "mixed_dimension"},
                "tune": ["embedding_l2"],
                "grid": {
                    "embedding.blocks.mean_dim": [4],
                    "embedding_dim": [None],
                    "embedding_l2": [0.01, 0.02],
                },
            }
        },
        recipe=None,
    )
    groups = [p["tuning_group"] for p in plan_sweep(sweep, BASE_MODEL)]
    assert groups == ["md(mean_dim=4, embedding_dim=auto)"] * 2


def test_model_names_keep_letters_and_a_dotted_key_makes_missing_parents() -> None:
    sweep = _sweep(
        reference="Xtra",
        techniques={
            "Xtra": {"embedding": {"type": "full"}},
            "md": {
                "embedding": {"type": "mixed_dimension"},
                "grid": {"embedding.blocks.alpha": [0.2]},
            },
        },
        recipe=None,
    )
    xtra, md = plan_sweep(sweep, BASE_MODEL)
    assert xtra["model"]["name"] == "Xtra"
    assert md["model"]["name"] == "md_alpha_0.2"
    assert md["model"]["user_embedding"] == {"type": "mixed_dimension", "blocks": {"alpha": 0.2}}


def test_the_grid_leaves_its_inputs_as_they_were() -> None:
    sweep, base = _sweep(), copy.deepcopy(BASE_MODEL)
    before = copy.deepcopy(sweep)
    plan = plan_sweep(sweep, base)
    plan[0]["model"]["output"]["activation"] = "linear"
    plan[1]["model"]["user_embedding"]["combiner"] = "changed"
    assert sweep == before and base == BASE_MODEL


def test_a_point_without_a_grid_is_named_by_its_technique() -> None:
    sweep = _sweep(techniques={"full": {"embedding": {"type": "full"}}}, recipe=None)
    (point,) = plan_sweep(sweep, BASE_MODEL)
    assert (point["point"], point["settings"], point["model"]["name"]) == ("full", "", "full")


def test_the_grid_refuses_repeated_points_and_an_unknown_reference() -> None:
    repeated = _sweep(
        techniques={"full": {"grid": {"embedding_dim": [8, 8]}}},
        recipe=None,
    )
    with pytest.raises(ValueError, match=r"repeated: \['full\(embedding_dim=8\)'\]"):
        plan_sweep(repeated, BASE_MODEL)
    with pytest.raises(ValueError, match=r"sweep.reference 'qr' is not a technique of the grid"):
        plan_sweep(_sweep(reference="qr", techniques={"full": {}}), BASE_MODEL)


@pytest.mark.parametrize(
    ("quantize", "modes"), [(None, []), ("int8", ["int8"]), (["int4", "int8"], ["int4", "int8"])]
)
def test_quantize_modes(quantize, modes) -> None:
    assert quantize_modes(quantize) == modes
    assert quantized_fields(modes) == [
        f"{field}_{mode}" for mode in modes for field in ("serving_bytes", "eval_rmse", "eval_mae")
    ]


def test_quantized_fields_by_hand() -> None:
    assert quantized_fields(["int8", "int4"]) == [
        "serving_bytes_int8",
        "eval_rmse_int8",
        "eval_mae_int8",
        "serving_bytes_int4",
        "eval_rmse_int4",
        "eval_mae_int4",
    ]


# --- each point's plan ----------------------------------------------------------------------


def test_each_point_is_resolved_on_the_vocabularies_and_an_unfit_one_is_skipped(
    monkeypatch, caplog
) -> None:
    calls = []

    def resolve(users, movies, model, popularity_blocks):
        calls.append((users, movies, model["name"], popularity_blocks))
        if model["name"] == "recipe_plain":
            raise BlocksDoNotFitError("boundaries [400, 1700] need more than 5 movies")
        return {"for": model["name"]}

    monkeypatch.setattr(plan_module, "resolve_embedding_plan", resolve)
    users, movies = pd.DataFrame({"id": ["u"]}), pd.DataFrame({"id": ["m"]})
    plan = plan_sweep(_sweep(), BASE_MODEL)
    with caplog.at_level(logging.WARNING):
        plans = assign_sweep_blocks(plan, users, movies, {"popularity_blocks": 4})
    assert plans == {
        "full(embedding_dim=64)": {"for": "full_embedding_dim_64"},
        "qr(ids_per_bucket=4, embedding_l2=0.01)": {"for": "qr_ids_per_bucket_4_embedding_l2_0.01"},
        "qr(ids_per_bucket=auto, embedding_l2=0.01)": {
            "for": "qr_ids_per_bucket_auto_embedding_l2_0.01"
        },
        "shared(combiner=sum)": {"for": "shared_combiner_sum"},
        "recipe(plain)": {"skipped": "boundaries [400, 1700] need more than 5 movies"},
    }
    assert all(u is users and m is movies and blocks == 4 for u, m, _, blocks in calls)
    assert "Sweep point recipe(plain) skipped: boundaries [400, 1700]" in caplog.text


@pytest.mark.parametrize("error", [ValueError("bad spec"), TypeError("bad"), KeyError("gone")])
def test_a_misconfigured_point_stops_the_sweep_naming_it(monkeypatch, error) -> None:
    def resolve(users, movies, model, popularity_blocks):
        if model["name"].startswith("qr"):
            raise error
        return {}

    monkeypatch.setattr(plan_module, "resolve_embedding_plan", resolve)
    with pytest.raises(
        ValueError, match=r"^Sweep point qr\(ids_per_bucket=4, embedding_l2=0\.01\)"
    ):
        assign_sweep_blocks(plan_sweep(_sweep(), BASE_MODEL), None, None, {"popularity_blocks": 3})


# --- one run: what reaches the model and the fit --------------------------------------------


def test_a_run_builds_and_fits_its_point_with_its_seed_and_keeps_the_row_fields(
    monkeypatch,
) -> None:
    seen = {}

    def build(plan, model):
        seen["build"] = (plan, model)
        return "the model"

    def fit(model, data, training, quantize):
        seen["fit"] = (model, data, training, quantize)
        fields = [*ROW_FIELDS, *quantized_fields(quantize)]
        return {field: float(i) for i, field in enumerate(fields)} | {"history": [1, 2]}

    monkeypatch.setattr(runs_module, "build_model", build)
    monkeypatch.setattr(runs_module, "fit_and_score", fit)
    point = {"point": "p", "model": {"name": "p", "seed": 42, "embedding_dim": 8}}
    training = {"epochs": 3, "seed": 42}
    row = train_sweep_point("DATA", point, {"plan": 1}, 5, training, "int8")
    assert seen["build"] == ({"plan": 1}, {"name": "p", "seed": 5, "embedding_dim": 8})
    assert seen["fit"] == ("the model", "DATA", {"epochs": 3, "seed": 5}, ["int8"])
    fields = [*ROW_FIELDS, *quantized_fields(["int8"])]
    assert row == {field: float(i) for i, field in enumerate(fields)}
    assert point["model"]["seed"] == 42 and training["seed"] == 42  # inputs untouched


# --- the sweep: every (point, seed) task with its own plan, regime and data ------------------

USERS = pd.DataFrame({"id": ["user_2", "user_1"], "train_count": [2, 1]})
MOVIES = pd.DataFrame({"id": ["movie_9", "movie_5", "movie_7"], "train_count": [2, 1, 1]})
TRAIN = pd.DataFrame(
    {
        "user_id": ["user_2", "user_1", "user_2"],
        "movie_id": ["movie_9", "movie_5", "movie_7"],
        "rating": [4.0, 3.0, 5.0],
    }
)
VALIDATION = pd.DataFrame({"user_id": ["user_1"], "movie_id": ["movie_9"], "rating": [2.0]})
EVAL = pd.DataFrame(
    {"user_id": ["user_3", "user_2"], "movie_id": ["movie_5", "movie_0"], "rating": [1.0, 4.5]}
)
TRAINING = {"epochs": 40, "batch_size": 2048, "seed": 42, "verbose": "auto", "lazy_adam": {"a": 1}}


class _Executor:
    """Records what `run_sweep` hands the executor and answers each task with a row."""

    def __init__(self, fail: str | None = None) -> None:
        self.calls: list[dict] = []
        self.fail = fail

    def row(self, task: tuple) -> dict:
        point, _, seed, _, quantize = task
        fields = [*ROW_FIELDS, *quantized_fields(quantize)]
        return {field: seed * 1000.0 + len(point["point"]) for field in fields}

    def __call__(self, function, shared, tasks, labels, executor, on_outcome):
        self.calls.append(
            {"function": function, "shared": shared, "tasks": tasks, "labels": labels}
            | {"executor": executor}
        )
        outcomes = []
        for index, (task, label) in enumerate(zip(tasks, labels, strict=True)):
            if label == self.fail:
                outcome = TaskOutcome(label, error="RuntimeError: boom")
            else:
                outcome = TaskOutcome(label, value=self.row(task))
            on_outcome(index, outcome)
            outcomes.append(outcome)
        return outcomes


def _run_sweep(monkeypatch, sweep: dict, plans: dict, executor: _Executor) -> pd.DataFrame:
    monkeypatch.setattr(runs_module, "run_tasks", executor)
    plan = plan_sweep(sweep, BASE_MODEL)
    return run_sweep(plan, plans, TRAIN, VALIDATION, EVAL, USERS, MOVIES, TRAINING, sweep)


def _plans(skip: str | None = None) -> dict:
    names = [p["point"] for p in plan_sweep(_sweep(), BASE_MODEL)]
    return {name: {"skipped": "no fit"} if name == skip else {"plan of": name} for name in names}


def test_every_point_and_seed_gets_its_own_plan_seed_and_the_merged_regime(monkeypatch) -> None:
    sweep = _sweep(training={"epochs": 2, "lazy_adam": {"b": 2}}, quantize="int4")
    sweep["executor"] = {"type": "in_process", "progress": False}
    executor = _Executor()
    runs = _run_sweep(monkeypatch, sweep, _plans(skip="shared(combiner=sum)"), executor)
    (call,) = executor.calls
    assert call["function"] is train_sweep_point
    regime = {
        "epochs": 2,
        "batch_size": 2048,
        "seed": 42,
        "verbose": "auto",
        "lazy_adam": {"a": 1, "b": 2},
    }
    points = {p["point"]: p for p in plan_sweep(sweep, BASE_MODEL)}
    expected = [
        (name, seed)
        for name in points
        if name != "shared(combiner=sum)"  # skipped: no task
        for seed in (7, 3)
    ]
    assert [(task[0]["point"], task[2]) for task in call["tasks"]] == expected
    for point, plan, seed, training, quantize in call["tasks"]:
        assert point == points[point["point"]]
        assert plan == {"plan of": point["point"]}
        assert (training, quantize) == (regime, ["int4"])
    assert call["labels"] == [f"{name} seed {seed}" for name, seed in expected]
    assert call["executor"] == {
        "type": "in_process",
        "workers": None,
        "scheduler_address": None,
        "progress": False,
    }
    # One row per (point, seed) in plan order, each with its own task's results.
    assert list(zip(runs["point"], runs["seed"], strict=True)) == [
        (name, seed) for name in points for seed in (7, 3)
    ]
    shared = runs[runs["point"] == "shared(combiner=sum)"]
    assert shared["skipped"].tolist() == ["no fit", "no fit"]
    assert shared["eval_rmse"].isna().all()
    trained = runs[runs["point"] != "shared(combiner=sum)"]
    assert trained["eval_rmse_int4"].tolist() == [
        seed * 1000.0 + len(name) for name, seed in expected
    ]
    assert trained["skipped"].isna().all()
    qr = runs[runs["technique"] == "qr"]
    assert qr["settings"].tolist()[0] == "ids_per_bucket=4, embedding_l2=0.01"
    assert (
        qr["tuning_group"].tolist()
        == ["qr(ids_per_bucket=4)"] * 2 + ["qr(ids_per_bucket=auto)"] * 2
    )
    assert runs.loc[runs["technique"] != "qr", "tuning_group"].isna().all()


def test_each_run_reads_the_splits_encoded_on_the_vocabularies(monkeypatch) -> None:
    executor = _Executor()
    _run_sweep(monkeypatch, _sweep(), _plans(), executor)
    data = executor.calls[0]["shared"]
    assert set(data) == {"train", "validation", "eval"}
    # Vocabulary order (most popular first); unknown ids get the index after the last.
    np.testing.assert_array_equal(data["train"].inputs["user_id"], [0, 1, 0])
    np.testing.assert_array_equal(data["train"].inputs["movie_id"], [0, 1, 2])
    np.testing.assert_array_equal(data["validation"].inputs["user_id"], [1])
    np.testing.assert_array_equal(data["validation"].inputs["movie_id"], [0])
    np.testing.assert_array_equal(data["eval"].inputs["user_id"], [2, 0])
    np.testing.assert_array_equal(data["eval"].inputs["movie_id"], [1, 3])
    np.testing.assert_array_equal(data["train"].targets, [4.0, 3.0, 5.0])
    np.testing.assert_array_equal(data["validation"].targets, [2.0])
    np.testing.assert_array_equal(data["eval"].targets, [1.0, 4.5])
    assert data["eval"].targets.dtype == np.float32


def test_a_failed_run_is_kept_with_its_error_and_the_others_keep_their_rows(
    monkeypatch, caplog
) -> None:
    tracked = []
    monkeypatch.setattr(runs_module, "log_sweep_run", tracked.append)
    executor = _Executor(fail="full(embedding_dim=64) seed 3")
    with caplog.at_level(logging.INFO, logger=runs_module.__name__):
        runs = _run_sweep(monkeypatch, _sweep(), _plans(), executor)
    # Each finished run is logged as it finishes, numbered among the runs to train, and
    # tracked with its point, seed and results; the failed one is named once at the end.
    logged = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Sweep run ")]
    every_run = [(point, seed) for point in _plans() for seed in (7, 3)]
    assert [m.split(":")[0] for m in logged] == [
        f"Sweep run {i}/10 {point} seed {seed}"
        for i, (point, seed) in enumerate(every_run, start=1)  # the failed run counts as done
        if (point, seed) != ("full(embedding_dim=64)", 3)
    ]
    assert [(row["point"], row["seed"], row["eval_rmse"]) for row in tracked] == [
        (p, s, s * 1000.0 + len(p))
        for p in _plans()
        for s in (7, 3)
        if (p, s) != ("full(embedding_dim=64)", 3)
    ]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [
        "Sweep: 1 of 10 runs failed (kept in sweep_runs, left out of the summary): "
        "full(embedding_dim=64) seed 3: RuntimeError: boom"
    ]
    runs = runs.set_index(["point", "seed"])
    assert runs.loc[("full(embedding_dim=64)", 3), "failed"] == "RuntimeError: boom"
    assert np.isnan(runs.loc[("full(embedding_dim=64)", 3), "eval_rmse"])
    assert runs.loc[("full(embedding_dim=64)", 7), "eval_rmse"] == 7000.0 + len(
        "full(embedding_dim=64)"
    )
    assert runs["failed"].notna().sum() == 1


def test_finished_runs_are_checkpointed_and_reused_only_for_the_same_inputs(
    monkeypatch, tmp_path
) -> None:
    sweep = _sweep(checkpoint_dir=str(tmp_path / "checkpoints"))
    first = _Executor(fail="shared(combiner=sum) seed 7")
    before = _run_sweep(monkeypatch, sweep, _plans(), first)
    assert len(list((tmp_path / "checkpoints").glob("*.json"))) == 9  # 10 runs, 1 failed
    again = _Executor()
    after = _run_sweep(monkeypatch, sweep, _plans(), again)
    assert [task[0]["point"] for task in again.calls[0]["tasks"]] == ["shared(combiner=sum)"]
    assert again.calls[0]["tasks"][0][2] == 7
    kept = before.drop(columns="failed").dropna()
    pd.testing.assert_frame_equal(after.loc[kept.index, kept.columns], kept)
    # Another seed list: the shared seed's runs are reused, the new seed's trained.
    third = _Executor()
    _run_sweep(monkeypatch, sweep | {"seeds": [3, 11]}, _plans(), third)
    assert sorted({task[2] for task in third.calls[0]["tasks"]}) == [11]
    # resume off: everything trains again.
    fourth = _Executor()
    _run_sweep(monkeypatch, sweep | {"resume": False}, _plans(), fourth)
    assert len(fourth.calls[0]["tasks"]) == 10


@pytest.mark.parametrize("change", ["plans", "quantize", "data"])
def test_a_change_of_plan_quantization_or_data_trains_every_run_again(
    monkeypatch, tmp_path, caplog, change
) -> None:
    sweep = _sweep(checkpoint_dir=str(tmp_path))
    _run_sweep(monkeypatch, sweep, _plans(), _Executor())
    with caplog.at_level(logging.INFO, logger=runs_module.__name__):
        _run_sweep(monkeypatch, sweep, _plans(), _Executor())
    assert (
        f"Sweep: 10 of 10 runs finished earlier with this plan, regime and data; reusing them (from {tmp_path};"
        in caplog.text
    )
    caplog.clear()
    plans = (
        {name: {"plan of": name, "rows": 2} for name in _plans()} if change == "plans" else _plans()
    )
    again = _Executor()
    with caplog.at_level(logging.INFO, logger=runs_module.__name__):
        if change == "data":
            monkeypatch.setattr(runs_module, "run_tasks", again)
            other = TRAIN.assign(rating=[4.0, 3.0, 4.5])
            plan = plan_sweep(sweep, BASE_MODEL)
            run_sweep(plan, plans, other, VALIDATION, EVAL, USERS, MOVIES, TRAINING, sweep)
        else:
            _run_sweep(
                monkeypatch,
                sweep | ({"quantize": "int8"} if change == "quantize" else {}),
                plans,
                again,
            )
    assert len(again.calls[0]["tasks"]) == 10
    assert (
        f"Sweep: none of the 10 checkpoint files in {tmp_path} is of a run of this sweep"
        in caplog.text
    )


def test_a_run_identity_changes_with_every_input_that_decides_its_result(tmp_path) -> None:
    checkpoints = SweepCheckpoints(tmp_path, "data-digest")
    point = {"point": "p", "model": {"name": "p", "embedding_dim": 8}}
    base = checkpoints.identity(point, {"plan": 1}, 1, {"epochs": 3, "verbose": 0}, ["int8"])
    assert (
        base["point"] == "p" and base["seed"] == 1 and base["row_format"] == runs_module.ROW_FORMAT
    )
    assert len(base["inputs_digest"]) == 64
    changed = [
        checkpoints.identity(
            {**point, "model": {"name": "p", "embedding_dim": 4}},
            {"plan": 1},
            1,
            {"epochs": 3},
            ["int8"],
        ),
        checkpoints.identity(point, {"plan": 2}, 1, {"epochs": 3}, ["int8"]),
        checkpoints.identity(point, {"plan": 1}, 2, {"epochs": 3}, ["int8"]),
        checkpoints.identity(point, {"plan": 1}, 1, {"epochs": 4}, ["int8"]),
        checkpoints.identity(point, {"plan": 1}, 1, {"epochs": 3}, ["int4"]),
        SweepCheckpoints(tmp_path, "other data").identity(
            point, {"plan": 1}, 1, {"epochs": 3}, ["int8"]
        ),
    ]
    assert len({base["inputs_digest"], *(c["inputs_digest"] for c in changed)}) == 7
    # The order of keys is no input; numpy numbers (as plans may hold) are written as text.
    reordered = checkpoints.identity(
        {"model": {"embedding_dim": 8, "name": "p"}, "point": "p"},
        {"plan": 1},
        1,
        {"verbose": 0, "epochs": 3},
        ["int8"],
    )
    assert reordered == base
    numpy_plan = checkpoints.identity(point, {"plan": np.int64(1)}, 1, {"epochs": 3}, ["int8"])
    assert numpy_plan["inputs_digest"] != base["inputs_digest"]  # "1" as text, not 1
    assert numpy_plan == checkpoints.identity(
        point, {"plan": np.int64(1)}, 1, {"epochs": 3}, ["int8"]
    )
    # Logging and steps per call cannot change a result.
    same = checkpoints.identity(
        point, {"plan": 1}, 1, {"epochs": 3, "verbose": 2, "steps_per_execution": 64}, ["int8"]
    )
    assert same == base


def test_the_data_fingerprint_reads_every_split_input_and_target(monkeypatch) -> None:
    executor = _Executor()
    _run_sweep(monkeypatch, _sweep(), _plans(), executor)
    data = executor.calls[0]["shared"]
    digest = data_fingerprint(data)
    assert len(digest) == 64 and digest == data_fingerprint(copy.deepcopy(data))
    for split in ("train", "validation", "eval"):
        for change in ("user_id", "movie_id", "targets"):
            other = copy.deepcopy(data)
            array = other[split].targets if change == "targets" else other[split].inputs[change]
            array[0] += 1
            assert data_fingerprint(other) != digest, (split, change)


def test_deep_merge_of_the_regime_replaces_lists_and_merges_dicts() -> None:
    assert deep_merge({"a": {"b": 1, "c": [1, 2]}, "d": 1}, {"a": {"c": [3]}, "e": None}) == {
        "a": {"b": 1, "c": [3]},
        "d": 1,
        "e": None,
    }


def test_a_budget_knob_gives_one_point_per_budget_and_grid_setting_by_hand() -> None:
    sweep = _sweep(
        reference="hashing",
        budgets={"floats_per_id": [0.5, 4]},
        techniques={
            "hashing": {
                "embedding": {"type": "hashed"},
                "budget_knob": "embedding.num_buckets",
                "tune": ["embedding_l2"],
                "grid": {"embedding_l2": [0.01, 0.02]},
            },
            "full": {"embedding": {"type": "full"}},
        },
        recipe=None,
    )
    plan = plan_sweep(sweep, BASE_MODEL)
    assert [(p["point"], p.get("budget"), p.get("tuning_group")) for p in plan] == [
        (
            f"hashing(budget={budget}, embedding_l2={l2})",
            {"floats_per_id": value, "knob": "embedding.num_buckets"},
            f"hashing(budget={budget})",
        )
        for budget, value in (("0.5", 0.5), ("4", 4))
        for l2 in (0.01, 0.02)
    ] + [("full", None, None)]
    # The knob waits at 1 for placement; the budget is no model key.
    for point in plan[:4]:
        assert point["model"]["user_embedding"] == {"type": "hashed", "num_buckets": 1}
        assert point["model"]["movie_embedding"] == {"type": "hashed", "num_buckets": 1}
        assert "budget_knob" not in point["model"]
    assert plan[0]["model"]["name"] == "hashing_budget_0.5_embedding_l2_0.01"
    assert [p["model"]["embedding_l2"] for p in plan[:4]] == [0.01, 0.02, 0.01, 0.02]


def test_a_budget_knob_without_budgets_or_also_in_the_grid_is_refused() -> None:
    technique = {"embedding": {"type": "hashed"}, "budget_knob": "embedding.num_buckets"}
    no_budgets = _sweep(reference="hashing", techniques={"hashing": technique}, recipe=None)
    with pytest.raises(ValueError) as caught:
        plan_sweep(no_budgets, BASE_MODEL)
    assert str(caught.value) == (
        "sweep.techniques.hashing.budget_knob needs budgets to place the technique at: set "
        "sweep.budgets.floats_per_id, or remove the knob and give its sizes in `grid`."
    )
    both = _sweep(
        reference="hashing",
        budgets={"floats_per_id": [1]},
        techniques={"hashing": technique | {"grid": {"embedding.num_buckets": [4]}}},
        recipe=None,
    )
    with pytest.raises(ValueError) as caught:
        plan_sweep(both, BASE_MODEL)
    assert str(caught.value) == (
        "sweep.techniques.hashing: 'embedding.num_buckets' is both the budget_knob and a grid "
        "key; placement sets the knob at each budget, so keep it out of `grid`."
    )


def test_an_unreachable_budget_is_skipped_with_its_reason_and_the_rest_resolved(
    monkeypatch,
) -> None:
    resolved = []

    def resolve(users, movies, model, popularity_blocks):
        resolved.append(model["name"])
        return {"for": model["name"]}

    monkeypatch.setattr(plan_module, "resolve_embedding_plan", resolve)
    plan = plan_sweep(_sweep(), BASE_MODEL)
    plan[0] = plan[0] | {
        "budget": {"floats_per_id": 0.125, "knob": "embedding_dim"},
        "unreachable": "the smallest model takes 2 floats per id",
    }
    plans = assign_sweep_blocks(plan, None, None, {"popularity_blocks": 3})
    assert plans[plan[0]["point"]] == {
        "skipped": "budget 0.125 floats per id unreachable: the smallest model takes 2 floats per id"
    }
    assert resolved == [p["model"]["name"] for p in plan[1:]]
    assert list(plans) == [p["point"] for p in plan]


def test_runs_whose_checkpoints_cannot_be_written_are_kept_and_each_named(
    monkeypatch, tmp_path, caplog
) -> None:
    def disk_full(self, identity, row):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(SweepCheckpoints, "save", disk_full)
    with caplog.at_level(logging.WARNING, logger=runs_module.__name__):
        runs = _run_sweep(monkeypatch, _sweep(checkpoint_dir=str(tmp_path)), _plans(), _Executor())
    assert runs["eval_rmse"].notna().all()  # every run kept
    labels = "; ".join(f"{point} seed {seed}" for point in _plans() for seed in (7, 3))
    assert (
        f"Sweep: 10 finished run(s) have no checkpoint in {tmp_path} (OSError: No space left on "
        f"device): {labels}." in caplog.text
    )
