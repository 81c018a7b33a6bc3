"""The sweep's executors: a real two-process Dask cluster, local processes, failing tasks."""

from __future__ import annotations

import copy
import operator

import dask
import pandas as pd
import pytest
from distributed import Client, LocalCluster, get_task_stream

from memory_efficient_embeddings.modeling.grid import plan_sweep
from memory_efficient_embeddings.pipelines.data_processing.nodes import (
    build_vocabularies,
    ingest_ratings,
    prefix_ids,
    split_ratings,
)
from memory_efficient_embeddings.pipelines.sweep import runs as runs_module
from memory_efficient_embeddings.pipelines.sweep.executors import (
    dask_scheduler_address,
    run_tasks,
    validate_executor,
)
from memory_efficient_embeddings.pipelines.sweep.plan import assign_sweep_blocks
from memory_efficient_embeddings.pipelines.sweep.runs import run_sweep
from memory_efficient_embeddings.pipelines.sweep.summary import render_sweep_table, summarize_sweep
from tests.test_modeling import _parameters

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Layer .* does not have a `quantize` method:UserWarning"),
]

TINY_SWEEP = {
    "seeds": [1, 2],
    "reference": "full",
    "quantize": "int8",
    "target": {"min_compression": 5, "max_rmse_gap": 0.01},
    "training": {"epochs": 1},
    "techniques": {
        "full": {"embedding": {"type": "full"}, "grid": {"embedding_dim": [16]}},
        "uniform_low_dim": {"embedding": {"type": "full"}, "grid": {"embedding_dim": [2]}},
        "hashing": {"embedding": {"type": "hashed"}, "grid": {"embedding.ids_per_bucket": [4]}},
    },
    "executor": {"type": "in_process", "progress": False},
}
# Wall times differ between runs. On Dask, metrics are not bit-identical to the in-process run's
# (executors.py's docstring): this test saw up to 1.3e-3; everything else must be equal.
DASK_METRIC_TOLERANCE = 5e-3
TIMING_COLUMNS = ["train_seconds", "train_seconds_mean", "train_seconds_std"]


@pytest.fixture(scope="module")
def parameters() -> dict:
    return _parameters("base")


@pytest.fixture(scope="module")
def tiny_inputs(parameters) -> dict:
    data = copy.deepcopy(parameters["data"])
    data["source"] = "synthetic"
    data["synthetic"] |= {"num_users": 120, "num_movies": 80, "num_ratings": 3_000, "seed": 3}
    ratings, _ = ingest_ratings(data)
    train, validation, evaluation = split_ratings(prefix_ids(ratings), parameters["split"])
    users, movies = build_vocabularies(train, validation, evaluation, parameters["vocabulary"])
    training = {**parameters["training"], "steps_per_execution": 8, "verbose": 0}
    plan = plan_sweep(TINY_SWEEP, parameters["baseline"]["model"])
    embedding_plans = assign_sweep_blocks(plan, users, movies, {"popularity_blocks": 3})
    return {
        "plan": plan,
        "embedding_plans": embedding_plans,
        "data": (train, validation, evaluation, users, movies),
        "training": training,
    }


def _sweep(tiny_inputs, executor: dict) -> pd.DataFrame:
    sweep = {**TINY_SWEEP, "executor": {"progress": False, **executor}}
    return run_sweep(
        tiny_inputs["plan"],
        tiny_inputs["embedding_plans"],
        *tiny_inputs["data"],
        tiny_inputs["training"],
        sweep,
    )


@pytest.fixture(scope="module")
def in_process_runs(tiny_inputs) -> pd.DataFrame:
    return _sweep(tiny_inputs, {"type": "in_process"})


@pytest.fixture(scope="module")
def cluster():
    # Two worker processes on loopback, one thread each: the shape of a small real cluster.
    with LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address=None,
    ) as local_cluster:
        yield local_cluster


@pytest.mark.slow
def test_dask_sweep_gives_the_in_process_rows_and_summary(
    tiny_inputs, in_process_runs, cluster
) -> None:
    executor = {"type": "dask", "scheduler_address": cluster.scheduler_address}
    with Client(cluster) as observer, get_task_stream(client=observer) as stream:
        dask_runs = _sweep(tiny_inputs, executor)
    # Both worker processes trained some of the six runs.
    workers = {task["worker"] for task in stream.data if task["key"].startswith("train_sweep")}
    assert len(workers) == 2
    assert len(dask_runs) == 3 * 2 and "failed" not in dask_runs
    # Same points, seeds, sizes and epochs exactly (integer columns); metrics up to the tolerance.
    pd.testing.assert_frame_equal(
        dask_runs.drop(columns=TIMING_COLUMNS[:1]),
        in_process_runs.drop(columns=TIMING_COLUMNS[:1]),
        check_exact=False,
        rtol=0,
        atol=DASK_METRIC_TOLERANCE,
    )
    dask_summary = summarize_sweep(dask_runs, TINY_SWEEP)
    in_process_summary = summarize_sweep(in_process_runs, TINY_SWEEP)
    pd.testing.assert_frame_equal(
        dask_summary.drop(columns=TIMING_COLUMNS[1:]),
        in_process_summary.drop(columns=TIMING_COLUMNS[1:]),
        check_exact=False,
        rtol=0,
        atol=DASK_METRIC_TOLERANCE,
    )


