"""Atomic saves: a writer killed mid-write leaves the artifact complete or absent, never truncated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from kedro.io.core import DatasetError, Version

from memory_efficient_embeddings.datasets import CSVDataset, JSONDataset, KerasModelDataset

# A writer that stops, for good, halfway through its first write: the parent kills it there.
KILLED_WRITER = r"""
import importlib, json, sys, time
import fsspec.implementations.local as local
import pandas as pd
from kedro.io.core import Version

module, name, filepath, version = sys.argv[1:5]
original_write = local.LocalFileOpener.write

def stalled_write(self, data):
    original_write(self, data[: len(data) // 2])
    self.f.flush()
    print("HALF WRITTEN", flush=True)
    time.sleep(600)

local.LocalFileOpener.write = stalled_write
dataset_class = getattr(importlib.import_module(module), name)
dataset = dataset_class(filepath=filepath, version=Version(None, version))
data = (
    pd.DataFrame({"user_id": [f"user_{i}" for i in range(50_000)], "rating": 3.5})
    if name == "CSVDataset"
    else {"rows": list(range(50_000))}
)
dataset.save(data)
"""


def _kill_mid_write(module: str, name: str, filepath: Path, version: str) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, module, name, str(filepath), version],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "HALF WRITTEN"
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()


def _complete_csv(dataset: CSVDataset) -> pd.DataFrame:
    data = pd.DataFrame({"user_id": ["user_1", "user_2"], "rating": [4.0, 2.0]})
    dataset.save(data)
    return data


def test_a_writer_killed_mid_write_leaves_the_previous_version_newest(tmp_path):
    filepath = tmp_path / "artifact.csv"
    first = CSVDataset(filepath=str(filepath), version=Version(None, "2026-01-01T00.00.00.000Z"))
    complete = _complete_csv(first)

    _kill_mid_write(
        "memory_efficient_embeddings.datasets", "CSVDataset", filepath, "2026-01-02T00.00.00.000Z"
    )

    killed_folder = filepath / "2026-01-02T00.00.00.000Z"
    assert not (killed_folder / filepath.name).exists()  # no file under the final name
    assert [p.name.endswith(".partial") for p in killed_folder.iterdir()] == [True]
    latest = CSVDataset(filepath=str(filepath), version=Version(None, None))
    assert latest.resolve_load_version() == "2026-01-01T00.00.00.000Z"
    pd.testing.assert_frame_equal(latest.load(), complete)


def test_kedros_own_dataset_killed_mid_write_leaves_a_truncated_newest_version(tmp_path):
    # The failure the atomic save prevents, reproduced with the same kill.
    filepath = tmp_path / "artifact.csv"
    _kill_mid_write("kedro_datasets.pandas", "CSVDataset", filepath, "2026-01-02T00.00.00.000Z")
    written = (filepath / "2026-01-02T00.00.00.000Z" / "artifact.csv").read_text()
    assert 0 < len(written.splitlines()) < 50_001


def test_an_unversioned_artifact_is_replaced_whole(tmp_path):
    dataset = CSVDataset(filepath=str(tmp_path / "table.csv"))
    _complete_csv(dataset)
    dataset.save(pd.DataFrame({"user_id": ["user_9"], "rating": [1.0]}))
    assert dataset.load()["user_id"].tolist() == ["user_9"]
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]  # no temporary file left


def test_a_failed_save_leaves_no_file(tmp_path):
    dataset = JSONDataset(filepath=str(tmp_path / "out.json"), version=Version(None, "v1"))
    with pytest.raises(DatasetError):
        dataset.save({"not json": object()})
    assert list((tmp_path / "out.json" / "v1").iterdir()) == []


def test_a_corrupt_model_names_its_file_and_version(tmp_path):
    folder = tmp_path / "baseline.keras" / "2026-01-02T00.00.00.000Z"
    folder.mkdir(parents=True)
    (folder / "baseline.keras").write_bytes(b"PK\x03\x04 truncated")
    dataset = KerasModelDataset(
        filepath=str(tmp_path / "baseline.keras"), version=Version(None, None)
    )
    with pytest.raises(DatasetError) as caught:
        dataset.load()
    # The real file and its version come first, not Keras' temporary copy.
    assert str(caught.value).startswith(
        f"Could not load the Keras model {folder / 'baseline.keras'} "
        "(version 2026-01-02T00.00.00.000Z)"
    )
