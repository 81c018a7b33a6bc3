"""MLflow tracking of model runs and sweep runs, into the run kedro-mlflow opens (conf/base/mlflow.yml).

kedro-mlflow opens one MLflow run per `kedro run` and logs the parameters; this module adds what
the project measures: each model's metrics and plots (`TrackingHooks`), and one nested run per
sweep (point, seed) with its settings and scores (`log_sweep_run`). Everything here is a no-op when
no MLflow run is active: tracking disabled in mlflow.yml, a ParallelRunner worker process, or a
node called outside Kedro (tests, notebooks).
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from memory_efficient_embeddings.lineage import local_file

logger = logging.getLogger(__name__)

METRICS_DATASET = re.compile(r"^(?P<model>[A-Za-z_]\w*)\.metrics$")  # e.g. baseline.metrics


def _active_run() -> Any:
    try:
        import mlflow  # noqa: PLC0415 - optional at import time: the hooks load early
    except ImportError:
        return None
    return mlflow.active_run()


def numeric_metrics(values: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The finite numbers among `values` (flat), named `<prefix><key>`."""
    return {
        f"{prefix}{key}": float(value)
        for key, value in values.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    }


def log_sweep_run(row: dict[str, Any]) -> None:
    """One finished sweep run as a nested MLflow run: its point, seed and scores."""
    if _active_run() is None:
        return
    import mlflow  # noqa: PLC0415

    with mlflow.start_run(run_name=f"{row['point']} seed {row['seed']}", nested=True):
        mlflow.set_tags({"sweep.technique": row["technique"], "sweep.point": row["point"]})
        mlflow.log_params(
            {"technique": row["technique"], "settings": row["settings"] or "-", "seed": row["seed"]}
        )
        mlflow.log_metrics(numeric_metrics(row))


class TrackingHooks:
    """Log each model's metrics (prefixed by the model's name) and its plots as artifacts."""

    def __init__(self) -> None:
        self._catalog: Any = None
        self._run_before: str | None = None  # a run the user opened before `kedro run`
        self._pipeline_open = False

    @hook_impl(tryfirst=True)  # before kedro-mlflow looks for an active run
    def after_context_created(self) -> None:
        if self._pipeline_open:
            # The previous pipeline of this process stopped in a before_pipeline_run hook (a
            # refused input, say): Kedro then calls no end hook, and kedro-mlflow's run stays open.
            self._end_pipeline_run()

    @hook_impl(tryfirst=True)  # before kedro-mlflow opens the run of this pipeline
    def before_pipeline_run(self, catalog: Any) -> None:
        self._catalog = catalog
        active = _active_run()
        self._run_before = active.info.run_id if active is not None else None
        self._pipeline_open = True

    @hook_impl(trylast=True)
    def after_pipeline_run(self) -> None:
        self._end_pipeline_run()

    @hook_impl(trylast=True)
    def on_pipeline_error(self) -> None:
        self._end_pipeline_run()

    def _end_pipeline_run(self) -> None:
        # kedro-mlflow 2.0.3 re-enters its run before every node (MLflow stacks it each time) and
        # ends it once, so after an in-process run (a notebook, a test) it stays open and the next
        # run would log into it. Unwind it, but never a run the user opened before `kedro run`.
        self._pipeline_open = False
        if _active_run() is None:
            return
        import mlflow  # noqa: PLC0415

        while (active := _active_run()) is not None and active.info.run_id != self._run_before:
            mlflow.end_run()

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any) -> None:
        self._pipeline_open = False
        if _active_run() is None:
            return
        import mlflow  # noqa: PLC0415

        match = METRICS_DATASET.match(dataset_name)
        if match and isinstance(data, dict):
            model = match["model"]
            mlflow.log_metrics(
                numeric_metrics(
                    data,
                    prefix=f"{model}.",
                )
            )
            return
        path = self._saved_file(dataset_name)
        if path is not None and path.suffix == ".png":
            mlflow.log_artifact(str(path), artifact_path="plots")

    def _saved_file(self, dataset_name: str) -> Path | None:
        if self._catalog is None or dataset_name not in self._catalog:
            return None
        path = local_file(self._catalog.get(dataset_name), saving=False)
        return path if path is not None and path.exists() else None
