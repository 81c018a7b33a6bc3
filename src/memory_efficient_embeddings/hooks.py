"""Project hooks: parameters checked up front, runs that read what they wrote, data lineage,
one node body at a time per process, node timing, and errors that say where they came from.

The hooks keep no state that must cross processes: ParallelRunner's workers register fresh
instances, so what they need (pinned versions, lineage) travels in the catalog's datasets and in
files next to the artifacts.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.io.core import AbstractVersionedDataset, DatasetError, Version, VersionNotFoundError
from kedro.pipeline.node import Node

from memory_efficient_embeddings.lineage import (
    DATA_PROVENANCE,
    LINEAGE_PARAMETERS,
    Lineage,
    combine,
    data_component,
    local_file,
    read_record,
    sidecar_path,
    write_json_atomically,
)
from memory_efficient_embeddings.modeling.resources import current_rss_bytes
from memory_efficient_embeddings.process_state import PROCESS_STATE_LOCK
from memory_efficient_embeddings.prune_versions import (
    LIVE_RUN_SUFFIX,
    live_run_record,
    remove_stale_live_runs,
)

logger = logging.getLogger(__name__)

RUN_MANIFEST = "run_manifest"  # catalog entry of the per-run record (versioned: one per run)
RERUN_HINT = (
    "Re-run from the data so that every artifact comes from one source, e.g. `kedro run` (data "
    "processing, both models and the report) or `kedro run --pipelines=<model>` before the "
    "report; or pick versions written by one run with `--load-versions=<dataset>:<version>` "
    "(each run's manifest, data/09_runs/run_manifest.json/<run>/, lists what it wrote)."
)


class ParameterValidationHooks:
    """Check every parameter against the schema before any node runs; the nodes then read the
    parameters with the schema's defaults filled in (the one place a default is set)."""

    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, catalog: Any) -> None:
        from memory_efficient_embeddings.parameters import (  # noqa: PLC0415
            validate_parameters,
            with_defaults,
        )

        if "parameters" in catalog:
            given = catalog.load("parameters")
            filled = with_defaults(validate_parameters(given), given)
            for name, value in [("parameters", filled), *_changed_entries(given, filled)]:
                if name in catalog:
                    catalog.get(name).save(value)  # in place: no "Replacing dataset" warning
                else:
                    catalog[name] = value


def _changed_entries(
    given: dict[str, Any], filled: dict[str, Any], prefix: str = "params:"
) -> Iterator[tuple[str, Any]]:
    """The `params:<dotted.key>` entries (as Kedro's context makes them) that defaults changed."""
    for key, value in filled.items():
        if key in given and given[key] == value:
            continue
        name = f"{prefix}{key}"
        yield name, value
        if isinstance(value, dict):
            inner = given.get(key) if isinstance(given.get(key), dict) else {}
            yield from _changed_entries(inner, value, f"{name}.")


def _versioned(dataset: Any) -> bool:
    return isinstance(dataset, AbstractVersionedDataset) and dataset._version is not None


def _pin(dataset: AbstractVersionedDataset, load: str | None, save: str | None) -> None:
    # Kedro resolves an unpinned load to the newest version on disk at each (re)load, whichever
    # process wrote it; a pinned Version is what `--load-versions` sets.
    dataset._version = Version(load, save)
    dataset._clear_version_cache()


def _live_run_file(catalog: Any, run_id: str | None) -> Path | None:
    """`<run_id>.live.json` beside the run manifests (None without a versioned manifest)."""
    manifest = catalog.get(RUN_MANIFEST) if RUN_MANIFEST in catalog else None
    if run_id is None or not _versioned(manifest):
        return None
    return Path(str(manifest._filepath)).parent / f"{run_id}{LIVE_RUN_SUFFIX}"


def _run_folder(catalog: Any, run_id: str | None) -> Path | None:
    """The run's own folder beside its manifest, for records of its in-memory datasets."""
    manifest = catalog.get(RUN_MANIFEST) if RUN_MANIFEST in catalog else None
    if run_id is None or not _versioned(manifest):
        return None
    return Path(str(manifest._filepath)) / run_id


