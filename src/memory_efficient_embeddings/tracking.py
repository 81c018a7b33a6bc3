"""MLflow tracking of model runs and sweep runs, into the run kedro-mlflow opens (conf/base/mlflow.yml).

kedro-mlflow opens one MLflow run per `kedro run` and logs the parameters; this module adds what
the project measures: each model's metrics and plots (`TrackingHooks`), and one nested run per
sweep (point, seed) with its settings and scores (`log_sweep_run`). Everything here is a no-op when
no MLflow run is active: tracking disabled in mlflow.yml, a ParallelRunner worker process, or a
node called outside Kedro (tests, notebooks).

Tracking never stops a run: `GuardedMlflowHooks` runs kedro-mlflow's hooks and turns tracking off
for the run, with one warning, when the MLflow store fails (a broken `mlruns/`, an unreachable
server); a failing metric or plot log is a warning too. A run that ends without Kedro's end hooks
(SIGTERM, Ctrl-C, an error in a start hook) is marked KILLED or FAILED in MLflow, not left RUNNING.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import math
import os
import re
import signal
import threading
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl

from memory_efficient_embeddings.lineage import local_file

logger = logging.getLogger(__name__)

METRICS_DATASET = re.compile(r"^(?P<model>[A-Za-z_]\w*)\.metrics$")  # e.g. baseline.metrics
# e.g. memory_efficient.layout_selection: each candidate layout's validation RMSE and bytes
LAYOUT_SELECTION_DATASET = re.compile(r"^(?P<model>[A-Za-z_]\w*)\.layout_selection$")


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
    parent = _active_run()
    if parent is None:
        return
    import mlflow  # noqa: PLC0415

    try:
        with mlflow.start_run(run_name=f"{row['point']} seed {row['seed']}", nested=True):
            mlflow.set_tags({"sweep.technique": row["technique"], "sweep.point": row["point"]})
            mlflow.log_params(
                {
                    "technique": row["technique"],
                    "settings": row["settings"] or "-",
                    "seed": row["seed"],
                }
            )
            mlflow.log_metrics(numeric_metrics(row))
    finally:
        # A store that fails while ending the nested run leaves it on MLflow's stack: pop it, so
        # that the next run nests under the pipeline's run again.
        _end_runs_above(parent.info.run_id, "FAILED")


def _end_runs_above(run_id: str | None, status: str) -> set[str]:
    """End the runs this thread stacked above `run_id` (all of them for None), whatever fails;
    return their ids."""
    import mlflow  # noqa: PLC0415

    ended = set()
    while (active := _active_run()) is not None and active.info.run_id != run_id:
        ended.add(active.info.run_id)
        with contextlib.suppress(Exception):  # ending pops the run even if the store fails
            mlflow.end_run(status)
    return ended


def _end_running_children(run_ids: set[str], status: str) -> None:
    """Mark the still-RUNNING nested runs of `run_ids` (a sweep run interrupted while it was
    being logged) with `status`."""
    from mlflow.tracking import MlflowClient  # noqa: PLC0415

    client = MlflowClient()
    for run_id in run_ids:
        with contextlib.suppress(Exception):  # best effort: the store may be what failed
            experiment = client.get_run(run_id).info.experiment_id
            for child in client.search_runs(
                [experiment],
                filter_string=f"tags.mlflow.parentRunId = '{run_id}' "
                "and attributes.status = 'RUNNING'",
            ):
                client.set_terminated(child.info.run_id, status)


def one_line(error: BaseException) -> str:
    """An error as one line: its type and its message with the line breaks folded."""
    return f"{type(error).__name__}: {' '.join(str(error).split())}"[:500]


class TrackingHooks:
    """Log each model's metrics (prefixed by the model's name) and its plots as artifacts, and
    mark a pipeline run that ends without Kedro's end hooks KILLED (a signal) or FAILED."""

    def __init__(self) -> None:
        self._catalog: Any = None
        self._run_before: str | None = None  # a run the user opened before `kedro run`
        self._pipeline_open = False
        self._running = False  # between before_pipeline_run and an end hook
        self._interrupted = False  # SIGINT or SIGTERM arrived while running
        self._previous_handlers: dict[int, Any] = {}
        self._exit_hook_registered = False
        self._log_failed = False

    @hook_impl(tryfirst=True)  # before kedro-mlflow looks for an active run
    def after_context_created(self) -> None:
        if self._running:
            # The previous pipeline of this process never reached an end hook (Ctrl-C in a
            # notebook, or a before_pipeline_run hook refused it): close its run.
            self._end_pipeline_run("KILLED" if self._interrupted else "FAILED")
        elif self._pipeline_open:
            self._end_pipeline_run()

    @hook_impl(tryfirst=True)  # before kedro-mlflow opens the run of this pipeline
    def before_pipeline_run(self, catalog: Any) -> None:
        self._catalog = catalog
        active = _active_run()
        self._run_before = active.info.run_id if active is not None else None
        self._pipeline_open = True
        self._running, self._interrupted, self._log_failed = True, False, False
        self._watch_for_kills()

    @hook_impl(trylast=True)
    def after_pipeline_run(self) -> None:
        self._end_pipeline_run()

    @hook_impl(trylast=True)
    def on_pipeline_error(self) -> None:
        self._end_pipeline_run()

    def _end_pipeline_run(self, status: str = "FINISHED") -> None:
        # kedro-mlflow 2.0.3 re-enters its run before every node (MLflow stacks it each time) and
        # ends it once, so after an in-process run (a notebook, a test) it stays open and the next
        # run would log into it. Unwind it, but never a run the user opened before `kedro run`.
        self._pipeline_open = self._running = False
        self._restore_signal_handlers()
        if _active_run() is not None:
            ended = _end_runs_above(self._run_before, status)
            if status != "FINISHED":
                _end_running_children(ended, status)

    def _watch_for_kills(self) -> None:
        """Mark the run KILLED on SIGTERM or Ctrl-C, FAILED on any other end without end hooks."""
        if not self._exit_hook_registered:
            # Registered after mlflow's own exit hook, so it runs first (mlflow's would end the
            # run FINISHED).
            atexit.register(self._end_at_exit)
            self._exit_hook_registered = True
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        for number, default in (
            (signal.SIGTERM, signal.SIG_DFL),
            (signal.SIGINT, signal.default_int_handler),
        ):
            if signal.getsignal(number) is default:  # never replace a handler someone set
                self._previous_handlers[number] = signal.signal(number, self._on_kill_signal)

    def _on_kill_signal(self, number: int, frame: Any) -> None:
        self._interrupted = True
        if number == signal.SIGINT:
            signal.default_int_handler(number, frame)  # raises KeyboardInterrupt: atexit ends it
        # SIGTERM: end the run now, then die of the signal as before (no cleanup that could wait).
        self._end_pipeline_run("KILLED")
        os.kill(os.getpid(), number)

    def _restore_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for number, previous in self._previous_handlers.items():
            signal.signal(number, previous)
        self._previous_handlers.clear()

    def _end_at_exit(self) -> None:
        if self._running:
            with contextlib.suppress(Exception):
                self._end_pipeline_run("KILLED" if self._interrupted else "FAILED")

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any) -> None:
        self._pipeline_open = False
        if _active_run() is None:
            return
        try:
            self._log_saved(dataset_name, data)
        except Exception as error:  # noqa: BLE001 - tracking must not stop the run
            if not self._log_failed:
                logger.warning(
                    "MLflow could not log %s (%s); the run goes on without it",
                    dataset_name,
                    one_line(error),
                )
            self._log_failed = True

    def _log_saved(self, dataset_name: str, data: Any) -> None:
        import mlflow  # noqa: PLC0415

        match = METRICS_DATASET.match(dataset_name)
        if match and isinstance(data, dict):
            mlflow.log_metrics(numeric_metrics(data, prefix=f"{match['model']}."))
            return
        match = LAYOUT_SELECTION_DATASET.match(dataset_name)
        if match and hasattr(data, "to_dict"):
            for row in data.to_dict("records"):
                mlflow.log_metrics(
                    numeric_metrics(
                        {key: row[key] for key in ("val_rmse", "serving_bytes", "floats_per_id")},
                        prefix=f"{match['model']}.layout.{row['layout']}.",
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


def _tracking_store(context: Any) -> str:
    """The tracking store mlflow.yml names, a relative path made absolute (kedro-mlflow's rule)."""
    try:
        uri = context.config_loader["mlflow"]["server"]["mlflow_tracking_uri"]
    except Exception:  # noqa: BLE001 - no mlflow.yml, or one kedro-mlflow will refuse itself
        uri = None
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or "mlruns"
    return uri if "://" in uri else str(Path(context.project_path) / uri)


class GuardedMlflowHooks:
    """kedro-mlflow's hooks, run so that a failing MLflow store never stops a run.

    settings.py disables kedro-mlflow's own registration and registers this instead. When one of
    its hooks raises (a broken `mlruns/`, a server that does not answer), tracking is off for
    the rest of the run: one warning says why and what to do, the runs it opened are ended
    FAILED, and the pipeline goes on.
    """

    def __init__(self, hooks: Any = None) -> None:
        self._hooks = hooks  # kedro-mlflow's MlflowHook, made at first use (its import is slow)
        self._off = False
        self._store = "mlruns"  # where mlflow.yml sends the runs, for the warning

    def _call(self, name: str, **arguments: Any) -> None:
        if self._off:
            return
        if self._hooks is None:
            from kedro_mlflow.framework.hooks.mlflow_hook import MlflowHook  # noqa: PLC0415

            self._hooks = MlflowHook()
        try:
            getattr(self._hooks, name)(**arguments)
        except Exception as error:  # noqa: BLE001 - any store failure; the run goes on
            self._off = True
            logger.warning(
                "MLflow tracking is off for this run: the MLflow store %s failed (%s). The run "
                "goes on and writes its outputs; repair or move that store (conf/base/mlflow.yml, "
                "server.mlflow_tracking_uri) to track runs again.",
                self._store,
                one_line(error),
            )
            _end_runs_above(None, "FAILED")

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        self._off = False  # a new session tries the store again
        self._store = _tracking_store(context)
        self._call("after_context_created", context=context)

    @hook_impl
    def after_catalog_created(
        self,
        catalog: Any,
        conf_catalog: dict[str, Any],
        conf_creds: dict[str, Any],
        parameters: dict[str, Any],
        save_version: str,
        load_versions: dict[str, str],
    ) -> None:
        self._call(
            "after_catalog_created",
            catalog=catalog,
            conf_catalog=conf_catalog,
            conf_creds=conf_creds,
            parameters=parameters,
            save_version=save_version,
            load_versions=load_versions,
        )

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        self._call("before_pipeline_run", run_params=run_params, pipeline=pipeline, catalog=catalog)

    @hook_impl
    def before_node_run(self, node: Any, catalog: Any, inputs: dict[str, Any], is_async: bool):
        self._call("before_node_run", node=node, catalog=catalog, inputs=inputs, is_async=is_async)

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        self._call("after_pipeline_run", run_params=run_params, pipeline=pipeline, catalog=catalog)

    @hook_impl
    def on_pipeline_error(
        self, error: Exception, run_params: dict[str, Any], pipeline: Any, catalog: Any
    ) -> None:
        self._call(
            "on_pipeline_error",
            error=error,
            run_params=run_params,
            pipeline=pipeline,
            catalog=catalog,
        )
