"""The closing summary printed after a run: the models' table and where the reports are."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from kedro.framework.hooks.manager import _create_hook_manager
from kedro.io import DataCatalog, MemoryDataset, Version
from kedro.pipeline import Node, Pipeline
from kedro.runner import SequentialRunner
from kedro_datasets.json import JSONDataset
from kedro_datasets.text import TextDataset
from rich.console import Console

from memory_efficient_embeddings.run_summary import RunSummaryHooks

# `big.metrics` names a model namespace, as in the project.
pytestmark = pytest.mark.filterwarnings("ignore:One or more dataset names contain")

VERSION = "2026-01-02T03.04.05.678Z"


def _metrics(parameters: int, rmse: float) -> dict:
    return {
        "embedding_parameters": parameters,
        "eval_rmse": rmse,
        "eval_mae": rmse * 0.8,
        "epochs_run": 3,
        "train_seconds": 1.5,
    }


def _run_with_summary(tmp_path: Path) -> str:
    """Run a two-model toy pipeline through the hooks and return what the summary printed."""
    reporting = tmp_path / "data" / "08_reporting"
    catalog = DataCatalog(
        {
            "big.metrics": MemoryDataset(),
            "small.metrics": MemoryDataset(),
            "report": TextDataset(
                filepath=str(reporting / "report.md"), version=Version(None, VERSION)
            ),
            "params:reporting.reference": MemoryDataset("big"),
            "scratch": JSONDataset(filepath=str(tmp_path / "data" / "02_intermediate" / "x.json")),
        }
    )
    pipeline = Pipeline(
        [
            Node(lambda: _metrics(64_000, 0.9), None, "big.metrics", name="train_big"),
            Node(lambda: _metrics(8_000, 0.95), None, "small.metrics", name="train_small"),
            Node(lambda: {"a": 1}, None, "scratch", name="scratch"),
            Node(lambda b, s: "# report", ["big.metrics", "small.metrics"], "report", name="rep"),
        ]
    )
    out = io.StringIO()
    hooks = RunSummaryHooks(console=Console(file=out, width=120, color_system=None))
    manager = _create_hook_manager()
    manager.register(hooks)
    run_params = {"run_id": "test"}
    manager.hook.before_pipeline_run(run_params=run_params, pipeline=pipeline, catalog=catalog)
    result = SequentialRunner().run(pipeline, catalog, hook_manager=manager)
    manager.hook.after_pipeline_run(
        run_params=run_params, run_result=result, pipeline=pipeline, catalog=catalog
    )
    return out.getvalue()


def test_the_summary_tabulates_each_model_against_the_reference(tmp_path: Path) -> None:
    printed = _run_with_summary(tmp_path)
    rows = {line.split("│")[1].strip(): line for line in printed.splitlines() if "│" in line}
    big = [cell.strip() for cell in rows["big"].split("│")[1:-1]]
    small = [cell.strip() for cell in rows["small"].split("│")[1:-1]]
    assert big == ["big", "64,000", "1.0×", "0.9000", "0.7200", "3", "1.5"]
    # 64,000 / 8,000 = 8× fewer embedding parameters than the reference.
    assert small == ["small", "8,000", "8.0×", "0.9500", "0.7600", "3", "1.5"]
    assert "compression vs big" in printed


def test_the_summary_points_at_the_reports_of_this_run_only(tmp_path: Path) -> None:
    printed = _run_with_summary(tmp_path)
    report = tmp_path / "data" / "08_reporting" / "report.md" / VERSION / "report.md"
    assert report.is_file()
    assert f"Report: {report}" in printed
    assert "x.json" not in printed  # not a report: an intermediate dataset