class RunRecordHooks:
    """Pin each run's versions, and write a manifest of what it read and wrote.

    Datasets the run produces load at the version it saved (never at a newer one written by
    another process meanwhile); inputs it does not produce load at the version that was newest
    when it started, or the one `--load-versions` names.
    """

    def __init__(self) -> None:
        self._runs: dict[str, dict[str, dict[str, str]]] = {}
        self._catalogs: dict[str, Any] = {}  # node name -> catalog, for after_dataset_saved
        self._live_files: dict[str, Path] = {}  # run id -> its live-run file (prune_versions)

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        produced = pipeline.all_outputs()
        # --only-missing-outputs decides what to skip by what exists: outputs are pinned as they
        # are saved instead (after_dataset_saved; in-process runners).
        pin_outputs_now = not run_params.get("only_missing_outputs")
        read: dict[str, str] = {}
        written: dict[str, str] = {}
        for name in sorted(pipeline.datasets()):
            dataset = catalog.get(name)
            if not _versioned(dataset):
                continue
            if name in produced:
                version = dataset.resolve_save_version()
                if pin_outputs_now:
                    _pin(dataset, version, version)
                written[name] = version
                continue
            try:
                version = dataset.resolve_load_version()
            except VersionNotFoundError:
                raise DatasetError(
                    f"`{name}` has no saved version under {dataset._filepath}: this run reads it "
                    f"but does not make it. Run a pipeline that makes it first (e.g. `kedro run`)."
                ) from None
            _pin(dataset, version, dataset._version.save)
            read[name] = version
        self._runs[run_params["run_id"]] = {"read": read, "written": written}
        self._declare_live_run(run_params["run_id"], catalog, {**read, **written})
        logger.info("Run %s reads %s", run_params["run_id"], read or "nothing saved earlier")

    def _declare_live_run(self, run_id: str, catalog: Any, versions: dict[str, str]) -> None:
        """Tell `prune_versions` which version folders this run holds until it ends."""
        path = _live_run_file(catalog, run_id)
        if path is None:
            return
        folders = [
            Path(str(catalog.get(name)._filepath)) / version
            for name, version in versions.items()
            if getattr(catalog.get(name), "_protocol", "file") == "file"
        ]
        path.parent.mkdir(parents=True, exist_ok=True)
        stale = remove_stale_live_runs(path.parent)  # left by killed runs; never a live one's
        if stale:
            logger.info("Removed %d live-run file(s) of runs that have ended", len(stale))
        temporary = path.with_name(f".{path.name}.tmp")
        temporary.write_text(json.dumps(live_run_record(folders)))
        os.replace(temporary, path)  # whole or absent: prune never reads half a file
        self._live_files[run_id] = path

    @hook_impl
    def before_node_run(self, node: Node, catalog: Any) -> None:
        self._catalogs[node.name] = catalog

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, node: Node) -> None:
        catalog = self._catalogs.get(node.name)
        dataset = catalog.get(dataset_name) if catalog is not None else None
        if _versioned(dataset) and dataset._version.load is None:
            version = dataset.resolve_save_version()
            _pin(dataset, version, version)

    def _manifest(
        self, run_params: dict[str, Any], catalog: Any, error: Exception | None
    ) -> dict[str, Any]:
        versions = self._runs.pop(run_params["run_id"], {"read": {}, "written": {}})

        def entry(name: str, version: str) -> dict[str, Any]:
            path = local_file(catalog.get(name), saving=False)
            record = read_record(sidecar_path(path)) if path else None
            return {"version": version, "fingerprint": (record or {}).get("fingerprint")}

        written = {  # what this run saved: a failed or partial run lists only what it finished
            name: entry(name, version)
            for name, version in versions["written"].items()
            if (path := local_file(catalog.get(name), saving=False)) is None
            or (path.parent.name == version and path.exists())
        }
        return {
            "run_id": run_params["run_id"],
            "status": "failed" if error else "completed",
            "error": f"{type(error).__name__}: {error}"[:4000] if error else None,
            **{
                key: run_params.get(key)
                for key in ("pipeline_names", "env", "runtime_params", "load_versions")
            },
            # Kedro records the runner as its repr ("<kedro.runner...ThreadRunner object at 0x…>").
            "runner": str(run_params.get("runner")).split(" object at")[0].lstrip("<"),
            "filters": {
                key: run_params.get(key)
                for key in ("tags", "from_nodes", "to_nodes", "node_names", "namespaces")
                if run_params.get(key)
            },
            "read": {name: entry(name, v) for name, v in versions["read"].items()},
            "written": written,
        }

    def _save_manifest(
        self, run_params: dict[str, Any], catalog: Any, error: Exception | None = None
    ) -> None:
        self._catalogs.clear()
        try:
            if RUN_MANIFEST in catalog and run_params.get("run_id") in self._runs:
                catalog.save(RUN_MANIFEST, self._manifest(run_params, catalog, error))
        finally:
            live = self._live_files.pop(run_params.get("run_id"), None)
            if live is not None:
                live.unlink(missing_ok=True)

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], catalog: Any) -> None:
        self._save_manifest(run_params, catalog)

    @hook_impl
    def on_pipeline_error(self, error: Exception, run_params: dict[str, Any], catalog: Any) -> None:
        self._save_manifest(run_params, catalog, error)


