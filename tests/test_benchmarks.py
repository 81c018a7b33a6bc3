"""Smoke test of benchmarks/training_speed.py on a tiny synthetic dataset (no timing checks)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "training_speed.py"


@pytest.fixture(scope="module")
def training_speed():
    spec = importlib.util.spec_from_file_location("training_speed", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    sys.modules["training_speed"] = module
    spec.loader.exec_module(module)
    return module


def test_benchmark_reports_both_paths(training_speed, tmp_path):
    out = tmp_path / "bench.json"
    result = training_speed.main(["--num-ratings", "3000", "--epochs", "1", "--json-out", str(out)])

    assert json.loads(out.read_text()) == json.loads(json.dumps(result, default=str))
    runs = {(run["model"], run["path"]): run for run in result["runs"]}
    assert set(runs) == {("baseline", "recipe"), ("baseline", "project")}
    # Same architecture on both paths.
    assert runs["baseline", "recipe"]["parameters"] == runs["baseline", "project"]["parameters"]
    for run in runs.values():
        assert run["epochs"] == 1 and run["val_mae"] > 0 and run["samples_per_second"] > 0
    assert [c["model"] for c in result["comparisons"]] == ["baseline"]
    # 120 users: the recipe's QR rule (num_users // 50 buckets) cannot cover them, so the
    # memory-efficient model is reported as skipped rather than silently mis-indexed.
    assert set(result["skipped"]) == {"memory_efficient"}
    assert result["data"]["train_rows"] + result["data"]["eval_rows"] == 3000
    assert result["machine"]["tensorflow"]
