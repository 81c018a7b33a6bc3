"""Data lineage: which data, split and vocabulary an artifact was derived from.

A lineage record holds *components*: `data` (the source: MovieLens release and archive MD5, a Ciao
.mat or table file and its MD5, or the synthetic generator's seed and shape), `split` (train fraction and seed) and `vocabulary` (its
source). An artifact inherits the components of the artifacts it was made from, plus those of the
parameters its node applies. Two inputs of one node that disagree on a component come from
different data: the node is refused (`LineageMismatchError`) with the artifacts, their versions
and what to re-run. Records sit next to each file as `<file>.lineage.json` (a CSV cannot carry
metadata), so an artifact carries its fingerprint wherever its version folder goes.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kedro.io.core import AbstractVersionedDataset, VersionNotFoundError

# Parameters whose values an artifact's content depends on, by the component they define.
LINEAGE_PARAMETERS = {"params:split": "split", "params:vocabulary": "vocabulary"}
# The output that describes the ingested data: its content (minus prose) is the `data` component.
DATA_PROVENANCE = "data_provenance"
SIDECAR_SUFFIX = ".lineage.json"


class LineageMismatchError(ValueError):
    """A node's inputs were derived from different data, splits or vocabularies."""


def fingerprint(value: Any) -> str:
    """A short, stable hash of JSON-able content."""
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def data_component(provenance: Mapping[str, Any]) -> dict[str, Any]:
    """The identity of ingested data: its provenance without the human-readable description."""
    return {key: value for key, value in provenance.items() if key != "description"}


def describe_component(name: str, value: Any) -> str:
    """One line a reader recognises, e.g. 'synthetic, shaped like ml-1m, seed 7, 12,000 ratings'."""
    if name == "data" and isinstance(value, Mapping):
        if value.get("source") == "synthetic":
            return (
                f"synthetic, shaped like {value.get('shaped_like')}, seed {value.get('seed')}, "
                f"{value.get('num_ratings', 0):,} ratings"
            )
        checksum = f"md5 {value['md5']}" if value.get("md5") else "extracted files"
        if value.get("source") in ("ciao", "table"):
            return (
                f"{value.get('source')} file {value.get('file')} ({checksum}), "
                f"{value.get('num_ratings', 0):,} ratings"
            )
        return f"MovieLens {value.get('dataset')} ({checksum}), {value.get('num_ratings', 0):,} ratings"
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {v}" for k, v in value.items())
    return str(value)


@dataclass(frozen=True)
class Lineage:
    """The components of one artifact, and where it was read from (for messages)."""

    components: dict[str, Any] = field(default_factory=dict)
    origin: str = ""

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.components)

    def describe(self) -> str:
        """Each component in words, data first."""
        return "; ".join(
            f"{name}: {describe_component(name, value)}"
            for name, value in sorted(self.components.items(), key=lambda item: item[0] != "data")
        )

    def as_record(self) -> dict[str, Any]:
        """The JSON written next to an artifact."""
        data = self.components.get("data")
        return {
            "fingerprint": self.fingerprint,
            "data": describe_component("data", data) if data is not None else None,
            "components": self.components,
            "component_fingerprints": {k: fingerprint(v) for k, v in self.components.items()},
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any], origin: str = "") -> Lineage:
        return cls(dict(record.get("components") or {}), origin)


def combine(inputs: Mapping[str, Lineage], who: str, rerun_hint: str) -> dict[str, Any]:
    """The union of the inputs' components; raise when two inputs disagree on one of them.

    `who` names the combiner in the message, e.g. "Node `baseline.evaluate_model`".
    """
    combined: dict[str, Any] = {}
    holders: dict[str, dict[str, list[str]]] = {}
    for name, lineage in inputs.items():
        for component, value in lineage.components.items():
            combined.setdefault(component, value)
            holders.setdefault(component, {}).setdefault(fingerprint(value), []).append(name)
    conflicts = {c: groups for c, groups in holders.items() if len(groups) > 1}
    if conflicts:
        lines = [
            f"{who} would combine artifacts derived from different "
            f"{' and '.join(sorted(conflicts))}:"
        ]
        for name, lineage in inputs.items():
            if any(c in lineage.components for c in conflicts):
                where = f" ({lineage.origin})" if lineage.origin else ""
                lines.append(f"  - {name}{where}: {lineage.describe()}")
        lines.append(rerun_hint)
        raise LineageMismatchError("\n".join(lines))
    return combined


def local_file(dataset: Any, saving: bool) -> Path | None:
    """The file a dataset loads (or is about to save); None for memory or remote datasets."""
    if not isinstance(dataset, AbstractVersionedDataset):
        return None
    if getattr(dataset, "_protocol", "file") != "file":
        return None
    if dataset._version is None:
        return Path(str(dataset._filepath))
    try:
        version = dataset.resolve_save_version() if saving else dataset.resolve_load_version()
    except VersionNotFoundError:
        return None
    return Path(str(dataset._get_versioned_path(version)))


def sidecar_path(artifact: str | os.PathLike) -> Path:
    """Where the lineage record of the file `artifact` lives."""
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + SIDECAR_SUFFIX)


def write_json_atomically(path: Path, content: Any) -> None:
    """Write JSON to a temporary sibling, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".partial", dir=path.parent
    )
    try:
        with os.fdopen(handle, "w") as out:
            json.dump(content, out, indent=2, sort_keys=True, default=str)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_record(path: Path) -> dict[str, Any] | None:
    """A lineage record, or None when the file does not exist."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
