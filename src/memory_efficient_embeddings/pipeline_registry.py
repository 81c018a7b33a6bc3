"""Project pipelines."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

# Run only on request: the sweep trains dozens of models.
NOT_IN_DEFAULT = {"sweep"}


def register_pipelines() -> dict[str, Pipeline]:
    """Register one pipeline per folder of `pipelines/`; `__default__` runs all but the sweep."""
    pipelines = find_pipelines(raise_errors=True)
    pipelines["__default__"] = sum(
        (p for name, p in pipelines.items() if name not in NOT_IN_DEFAULT), Pipeline([])
    )
    return pipelines