def test_tasks_ship_shared_inputs_and_report_a_failing_task_on_dask(cluster) -> None:
    # truediv(12, x): the task with x = 0 raises on its worker; the others must come back.
    executor = {"type": "dask", "scheduler_address": cluster.scheduler_address, "progress": False}
    finished = []
    outcomes = run_tasks(
        operator.truediv,
        12,
        [(3,), (0,), (4,)],
        ["a", "b", "c"],
        executor,
        on_outcome=lambda index, outcome: finished.append(index),
    )
    assert [o.value for o in outcomes] == [4.0, None, 3.0]
    assert [o.label for o in outcomes] == ["a", "b", "c"]  # task order, not completion order
    assert outcomes[1].failed and outcomes[1].error.startswith("ZeroDivisionError")
    assert sorted(finished) == [0, 1, 2]


def test_local_processes_return_results_in_task_order_with_failures() -> None:
    outcomes = run_tasks(
        operator.truediv,
        12,
        [(2,), (0,), (6,)],
        ["a", "b", "c"],
        {"type": "processes", "workers": 2, "progress": False},
    )
    assert [o.value for o in outcomes] == [6.0, None, 2.0]
    assert outcomes[1].error.startswith("ZeroDivisionError")


@pytest.mark.slow
def test_a_failing_run_keeps_the_others_and_the_summary_names_it(tiny_inputs, monkeypatch) -> None:
    def fake_run(data, point, embedding_plan, seed, training, quantize):
        # Stands in for training: a known row per (point, seed), one run raising.
        if point["point"] == "hashing(ids_per_bucket=4)" and seed == 2:
            raise RuntimeError("worker ran out of memory")
        size = {"full": 1000, "uniform_low_dim": 100, "hashing": 50}[point["technique"]]
        rmse = {"full": 0.90, "uniform_low_dim": 0.95, "hashing": 1.0}[
            point["technique"]
        ] + seed / 100
        return {
            "embedding_parameters": size,
            "embedding_bytes_float32": 4 * size,
            "serving_bytes": 4 * size,
            "training_bytes": 12 * size,
            "eval_rmse": rmse,
            "eval_mae": rmse - 0.2,
            "val_rmse": rmse + 0.01,
            "epochs_run": 1,
            "best_epoch": 1,
            "train_seconds": 1.0,
            "serving_bytes_int8": 2 * size,
            "eval_rmse_int8": rmse + 0.001,
            "eval_mae_int8": rmse - 0.199,
        }

    monkeypatch.setattr(runs_module, "train_sweep_point", fake_run)
    runs = _sweep(tiny_inputs, {"type": "in_process"})
    assert len(runs) == 6
    failed = runs[runs["failed"].notna()]
    assert failed[["point", "seed"]].values.tolist() == [["hashing(ids_per_bucket=4)", 2]]
    assert failed["failed"].iloc[0] == "RuntimeError: worker ran out of memory"
    assert runs["eval_rmse"].notna().sum() == 5  # every other run kept its row
    summary = summarize_sweep(runs, TINY_SWEEP).set_index("point")
    hashing = summary.loc["hashing(ids_per_bucket=4)"]
    # Only seed 1 finished: its RMSE, 1.0 + 1/100, is the mean, and the failed seed is named.
    assert hashing["seeds"] == 1 and hashing["failed_seeds"] == "2"
    assert hashing["eval_rmse_mean"] == pytest.approx(1.01)
    full = summary.loc["full(embedding_dim=16)"]
    assert full["failed_seeds"] == "" and full["eval_rmse_mean"] == pytest.approx(0.915)
    table = render_sweep_table(summary.reset_index(), {"description": "tiny"}, TINY_SWEEP)
    assert "Failed runs" in table and "hashing(ids_per_bucket=4) (seeds 2)" in table


def test_dask_needs_a_scheduler_address() -> None:
    settings = validate_executor({"type": "dask"})
    with dask.config.set({"scheduler-address": None}):
        with pytest.raises(ValueError, match="DASK_SCHEDULER_ADDRESS"):
            dask_scheduler_address(settings)
    # Dask's own setting (what DASK_SCHEDULER_ADDRESS sets) is used when the parameter is null;
    # the parameter wins over it.
    with dask.config.set({"scheduler-address": "tcp://10.0.0.5:8786"}):
        assert dask_scheduler_address(settings) == "tcp://10.0.0.5:8786"
        explicit = {**settings, "scheduler_address": "tcp://127.0.0.1:9000"}
        assert dask_scheduler_address(explicit) == "tcp://127.0.0.1:9000"


@pytest.mark.parametrize(
    ("executor", "message"),
    [
        ({"type": "ray"}, "valid types"),
        ({"type": "processes", "workers": 0}, "positive integer"),
        ({"type": "dask", "adress": "x"}, "unknown keys"),
    ],
)
def test_bad_executor_settings_are_named(executor, message) -> None:
    with pytest.raises(ValueError, match=message):
        validate_executor(executor)
