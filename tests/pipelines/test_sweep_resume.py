# ruff: noqa: F811 - the fixtures imported from test_sweep_dask are used as arguments
"""A killed sweep resumes: finished runs are kept as they finish and reused by a re-run with the
same plan, regime and data, never by another (issue 22); a checkpoint is reused only if it is
this run's valid row, and a change that cannot alter results keeps every run (issue 30)."""

from __future__ import annotations

import copy
import json
import logging

import pytest

from memory_efficient_embeddings.pipelines.sweep import runs as runs_module
from memory_efficient_embeddings.pipelines.sweep.runs import run_sweep
from tests.pipelines.test_sweep_dask import TINY_SWEEP, parameters, tiny_inputs  # noqa: F401


class Killed(BaseException):
    """What a kill looks like to the sweep: not an Exception, so no run is recorded as failed."""


def _fake_training(calls: list, kill_after: int | None = None):
    def fake_run(data, point, embedding_plan, seed, training, quantize):
        if kill_after is not None and len(calls) == kill_after:
            raise Killed
        calls.append((point["point"], seed))
        rmse = 0.9 + seed / 100 + len(point["point"]) / 1000
        return {
            "embedding_parameters": 10,
            "embedding_bytes_float32": 40,
            "serving_bytes": 40,
            "training_bytes": 120,
            "eval_rmse": rmse,
            "eval_mae": rmse / 2,
            "val_rmse": rmse + 0.01,
            "val_mae": rmse / 2 + 0.01,
            "epochs_run": 1,
            "best_epoch": 1,
            "train_seconds": 1.0,
            "serving_bytes_int8": 20,
            "eval_rmse_int8": rmse,
            "eval_mae_int8": rmse / 2,
        }

    return fake_run


def _sweep(inputs, folder, training=None, resume=True):
    sweep = {
        **TINY_SWEEP,
        "executor": {"type": "in_process", "progress": False},
        "checkpoint_dir": str(folder),
        "resume": resume,
    }
    return run_sweep(
        inputs["plan"],
        inputs["embedding_plans"],
        *inputs["data"],
        training or inputs["training"],
        sweep,
    )


def test_a_killed_sweep_resumes_with_the_runs_it_finished(tiny_inputs, tmp_path, monkeypatch):
    first: list = []
    monkeypatch.setattr(runs_module, "train_sweep_point", _fake_training(first, kill_after=4))
    with pytest.raises(Killed):
        _sweep(tiny_inputs, tmp_path)
    assert len(first) == 4 and len(list(tmp_path.glob("*.json"))) == 4
    second: list = []
    monkeypatch.setattr(runs_module, "train_sweep_point", _fake_training(second))
    runs = _sweep(tiny_inputs, tmp_path)
    assert len(second) == 2 and not set(second) & set(first)  # only the two left
    # The reused rows are the rows the first sweep computed.
    fresh: list = []
    monkeypatch.setattr(runs_module, "train_sweep_point", _fake_training(fresh))
    expected = _sweep(tiny_inputs, tmp_path / "other")
    assert runs.drop(columns="train_seconds").equals(expected.drop(columns="train_seconds"))


def test_another_regime_or_resume_off_trains_again(tiny_inputs, tmp_path, monkeypatch):
    calls: list = []
    monkeypatch.setattr(runs_module, "train_sweep_point", _fake_training(calls))
    _sweep(tiny_inputs, tmp_path)
    assert len(calls) == 6
    _sweep(tiny_inputs, tmp_path)
    assert len(calls) == 6  # everything reused
    other = copy.deepcopy(tiny_inputs["training"]) | {"learning_rate": 0.5}
    _sweep(tiny_inputs, tmp_path, training=other)
    assert len(calls) == 12  # a new regime: nothing reused
    _sweep(tiny_inputs, tmp_path, resume=False)
    assert len(calls) == 18


def test_other_data_trains_again(tiny_inputs, tmp_path, monkeypatch):
    calls: list = []
    monkeypatch.setattr(runs_module, "train_sweep_point", _fake_training(calls))
    _sweep(tiny_inputs, tmp_path)
    train, validation, evaluation, users, movies = tiny_inputs["data"]
    changed = {**tiny_inputs, "data": (train.iloc[:-1], validation, evaluation, users, movies)}
    _sweep(changed, tmp_path)
    assert len(calls) == 12
    # Another validation split is other data too: selection would read it.
    changed = {**tiny_inputs, "data": (train, validation.iloc[:-1], evaluation, users, movies)}
    _sweep(changed, tmp_path)
    assert len(calls) == 18


def test_a_torn_checkpoint_is_trained_again(tiny_inputs, tmp_path, monkeypatch):
    calls: list = []
    monkeypatch.setattr(runs_module, "train_sweep_point", _fake_training(calls))
    _sweep(tiny_inputs, tmp_path)
    next(iter(sorted(tmp_path.glob("*.json")))).write_text('{"eval_rmse": ')
    _sweep(tiny_inputs, tmp_path)
    assert len(calls) == 7