class LineageHooks:
    """Record each artifact's data lineage and refuse nodes whose inputs disagree on it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # node name -> (catalog, run id, components of its outputs); one process, one run at a time
        self._pending: dict[str, tuple[Any, str | None, dict[str, Any]]] = {}
        self._produced: dict[tuple[str | None, str], Lineage] = {}
        self._warned: set[str] = set()

    def _lineage_of(self, name: str, catalog: Any, run_id: str | None) -> Lineage | None:
        with self._lock:
            made_here = self._produced.get((run_id, name))
        if made_here is not None:
            return made_here
        dataset = catalog.get(name)
        path = local_file(dataset, saving=False)
        if path is None:  # in memory: made by this run, maybe in another worker process
            folder = _run_folder(catalog, run_id)
            record = read_record(folder / "lineage" / f"{name}.json") if folder else None
            return Lineage.from_record(record, "this run") if record else None
        record = read_record(sidecar_path(path))
        if record is None:
            if name not in self._warned:
                self._warned.add(name)
                logger.warning(
                    "%s has no lineage record (%s): its data cannot be checked.", name, path
                )
            return None
        version = dataset.resolve_load_version() if _versioned(dataset) else None
        return Lineage.from_record(record, f"version {version}" if version else str(path))

    def _lineages(self, names: list[str], catalog: Any, run_id: str | None) -> dict[str, Lineage]:
        """The known lineages of datasets (parameters and unrecorded artifacts left out)."""
        lineages = {}
        for name in names:
            if name.startswith("params:") or name == "parameters":
                continue
            lineage = self._lineage_of(name, catalog, run_id)
            if lineage is not None and lineage.components:
                lineages[name] = lineage
        return lineages

    @hook_impl(trylast=True)  # after RunRecordHooks pinned the versions this run reads
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        """Refuse, before any work, a run whose saved inputs come from different data."""
        inputs = self._lineages(sorted(pipeline.inputs()), catalog, run_params.get("run_id"))
        combine(inputs, "This run", RERUN_HINT)

    @hook_impl
    def before_node_run(
        self, node: Node, catalog: Any, inputs: dict[str, Any], run_id: str | None = None
    ) -> None:
        lineages = self._lineages(node.inputs, catalog, run_id)
        components = combine(lineages, f"Node `{node.name}`", RERUN_HINT)
        for name in node.inputs:
            if name in LINEAGE_PARAMETERS:
                components[LINEAGE_PARAMETERS[name]] = inputs[name]
        with self._lock:
            self._pending[node.name] = (catalog, run_id, components)

    @hook_impl
    def after_node_run(self, node: Node, outputs: dict[str, Any]) -> None:
        if DATA_PROVENANCE in outputs:
            with self._lock:
                self._pending[node.name][2]["data"] = data_component(outputs[DATA_PROVENANCE])

    @hook_impl
    def before_dataset_saved(self, dataset_name: str, node: Node) -> None:
        # Before the artifact: a record without its file is harmless, a file without one is not.
        with self._lock:
            catalog, run_id, components = self._pending.get(node.name, (None, None, {}))
        if not components:
            return
        lineage = Lineage(dict(components))
        with self._lock:
            self._produced[(run_id, dataset_name)] = lineage
        record = {**lineage.as_record(), "dataset": dataset_name, "run_id": run_id}
        path = local_file(catalog.get(dataset_name), saving=True)
        if path is not None:
            write_json_atomically(sidecar_path(path), record)
        elif (folder := _run_folder(catalog, run_id)) is not None:
            write_json_atomically(folder / "lineage" / f"{dataset_name}.json", record)

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any]) -> None:
        self._forget(run_params.get("run_id"))

    @hook_impl
    def on_pipeline_error(self, run_params: dict[str, Any]) -> None:
        self._forget(run_params.get("run_id"))

    def _forget(self, run_id: str | None) -> None:
        with self._lock:
            self._produced = {key: v for key, v in self._produced.items() if key[0] != run_id}
            self._pending.clear()


class ProcessStateLockHooks:
    """Run one node body at a time per process (ThreadRunner), for the same metrics as sequential.

    TensorFlow's seeds and op determinism, Keras' global state and pyplot are per process: two
    threads training or drawing at once would interleave them. Loading and saving still overlap.
    """

    @hook_impl(trylast=True)  # last: if an earlier before_node_run hook raises, nothing is held
    def before_node_run(self) -> None:
        PROCESS_STATE_LOCK.acquire()

    @hook_impl(tryfirst=True)
    def after_node_run(self) -> None:
        PROCESS_STATE_LOCK.release()

    @hook_impl(tryfirst=True)
    def on_node_error(self) -> None:
        PROCESS_STATE_LOCK.release()


class NodeError(RuntimeError):
    """A node failed with a low-level error; the message says which node, where and with what."""


class ClearErrorHooks:
    """Turn a bare KeyError or AttributeError from a node into an error naming node and line."""

    @hook_impl(trylast=True)
    def on_node_error(self, error: Exception, node: Node, inputs: dict[str, Any]) -> None:
        if not isinstance(error, KeyError | AttributeError):
            return
        frames = traceback.extract_tb(error.__traceback__)
        where = f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""
        raise NodeError(
            f"Node `{node.name}` failed with {type(error).__name__}: {error}{where}. Its inputs: "
            f"{', '.join(sorted(inputs))}. Parameters are checked before a run, so this is a bug "
            f"or an input artifact of an unexpected shape (re-running the steps that make the "
            f"inputs may help); please report it with the traceback above."
        ) from error


PACKAGE_DIR = Path(__file__).resolve().parent


def user_error(error: BaseException) -> BaseException | None:
    """The error in `error`'s chain that the project raised to tell the user what to fix, if any.

    The project's own error types (bad parameters, a missing or corrupt archive, artifacts of
    different data, blocks that do not fit) and the dataset errors its hooks raise say what and
    where in their message; a traceback adds nothing for the user. `NodeError` is a bug report.
    """
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        frames = traceback.extract_tb(error.__traceback__)
        raised_here = bool(frames) and Path(frames[-1].filename).resolve().is_relative_to(
            PACKAGE_DIR
        )
        ours = type(error).__module__.startswith(__package__ or "memory_efficient_embeddings")
        if (ours and not isinstance(error, NodeError)) or (
            isinstance(error, DatasetError) and raised_here
        ):
            return error
        error = error.__cause__ or error.__context__
    return None


def config_merge_error(error: BaseException) -> BaseException | None:
    """OmegaConf's error when an overlay puts a list or a value where conf/base has a mapping."""
    while error is not None:
        if isinstance(error, TypeError) and "Cannot merge incompatible container" in str(error):
            from memory_efficient_embeddings.parameters import ParameterError  # noqa: PLC0415

            return ParameterError(
                "A parameter in conf/<env>/ or --params replaces a section that conf/base "
                "defines as a mapping with a list or a single value (for example "
                "`training.early_stopping: []`). Parameters merge softly: give that section's "
                "keys instead (e.g. `training.early_stopping: {enabled: false}`)."
            )
        error = error.__cause__ or error.__context__
    return None


