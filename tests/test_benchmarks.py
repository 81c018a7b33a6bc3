"""The speed benchmark's logic (no timing checks) and one tiny interleaved run."""

from __future__ import annotations

import importlib.util
import json
import sys
import zipfile
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def training_speed():
    return _load("training_speed")


@pytest.fixture(scope="module")
def recipe():
    return _load("recipe_reference")


def test_recipe_sizes_keep_the_recipe_where_it_fits_and_scale_elsewhere(recipe):
    # ml-1m: 6,040 // 50 = 120 buckets index 120 * 120 >= 6,040 users; 3,706 movies > 1,700.
    assert recipe.recipe_sizes(6040, 3706) == {
        "rule": "recipe",
        "num_buckets": 120,
        "boundaries": [400, 1700],
    }
    # ml-100k: 943 // 50 = 18 buckets cover only 324 users, so ceil(sqrt(943)) = 31; blocks at
    # the recipe's shares of 1,682 movies: 1682 * 400 / 3706 = 181.5, 1682 * 1700 / 3706 = 771.6.
    assert recipe.recipe_sizes(943, 1682) == {
        "rule": "scaled",
        "num_buckets": 31,
        "boundaries": [182, 772],
    }
    with pytest.raises(ValueError, match="do not fit"):
        recipe.recipe_sizes(943, 1682, scale=False)


def test_recipe_reads_both_ratings_formats(recipe, tmp_path):
    dat = tmp_path / "ratings.dat"
    dat.write_text("1::10::5::978300760\n2::20::3::978302109\n")
    archive = tmp_path / "ml-100k.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("ml-100k/u.data", "196\t242\t3\t881250949\n186\t302\t4\t891717742\n")
    assert recipe.read_ratings(dat)["movie_id"].tolist() == [10, 20]
    assert recipe.read_ratings(archive)["rating"].tolist() == [3, 4]


def test_runs_alternate_which_path_goes_first(training_speed):
    orders = [training_speed.order_for(r, ("project", "recipe")) for r in range(3)]
    assert orders == [("project", "recipe"), ("recipe", "project"), ("project", "recipe")]
    # With two backends each of the three runs goes first once in three repeats.
    jobs = training_speed.jobs_for(["tensorflow", "jax"])
    assert jobs == (("project", "tensorflow"), ("project", "jax"), ("recipe", "tensorflow"))
    firsts = [training_speed.order_for(r, jobs)[0] for r in range(3)]
    assert sorted(firsts) == sorted(jobs)


def test_backends_are_compared_by_their_medians(training_speed):
    runs = [{"backend": "tensorflow", "mean_epoch_seconds": s} for s in (2.0, 2.2, 9.0)] + [
        {"backend": "jax", "mean_epoch_seconds": s} for s in (1.0, 1.1, 0.9)
    ]
    result = training_speed.backend_comparison(runs, ["tensorflow", "jax"], "mean_epoch_seconds")
    assert result["median"] == {"tensorflow": 2.2, "jax": 1.0}
    assert result["speedup_over_tensorflow"] == {"jax": 2.2}


def test_comparison_uses_medians_and_reports_the_ratio_range(training_speed):
    def runs(epochs, maes):
        return [
            {"mean_epoch_seconds": e, "later_epoch_seconds": e, "eval_mae": m, "cpu_seconds": 3 * e}
            for e, m in zip(epochs, maes, strict=True)
        ]

    result = training_speed.compare_paths(
        runs([10.0, 12.0, 30.0], [0.700, 0.702, 0.701]),  # recipe: one run slowed by load
        runs([1.0, 1.1, 0.9], [0.704, 0.706, 0.705]),
    )
    # Medians 12.0 / 1.0; range: 10.0 / 1.1 and 30.0 / 0.9; MAE medians 0.705 - 0.701.
    assert result["speedup_of_medians"] == 12.0
    assert result["speedup_range"] == [9.09, 33.33]
    assert result["eval_mae_diff"] == pytest.approx(0.004)
    assert result["cpu_ratio_of_medians"] == 12.0  # 36.0 / 3.0
    assert result["pass"]
    slower = training_speed.compare_paths(runs([9.0], [0.7]), runs([1.0], [0.7051]))
    assert not slower["speedup_pass"] and not slower["mae_pass"]


def test_time_breakdown_splits_a_kedro_log(training_speed):
    log = "\n".join(
        [
            "100.000 kedro.framework.session.session INFO Kedro project x",
            "104.000 kedro.pipeline.node INFO Running node: ingest_ratings: ingest_ratings(...)",
            "105.000 memory_efficient_embeddings.hooks INFO Node ingest_ratings took 1.0 s (RSS 1)",
            "105.500 kedro.runner.sequential_runner INFO Completed node: ingest_ratings",
            "106.000 kedro.pipeline.node INFO Running node: train_model: train_model(...)",
            "116.000 memory_efficient_embeddings.hooks INFO Node baseline.train_model took 10 s",
            "117.000 kedro.runner.sequential_runner INFO Completed node: baseline.train_model",
            "117.250 kedro.pipeline.node INFO Running node: evaluate_model: evaluate_model(...)",
            "119.250 memory_efficient_embeddings.hooks INFO Node baseline.evaluate_model took 2 s",
            "119.500 kedro.runner.sequential_runner INFO Completed node: baseline.evaluate_model",
        ]
    )
    assert training_speed.time_breakdown(log, start=101.0, end=121.0) == {
        "startup": 3.0,  # 101 -> 104
        "data": 1.0,
        "training": 10.0,
        "evaluation_and_reports": 2.0,
        "saving": 0.5 + 1.0 + 0.25,
        "loading": 0.5 + 0.25,
        "shutdown": 1.5,  # 119.5 -> 121
    }


@pytest.mark.slow
def test_benchmark_interleaves_fresh_runs_of_both_paths(training_speed, tmp_path):
    out = tmp_path / "bench.json"
    result = training_speed.main(
        [
            "--num-ratings",
            "3000",
            "--epochs",
            "1",
            "--repeats",
            "2",
            "--models",
            "baseline",
            "--mode",
            "epochs",
            "--threads",
            "1",
            "--json-out",
            str(out),
        ]
    )

    assert json.loads(out.read_text()) == json.loads(json.dumps(result, default=str))
    runs = result["epochs"]["runs"]
    assert [(r["repeat"], r["path"]) for r in runs] == [
        (0, "project"),
        (0, "recipe"),
        (1, "recipe"),
        (1, "project"),
    ]
    # Same architecture on both paths.
    assert len({r["parameters"] for r in runs}) == 1
    for run in runs:
        assert len(run["epoch_seconds"]) == 1 and run["eval_mae"] > 0
    assert {r["backend"] for r in runs} == {"tensorflow"}  # the default: one backend
    comparison = result["epochs"]["comparisons"]["baseline"]["tensorflow"]
    assert comparison["project_epoch_seconds"]["n"] == 2
    rows = result["epochs"]["data"]
    assert rows["train_rows"] + rows["validation_rows"] + rows["eval_rows"] == 3000
    assert rows["validation_rows"] > 0  # the project validates on its own split, not on eval
    assert result["machine"]["threads"] == {"intra_op": 1, "inter_op": 1}
