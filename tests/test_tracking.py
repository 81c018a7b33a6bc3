"""MLflow tracking through kedro-mlflow: a model run's parameters, metrics and plots, and one nested
run per sweep run, read back from the local file store (issue 22)."""

from __future__ import annotations

import json

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from memory_efficient_embeddings.pipelines.sweep import runs as runs_module
from memory_efficient_embeddings.tracking import log_sweep_run, numeric_metrics
from tests.pipelines.test_sweep_dask import parameters, tiny_inputs  # noqa: F401
from tests.pipelines.test_sweep_resume import _fake_training, _sweep
from tests.test_run_integrity import _copy_project, _run, _versions


def test_numeric_metrics_keeps_finite_numbers_only() -> None:
    values = {"a": 1, "b": 2.5, "c": True, "d": float("nan"), "e": "x", "f": [1], "g": None}
    assert numeric_metrics(values, prefix="m.") == {"m.a": 1.0, "m.b": 2.5}


def test_nothing_is_logged_without_an_active_run(tmp_path, monkeypatch) -> None:
    while mlflow.active_run() is not None:  # a run another test's failed session left open
        mlflow.end_run()
    monkeypatch.setattr(mlflow, "start_run", lambda *a, **k: pytest.fail("no run should start"))
    log_sweep_run({"point": "p", "technique": "t", "settings": "", "seed": 1, "val_rmse": 1.0})


@pytest.mark.slow
def test_a_model_run_logs_its_parameters_metrics_and_plots(tmp_path) -> None:
    project = _copy_project(tmp_path)
    run_id = _run(project, "baseline")
    client = MlflowClient(tracking_uri=(project / "mlruns").as_uri())
    experiment = client.get_experiment_by_name("memory_efficient_embeddings")
    (run,) = client.search_runs([experiment.experiment_id])
    metrics_file = _versions(project, "08_reporting/baseline_metrics.json")[-1]
    assert metrics_file.parent.name == run_id
    written = json.loads(metrics_file.read_text())
    assert run.data.metrics["baseline.eval_rmse"] == pytest.approx(written["eval_rmse"])
    assert run.data.metrics["baseline.embedding_parameters"] == written["embedding_parameters"]
    assert run.data.params["training.batch_size"] == "2048"
    assert run.data.params["baseline.model.embedding_dim"] == "64"
    plots = {a.path for a in client.list_artifacts(run.info.run_id, "plots")}
    assert "plots/baseline_training_curves.png" in plots


def test_every_sweep_run_is_a_nested_run(tiny_inputs, tmp_path, monkeypatch) -> None:  # noqa: F811
    monkeypatch.setattr(runs_module, "train_sweep_point", _fake_training([]))
    mlflow.set_tracking_uri((tmp_path / "mlruns").as_uri())
    mlflow.set_experiment("sweep")  # an earlier in-process kedro run set another store's
    try:
        with mlflow.start_run(run_name="sweep") as parent:
            runs = _sweep(tiny_inputs, tmp_path / "checkpoints")
        client = MlflowClient()
        children = client.search_runs(
            [parent.info.experiment_id],
            filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
        )
    finally:
        mlflow.set_tracking_uri(None)
    assert len(children) == len(runs) == 6
    by_name = {child.info.run_name: child for child in children}
    row = runs.iloc[0]
    child = by_name[f"{row['point']} seed {row['seed']}"]
    assert child.data.metrics["val_rmse"] == pytest.approx(row["val_rmse"])
    assert child.data.params["technique"] == row["technique"]


def test_each_candidate_layout_is_logged_with_its_validation_rmse(tmp_path) -> None:
    import pandas as pd  # noqa: PLC0415

    from memory_efficient_embeddings.tracking import TrackingHooks  # noqa: PLC0415

    while mlflow.active_run() is not None:  # a run another test's failed session left open
        mlflow.end_run()
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri((tmp_path / "mlruns").as_uri())
    mlflow.set_experiment("layouts")  # an earlier test's experiment id is not in this store
    table = pd.DataFrame(
        {
            "layout": ["alpha_blocks", "shared_tail"],
            "serving_bytes": [54_808, 5_616],
            "floats_per_id": [5.2965, 0.5427],
            "val_rmse": [0.9189, 0.9716],
            "chosen": [True, False],
        }
    )
    try:
        with mlflow.start_run() as run:
            TrackingHooks().after_dataset_saved("memory_efficient.layout_selection", table)
    finally:
        mlflow.set_tracking_uri(previous)
    logged = MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri()).get_run(run.info.run_id)
    assert logged.data.metrics == {
        "memory_efficient.layout.alpha_blocks.val_rmse": 0.9189,
        "memory_efficient.layout.alpha_blocks.serving_bytes": 54_808,
        "memory_efficient.layout.alpha_blocks.floats_per_id": 5.2965,
        "memory_efficient.layout.shared_tail.val_rmse": 0.9716,
        "memory_efficient.layout.shared_tail.serving_bytes": 5_616,
        "memory_efficient.layout.shared_tail.floats_per_id": 0.5427,
    }
