"""Whole runs that can be trusted: parameters checked first, each run reads what it wrote, artifacts
of different data never mix, and every runner gives the sequential run's metrics."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.runner import ParallelRunner, ThreadRunner

from memory_efficient_embeddings.lineage import LineageMismatchError
from memory_efficient_embeddings.parameters import ParameterError

PROJECT_ROOT = Path(__file__).resolve().parents[1]

SMALL = {
    "data": {
        "source": "synthetic",
        "synthetic": {"num_users": 200, "num_movies": 120, "num_ratings": 6000, "seed": 7},
    },
    "training": {"epochs": 2, "learning_rate": 0.01, "steps_per_execution": 8, "verbose": 0},
}
OTHER_DATA = {"data": {"synthetic": {"seed": 8, "num_ratings": 5000}}}


def _versions(project: Path, artifact: str) -> list[Path]:
    folder = project / "data" / artifact
    return sorted(folder.glob(f"*/{folder.name}")) if folder.is_dir() else []


def _manifests(project: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in _versions(project, "09_runs/run_manifest.json")]


def _run(project: Path, pipeline: str | None = None, runner=None, **options) -> str:
    """Run in this process; return the run id (the version of everything it wrote)."""
    params = options.pop("params", None)
    bootstrap_project(project)
    with KedroSession.create(project_path=project, runtime_params=params) as session:
        session.run(pipeline_names=[pipeline] if pipeline else None, runner=runner, **options)
        return session.session_id


def _metrics(project: Path, model: str, version: str) -> dict:
    path = project / "data/08_reporting" / f"{model}_metrics.json" / version
    return json.loads((path / f"{model}_metrics.json").read_text())


def _copy_project(destination: Path) -> Path:
    for name in ("conf", "src"):
        shutil.copytree(
            PROJECT_ROOT / name, destination / name, ignore=shutil.ignore_patterns("local")
        )
    shutil.copy(PROJECT_ROOT / "pyproject.toml", destination / "pyproject.toml")
    (destination / "conf" / "local").mkdir()
    (destination / "conf" / "local" / "parameters.yml").write_text(yaml.safe_dump(SMALL))
    (destination / "data").mkdir()
    return destination


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    os.environ["KEDRO_DISABLE_TELEMETRY"] = "1"
    return _copy_project(tmp_path_factory.mktemp("integrity"))


BAD_PARAMETERS = [
    ({"training": {"epoch": 1}}, "Did you mean `training.epochs`?"),
    ({"split": {"train_fraction": 1.5}}, "`split.train_fraction` is 1.5"),
    ({"split": {"train_fraction": 0}}, "`split.train_fraction` is 0"),
    ({"training": {"epochs": 0}}, "`training.epochs` is 0"),
    ({"training": {"optimizer": "foo"}}, "`training.optimizer` is 'foo'"),
    ({"training": {"batch_size": 0}}, "`training.batch_size` is 0"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("params", "expected"), BAD_PARAMETERS)
def test_a_bad_parameter_stops_the_run_before_any_node(project, params, expected):
    before = sorted(p for p in (project / "data").rglob("*") if p.is_file())
    with pytest.raises(ParameterError, match=expected.replace("(", r"\(").replace("?", r"\?")):
        _run(project, params=params)
    assert sorted(p for p in (project / "data").rglob("*") if p.is_file()) == before


@pytest.mark.slow
def test_a_report_over_models_of_different_data_is_refused(project):
    _run(project, "baseline")
    other = _run(project, "memory_efficient", params=OTHER_DATA)
    with pytest.raises(LineageMismatchError) as caught:
        _run(project, "reporting")
    message = str(caught.value)
    assert "baseline.metrics" in message and "memory_efficient.metrics" in message
    assert "seed 7" in message and "seed 8" in message  # each artifact's data
    assert f"version {other}" in message
    assert "kedro run" in message  # what to re-run
    assert not _versions(project, "08_reporting/comparison.json")


@pytest.mark.slow
def test_a_resumed_run_refuses_a_model_trained_on_other_data(project):
    # The newest split is the seed-8 data (the memory_efficient run); baseline.model is seed 7.
    with pytest.raises(LineageMismatchError, match="baseline.model"):
        _run(project, "baseline", from_nodes=["baseline.evaluate_model"])


@pytest.mark.slow
def test_a_report_names_its_data_and_the_manifest_what_it_read(project):
    baseline = _run(project, "baseline", params=OTHER_DATA)
    report = _run(project, "reporting")
    manifest = next(m for m in _manifests(project) if m["run_id"] == report)
    assert manifest["status"] == "completed"
    assert manifest["read"]["baseline.metrics"]["version"] == baseline
    assert set(manifest["written"]) >= {"comparison", "comparison_table"}
    # data_provenance (read for the plots' titles) carries the data component only.
    fingerprints = {
        entry["fingerprint"]
        for name, entry in manifest["read"].items()
        if name != "data_provenance"
    }
    assert len(fingerprints) == 1 and None not in fingerprints
    table = (_versions(project, "08_reporting/comparison.md")[-1]).read_text()
    assert "seed 8" in table


FUTURE = "9999-01-01T00.00.00.000Z"  # sorts after every real run: what a later-started run writes


@pytest.mark.slow
def test_a_run_reads_what_it_wrote_when_a_newer_version_appears(project):
    # Another process's newer versions of the data artifacts (half the eval rows) are on disk
    # while this run writes its own: Kedro's "load the newest" would pick theirs.
    for artifact in ("train_ratings.csv", "eval_ratings.csv", "user_vocabulary.csv"):
        newest = _versions(project, f"05_model_input/{artifact}")[-1]
        foreign = newest.parent.parent / FUTURE / artifact
        foreign.parent.mkdir()
        table = pd.read_csv(newest)
        table.iloc[: len(table) // 2].to_csv(foreign, index=False)
    run_id = _run(project, "baseline")
    own_eval = project / "data/05_model_input/eval_ratings.csv" / run_id / "eval_ratings.csv"
    assert _metrics(project, "baseline", run_id)["eval_rows"] == len(pd.read_csv(own_eval))
    manifest = next(m for m in _manifests(project) if m["run_id"] == run_id)
    assert {entry["version"] for entry in manifest["written"].values()} == {run_id}


@pytest.mark.slow
def test_pruning_during_a_run_keeps_the_versions_the_run_reads(tmp_path, monkeypatch):
    from memory_efficient_embeddings.hooks import RunRecordHooks  # noqa: PLC0415
    from memory_efficient_embeddings.prune_versions import prune_versions  # noqa: PLC0415

    project = _copy_project(tmp_path)  # its own: other tests leave foreign versions behind
    _run(project, "baseline")  # something to read
    read_eval = _versions(project, "05_model_input/eval_ratings.csv")[-1]
    read_model = _versions(project, "06_models/baseline.keras")[-1]
    pruned = []
    declare = RunRecordHooks._declare_live_run

    def declare_then_prune(self, run_id, catalog, versions):
        declare(self, run_id, catalog, versions)
        # Meanwhile another process writes newer versions, and someone prunes to 1 version.
        for artifact in (read_eval, read_model):
            newer = artifact.parent.parent / "2999-01-01T00.00.00.000Z" / artifact.name
            newer.parent.mkdir(exist_ok=True)
            shutil.copy(artifact, newer)
        pruned.append(prune_versions(project / "data", keep=1))

    monkeypatch.setattr(RunRecordHooks, "_declare_live_run", declare_then_prune)
    # Evaluation only: the run reads the saved model and eval split it pinned at its start.
    run_id = _run(project, "baseline", tags=["evaluation"])
    held = set(pruned[0].held_by_live_runs)
    assert read_eval.parent in held and read_model.parent in held
    assert read_eval.exists() and read_model.exists()
    assert _metrics(project, "baseline", run_id)["eval_rows"] == len(pd.read_csv(read_eval))
    assert not list((project / "data").rglob("*.live.json"))  # the run's pins end with it


CONCURRENT_RUN = """
import sys
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
bootstrap_project(sys.argv[1])
with KedroSession.create(project_path=sys.argv[1], runtime_params={"data": {"synthetic": {
        "seed": int(sys.argv[2]), "num_ratings": int(sys.argv[3])}}}) as session:
    session.run(pipeline_names=["baseline"])
    print("RUN", session.session_id, flush=True)
