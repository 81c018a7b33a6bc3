"""The model comparison's numbers and table against hand-worked values."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from memory_efficient_embeddings.pipelines.reporting.nodes import (
    compare_models,
    plot_accuracy_vs_parameters,
    plot_loss_curves,
    render_comparison_table,
)

MIB = 2**20


def _block(block, ids, eval_rows, rmse, mae):
    return {"block": block, "ids": ids, "eval_rows": eval_rows, "eval_rmse": rmse, "eval_mae": mae}


# evaluate_model's per-side, per-block errors: unrounded, None where a block has no eval rows.
BY_POPULARITY = {
    "user": [
        _block("head", 3, 40, 0.812345, 0.61236),
        _block("tail", 1_200, 12, 1.04, 0.8),
        _block("unseen", 0, 2, 1.5, 1.25),
    ],
    "movie": [_block("all", 50, 54, 0.9, 0.70004), _block("empty", 7, 0, None, None)],
}


SPLITS = {
    "validation_is_eval": False,
    "train": {"rows": 900},
    "validation": {"rows": 100, "unseen_user_rows": 1, "unseen_movie_rows": 2},
    "eval": {"rows": 1_800, "unseen_user_rows": 3, "unseen_movie_rows": 4, "unseen_either_rows": 6},
    "unseen_id_fallback": "zero rows, biases only",
}


def _metrics(**overrides):
    metrics = {
        "total_parameters": 10_500,
        "embedding_parameters": 10_000,
        "embedding_bytes_float32": 40_000,
        "serving_bytes": 40_000,
        "saved_model_bytes": 3 * MIB + 300,  # 3.0003 MiB: shown to 3 decimals
        "eval_mse": 0.81234,
        "eval_rmse": 0.90130,
        "eval_mae": 0.70006,
        "val_rmse": 0.88888,
        "epochs_run": 7,
        "train_seconds": 12.34,
        "global_mean_rmse": 1.11764,
        "global_mean_mae": 0.93333,
        "by_popularity": BY_POPULARITY,
        "data": {"description": "tiny test data", "source": "synthetic", "shaped_like": "ml-1m"},
        "splits": SPLITS,
    }
    return {**metrics, **overrides}


@pytest.fixture
def comparison():
    return compare_models(
        "baseline",
        baseline=_metrics(),
        memory_efficient=_metrics(
            total_parameters=3_500,
            embedding_parameters=3_000,
            embedding_bytes_float32=MIB + MIB // 2,
            serving_bytes=12_000,
            saved_model_bytes=MIB // 4,
            eval_mse=0.86,
            eval_rmse=0.92736,
            eval_mae=0.73,
            epochs_run=9,
            train_seconds=8.0,
            global_mean_rmse=9.9,  # another model's baseline is not reported
            by_popularity={"user": [_block("head", 3, 40, 0.95555, 0.74444)], "movie": []},
            data={"description": "not this one"},
        ),
    )


def test_comparison_rows_by_hand(comparison) -> None:
    baseline, small = comparison["models"]
    assert baseline == {
        "model": "baseline",
        "total_parameters": 10_500,
        "embedding_parameters": 10_000,
        "embedding_mib": 0.038,  # 40,000 / 1,048,576 = 0.0381
        "serving_bytes": 40_000,
        "compression_vs_reference": 1.0,
        "saved_model_mib": 3.0,
        "eval_mse": 0.8123,
        "eval_rmse": 0.9013,
        "eval_mae": 0.7001,
        "val_rmse": 0.8889,
        "epochs": 7,
        "train_seconds": 12.34,
    }
    assert small["model"] == "memory_efficient"
    # 10,000 / 3,000 embedding parameters: 3.33 times smaller than the reference.
    assert small["compression_vs_reference"] == 3.33
    assert small["embedding_mib"] == 1.5
    assert small["saved_model_mib"] == 0.25
    assert (small["eval_mse"], small["eval_rmse"], small["eval_mae"]) == (0.86, 0.9274, 0.73)
    assert (small["epochs"], small["train_seconds"]) == (9, 8.0)


def test_comparison_reports_the_reference_baseline_and_data(comparison) -> None:
    assert comparison["reference"] == "baseline"
    assert comparison["global_mean_rmse"] == 1.1176
    assert comparison["global_mean_mae"] == 0.9333
    assert comparison["data"] == {
        "description": "tiny test data",
        "source": "synthetic",
        "shaped_like": "ml-1m",
    }


def test_errors_by_popularity_per_model_side_and_block_by_hand(comparison) -> None:
    # Every model's blocks, users before movies as given, rounded to 4 decimals; None stays None.
    assert comparison["by_popularity"] == [
        {"model": "baseline", "side": "user"} | _block("head", 3, 40, 0.8123, 0.6124),
        {"model": "baseline", "side": "user"} | _block("tail", 1_200, 12, 1.04, 0.8),
        {"model": "baseline", "side": "user"} | _block("unseen", 0, 2, 1.5, 1.25),
        {"model": "baseline", "side": "movie"} | _block("all", 50, 54, 0.9, 0.7),
        {"model": "baseline", "side": "movie"} | _block("empty", 7, 0, None, None),
        {"model": "memory_efficient", "side": "user"} | _block("head", 3, 40, 0.9556, 0.7444),
    ]


def test_the_reference_can_be_any_model() -> None:
    comparison = compare_models(
        "small", big=_metrics(embedding_parameters=900), small=_metrics(embedding_parameters=300)
    )
    assert [row["compression_vs_reference"] for row in comparison["models"]] == [0.33, 1.0]


def test_an_unknown_reference_is_refused() -> None:
    with pytest.raises(ValueError) as info:
        compare_models("base", small=_metrics(), baseline=_metrics())
    assert str(info.value) == "Reference model 'base' is not among ['baseline', 'small']."


def test_comparison_table_by_hand(comparison) -> None:
    assert render_comparison_table(comparison).splitlines() == [
        "# Model comparison",
        "",
        "Data: tiny test data",
        "",
        "| model | parameters | embedding parameters | embedding MiB (float32) | serving bytes "
        "| compression | eval MSE | eval RMSE | eval MAE | epochs | train s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
        "| baseline | 10,500 | 10,000 | 0.038 | 40,000 | 1.00× | 0.8123 | 0.9013 | 0.7001 | 7 "
        "| 12.3 |",
        "| memory_efficient | 3,500 | 3,000 | 1.500 | 12,000 | 3.33× | 0.8600 | 0.9274 | 0.7300 "
        "| 9 | 8.0 |",
        "",
        "Compression is measured in embedding parameters against `baseline`. Predicting the "
        "training mean gives RMSE 1.1176, MAE 0.9333.",
        "",
        "Early stopping selected on the validation split (100 rows carved from training); the "
        "eval split was scored once, after training. Eval: 6 of its 1,800 rows have a user or "
        "item unseen in training (3 an unseen user, 4 an unseen item); they are scored by the "
        "fallback: zero rows, biases only.",
        "",
        "## Error by popularity block",
        "",
        "Ids are grouped by their number of training ratings, most popular first: a model with "
        "frequency blocks is reported over its own blocks, a plain table over equal-rating-mass "
        "blocks; `unseen` ids have no training rating (out of vocabulary).",
        "",
        "| model | side | block | ids | eval rows | eval RMSE | eval MAE |",
        "|---|---|---|---|---|---|---|",
        "| baseline | user | head | 3 | 40 | 0.8123 | 0.6124 |",
        "| baseline | user | tail | 1,200 | 12 | 1.0400 | 0.8000 |",
        "| baseline | user | unseen | 0 | 2 | 1.5000 | 1.2500 |",
        "| baseline | item | all | 50 | 54 | 0.9000 | 0.7000 |",
        "| baseline | item | empty | 7 | 0 | – | – |",
        "| memory_efficient | user | head | 3 | 40 | 0.9556 | 0.7444 |",
    ]
    assert render_comparison_table(comparison).endswith("| 0.9556 | 0.7444 |\n")


def test_the_table_warns_when_selection_read_the_eval_split() -> None:
    recipe = {**SPLITS, "validation_is_eval": True}
    table = render_comparison_table(compare_models("a", a=_metrics(splits=recipe)))
    assert (
        "**Selection read the eval split** (`split.validation_fraction: 0`, the keras-io "
        "recipe's behaviour): these eval figures are optimistic. Eval: 6 of its 1,800 rows"
    ) in table
    assert "Early stopping selected on the validation split" not in table


def test_comparison_table_without_a_description_shows_the_provenance() -> None:
    comparison = compare_models("a", a=_metrics(data={"source": "x"}))
    assert "Data: {'source': 'x'}" in render_comparison_table(comparison)


def test_accuracy_chart_places_each_model_and_the_mean_baseline(comparison) -> None:
    figure = plot_accuracy_vs_parameters(comparison)
    # The mean baseline is in each panel's title (to 3 decimals: 1.1176 -> 1.118, 0.9333 ->
    # 0.933); each point is labelled with its model, size against the reference and value.
    for axis, metric, title, labels in zip(
        figure.axes,
        ("eval_rmse", "eval_mae"),
        ("eval RMSE (predicting the mean: 1.118)", "eval MAE (predicting the mean: 0.933)"),
        (
            ["baseline\nreference, 0.9013", "memory_efficient\n3.3× smaller, 0.9274"],
            ["baseline\nreference, 0.7001", "memory_efficient\n3.3× smaller, 0.7300"],
        ),
        strict=True,
    ):
        points = np.vstack([collection.get_offsets() for collection in axis.collections])
        expected = [[row["embedding_parameters"], row[metric]] for row in comparison["models"]]
        np.testing.assert_allclose(points, expected)
        assert axis.get_title() == title
        assert axis.get_xscale() == "log"
        # A factor of 3 of room each side of 3,000 and 10,000 embedding parameters.
        np.testing.assert_allclose(axis.get_xlim(), (1_000, 30_000))
        assert [text.get_text() for text in axis.texts] == labels
    assert [axis.get_ylabel() for axis in figure.axes] == ["eval RMSE (stars)", "eval MAE (stars)"]
    assert figure.get_suptitle() == (
        "Accuracy against embedding size on synthetic data shaped like ml-1m "
        "(lower is better; left is smaller)"
    )
    plt.close(figure)


def test_loss_curves_plot_each_models_train_and_validation_rmse() -> None:
    # The loss (with its L2 terms) differs from the RMSE: the chart must show the RMSE.
    figure = plot_loss_curves(
        {"source": "movielens", "dataset": "ml-1m"},
        a={
            "history": {
                "loss": [9, 9],
                "rmse": [3.0, 2.0],
                "val_loss": [9, 9],
                "val_rmse": [3.5, 2.5],
            }
        },
        b={
            "history": {
                "loss": [9, 9, 9],
                "rmse": [4.0, 1.0, 0.5],
                "val_loss": [9, 9, 9],
                "val_rmse": [4.5, 1.5, 1.0],
            }
        },
    )
    lines = {line.get_label(): line for line in figure.axes[0].lines}
    assert sorted(lines) == ["a: train", "a: validation", "b: train", "b: validation"]
    assert list(lines["b: train"].get_xdata()) == [1, 2, 3]
    assert list(lines["b: validation"].get_ydata()) == [4.5, 1.5, 1.0]
    assert list(lines["a: train"].get_ydata()) == [3.0, 2.0]
    assert lines["a: train"].get_color() == lines["a: validation"].get_color()
    assert lines["a: train"].get_color() != lines["b: train"].get_color()
    assert figure.axes[0].get_title() == "Training curves on MovieLens ml-1m"
    plt.close(figure)


# --- the uniform table at the memory_efficient model's bytes ----------------------------------


def _uniform(**overrides):
    uniform = {
        "model": "uniform_at_same_bytes",
        "fits": True,
        "matched": {"model": "memory_efficient", "serving_bytes": 12_000},
        "embedding_dim": 2,
        "bias_layout": "in_embedding",
        "total_parameters": 2_801,
        "embedding_parameters": 2_800,
        "embedding_bytes_float32": 11_200,
        "serving_bytes": 11_200,
        "eval_rmse": 0.93001,
        "val_rmse": 0.91,
        "by_popularity": {"user": [], "movie": []},
    }
    return _metrics(**(uniform | overrides))


def _matched_comparison(uniform):
    return compare_models(
        "baseline",
        uniform_at_same_bytes=uniform,
        baseline=_metrics(),
        memory_efficient=_metrics(serving_bytes=12_000, eval_rmse=0.92736, val_rmse=0.90004),
    )


def test_the_uniform_table_at_the_same_bytes_gets_a_row_and_a_verdict() -> None:
    comparison = _matched_comparison(_uniform())
    rows = {row["model"]: row for row in comparison["models"]}
    assert list(rows) == ["baseline", "memory_efficient", "uniform_at_same_bytes"]
    assert rows["uniform_at_same_bytes"]["serving_bytes"] == 11_200
    assert rows["uniform_at_same_bytes"]["compression_vs_reference"] == 3.57  # 10,000 / 2,800
    assert comparison["uniform_at_same_bytes"] == {
        "model": "uniform_at_same_bytes",
        "matched_model": "memory_efficient",
        "matched_serving_bytes": 12_000,
        "fits": True,
        "embedding_dim": 2,
        "bias_layout": "in_embedding",
        "serving_bytes": 11_200,
        "val_rmse": {"memory_efficient": 0.9, "uniform": 0.91},
        "eval_rmse": {"memory_efficient": 0.9274, "uniform": 0.93},
        "blocks_win": True,  # 0.92736 < 0.93001
    }
    assert (
        "**A uniform table at the same bytes:** `uniform_at_same_bytes` is plain full tables of "
        "width 2 (biases in the embedding), 11,200 serving bytes against `memory_efficient`'s "
        "12,000, trained and scored the same way (validation RMSE 0.9100 against 0.9000): the "
        "compact layout earns its place (eval RMSE 0.9274 against 0.9300)."
    ) in render_comparison_table(comparison)


def test_a_better_uniform_table_says_so() -> None:
    comparison = _matched_comparison(_uniform(eval_rmse=0.92736, bias_layout="separate"))
    assert comparison["uniform_at_same_bytes"]["blocks_win"] is False  # a tie is no win
    table = render_comparison_table(comparison)
    assert "plain full tables of width 2 (separate bias tables), 11,200 serving bytes" in table
    assert (
        "a plain table of the same size does as well or better (eval RMSE 0.9274 against 0.9274)"
    ) in table


def test_when_no_plain_table_fits_the_report_says_why() -> None:
    uniform = {
        "model": "uniform_at_same_bytes",
        "fits": False,
        "matched": {"model": "memory_efficient", "serving_bytes": 900},
        "smallest_serving_bytes": 1_000,
        "data": {},
        "splits": SPLITS,
    }
    comparison = _matched_comparison(uniform)
    assert [row["model"] for row in comparison["models"]] == ["baseline", "memory_efficient"]
    assert comparison["uniform_at_same_bytes"]["blocks_win"] is None
    assert (
        "**A uniform table at the same bytes:** none fits. `memory_efficient` serves 900 bytes, "
        "less than any plain table: per-id biases alone take 1,000."
    ) in render_comparison_table(comparison)


def test_a_uniform_table_matched_to_a_missing_model_is_refused() -> None:
    with pytest.raises(ValueError, match="run `kedro run --pipelines=memory_efficient` first"):
        compare_models("baseline", uniform_at_same_bytes=_uniform(), baseline=_metrics())


# --- the layout chosen on validation, and what unseen ids read ---------------------------------


def _selection_table():
    import pandas as pd  # noqa: PLC0415

    return pd.DataFrame(
        {
            "layout": ["alpha_blocks", "shared_tail"],
            "serving_bytes": [54_808, 5_616],
            "bytes_per_id": [21.18594, 2.17085],
            "floats_per_id": [5.296485, 0.542713],
            "val_rmse": [0.918891, 0.971572],
            "best_epoch": [28, 39],
            "epochs_run": [30, 40],
            "chosen": [False, True],
        }
    )


def test_the_report_shows_the_chosen_layout_and_every_candidate() -> None:
    unseen = {"user": "zero", "movie": "block 3"}
    comparison = compare_models(
        "baseline",
        layout_selection=_selection_table(),
        baseline=_metrics(unseen_ids={"user": "zero", "movie": "zero"}),
        memory_efficient=_metrics(layout="shared_tail", unseen_ids=unseen),
    )
    assert comparison["layout_selection"] == {
        "model": "memory_efficient",
        "chosen": "shared_tail",
        "candidates": [
            {
                "layout": "alpha_blocks",
                "serving_bytes": 54_808,
                "floats_per_id": 5.2965,
                "val_rmse": 0.9189,
                "best_epoch": 28,
                "chosen": False,
            },
            {
                "layout": "shared_tail",
                "serving_bytes": 5_616,
                "floats_per_id": 0.5427,
                "val_rmse": 0.9716,
                "best_epoch": 39,
                "chosen": True,
            },
        ],
    }
    assert comparison["unseen_ids_by_model"] == {
        "memory_efficient": {"layout": "shared_tail", "unseen_ids": unseen}
    }
    table = render_comparison_table(comparison)
    assert (
        "**`memory_efficient`'s layout, chosen on the validation split:** `shared_tail` (the "
        "lowest validation RMSE; ties go to fewer serving bytes).\n\n"
        "| layout | floats per id | serving bytes | val RMSE | best epoch | chosen |\n"
        "|---|---|---|---|---|---|\n"
        "| alpha_blocks | 5.296 | 54,808 | 0.9189 | 28 |  |\n"
        "| shared_tail | 0.543 | 5,616 | 0.9716 | 39 | yes |\n"
    ) in table
    # The split's zero fallback holds for the others; the chosen layout's unseen items differ.
    assert (
        "they are scored by the fallback: zero rows, biases only. Except in `memory_efficient` "
        "(layout `shared_tail`): an unseen item reads the trained shared row of the rarest items "
        "(block 3), not zeros."
    ) in table


def test_a_selection_from_another_run_is_refused() -> None:
    with pytest.raises(ValueError, match="come from different runs"):
        compare_models(
            "baseline",
            layout_selection=_selection_table(),
            baseline=_metrics(),
            memory_efficient=_metrics(layout="alpha_blocks"),
        )
