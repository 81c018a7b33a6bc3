"""Whole-project runs through KedroSession on small generated data, in a temporary project copy."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest
import yaml
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from nbclient import NotebookClient

from memory_efficient_embeddings.model_names import MODEL_NAMES

PROJECT_ROOT = Path(__file__).resolve().parents[1]

# Small, fast settings layered over conf/base through conf/local (parameters merge softly).
SMALL_RUN_PARAMETERS = {
    "data": {
        "source": "synthetic",
        "synthetic": {"num_users": 300, "num_movies": 200, "num_ratings": 12000, "seed": 7},
    },
    # Few steps on little data: a larger learning rate lets every model pass the global mean.
    # Batch 256: conf/base's 2048 would leave only a few steps per epoch on 10,000 ratings.
    "training": {
        "epochs": 4,
        "learning_rate": 0.01,
        "batch_size": 256,
        "steps_per_execution": 8,
        "verbose": 0,
    },
}

ARTIFACTS = [
    "02_intermediate/data_provenance.json",
    "05_model_input/train_ratings.csv",
    "05_model_input/eval_ratings.csv",
    "05_model_input/user_vocabulary.csv",
    "05_model_input/movie_vocabulary.csv",
    "04_feature/baseline_embedding_plan.json",
    "04_feature/memory_efficient_embedding_plan.json",
    "08_reporting/uniform_at_same_bytes_plan.json",
    "06_models/baseline.keras",
    "06_models/memory_efficient.keras",
    "07_model_output/baseline_training_history.json",
    "07_model_output/memory_efficient_training_history.json",
    "08_reporting/baseline_metrics.json",
    "08_reporting/memory_efficient_metrics.json",
    "08_reporting/uniform_at_same_bytes_metrics.json",
    "08_reporting/baseline_training_curves.png",
    "08_reporting/memory_efficient_training_curves.png",
    "08_reporting/comparison.json",
    "08_reporting/comparison.md",
    "08_reporting/accuracy_vs_parameters.png",
    "08_reporting/loss_curves.png",
    "08_reporting/baseline_popularity_blocks.png",
    "08_reporting/memory_efficient_popularity_blocks.png",
    "08_reporting/error_by_popularity.png",
]


def _versions(project: Path, artifact: str) -> list[Path]:
    """The versioned files of one artifact: data/<folder>/<file>/<timestamp>/<file>."""
    folder = project / "data" / artifact
    return sorted(folder.glob(f"*/{folder.name}")) if folder.is_dir() else []


def _run_session(project: Path, pipeline: str | None = None) -> None:
    bootstrap_project(project)
    with KedroSession.create(project_path=project) as session:
        session.run(pipeline_names=[pipeline] if pipeline else None)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project (conf, src, pyproject) with small-run local parameters."""
    os.environ["KEDRO_DISABLE_TELEMETRY"] = "1"
    copy = tmp_path_factory.mktemp("project")
    for name in ("conf", "src", "notebooks"):
        shutil.copytree(PROJECT_ROOT / name, copy / name, ignore=shutil.ignore_patterns("local"))
    shutil.copy(PROJECT_ROOT / "pyproject.toml", copy / "pyproject.toml")
    (copy / "conf" / "local").mkdir()
    (copy / "conf" / "local" / "parameters.yml").write_text(yaml.safe_dump(SMALL_RUN_PARAMETERS))
    (copy / "data").mkdir()
    _run_session(copy)
    return copy


@pytest.mark.slow
def test_default_run_writes_every_artifact(project: Path) -> None:
    missing = [artifact for artifact in ARTIFACTS if not _versions(project, artifact)]
    assert not missing, f"artifacts not written: {missing}"


@pytest.mark.slow
def test_metrics_beat_the_global_mean_and_record_provenance(project: Path) -> None:
    for model in MODEL_NAMES:
        metrics = json.loads(
            _versions(project, f"08_reporting/{model}_metrics.json")[-1].read_text()
        )
        assert metrics["eval_rmse"] < metrics["global_mean_rmse"]
        assert metrics["eval_mae"] < metrics["global_mean_mae"]
        assert metrics["data"]["source"] == "synthetic"
    comparison = json.loads(_versions(project, "08_reporting/comparison.json")[-1].read_text())
    rows = {row["model"]: row for row in comparison["models"]}
    assert (
        rows["memory_efficient"]["embedding_parameters"] < rows["baseline"]["embedding_parameters"]
    )


