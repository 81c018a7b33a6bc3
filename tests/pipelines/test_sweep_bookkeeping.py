# ruff: noqa: F811 - the fixtures imported from test_sweep_dask are used as arguments
"""A run that finished is never lost to its bookkeeping (issue 30): the checkpoint folder is
checked before any training, a checkpoint that cannot be written is written later or reported, and
MLflow failing, or killed while it logs, neither stops the sweep nor costs a checkpoint."""

from __future__ import annotations

import logging

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from memory_efficient_embeddings.parameters import ParameterError
from memory_efficient_embeddings.pipelines.sweep import runs as runs_module
from tests.pipelines.test_sweep_dask import parameters, tiny_inputs  # noqa: F401
from tests.pipelines.test_sweep_resume import Killed, _fake_training, _sweep


def _rows(runs):
    return runs.drop(columns="train_seconds")


@pytest.fixture
def clean_runs(tiny_inputs, tmp_path, monkeypatch):
    """The rows of the same sweep with nothing going wrong."""
    monkeypatch.setattr(runs_module, "train_sweep_point", _fake_training([]))
    return _rows(_sweep(tiny_inputs, tmp_path / "clean"))


def _file_in_the_way(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    return blocker


@pytest.mark.parametrize("where", ["a file", "inside a file"])
def test_an_unusable_checkpoint_dir_is_refused_before_any_training(
    tiny_inputs, tmp_path, monkeypatch, where
):
    calls: list = []
    monkeypatch.setattr(runs_module, "train_sweep_point", _fake_training(calls))
    blocker = _file_in_the_way(tmp_path)
    folder = blocker if where == "a file" else blocker / "checkpoints"
    with pytest.raises(ParameterError) as raised:
        _sweep(tiny_inputs, folder)
    message = str(raised.value)
    assert message.startswith(f"`sweep.checkpoint_dir` is {str(folder)!r}")
    assert "NotADirectoryError" in message or "FileExistsError" in message
    assert "set it to null" in message and "\n" not in message
    assert calls == []  # before any training
    assert blocker.read_text() == "a file, not a folder"  # nothing overwritten


@pytest.mark.parametrize("repaired", [True, False], ids=["repaired later", "never repaired"])
def test_a_checkpoint_dir_that_breaks_mid_sweep_loses_no_run(
    tiny_inputs, tmp_path, monkeypatch, caplog, clean_runs, repaired
):
    folder, aside = tmp_path / "checkpoints", tmp_path / "aside"
    calls: list = []
    train = _fake_training(calls)

    def breaking_training(*args):
        if len(calls) == 2:  # after two runs wrote their checkpoints: a file where the folder was
            folder.rename(aside)
            folder.write_text("not a folder")
        if len(calls) == 4 and repaired:
            folder.unlink()
            aside.rename(folder)
        return train(*args)

    monkeypatch.setattr(runs_module, "train_sweep_point", breaking_training)
    with caplog.at_level(logging.WARNING, logger=runs_module.__name__):
        runs = _sweep(tiny_inputs, folder)
    assert _rows(runs).equals(clean_runs)  # every run kept, as if nothing happened
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("could not write the checkpoint" in w and str(folder) in w for w in warnings)
    if repaired:  # the two runs that could not be written were written once it worked again
        assert len(list(folder.glob("*.json"))) == 6
        calls.clear()
        _sweep(tiny_inputs, folder)
        assert calls == []  # a re-run reuses all six
    else:
        assert len(list(aside.glob("*.json"))) == 2
        assert any("4 finished run(s) have no checkpoint" in w for w in warnings)


@pytest.fixture
def mlflow_parent(tmp_path, monkeypatch):
    """An active MLflow run in a file store of its own, as `kedro run` opens one."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # as settings.py sets it
    while mlflow.active_run() is not None:  # a run another test's failed session left open
        mlflow.end_run()
    store = tmp_path / "mlruns"
    mlflow.set_tracking_uri(store.as_uri())
    experiment = mlflow.set_experiment("sweep")
    try:
        with mlflow.start_run(run_name="sweep") as parent:
            yield store, experiment.experiment_id, parent.info.run_id
    finally:
        mlflow.set_tracking_uri(None)


def test_an_mlflow_store_that_fails_mid_sweep_loses_no_run(
    tiny_inputs, tmp_path, monkeypatch, caplog, clean_runs, mlflow_parent
):
    store, experiment, parent = mlflow_parent
    calls: list = []
    train = _fake_training(calls)

    def breaking_training(*args):
        if len(calls) == 2:  # the experiment's folder becomes a file: every later log fails
            (store / experiment).rename(tmp_path / "experiment_aside")
            (store / experiment).write_text("not a folder")
        return train(*args)

    monkeypatch.setattr(runs_module, "train_sweep_point", breaking_training)
    with caplog.at_level(logging.WARNING, logger=runs_module.__name__):
        runs = _sweep(tiny_inputs, tmp_path / "checkpoints")
    assert _rows(runs).equals(clean_runs)
    assert len(list((tmp_path / "checkpoints").glob("*.json"))) == 6  # every checkpoint written
    assert mlflow.active_run().info.run_id == parent  # later logs nest under the run again
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert sum("MLflow could not log run" in w for w in warnings) == 1  # said once
    assert any("4 run(s) were not logged to MLflow" in w for w in warnings)
    (store / experiment).unlink()
    (tmp_path / "experiment_aside").rename(store / experiment)
    children = MlflowClient().search_runs(
        [experiment], filter_string=f"tags.mlflow.parentRunId = '{parent}'"
    )
    assert len(children) == 2  # the two runs logged before the store broke


def test_a_run_killed_while_mlflow_logs_it_keeps_its_checkpoint(tiny_inputs, tmp_path, monkeypatch):
    # MLflow can take minutes (a server that does not answer is retried): a kill then must not
    # cost the run that just finished, so its checkpoint is written before MLflow is called.
    logged: list = []

    def log_then_be_killed(row):
        logged.append(row["point"])
        if len(logged) == 3:
            raise Killed

    monkeypatch.setattr(runs_module, "train_sweep_point", _fake_training([]))
    monkeypatch.setattr(runs_module, "log_sweep_run", log_then_be_killed)
    with pytest.raises(Killed):
        _sweep(tiny_inputs, tmp_path)
    assert len(list(tmp_path.glob("*.json"))) == 3  # the third run's too
    calls: list = []
    monkeypatch.setattr(runs_module, "train_sweep_point", _fake_training(calls))
    monkeypatch.setattr(runs_module, "log_sweep_run", lambda row: None)
    _sweep(tiny_inputs, tmp_path)
    assert len(calls) == 3  # a resumed sweep trains only the three left


def test_no_checkpoint_dir_writes_nothing_and_checks_nothing(tiny_inputs, tmp_path, monkeypatch):
    monkeypatch.setattr(runs_module, "train_sweep_point", _fake_training([]))
    blocker = _file_in_the_way(tmp_path)
    runs = _sweep(tiny_inputs, blocker, resume=False)  # resume off: the folder is not used
    assert len(runs) == 6 and blocker.read_text() == "a file, not a folder"
