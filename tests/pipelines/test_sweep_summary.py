"""The sweep summary and table against hand-worked values (no training: runs are made up)."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from memory_efficient_embeddings.pipelines.sweep.chart import plot_compression_frontier
from memory_efficient_embeddings.pipelines.sweep.summary import (
    format_bytes,
    render_sweep_table,
    summarize_sweep,
)

SWEEP = {
    "techniques": {"qr": {}, "full": {}},  # qr is listed first: the summary keeps that order
    "reference": "full",
    "seeds": [1, 2],
    "quantize": ["int8", "int4"],
    "target": {"min_compression": 4, "max_rmse_gap": 0.25},
}

# point: (technique, settings, embedding parameters, float32 bytes, (int8, int4) bytes,
#         training bytes, val RMSE per seed, val MAE per seed, train seconds per seed,
#         epochs per seed). Serving bytes are 4 per parameter; the bytes as trained differ for
#         full(dim=8), so that a summary reading the wrong column shows.
POINTS = {
    "full(dim=8)": (
        "full",
        "dim=8",
        1024,
        262_144,
        (1280, 768),
        786_432,
        (0.5, 0.5),
        (0.25, 0.5),
        (10, 20),
        (3, 5),
    ),
    "full(dim=4)": (
        "full",
        "dim=4",
        512,
        2048,
        (768, 512),
        6144,
        (0.5625,) * 2,
        (0.5,) * 2,
        (6, 6),
        (4, 4),
    ),
    "qr(b=20)": ("qr", "b=20", 64, 256, (160, 96), 800, (0.75,) * 2, (0.5,) * 2, (1, 1), (2, 2)),
    "qr(b=10)": (
        "qr",
        "b=10",
        128,
        512,
        (320, 192),
        1536,
        (0.5, 0.75),
        (0.5,) * 2,
        (2, 2),
        (2, 2),
    ),
    "qr(b=5)": ("qr", "b=5", 256, 1024, (640, 384), 3072, (0.625,) * 2, (0.5,) * 2, (3, 3), (2, 2)),
    "recipe(baseline)": (
        "recipe",
        "baseline",
        640,
        2560,
        (896, 640),
        7680,
        (0.5,) * 2,
        (0.4,) * 2,
        (5, 5),
        (3, 3),
    ),
}
# Quantized runs score worse by these amounts (RMSE, MAE).
QUANTIZED_OFFSETS = {"int8": (0.125, 0.0625), "int4": (0.25, 0.125)}


VALIDATION_OFFSET = 0.25


def _runs(quantize: bool = True, skipped: bool = True) -> pd.DataFrame:
    rows = []
    for point, values in POINTS.items():
        technique, settings, params, f32, quantized, train, rmse, mae, seconds, epochs = values
        for index, seed in enumerate(SWEEP["seeds"]):
            row = {"point": point, "technique": technique, "settings": settings, "seed": seed}
            row |= {
                "embedding_parameters": params,
                "embedding_bytes_float32": f32,
                "serving_bytes": 4 * params,
                "training_bytes": train,
                "eval_rmse": rmse[index],
                "eval_mae": mae[index],
                # Selection's figure: apart from eval's, so a mix-up shows.
                "val_rmse": rmse[index] + VALIDATION_OFFSET,
                "epochs_run": epochs[index],
                "best_epoch": epochs[index],
                "train_seconds": seconds[index],
            }
            if quantize:
                for mode, size in zip(("int8", "int4"), quantized, strict=True):
                    rmse_offset, mae_offset = QUANTIZED_OFFSETS[mode]
                    row |= {
                        f"serving_bytes_{mode}": size,
                        f"eval_rmse_{mode}": rmse[index] + rmse_offset,
                        f"eval_mae_{mode}": mae[index] + mae_offset,
                    }
            rows.append(row)
    if skipped:
        for seed in SWEEP["seeds"]:
            rows.append(
                {"point": "qr(b=1)", "technique": "qr", "settings": "b=1", "seed": seed}
                | {"skipped": "blocks do not fit"}
            )
    return pd.DataFrame(rows)


@pytest.fixture
def summary() -> pd.DataFrame:
    # Function scope: mutation testing maps each test to the functions it calls itself.
    return summarize_sweep(_runs(), SWEEP)


def _row(summary: pd.DataFrame, point: str) -> pd.Series:
    return summary.set_index("point").loc[point]


def test_points_are_ordered_by_listed_technique_then_size_and_skips_left_out(summary) -> None:
    assert summary["point"].tolist() == [
        "qr(b=20)",
        "qr(b=10)",
        "qr(b=5)",
        "full(dim=4)",
        "full(dim=8)",
        "recipe(baseline)",
    ]
    assert summary["seeds"].tolist() == [2] * 6
    assert summary["failed_seeds"].tolist() == [""] * 6  # no run failed
    assert summary["embedding_parameters"].dtype == np.int64
    # The columns of sweep_summary.csv, in this order.
    assert list(summary.columns) == [
        "point",
        "technique",
        "settings",
        "embedding_parameters",
        "embedding_bytes_float32",
        "serving_bytes",
        "serving_bytes_int8",
        "serving_bytes_int4",
        "training_bytes",
        *[
            f"{m}_{s}"
            for m in (
                "eval_rmse",
                "eval_mae",
                "eval_rmse_int8",
                "eval_mae_int8",
                "eval_rmse_int4",
                "eval_mae_int4",
            )
            for s in ("mean", "std")
        ],
        *[f"{m}_{s}" for m in ("val_rmse", "train_seconds", "epochs_run") for s in ("mean", "std")],
        "seeds",
        "failed_seeds",
        "compression",
        "rmse_gap",
        "meets_target",
        "is_reference",
        "on_frontier",
        "budget_floats_per_id",  # without the placed plan: none
    ]


def test_seed_means_and_sample_deviations_by_hand(summary) -> None:
    row = _row(summary, "qr(b=10)")
    assert row["eval_rmse_mean"] == pytest.approx(0.625, abs=1e-12)
    # Sample std of 0.5 and 0.75: sqrt(2 · 0.125² / 1) = 0.1767767.
    assert row["eval_rmse_std"] == pytest.approx(0.125 * math.sqrt(2), abs=1e-12)
    assert row["eval_rmse_int8_mean"] == pytest.approx(0.75, abs=1e-12)
    assert row["eval_mae_int8_mean"] == pytest.approx(0.5625, abs=1e-12)
    assert row["eval_rmse_int4_mean"] == pytest.approx(0.875, abs=1e-12)
    assert row["eval_rmse_int4_std"] == pytest.approx(0.125 * math.sqrt(2), abs=1e-12)
    assert row["eval_mae_int4_mean"] == pytest.approx(0.625, abs=1e-12)
    reference = _row(summary, "full(dim=8)")
    assert reference["eval_mae_mean"] == pytest.approx(0.375, abs=1e-12)
    assert reference["eval_mae_std"] == pytest.approx(0.125 * math.sqrt(2), abs=1e-12)
    assert reference["train_seconds_mean"] == 15
    assert reference["train_seconds_std"] == pytest.approx(50**0.5, abs=1e-12)
    assert reference["epochs_run_mean"] == 4
    assert reference["eval_rmse_std"] == 0.0
    sizes = ("serving_bytes", "serving_bytes_int8", "serving_bytes_int4", "training_bytes")
    assert [row[size] for size in sizes] == [512, 320, 192, 1536]
    assert _row(summary, "full(dim=8)")["embedding_bytes_float32"] == 262_144
    assert (row["technique"], row["settings"]) == ("qr", "b=10")


def test_a_single_seed_has_zero_deviation() -> None:
    runs = _runs(skipped=False)
    summary = summarize_sweep(runs[runs["seed"] == 1], {**SWEEP, "seeds": [1]})
    assert summary["eval_rmse_std"].tolist() == [0.0] * 6
    assert summary["seeds"].tolist() == [1] * 6


def test_compression_and_gap_are_against_the_largest_reference_point(summary) -> None:
    # Reference: full(dim=8), the full table with the most serving bytes (4096), RMSE 0.5.
    assert summary["is_reference"].tolist() == [False, False, False, False, True, False]
    compression = dict(zip(summary["point"], summary["compression"], strict=True))
    assert compression == {
        "qr(b=20)": 16.0,
        "qr(b=10)": 8.0,
        "qr(b=5)": 4.0,
        "full(dim=4)": 2.0,
        "full(dim=8)": 1.0,
        "recipe(baseline)": 1.6,
    }
    gap = dict(zip(summary["point"], summary["rmse_gap"], strict=True))
    assert gap == pytest.approx(
        {
            "qr(b=20)": 0.5,
            "qr(b=10)": 0.25,
            "qr(b=5)": 0.25,
            "full(dim=4)": 0.125,
            "full(dim=8)": 0.0,
            "recipe(baseline)": 0.0,
        },
        abs=1e-12,
    )


def test_target_tick_includes_both_bounds(summary) -> None:
    # qr(b=5) sits exactly on both bounds (4× and +25%); qr(b=20) is small but too inaccurate;
    # full(dim=4) is accurate but not small enough.
    ticked = summary.loc[summary["meets_target"], "point"].tolist()
    assert ticked == ["qr(b=10)", "qr(b=5)"]


def test_frontier_per_technique_by_hand(summary) -> None:
    # qr(b=5) is no better than the smaller qr(b=10); the recipe's points are never a frontier.
    frontier = summary.loc[summary["on_frontier"], "point"].tolist()
    assert frontier == ["qr(b=20)", "qr(b=10)", "full(dim=4)", "full(dim=8)"]


def test_summary_without_quantization_has_no_quantized_columns() -> None:
    summary = summarize_sweep(_runs(quantize=False), {**SWEEP, "quantize": None})
    assert not [column for column in summary.columns if "int8" in column or "int4" in column]
    assert _row(summary, "qr(b=10)")["compression"] == 8.0
    table = render_sweep_table(summary, {"description": "d"}, {**SWEEP, "quantize": None})
    assert "int8" not in table and "int4" not in table
    assert table.splitlines()[6] == (
        "| technique | settings | bytes per id | embedding params | KiB float32 | train KiB | "
        "compression | eval RMSE | eval MAE | RMSE vs ref | val RMSE | train s | epochs | target |"
    )
    assert (
        "| qr ★ | b=10 | – | 128 | 0.5 | 1.5 | 8.00× | 0.6250 ± 0.1768 | 0.5000 ± 0.0000 |" in table
    )


def test_one_mode_given_as_a_string_is_a_list_of_one() -> None:
    runs = _runs().drop(columns=["serving_bytes_int4", "eval_rmse_int4", "eval_mae_int4"])
    summary = summarize_sweep(runs, {**SWEEP, "quantize": "int8"})
    assert "serving_bytes_int8" in summary and "serving_bytes_int4" not in summary
    table = render_sweep_table(summary, {"description": "d"}, {**SWEEP, "quantize": "int8"})
    assert "| KiB int8 | train KiB |" in table and "int4" not in table


def test_frontier_and_compression_are_in_serving_bytes() -> None:
    # qr(b=5) trained as 4 KiB but serves in 128 bytes (folded), with the RMSE of the larger
    # qr(b=10): by serving bytes it is the smallest at that RMSE, so it, not qr(b=10), is on the
    # frontier (by bytes as trained it would be the other way round).
    runs = _runs()
    folded = runs["point"] == "qr(b=5)"
    runs.loc[folded, ["embedding_bytes_float32", "serving_bytes"]] = [4096, 128]
    runs.loc[folded, "eval_rmse"] = [0.5, 0.75]
    summary = summarize_sweep(runs, SWEEP)
    frontier = summary.loc[summary["on_frontier"] & (summary["technique"] == "qr"), "point"]
    assert frontier.tolist() == ["qr(b=5)"]
    # Compression too is in serving bytes: 4096 / 128, where its 256 parameters would say 4.
    assert _row(summary, "qr(b=5)")["compression"] == 32.0
    assert _row(summary, "qr(b=5)")["embedding_bytes_float32"] == 4096


def test_every_run_skipped_aborts_clearly() -> None:
    runs = _runs()
    message = r"^Every sweep run was skipped or failed; see the warnings above.$"
    with pytest.raises(ValueError, match=message):
        summarize_sweep(runs[runs["skipped"].notna()], SWEEP)


def _with_failed_seed(runs: pd.DataFrame, point: str, seed: int) -> pd.DataFrame:
    # A failed run keeps its identity and the error, and has no metrics (as run_sweep writes it).
    keep = ~((runs["point"] == point) & (runs["seed"] == seed))
    failed = runs.loc[~keep, ["point", "technique", "settings", "seed"]].assign(
        failed="RuntimeError: out of memory"
    )
    return pd.concat([runs[keep], failed], ignore_index=True)


def test_failed_seeds_are_named_and_left_out_of_the_means_by_hand() -> None:
    # qr(b=10) seed 2 (RMSE 0.75) fails: seed 1 alone gives mean 0.5, std 0 (one seed).
    summary = summarize_sweep(_with_failed_seed(_runs(), "qr(b=10)", 2), SWEEP)
    row = _row(summary, "qr(b=10)")
    assert row["seeds"] == 1 and row["failed_seeds"] == "2"
    assert row["eval_rmse_mean"] == pytest.approx(0.5, abs=1e-12)
    assert row["eval_rmse_std"] == 0.0
    assert row["rmse_gap"] == pytest.approx(0.5 / 0.5 - 1.0, abs=1e-12)
    others = summary[summary["point"] != "qr(b=10)"]
    assert others["failed_seeds"].tolist() == [""] * 5 and others["seeds"].tolist() == [2] * 5


def test_the_table_ends_with_the_failed_runs_by_hand() -> None:
    runs = _with_failed_seed(_with_failed_seed(_runs(), "qr(b=10)", 2), "full(dim=4)", 1)
    table = render_sweep_table(summarize_sweep(runs, SWEEP), {"description": "d"}, SWEEP)
    assert table.splitlines()[-1] == (
        "Failed runs, left out of the means (errors in sweep_runs): "
        "qr(b=10) (seeds 2); full(dim=4) (seeds 1)."  # in the order of the table rows
    )
    # Without a failed run the table has no such line.
    clean = render_sweep_table(summarize_sweep(_runs(), SWEEP), {"description": "d"}, SWEEP)
    assert "Failed runs" not in clean


def test_every_run_skipped_or_failed_aborts_clearly() -> None:
    runs = _runs()
    for point in POINTS:
        for seed in SWEEP["seeds"]:
            runs = _with_failed_seed(runs, point, seed)
    with pytest.raises(ValueError, match=r"^Every sweep run was skipped or failed; see the "):
        summarize_sweep(runs, SWEEP)


def test_a_reference_without_a_finished_run_aborts_clearly() -> None:
    runs = _runs(skipped=False)
    with pytest.raises(ValueError) as info:
        summarize_sweep(runs[runs["technique"] != "full"], SWEEP)
    assert str(info.value) == "The reference technique 'full' has no finished run."


def test_runs_without_any_skipped_column_are_summarised() -> None:
    summary = summarize_sweep(_runs(skipped=False), SWEEP)
    assert len(summary) == 6


def test_sweep_table_by_hand(summary) -> None:
    lines = render_sweep_table(summary, {"description": "tiny data"}, SWEEP).splitlines()
    assert lines[:4] == ["# Compression sweep", "", "Data: tiny data", ""]
    assert lines[5] == ""
    assert lines[4] == (
        "Each point trained with seeds [1, 2]; metrics are mean ± sample std. "
        "Early stopping and tuning read the validation split (val RMSE, selection only); eval RMSE "
        "and MAE are the held-out eval split, scored once after training. Compression is in "
        "float32 serving bytes against `full(dim=8)`. Target: at least 4× compression and eval RMSE "
        "at most 25% above the reference's. KiB: serving bytes of the embedding layers as stored (float32, then after post-training "
        "quantization: scales, zero points and index maps included); train KiB adds the "
        "optimizer's slots for them. Bytes per id: float32 serving bytes of both sides, biases "
        "included, over users + movies. ★ marks a point on its technique's Pareto frontier "
        "(float32 serving bytes against RMSE). Peers (`peer`) are fitted on the same train split "
        "per seed and scored on the same eval split; their sizes count per-id weights as float32."
    )
    assert lines[6] == (
        "| technique | settings | bytes per id | embedding params | KiB float32 | KiB int8 | KiB int4 | "
        "train KiB | compression | eval RMSE | eval MAE | eval RMSE int8 | eval RMSE int4 | "
        "RMSE vs ref | val RMSE | train s | epochs | target |"
    )
    assert lines[7] == "|" + "---|" * 18
    # KiB by hand (one decimal, ties to even): 160 B = 0.15625 -> 0.2, 96 B -> 0.1, 800 B -> 0.8.
    assert lines[8:] == [
        "| qr ★ | b=20 | – | 64 | 0.2 | 0.2 | 0.1 | 0.8 | 16.00× | 0.7500 ± 0.0000 | 0.5000 ± 0.0000 "
        "| 0.8750 ± 0.0000 | 1.0000 ± 0.0000 | +50.00% | 1.0000 ± 0.0000 | 1.0 | 2.0 |  |",
        "| qr ★ | b=10 | – | 128 | 0.5 | 0.3 | 0.2 | 1.5 | 8.00× | 0.6250 ± 0.1768 | 0.5000 ± 0.0000 "
        "| 0.7500 ± 0.1768 | 0.8750 ± 0.1768 | +25.00% | 0.8750 ± 0.1768 | 2.0 | 2.0 | ✓ |",
        "| qr | b=5 | – | 256 | 1.0 | 0.6 | 0.4 | 3.0 | 4.00× | 0.6250 ± 0.0000 | 0.5000 ± 0.0000 "
        "| 0.7500 ± 0.0000 | 0.8750 ± 0.0000 | +25.00% | 0.8750 ± 0.0000 | 3.0 | 2.0 | ✓ |",
        "| full ★ | dim=4 | – | 512 | 2.0 | 0.8 | 0.5 | 6.0 | 2.00× | 0.5625 ± 0.0000 "
        "| 0.5000 ± 0.0000 | 0.6875 ± 0.0000 | 0.8125 ± 0.0000 | +12.50% | 0.8125 ± 0.0000 | 6.0 | 4.0 |  |",
        "| full ★ | dim=8 | – | 1,024 | 4.0 | 1.2 | 0.8 | 768.0 | 1.00× | 0.5000 ± 0.0000 "
        "| 0.3750 ± 0.1768 | 0.6250 ± 0.0000 | 0.7500 ± 0.0000 | +0.00% | 0.7500 ± 0.0000 | 15.0 | 4.0 |  |",
        "| recipe | baseline | – | 640 | 2.5 | 0.9 | 0.6 | 7.5 | 1.60× | 0.5000 ± 0.0000 "
        "| 0.4000 ± 0.0000 | 0.6250 ± 0.0000 | 0.7500 ± 0.0000 | +0.00% | 0.7500 ± 0.0000 | 5.0 | 3.0 |  |",
    ]


def test_sweep_table_without_a_description_shows_the_provenance(summary) -> None:
    table = render_sweep_table(summary, {"source": "x"}, SWEEP)
    assert table.splitlines()[2] == "Data: {'source': 'x'}"


def test_sweep_table_shows_a_dash_for_points_without_settings() -> None:
    runs = _runs(skipped=False)
    runs.loc[runs["point"] == "full(dim=8)", "settings"] = ""
    table = render_sweep_table(summarize_sweep(runs, SWEEP), {"description": "d"}, SWEEP)
    assert "| full ★ | – | – | 1,024 |" in table


def _plotted(axis) -> set[tuple[float, float]]:
    offsets = [c.get_offsets() for c in axis.collections if len(c.get_offsets())]
    plotted = {tuple(point) for point in np.vstack(offsets).tolist()}
    for line in axis.lines:  # error bars draw their markers as lines
        plotted |= set(zip(line.get_xdata(), line.get_ydata(), strict=True))
    return plotted


def test_frontier_chart_plots_every_point_and_marks_the_target(summary) -> None:
    figure = plot_compression_frontier(summary, {"description": "tiny data"}, SWEEP)
    serving, training = figure.axes
    on_serving, on_training = _plotted(serving), _plotted(training)
    for _, row in summary.iterrows():
        assert (row["serving_bytes"], row["eval_rmse_mean"]) in on_serving
        assert (row["training_bytes"], row["eval_rmse_mean"]) in on_training
        for mode in ("int8", "int4"):
            assert (row[f"serving_bytes_{mode}"], row[f"eval_rmse_{mode}_mean"]) in on_serving or (
                row["technique"] == "recipe"
            )
        # Quantized models are served, not trained: none on the training panel.
        assert (row["serving_bytes_int4"], row["eval_rmse_int4_mean"]) not in on_training
    assert serving.get_xscale() == training.get_xscale() == "log"
    assert "tiny data" in figure._suptitle.get_text()
    labels = serving.get_legend_handles_labels()[1]
    assert "target: ≥4× smaller, RMSE ≤ +25%" in labels
    assert "meets the target" in labels
    assert {"int8, after training (hollow)", "int4, after training (hollow)"} <= set(labels)
    # Ticks read in bytes: 4 KiB is the reference's float32 size.
    assert serving.xaxis.get_major_formatter()(4096, 0) == "4 KiB"
    assert 4096 in serving.xaxis.get_major_locator().tick_values(100, 300_000)
    assert "training bytes" in training.get_xlabel()
    plt.close(figure)


@pytest.mark.parametrize(
    ("size", "text"),
    [(512, "512 B"), (1024, "1 KiB"), (1536, "1.5 KiB"), (3 * 1024**2 // 2, "1.5 MiB")],
)
def test_byte_labels_by_hand(size: int, text: str) -> None:
    assert format_bytes(size) == text


def test_frontier_chart_gives_each_technique_its_own_style_and_no_recipe_entry_without_one(
    summary,
) -> None:
    techniques = summary[summary["technique"] != "recipe"]
    figure = plot_compression_frontier(techniques, {"description": "tiny data"}, SWEEP)
    handles, labels = figure.axes[0].get_legend_handles_labels()
    assert "keras-io recipe's models" not in labels
    styles = {
        label: (tuple(handle.lines[0].get_color()), handle.lines[0].get_marker())
        for handle, label in zip(handles, labels, strict=True)
        if label in set(techniques["technique"])
    }
    assert len(styles) == techniques["technique"].nunique()
    assert len(set(styles.values())) == len(styles)  # no two techniques drawn alike
