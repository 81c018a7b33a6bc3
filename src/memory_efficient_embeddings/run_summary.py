"""A closing summary after every `kedro run`: the models trained and where their reports are."""

from __future__ import annotations

import logging
from pathlib import Path, PurePosixPath
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.io import AbstractVersionedDataset
from kedro.pipeline import Pipeline
from rich.console import Console
from rich.table import Table

from memory_efficient_embeddings.model_names import MODEL_NAMES

logger = logging.getLogger(__name__)

METRICS_SUFFIX = ".metrics"
# Saved files worth pointing at: the reports and charts (`data/08_reporting/...`).
REPORT_FOLDER = "08_reporting"
MISSING = "–"


def _saved_path(dataset: Any) -> str | None:
    """The file a dataset has just written: its versioned path when versioned, else its filepath."""
    filepath = getattr(dataset, "_filepath", None)  # every file dataset of kedro-datasets has it
    if filepath is None:
        return None
    if isinstance(dataset, AbstractVersionedDataset) and dataset._version:
        version = dataset.resolve_save_version()
        if version:
            return str(PurePosixPath(filepath) / version / PurePosixPath(filepath).name)
    return str(filepath)


def _relative(path: str) -> str:
    """The path relative to the working directory when it is under it (shorter to read)."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return path


def _number(value: Any, spec: str) -> str:
    return MISSING if value is None else format(value, spec)


def model_rows(metrics: dict[str, dict[str, Any]], reference: str | None) -> list[list[str]]:
    """One row of text cells per model: parameters, compression, accuracy, epochs, time."""
    reference_parameters = (metrics.get(reference) or {}).get("embedding_parameters")
    rows = []
    for name, m in metrics.items():
        parameters = m.get("embedding_parameters")
        compression = (
            f"{reference_parameters / parameters:.1f}×"
            if reference_parameters and parameters
            else MISSING
        )
        rows.append(
            [
                name,
                _number(parameters, ","),
                compression,
                _number(m.get("eval_rmse"), ".4f"),
                _number(m.get("eval_mae"), ".4f"),
                _number(m.get("epochs_run"), "d"),
                _number(m.get("train_seconds"), ".1f"),
            ]
        )
    return rows


def summary_table(metrics: dict[str, dict[str, Any]], reference: str | None) -> Table:
    """The models of this run as a rich table (short headers: it must fit 80 columns)."""
    table = Table(
        title=f"Models of this run (compression vs {reference}; errors on eval ratings)",
        title_justify="left",
    )
    table.add_column("model", no_wrap=True)
    for header in ("emb. params", "compression", "RMSE", "MAE", "epochs", "train s"):
        table.add_column(header, justify="right", no_wrap=True)
    for row in model_rows(metrics, reference):
        table.add_row(*row)
    return table


def report_lines(paths: list[str]) -> list[str]:
    """Markdown reports by full path, then every report file by name, grouped by version folder."""
    lines = [f"Report: {path}" for path in sorted(paths) if path.endswith(".md")]
    by_folder: dict[str, list[str]] = {}
    for path in sorted(paths):
        parts = PurePosixPath(path).parts
        # Versioned: <folder>/<file>/<version>/<file>; shown as <folder>/<file>/<version>/.
        if len(parts) >= 3 and parts[-1] == parts[-3]:
            where = str(PurePosixPath(*parts[:-3], "<file>", parts[-2]))
        else:
            where = str(PurePosixPath(*parts[:-1]))
        by_folder.setdefault(where, []).append(parts[-1])
    for where, names in by_folder.items():
        lines.append(f"All reports, in {where}/:")
        lines.append("  " + ", ".join(names))
    return lines


class RunSummaryHooks:
    """Print, after every pipeline run, the models it trained or compared and the reports it wrote."""

    def __init__(self, console: Console | None = None) -> None:
        self._console = console
        self._metrics: dict[str, dict[str, Any]] = {}
        self._saved: list[str] = []

    @hook_impl
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Pipeline) -> None:
        self._metrics = {}
        self._saved = []

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any) -> None:
        self._saved.append(dataset_name)
        if dataset_name.endswith(METRICS_SUFFIX) and isinstance(data, dict):
            self._metrics[dataset_name.removesuffix(METRICS_SUFFIX)] = data

    @hook_impl
    def after_dataset_loaded(self, dataset_name: str, data: Any) -> None:
        # A `reporting`-only run compares the latest saved metrics: show those.
        if dataset_name.endswith(METRICS_SUFFIX) and isinstance(data, dict):
            self._metrics.setdefault(dataset_name.removesuffix(METRICS_SUFFIX), data)

    @hook_impl
    def after_pipeline_run(self, run_params: dict[str, Any], catalog: Any) -> None:
        reports = []
        for name in self._saved:
            dataset = catalog.get(name)
            path = _saved_path(dataset) if dataset is not None else None
            if path and f"/{REPORT_FOLDER}/" in f"/{path}":
                reports.append(_relative(path))
        # Piped output or a CI log has no width: give the table room rather than truncating names.
        console = self._console or Console()
        if not console.is_terminal and console.width < 120:
            console = Console(width=120)
        if self._metrics:
            ordered = dict(
                sorted(
                    self._metrics.items(),
                    key=lambda item: (
                        MODEL_NAMES.index(item[0]) if item[0] in MODEL_NAMES else len(MODEL_NAMES)
                    ),
                )
            )
            console.print(summary_table(ordered, self._reference(catalog)))
        for line in report_lines(reports):
            console.print(line, highlight=False, soft_wrap=True)

    @staticmethod
    def _reference(catalog: Any) -> str:
        """`reporting.reference` when the run's parameters have it, else the first model name."""
        dataset = catalog.get("params:reporting.reference")
        return str(dataset.load()) if dataset is not None else MODEL_NAMES[0]
