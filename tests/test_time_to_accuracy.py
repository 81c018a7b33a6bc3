"""The time-to-accuracy benchmark's logic against hand-worked cases (no timing checks)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def tta():
    sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(
        "time_to_accuracy", BENCHMARKS / "time_to_accuracy.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["time_to_accuracy"] = module
    spec.loader.exec_module(module)
    return module


def test_time_to_accuracy_is_the_training_time_through_the_validation_selected_epoch(tta):
    run = {"epoch_seconds": [2.0, 1.5, 1.5, 1.5, 1.5], "best_epoch": 3}
    # Epochs 1-3 (the kept one included); epochs 4-5 only confirmed the choice (patience).
    assert tta.seconds_to_selected_epoch(run) == 5.0
    assert tta.seconds_to_selected_epoch({**run, "best_epoch": 1}) == 2.0
    assert tta.seconds_to_selected_epoch({**run, "best_epoch": 5}) == 8.0


def test_verdict_needs_the_peers_eval_rmse_and_at_most_twice_its_fit_time(tta):
    # Equal RMSE and exactly 2x the peer's fit time are both within the goal.
    assert tta.verdict(0.90, 4.0, 0.90, 2.0) == {
        "accuracy_pass": True,
        "time_pass": True,
        "verdict": "PASS",
    }
    slow = tta.verdict(0.85, 4.01, 0.90, 2.0)  # more accurate, but past 2x
    assert (slow["accuracy_pass"], slow["time_pass"], slow["verdict"]) == (True, False, "FAIL")
    worse = tta.verdict(0.9001, 0.5, 0.90, 2.0)  # fast, but above the peer's RMSE
    assert (worse["accuracy_pass"], worse["time_pass"], worse["verdict"]) == (False, True, "FAIL")


def test_matched_factors_fit_the_compact_models_parameters(tta):
    # SVD with f factors holds (users + movies) * (f + 1): 100 ids, 520 parameters -> f = 4
    # (500 parameters); 499 parameters -> f = 3 (400).
    assert tta.matched_factors(520, 60, 40) == 4
    assert tta.matched_factors(499, 60, 40) == 3
    assert tta.matched_factors(50, 60, 40) == 1  # never below one factor


def test_parse_peer(tta):
    assert tta.parse_peer("64,20,0.01,0.05") == {
        "n_factors": 64,
        "n_epochs": 20,
        "lr_all": 0.01,
        "reg_all": 0.05,
    }


def _peer(factors: int, rmse: float, seconds: float, matched: str | None = None) -> dict:
    config = {"n_factors": factors, "n_epochs": 20, "lr_all": 0.01, "reg_all": 0.05}
    if matched:
        config["matched"] = matched
    return {"config": config, "parameters": factors * 10, "fit_seconds": seconds, "eval_rmse": rmse}


def _project(model: str, epoch_seconds: list, best: int, eval_rmse: float, **extra) -> dict:
    return {
        "model": model,
        "embedding_parameters": 650 if model == "baseline" else 50,
        "epoch_seconds": epoch_seconds,
        "epochs_run": len(epoch_seconds),
        "best_epoch": best,
        "val_rmse_curve": [1.0] * len(epoch_seconds),
        "val_rmse": 0.95,
        "eval_rmse": eval_rmse,
        "fit_seconds": sum(epoch_seconds),
    } | extra


DATA = {"train": [0] * 8, "validation": [0], "eval": [0] * 2}


def test_summary_targets_the_best_full_peer_and_the_matched_peer_by_hand(tta):
    peers = [
        _peer(64, 0.90, 1.0),
        _peer(64, 0.92, 3.0),
        _peer(64, 0.91, 2.0),  # median 0.91, 2.0 s
        _peer(128, 0.93, 4.0),
        _peer(4, 0.95, 0.5, matched="memory_efficient"),
    ]
    projects = [
        # Selected epochs 2 and 3: 1.0 + 2.0 = 3.0 s and 1.5 + 2.0 + 2.5 = 6.0 s (the patience
        # epochs after them not counted); eval RMSE 0.90 and 0.915, median 0.9075.
        _project("baseline", [1.0, 2.0, 2.0, 2.0], 2, 0.90),
        _project("baseline", [1.5, 2.0, 2.5, 2.0, 2.0], 3, 0.915),
        _project("memory_efficient", [0.5, 0.5, 0.5], 2, 0.94),
    ]
    result = tta.summarise(peers, projects, DATA)
    assert (result["train_rows"], result["validation_rows"], result["eval_rows"]) == (8, 1, 2)
    baseline = result["models"]["baseline"]
    assert baseline["target_rmse"] == 0.91  # the 64-factor peer's median, not the 128's 0.93
    assert baseline["eval_rmse"]["median"] == 0.9075
    assert baseline["runs_at_or_below_target"] == "1/2"  # 0.915 misses 0.91
    # Median 4.5 s over the peer's 2.0 s: accurate enough (0.9075 <= 0.91), too slow (> 2x).
    assert baseline["seconds_to_selected_epoch"]["median"] == 4.5
    assert baseline["ratio_to_peer_fit"] == 2.25
    assert baseline["accuracy_pass"] and not baseline["time_pass"]
    assert baseline["verdict"] == "FAIL"
    compact = result["models"]["memory_efficient"]
    assert compact["target_rmse"] == 0.95 and compact["peer"]["config"]["n_factors"] == 4
    assert compact["seconds_to_selected_epoch"]["median"] == 1.0
    assert compact["ratio_to_peer_fit"] == 2.0 and compact["verdict"] == "PASS"  # <= 2x passes


def test_a_fast_model_above_the_peers_eval_rmse_fails(tta):
    peers = [_peer(64, 0.80, 10.0)]
    projects = [_project("baseline", [1.0, 1.0, 1.0], 1, 0.9)]
    row = tta.summarise(peers, projects, DATA)["models"]["baseline"]
    assert row["seconds_to_selected_epoch"]["median"] == 1.0 and row["time_pass"]
    assert not row["accuracy_pass"] and row["verdict"] == "FAIL"
    assert row["runs_at_or_below_target"] == "0/1"


def test_project_runs_stop_early_on_validation_and_restore_the_best_epoch(tta):
    params = {
        "training": {
            "epochs": 40,
            "early_stopping": {"enabled": False, "monitor": "val_rmse", "patience": 2},
        },
        "baseline": {"model": {"name": "baseline"}},
        "evaluation": {"popularity_blocks": 3},
    }
    args = SimpleNamespace(epochs=None)
    training = tta.project_spec(params, "baseline", args)["training"]
    assert training["epochs"] == 40  # conf's cap unless --epochs
    assert training["early_stopping"] == {
        "enabled": True,
        "monitor": "val_rmse",
        "patience": 2,
        "restore_best_weights": True,
    }
    args.epochs = 7
    assert tta.project_spec(params, "baseline", args)["training"]["epochs"] == 7
    assert params["training"]["early_stopping"]["enabled"] is False  # conf left as it was