def _edit_row(path, edit) -> None:
    """Edit the row held in a checkpoint file (the whole file in the layout before ROW_FORMAT 4)."""
    content = json.loads(path.read_text())
    edit(content.get("row", content))
    path.write_text(json.dumps(content))


def _foreign(target, other) -> None:
    target.write_text(other.read_text())  # another run's valid checkpoint under this run's name


def _missing_field(target, other) -> None:
    _edit_row(target, lambda row: row.pop("eval_rmse"))


def _unexpected_field(target, other) -> None:
    _edit_row(target, lambda row: row.update(eval_rmse_int4=0.9))


def _text_field(target, other) -> None:
    _edit_row(target, lambda row: row.update(eval_rmse="0.9"))


def _bool_field(target, other) -> None:
    _edit_row(target, lambda row: row.update(epochs_run=True))


def _nan_field(target, other) -> None:
    _edit_row(target, lambda row: row.update(eval_rmse=float("nan")))


BAD_CHECKPOINTS = {
    "foreign": (_foreign, "another run's checkpoint"),
    "empty object": (lambda target, other: target.write_text("{}"), "no run identity"),
    "partial": (_missing_field, "missing fields: eval_rmse"),
    "extra field": (_unexpected_field, "unexpected fields: eval_rmse_int4"),
    "json string": (lambda target, other: target.write_text('"a row"'), "not a JSON object"),
    "json list": (lambda target, other: target.write_text("[1, 2]"), "not a JSON object"),
    "text field": (_text_field, "field eval_rmse is not a number"),
    "bool field": (_bool_field, "field epochs_run is not a number"),
    "nan field": (_nan_field, "field eval_rmse is not finite"),
    "torn": (lambda target, other: target.write_text('{"row": {"eval_rmse": '), "not readable"),
}


@pytest.mark.parametrize("corrupt, reason", BAD_CHECKPOINTS.values(), ids=BAD_CHECKPOINTS)
def test_a_bad_checkpoint_is_named_and_trained_again(
    tiny_inputs, tmp_path, monkeypatch, caplog, corrupt, reason
):
    calls: list = []
    monkeypatch.setattr(runs_module, "train_sweep_point", _fake_training(calls))
    folder = tmp_path / "checkpoints"
    _sweep(tiny_inputs, folder)
    target, other = sorted(folder.glob("*.json"))[:2]
    corrupt(target, other)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=runs_module.__name__):
        runs = _sweep(tiny_inputs, folder)
    assert len(calls) == 7  # the bad run alone trained again, never a crash
    warnings = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(target) in warnings[0].getMessage() and reason in warnings[0].getMessage()
    expected = _sweep(tiny_inputs, tmp_path / "clean")
    assert runs.drop(columns="train_seconds").equals(expected.drop(columns="train_seconds"))
    calls.clear()
    _sweep(tiny_inputs, folder)
    assert calls == []  # the bad file was overwritten with the run's own checkpoint


def test_a_logging_or_speed_setting_reuses_every_run(tiny_inputs, tmp_path, monkeypatch, caplog):
    calls: list = []
    monkeypatch.setattr(runs_module, "train_sweep_point", _fake_training(calls))
    _sweep(tiny_inputs, tmp_path)
    assert len(calls) == 6
    training = tiny_inputs["training"]
    for change in ({"verbose": 2}, {"steps_per_execution": 1}):
        assert training.get(next(iter(change))) != next(iter(change.values()))
        caplog.clear()
        with caplog.at_level(logging.INFO, logger=runs_module.__name__):
            _sweep(tiny_inputs, tmp_path, training=copy.deepcopy(training) | change)
        assert len(calls) == 6, change  # cannot change a result: every run reused
        assert any("6 of 6 runs finished earlier" in r.getMessage() for r in caplog.records)


def test_a_change_that_reuses_nothing_says_why(tiny_inputs, tmp_path, monkeypatch, caplog):
    calls: list = []
    monkeypatch.setattr(runs_module, "train_sweep_point", _fake_training(calls))
    with caplog.at_level(logging.INFO, logger=runs_module.__name__):
        _sweep(tiny_inputs, tmp_path)
    assert not any("checkpoint files" in r.getMessage() for r in caplog.records)  # none yet
    for change in ({"learning_rate": 0.5}, {"deterministic": False}, {"validation_batch_size": 64}):
        caplog.clear()
        before = len(calls)
        with caplog.at_level(logging.INFO, logger=runs_module.__name__):
            _sweep(tiny_inputs, tmp_path, training=copy.deepcopy(tiny_inputs["training"]) | change)
        assert len(calls) == before + 6, change  # can change a result: nothing reused
        said = [r for r in caplog.records if "checkpoint files" in r.getMessage()]
        assert len(said) == 1 and said[0].levelno == logging.INFO
        assert str(tmp_path) in said[0].getMessage()
        assert not any(r.levelno >= logging.WARNING for r in caplog.records)
