"""Error by popularity block: per-block RMSE/MAE against a naive per-group computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from memory_efficient_embeddings.modeling.training import errors_by_block
from memory_efficient_embeddings.pipelines.reporting.nodes import (
    compare_models,
    plot_error_by_popularity,
    render_comparison_table,
)

REPORT_BLOCKS = {"boundaries": [2, 5, 10], "labels": ["head", "torso", "tail"]}


def test_errors_by_block_match_a_naive_group_by() -> None:
    rng = np.random.default_rng(3)
    indices = rng.integers(0, 11, size=500)  # index 10 is out of vocabulary
    targets = rng.integers(1, 6, size=500).astype(float)
    predictions = targets + rng.normal(0, 0.7, size=500)
    rows = {
        row["block"]: row for row in errors_by_block(predictions, targets, indices, REPORT_BLOCKS)
    }

    # Naive: label each row by hand-written ranges, then a pandas group-by.
    def label(i: int) -> str:
        return "head" if i < 2 else "torso" if i < 5 else "tail" if i < 10 else "unseen"

    frame = pd.DataFrame({"block": [label(i) for i in indices], "error": predictions - targets})
    for block, group in frame.groupby("block"):
        assert rows[block]["eval_rows"] == len(group)
        assert rows[block]["eval_rmse"] == pytest.approx(np.sqrt((group["error"] ** 2).mean()))
        assert rows[block]["eval_mae"] == pytest.approx(group["error"].abs().mean())
    assert [rows[b]["ids"] for b in ("head", "torso", "tail", "unseen")] == [2, 3, 5, 0]


def test_a_block_without_eval_rows_reports_no_error() -> None:
    rows = errors_by_block(
        np.array([3.0, 4.0]), np.array([3.5, 4.0]), np.array([0, 1]), REPORT_BLOCKS
    )
    assert [r["block"] for r in rows] == ["head", "torso", "tail"]  # no unseen ids: no row
    assert rows[1] == {
        "block": "torso",
        "ids": 3,
        "eval_rows": 0,
        "eval_rmse": None,
        "eval_mae": None,
    }


def _metrics(name: str, head_rmse: float) -> dict:
    blocks = [
        {"block": "head", "ids": 2, "eval_rows": 10, "eval_rmse": head_rmse, "eval_mae": 0.5},
        {"block": "tail", "ids": 8, "eval_rows": 4, "eval_rmse": 1.2, "eval_mae": 0.9},
    ]
    return {
        "total_parameters": 100,
        "embedding_parameters": 90,
        "embedding_bytes_float32": 360,
        "saved_model_bytes": 1000,
        "eval_mse": 1.0,
        "eval_rmse": 1.0,
        "eval_mae": 0.8,
        "val_rmse": 0.95,
        "epochs_run": 2,
        "train_seconds": 1.0,
        "global_mean_rmse": 1.1,
        "global_mean_mae": 0.9,
        "by_popularity": {"user": blocks, "movie": blocks},
        "data": {"description": "test"},
        "splits": {
            "validation_is_eval": False,
            "validation": {"rows": 5},
            "eval": {"rows": 14, "unseen_either_rows": 0},
        },
    }


def test_the_comparison_reports_every_models_blocks() -> None:
    comparison = compare_models("a", a=_metrics("a", 0.81234), b=_metrics("b", 0.9))
    rows = comparison["by_popularity"]
    assert len(rows) == 2 * 2 * 2  # models × sides × blocks
    assert rows[0] == {
        "model": "a",
        "side": "user",
        "block": "head",
        "ids": 2,
        "eval_rows": 10,
        "eval_rmse": 0.8123,
        "eval_mae": 0.5,
    }
    table = render_comparison_table(comparison)
    assert (
        "| b | item | tail | 8 | 4 | 1.2000 | 0.9000 |" in table
    )  # the movie side, as users read it
    figure = plot_error_by_popularity(comparison)
    titles = [ax.get_title() for ax in figure.axes]
    assert titles == ["users, most popular first", "items, most popular first"]