class UserErrorHooks:
    """Print the project's user-facing errors as one clear message instead of a traceback."""

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        previous = sys.excepthook
        if getattr(previous, "_user_errors", False):
            return  # installed by an earlier session in this process

        def excepthook(kind: type, error: BaseException, trace: Any) -> None:
            found = user_error(error) or config_merge_error(error)
            if found is None:
                previous(kind, error, trace)
                return
            print(f"\nError ({type(found).__name__}): {found}", file=sys.stderr)  # noqa: T201

        excepthook._user_errors = True  # type: ignore[attr-defined]
        sys.excepthook = excepthook


class NodeTimingHooks:
    """Log each node's wall time and the process's resident memory after it."""

    def __init__(self) -> None:
        self._started: dict[str, float] = {}

    @hook_impl
    def before_node_run(self, node: Node) -> None:
        self._started[node.name] = time.perf_counter()

    @hook_impl
    def after_node_run(self, node: Node, outputs: dict[str, Any]) -> None:
        seconds = time.perf_counter() - self._started.pop(node.name, time.perf_counter())
        rss = current_rss_bytes()
        logger.info(
            "Node %s took %.1f s (RSS %s)",
            node.name,
            seconds,
            f"{rss / 2**20:,.0f} MiB" if rss is not None else "n/a",
        )