@pytest.mark.slow
def test_a_saved_model_reloads_in_a_fresh_process_and_reproduces_its_metrics(project: Path) -> None:
    # Loaded through the catalog in a new interpreter: nothing imported by hand beforehand.
    script = """
import json, sys
import numpy as np
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
bootstrap_project(sys.argv[1])
with KedroSession.create(project_path=sys.argv[1]) as session:
    catalog = session.load_context().catalog
    model = catalog.load("memory_efficient.model")
    eval_ratings = catalog.load("eval_ratings")
prediction = model.predict({"user_id": eval_ratings["user_id"].to_numpy(dtype=object),
                            "movie_id": eval_ratings["movie_id"].to_numpy(dtype=object)}, verbose=0)
errors = prediction.reshape(-1).astype(np.float64) - eval_ratings["rating"].to_numpy(np.float64)
print(json.dumps({"mae": float(np.mean(np.abs(errors)))}))
"""
    result = subprocess.run(
        [sys.executable, "-c", script, str(project)],
        capture_output=True,
        text=True,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"},
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    reloaded_mae = json.loads(result.stdout.strip().splitlines()[-1])["mae"]
    metrics_file = _versions(project, "08_reporting/memory_efficient_metrics.json")[-1]
    np.testing.assert_allclose(
        reloaded_mae, json.loads(metrics_file.read_text())["eval_mae"], rtol=1e-5
    )


@pytest.mark.slow
def test_a_saved_model_loads_with_only_the_layer_library_imported(project: Path) -> None:
    # Outside Kedro: importing the embeddings package must register everything the file names,
    # the optimizer of its compile config included.
    model_file = _versions(project, "06_models/memory_efficient.keras")[-1]
    script = (
        "import sys, keras, numpy as np\n"
        "import memory_efficient_embeddings.embeddings\n"
        "model = keras.saving.load_model(sys.argv[1])\n"
        "print(model.predict({'user_id': np.array(['user_1', 'user_nobody'], dtype=object),\n"
        "                     'movie_id': np.array(['movie_1', 'movie_1'], dtype=object)}, verbose=0))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(model_file)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.slow
def test_a_second_run_adds_versions_and_reproduces_the_metrics(project: Path) -> None:
    first = {a: _versions(project, a) for a in ARTIFACTS}
    _run_session(project, "baseline")
    # The memory_efficient pipeline's artifacts (its model, and the uniform table sized at its
    # bytes) and the comparison are not part of the baseline run.
    matched = ("memory_efficient", "uniform_at_same_bytes", "comparison")
    for artifact in (a for a in ARTIFACTS if not any(name in a for name in matched)):
        if artifact.endswith(
            ("loss_curves.png", "accuracy_vs_parameters.png", "error_by_popularity.png")
        ):
            continue
        after = _versions(project, artifact)
        assert len(after) == len(first[artifact]) + 1, artifact
        assert set(first[artifact]) <= set(after), f"{artifact}: an earlier version was lost"
    metrics = [
        json.loads(p.read_text()) for p in _versions(project, "08_reporting/baseline_metrics.json")
    ]
    assert metrics[0]["eval_mae"] == pytest.approx(metrics[1]["eval_mae"], abs=1e-6)
    split = [p.read_bytes() for p in _versions(project, "05_model_input/train_ratings.csv")]
    assert split[0] == split[1]


@pytest.mark.slow
def test_the_notebook_runs_clean_and_recommends_titles(project: Path) -> None:
    # Executed headless, top to bottom, as Jupyter would: every cell, no error, no warning.
    notebook = nbformat.read(PROJECT_ROOT / "notebooks" / "recommend.ipynb", as_version=4)
    client = NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(project / "notebooks")}},
    )
    client.execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    # MLflow's import (kedro-mlflow's hooks) warns about its own type hints and, through
    # tqdm.auto, about Jupyter widgets; the project cannot filter them: anything else fails.
    third_party = ("Add type hints to the `predict` method", "IProgress not found")
    stderr = [
        o.text
        for o in outputs
        if o.output_type == "stream"
        and o.name == "stderr"
        and not any(known in o.text for known in third_party)
    ]
    assert not stderr, stderr
    text = "\n".join(
        line
        for o in outputs
        for line in (o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))).split("\n")
        if not any(known in line for known in third_party)
        and "notebook_tqdm" not in line
        and "color_warning(" not in line
    )
    assert "Warning" not in text and "WARNING" not in text, text[-3000:]
    assert "Synthetic movie" in text  # titles, not bare ids, in the recommendations
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 1


TINY_SWEEP = {
    "sweep": {
        "seeds": [1, 2, 3],
        "reference": "full",
        "quantize": "int8",
        "target": {"min_compression": 5, "max_rmse_gap": 0.01},
        "training": {"epochs": 2},
        "techniques": {
            "full": {"embedding": {"type": "full"}, "grid": {"embedding_dim": [64]}},
            "uniform_low_dim": {"embedding": {"type": "full"}, "grid": {"embedding_dim": [4]}},
        },
        "recipe": {"baseline": {"use_biases": False, "embedding": {"type": "full"}}},
    }
}


@pytest.mark.slow
def test_the_sweep_pipeline_runs_on_its_own_and_not_by_default(project: Path) -> None:
    # A small grid in place of the default one (soft merging could only add techniques).
    (project / "conf" / "base" / "parameters_sweep.yml").write_text(yaml.safe_dump(TINY_SWEEP))
    outputs = [
        "04_feature/sweep_plan.json",
        "07_model_output/sweep_runs.csv",
        "08_reporting/sweep_summary.csv",
        "08_reporting/sweep.md",
        "08_reporting/compression_frontier.png",
    ]
    assert not any(_versions(project, artifact) for artifact in outputs)  # not in `kedro run`
    _run_session(project, "sweep")
    missing = [artifact for artifact in outputs if not _versions(project, artifact)]
    assert not missing, f"sweep artifacts not written: {missing}"
    table = _versions(project, "08_reporting/sweep.md")[-1].read_text()
    assert "uniform_low_dim" in table and "recipe" in table
    runs = _versions(project, "07_model_output/sweep_runs.csv")[-1].read_text().splitlines()
    assert len(runs) == 1 + 3 * 3  # header + three points × three seeds
