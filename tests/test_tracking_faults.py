"""Tracking never stops a run, and a run that ends without Kedro's end hooks is not left RUNNING
in MLflow (issue 30): a broken store turns tracking off with one warning; SIGTERM and Ctrl-C mark
the run KILLED, any other abrupt end FAILED."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from memory_efficient_embeddings import tracking
from memory_efficient_embeddings.tracking import GuardedMlflowHooks, TrackingHooks

PROJECT_ROOT = Path(__file__).resolve().parents[1]


class _StoreThatFailsOnce:
    """Stands in for kedro-mlflow's hook: its first session's store is broken."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.broken = True

    def after_context_created(self, context):
        self.calls.append("after_context_created")
        if self.broken:
            raise ValueError("while parsing a flow sequence\n  in mlruns/1/meta.yaml, line 1")

    def __getattr__(self, name):
        return lambda **arguments: self.calls.append(name)


class _Context:
    project_path = Path("/project")
    config_loader = {"mlflow": {"server": {"mlflow_tracking_uri": "mlruns"}}}


def test_a_broken_store_turns_tracking_off_with_one_line_and_the_run_goes_on(caplog):
    inner = _StoreThatFailsOnce()
    hooks = GuardedMlflowHooks(inner)
    with caplog.at_level(logging.WARNING, logger=tracking.__name__):
        hooks.after_context_created(context=_Context())
        hooks.before_pipeline_run(run_params={}, pipeline=None, catalog=None)
        hooks.before_node_run(node=None, catalog=None, inputs={}, is_async=False)
        hooks.after_pipeline_run(run_params={}, pipeline=None, catalog=None)
    assert inner.calls == ["after_context_created"]  # nothing more asked of the broken store
    (warning,) = [r.getMessage() for r in caplog.records]
    assert "\n" not in warning
    assert warning.startswith(
        "MLflow tracking is off for this run: the MLflow store /project/mlruns"
    )
    assert "ValueError: while parsing a flow sequence in mlruns/1/meta.yaml, line 1" in warning
    inner.broken = False  # repaired: the next session tracks again
    hooks.after_context_created(context=_Context())
    hooks.before_pipeline_run(run_params={}, pipeline=None, catalog=None)
    assert inner.calls[-2:] == ["after_context_created", "before_pipeline_run"]


@pytest.mark.slow
@pytest.mark.parametrize("breakage", ["a file", "a corrupt experiment"])
def test_a_run_with_a_broken_mlruns_writes_its_outputs(tmp_path, monkeypatch, breakage) -> None:
    from tests.test_run_integrity import _copy_project, _run, _versions  # noqa: PLC0415

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # as settings.py sets it, first or not

    project = _copy_project(tmp_path)
    store = project / "mlruns"
    if breakage == "a file":
        store.write_text("not a store")
    else:
        client = MlflowClient(store.as_uri())
        experiment = client.create_experiment("memory_efficient_embeddings")
        (store / experiment / "meta.yaml").write_text("name: [unclosed")
    said = _Said()
    # On the module's own logger: the session's logging set-up replaces the root's handlers.
    logging.getLogger(tracking.__name__).addHandler(said)
    try:
        run_id = _run(project, "data_processing")
    finally:
        logging.getLogger(tracking.__name__).removeHandler(said)
    assert _versions(project, "05_model_input/train_ratings.csv")[-1].parent.name == run_id
    assert len(said.messages) == 1 and "MLflow tracking is off for this run" in said.messages[0]
    assert str(store) in said.messages[0]


class _Said(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


KILLED_PIPELINE = """
import json, os, signal, sys, time
# Ctrl-C live, as a shell starts a process: an ignored SIGINT is inherited, and an earlier test in
# the same pytest-xdist worker can leave it ignored (then this process would sleep it through).
signal.signal(signal.SIGINT, signal.default_int_handler)
import mlflow
from mlflow.tracking import MlflowClient
from memory_efficient_embeddings.tracking import TrackingHooks
mlflow.set_tracking_uri(sys.argv[1])
experiment = mlflow.set_experiment("kills").experiment_id
hooks = TrackingHooks()
hooks.before_pipeline_run(catalog=None)
pipeline = mlflow.start_run(run_name="pipeline")  # what kedro-mlflow opens next
nested = mlflow.start_run(run_name="sweep run", nested=True)  # a sweep run being logged
orphan = MlflowClient().create_run(  # one whose start was cut short: not on MLflow's stack
    experiment, tags={"mlflow.parentRunId": pipeline.info.run_id}, run_name="orphan"
)
print(json.dumps([pipeline.info.run_id, nested.info.run_id, orphan.info.run_id]), flush=True)
if sys.argv[2] == "SIGTERM":
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(30)
elif sys.argv[2] == "SIGINT":
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(30)
else:
    raise RuntimeError("a before_pipeline_run hook refused the run")
"""


@pytest.mark.parametrize(
    ("end", "status"), [("SIGTERM", "KILLED"), ("SIGINT", "KILLED"), ("error", "FAILED")]
)
def test_a_run_that_ends_without_end_hooks_is_not_left_running(
    tmp_path, monkeypatch, end, status
) -> None:
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # as settings.py sets it
    store = (tmp_path / "mlruns").as_uri()
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT / "src"),
        "MLFLOW_ALLOW_FILE_STORE": "true",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    result = subprocess.run(
        [sys.executable, "-c", KILLED_PIPELINE, store, end],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    # It still ends as before: killed by the signal (Python dies of an unhandled Ctrl-C's SIGINT
    # too), or with the error.
    expected_code = -getattr(signal, end) if end.startswith("SIG") else 1
    assert result.returncode == expected_code, result.stderr[-2000:]
    run_ids = json.loads(result.stdout.strip().splitlines()[0])
    client = MlflowClient(store)
    assert [client.get_run(run_id).info.status for run_id in run_ids] == [status] * 3


def test_a_pipeline_left_open_in_this_process_is_closed_by_the_next_session(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # as settings.py sets it
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri((tmp_path / "mlruns").as_uri())
    mlflow.set_experiment("left open")
    hooks = TrackingHooks()
    previous = signal.getsignal(signal.SIGINT)
    try:
        hooks.before_pipeline_run(catalog=None)
        run = mlflow.start_run(run_name="pipeline")
        # Ctrl-C in a notebook: KeyboardInterrupt, no end hook, the process lives on.
        hooks.after_context_created()  # the next session
        assert mlflow.active_run() is None
        assert MlflowClient().get_run(run.info.run_id).info.status == "FAILED"
        assert signal.getsignal(signal.SIGINT) is previous  # the handler is given back
    finally:
        while mlflow.active_run() is not None:
            mlflow.end_run()
        mlflow.set_tracking_uri(None)
