"""Every catalog entry has a kedro-viz layer, and data only flows to the same or a later layer."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from kedro.framework.project import configure_project, pipelines

PROJECT_ROOT = Path(__file__).resolve().parents[1]
LAYERS = (
    "raw",
    "intermediate",
    "primary",
    "feature",
    "model_input",
    "models",
    "model_output",
    "reporting",
)


def _catalog() -> dict[str, dict]:
    entries = {}
    for path in sorted((PROJECT_ROOT / "conf" / "base").glob("catalog*.yml")):
        for name, entry in (yaml.safe_load(path.read_text()) or {}).items():
            if not name.startswith("_"):  # `_name:` entries are YAML anchors, not datasets
                entries[name] = entry
    return entries


def _layer(entries: dict[str, dict], dataset: str) -> str | None:
    """The layer of a dataset name, matching `{model}.x` factory patterns like Kedro."""
    for name, entry in entries.items():
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^.]+", re.escape(name)) + "$"
        if re.match(pattern, dataset):
            return entry["metadata"]["kedro-viz"]["layer"]
    return None


@pytest.mark.parametrize("name", sorted(_catalog()))
def test_the_entry_has_a_known_layer(name: str) -> None:
    entry = _catalog()[name]
    layer = (entry.get("metadata") or {}).get("kedro-viz", {}).get("layer")
    assert layer in LAYERS, f"{name}: metadata.kedro-viz.layer is {layer!r}"


def test_every_dataset_of_every_pipeline_is_declared_and_flows_forward() -> None:
    configure_project("memory_efficient_embeddings")
    entries = _catalog()
    everything = sum(pipelines.values(), start=pipelines["__default__"])
    undeclared = sorted(
        d
        for d in everything.datasets()
        if not d.startswith("params:") and d != "parameters"
        if _layer(entries, d) is None
    )
    assert not undeclared, (
        f"datasets without a catalog entry (and so without a layer): {undeclared}"
    )
    for node in everything.nodes:
        inputs = [
            LAYERS.index(_layer(entries, d)) for d in node.inputs if not d.startswith("params")
        ]
        outputs = [LAYERS.index(_layer(entries, d)) for d in node.outputs]
        # A check node (no outputs) writes nothing.
        assert max(inputs, default=0) <= min(outputs, default=len(LAYERS)), (
            f"{node.name} writes to an earlier layer"
        )
