# ruff: noqa: F811 - the fixtures imported from test_sweep_dask are used as arguments
"""A killed sweep resumes: finished runs are kept as they finish and reused by a re-run with the
same plan, regime and data, never by another (issue 22)."""

from __future__ import annotations

import copy

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