"""


@pytest.mark.slow
def test_two_concurrent_runs_on_different_data_each_use_their_own(tmp_path):
    project = _copy_project(tmp_path)
    runs = {}
    for seed, num_ratings in ((11, 6000), (12, 4000)):
        runs[seed] = subprocess.Popen(
            [sys.executable, "-c", CONCURRENT_RUN, str(project), str(seed), str(num_ratings)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"},
        )
        time.sleep(4)  # the second starts while the first is running, as in the issue
    run_ids = {}
    for seed, process in runs.items():
        stdout, stderr = process.communicate(timeout=900)
        assert process.returncode == 0, stderr[-3000:]
        run_ids[seed] = stdout.split("RUN ")[-1].split()[0]
    for seed, run_id in run_ids.items():
        metrics = _metrics(project, "baseline", run_id)
        assert metrics["data"]["seed"] == seed
        evaluated = project / "data/05_model_input/eval_ratings.csv" / run_id / "eval_ratings.csv"
        assert metrics["eval_rows"] == len(pd.read_csv(evaluated))
    manifests = {m["run_id"]: m for m in _manifests(project)}
    assert {manifests[r]["status"] for r in run_ids.values()} == {"completed"}
    assert all(manifests[r]["written"]["baseline.model"]["version"] == r for r in run_ids.values())


def _eval_metrics(project: Path, run_id: str) -> dict[str, tuple[float, float]]:
    return {
        model: (m["eval_rmse"], m["eval_mae"])
        for model in ("baseline", "memory_efficient")
        for m in [_metrics(project, model, run_id)]
    }


@pytest.mark.slow
def test_thread_and_parallel_runners_give_the_sequential_metrics(tmp_path):
    project = _copy_project(tmp_path)
    sequential = _eval_metrics(project, _run(project))
    for runner in (ThreadRunner(), ParallelRunner(max_workers=2)):
        assert _eval_metrics(project, _run(project, runner=runner)) == sequential, runner
