"""The summary, table, JSON and chart of a budgeted sweep with peers and unreachable budgets,
against hand-worked values (made-up runs; 10 users + 20 movies = 30 ids)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from memory_efficient_embeddings.datasets import CSVDataset
from memory_efficient_embeddings.pipelines.sweep.chart import plot_compression_frontier
from memory_efficient_embeddings.pipelines.sweep.summary import (
    render_sweep_table,
    summarize_sweep,
    sweep_summary_record,
)

NUM_IDS = 30
USERS = pd.DataFrame({"id": [f"user_{i}" for i in range(10)], "train_count": 1})
MOVIES = pd.DataFrame({"id": [f"movie_{i}" for i in range(20)], "train_count": 1})
SWEEP = {
    "techniques": {"full": {}, "hashing": {}},
    "reference": "full",
    "seeds": [1, 2],
    "quantize": None,
    "budgets": {"floats_per_id": [0.5, 2, 4]},
    "target": {"min_compression": 4, "max_rmse_gap": 0.25},
}
UNREACHABLE = "with bias_layout separate, the per-id bias tables alone take 4 bytes per id"
# The placed plan: the reference, hashing placed at 2 and 4 floats per id, unreachable at 0.5.
PLAN = [
    {"point": "full(dim=8)", "technique": "full", "settings": "dim=8"},
    {
        "point": "hashing(budget=2)",
        "technique": "hashing",
        "settings": "budget=2 → ids_per_bucket=4",
        "budget": {"floats_per_id": 2, "knob": "embedding.ids_per_bucket"},
        "placement": {"serving_bytes": 192},
    },
    {
        "point": "hashing(budget=4)",
        "technique": "hashing",
        "settings": "budget=4 → ids_per_bucket=2",
        "budget": {"floats_per_id": 4, "knob": "embedding.ids_per_bucket"},
        "placement": {"serving_bytes": 384},
    },
    {
        "point": "hashing(budget=0.5)",
        "technique": "hashing",
        "settings": "budget=0.5",
        "budget": {"floats_per_id": 0.5, "knob": "embedding.ids_per_bucket"},
        "unreachable": UNREACHABLE,
    },
]
# point: (serving bytes, eval RMSE per seed)
POINTS = {
    "full(dim=8)": (1080, (0.5, 0.5)),
    "hashing(budget=2)": (192, (0.625, 0.625)),
    "hashing(budget=4)": (384, (0.5, 0.75)),
}


def _runs() -> pd.DataFrame:
    rows = []
    for point in PLAN:
        for index, seed in enumerate(SWEEP["seeds"]):
            row = {"point": point["point"], "technique": point["technique"], "seed": seed}
            row["settings"] = point["settings"]
            if "unreachable" in point:
                rows.append(row | {"skipped": f"budget unreachable: {point['unreachable']}"})
                continue
            size, rmse = POINTS[point["point"]]
            rows.append(
                row
                | {
                    "embedding_parameters": size // 4,
                    "embedding_bytes_float32": size,
                    "serving_bytes": size,
                    "training_bytes": 3 * size,
                    "eval_rmse": rmse[index],
                    "eval_mae": 0.5,
                    "val_rmse": rmse[index] + 0.25,
                    "epochs_run": 2,
                    "best_epoch": 2,
                    "train_seconds": 1.0,
                }
            )
    return pd.DataFrame(rows)


def _peers() -> pd.DataFrame:
    def row(point: str, parameters: int | None, seed: int | None, rmse: float) -> dict:
        size = None if parameters is None else 4 * parameters
        return {
            "point": f"peer({point})",
            "technique": "peer",
            "settings": point,
            "seed": seed,
            "embedding_parameters": parameters,
            "embedding_bytes_float32": size,
            "serving_bytes": size,
            "training_bytes": size,
            "val_rmse": rmse + 0.25,
            "val_mae": 0.5,
            "eval_rmse": rmse,
            "eval_mae": 0.5,
            "epochs_run": 20,
            "train_seconds": 0.5,
            "skipped": None,
        }

    rows = [row("global mean", 0, seed, 1.0) for seed in (1, 2)]
    rows += [row("SVD, 1 factors", 2 * NUM_IDS, seed, r) for seed, r in ((1, 0.75), (2, 0.875))]
    rows.append(row("BaselineOnly", None, None, np.nan) | {"skipped": "no surprise"})
    return pd.DataFrame(rows)


@pytest.fixture(params=["in memory", "through the CSV"])
def summary(request, tmp_path) -> pd.DataFrame:
    summary = summarize_sweep(_runs(), SWEEP, PLAN, _peers(), USERS, MOVIES)
    if request.param == "in memory":
        return summary
    # As `kedro run` hands it on: saved to sweep_summary.csv and loaded back.
    dataset = CSVDataset(filepath=str(tmp_path / "summary.csv"), save_args={"index": False})
    dataset.save(summary)
    return dataset.load()


def _row(summary: pd.DataFrame, point: str) -> pd.Series:
    return summary.set_index("point").loc[point]


def test_rows_per_point_peer_unreachable_budget_and_skipped_peer(summary) -> None:
    assert summary["point"].tolist() == [
        "full(dim=8)",
        "hashing(budget=0.5)",  # by budget within the technique: unreachable, then placed
        "hashing(budget=2)",
        "hashing(budget=4)",
        "peer(global mean)",
        "peer(SVD, 1 factors)",
        "peer(BaselineOnly)",
    ]
    unreachable = _row(summary, "hashing(budget=0.5)")
    assert unreachable["unreachable"] == UNREACHABLE
    assert unreachable["budget_floats_per_id"] == 0.5
    assert pd.isna(unreachable["eval_rmse_mean"]) and pd.isna(unreachable["serving_bytes"])
    assert _row(summary, "peer(BaselineOnly)")["skipped"] == "no surprise"


def test_bytes_per_id_budgets_and_compression_by_hand(summary) -> None:
    assert _row(summary, "hashing(budget=2)")["bytes_per_id"] == 192 / 30
    assert _row(summary, "hashing(budget=2)")["budget_floats_per_id"] == 2
    assert _row(summary, "hashing(budget=4)")["training_bytes_per_id"] == 3 * 384 / 30
    assert _row(summary, "full(dim=8)")["bytes_per_id"] == 36
    assert pd.isna(_row(summary, "full(dim=8)")["budget_floats_per_id"])
    svd = _row(summary, "peer(SVD, 1 factors)")
    assert svd["bytes_per_id"] == 8  # a factor and a bias per id, as float32
    assert svd["compression"] == 1080 / 240
    assert svd["eval_rmse_mean"] == 0.8125
    assert svd["eval_rmse_std"] == pytest.approx(np.std([0.75, 0.875], ddof=1))
    assert svd["rmse_gap"] == 0.625  # 0.8125 / 0.5 - 1
    assert svd["seeds"] == 2
    assert not svd["on_frontier"] and not svd["is_reference"]
    assert _row(summary, "peer(global mean)")["bytes_per_id"] == 0


def test_peers_and_unreachable_budgets_stay_off_the_frontier_and_the_reference(summary) -> None:
    frontier = set(summary.loc[summary["on_frontier"], "point"])
    # hashing(budget=4) is larger than budget=2 at the same mean RMSE: dominated.
    assert frontier == {"full(dim=8)", "hashing(budget=2)"}
    assert summary.loc[summary["is_reference"], "point"].tolist() == ["full(dim=8)"]
    # hashing(budget=2): 5.6× smaller and 25% worse meets the target; the peers do not.
    assert summary.loc[summary["meets_target"], "point"].tolist() == ["hashing(budget=2)"]


def test_the_table_lists_peers_unreachable_budgets_and_skipped_peers(summary) -> None:
    table = render_sweep_table(summary, {"description": "tiny"}, SWEEP)
    assert "budgets of 2, 8, 16 bytes per id (0.5, 2, 4 float32 values)" in table
    lines = table.splitlines()
    assert "| hashing ★ | budget=2 → ids_per_bucket=4 | 6.4 of 8 | 48 | 0.2 |" in table
    assert "| full ★ | dim=8 | 36 | 270 | 1.1 |" in table
    assert any(line.startswith("| peer | SVD, 1 factors | 8 | 60 | 0.2 |") for line in lines)
    # The mean holds no per-id weights: 0 bytes, no compression ratio to show.
    assert any(line.startswith("| peer | global mean | 0 | 0 | 0.0 | 0.0 | – |") for line in lines)
    section = lines[lines.index("## Budgets not reached") :]
    assert f"| hashing | 2 | hashing(budget=0.5) | {UNREACHABLE} |" in section
    assert "Peers skipped: peer(BaselineOnly): no surprise." in lines
    # No metrics row for what did not run.
    assert not any(line.startswith("| hashing | budget=0.5") for line in lines)


def test_the_summary_json_lists_unreachable_budgets_and_peers(summary) -> None:
    record = sweep_summary_record(summary, SWEEP)
    assert record["reference"] == "full(dim=8)"
    assert record["budgets_floats_per_id"] == [0.5, 2, 4]
    assert record["unreachable"] == [
        {
            "technique": "hashing",
            "point": "hashing(budget=0.5)",
            "budget_floats_per_id": 0.5,
            "budget_bytes_per_id": 2.0,
            "reason": UNREACHABLE,
        }
    ]
    assert [p["point"] for p in record["points"]] == [
        "full(dim=8)",
        "hashing(budget=2)",
        "hashing(budget=4)",
    ]
    assert [p["point"] for p in record["peers"]] == ["peer(global mean)", "peer(SVD, 1 factors)"]
    assert record["peers"][1]["bytes_per_id"] == 8
    assert record["skipped_peers"] == [{"point": "peer(BaselineOnly)", "reason": "no surprise"}]


def _plotted(axis) -> set[tuple[float, float]]:
    offsets = [c.get_offsets() for c in axis.collections if len(c.get_offsets())]
    plotted = {tuple(point) for point in np.vstack(offsets).tolist()}
    for line in axis.lines:  # error bars draw their markers as lines
        plotted |= set(zip(line.get_xdata(), line.get_ydata(), strict=True))
    return plotted


def _drawn(plotted: set[tuple[float, float]], x: float, y: float) -> bool:
    return any(np.isclose(a, x, rtol=1e-12) and np.isclose(b, y, rtol=1e-12) for a, b in plotted)


def test_the_chart_is_per_id_with_budgets_and_peers_marked(summary) -> None:
    figure: Figure = plot_compression_frontier(summary, {"description": "tiny"}, SWEEP)
    serving, training = figure.axes
    on_serving, on_training = _plotted(serving), _plotted(training)
    for point, size, rmse in (
        ("hashing(budget=2)", 192 / 30, 0.625),
        ("hashing(budget=4)", 384 / 30, 0.625),
        ("full(dim=8)", 36, 0.5),
        ("peer(SVD, 1 factors)", 8, 0.8125),
    ):
        assert _drawn(on_serving, size, rmse), point
    assert _drawn(on_training, 3 * 192 / 30, 0.625)
    # The budgets as dotted verticals at 4 bytes per float; the global mean as a dashed line.
    verticals = sorted(
        float(line.get_xdata()[0])
        for line in serving.lines
        if list(line.get_ydata()) == [0, 1] and line.get_xdata()[0] == line.get_xdata()[1]
    )
    assert verticals == [2.0, 8.0, 16.0]
    dashed = [line for line in serving.lines if line.get_linestyle() == "--"]
    assert [list(line.get_ydata()) for line in dashed] == [[1.0, 1.0]]
    labels = serving.get_legend_handles_labels()[1]
    assert {
        "peers (same split)",
        "peer(global mean): eval RMSE 1.0000, no per-id weights",
    } <= set(labels)
    # Every budget within the axis, and the y axis kept to the models (the mean sits above).
    assert serving.get_xlim()[0] < 2 and serving.get_xlim()[1] > 36
    assert serving.get_ylim()[1] < 1.0
    assert "budgets (float32 per id × 4 B)" in labels
    assert serving.xaxis.get_major_formatter()(4, 0) == "4 B"
    assert "per id" in serving.get_xlabel() and "per id" in training.get_xlabel()
