"""Catalog dataset types of the project: Kedro's own, with atomic saves.

Each type writes to a hidden temporary file in the destination folder and renames it into place
(`os.replace`, atomic on one file system), so a process killed at any instant leaves the artifact
complete or absent, never truncated; Kedro's versioned loading only sees files with the final name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io import MemoryDataset, SharedMemoryDataset
from kedro.io.core import DatasetError
from kedro_datasets.json import JSONDataset as _JSONDataset
from kedro_datasets.matplotlib import MatplotlibDataset as _MatplotlibDataset
from kedro_datasets.pandas import CSVDataset as _CSVDataset
from kedro_datasets.tensorflow import TensorFlowModelDataset
from kedro_datasets.text import TextDataset as _TextDataset

# Registers the custom layers with Keras, so a saved model loads (safe mode on) wherever the
# catalog is used: `kedro run`, notebooks, kedro-viz previews, tests.
import memory_efficient_embeddings.embeddings  # noqa: F401
from memory_efficient_embeddings.process_state import PROCESS_STATE_LOCK


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


class _AtomicSave:
    """Mixin: the parent's save writes to a temporary sibling, renamed into place on success."""

    _temporary_save_path: PurePosixPath | None = None

    def _get_save_path(self) -> PurePosixPath:
        if self._temporary_save_path is not None:
            return self._temporary_save_path
        return super()._get_save_path()  # type: ignore[misc]

    def _atomic_save(self, parent_save: Any, data: Any) -> None:
        if getattr(self, "_protocol", "file") != "file":  # remote stores publish whole objects
            parent_save(self, data)
            return
        final = Path(str(super()._get_save_path()))  # type: ignore[misc]
        temporary = final.with_name(f".{final.name}.{uuid.uuid4().hex[:12]}.partial")
        self._temporary_save_path = PurePosixPath(temporary.as_posix())
        try:
            parent_save(self, data)
            if temporary.is_dir() and final.exists():  # a folder of figures, unversioned
                shutil.rmtree(final)
            os.replace(temporary, final)
        except BaseException:
            _remove(temporary)
            raise
        finally:
            self._temporary_save_path = None


def _unwrapped(method: Any) -> Any:
    """The parent's save without Kedro's wrapper: the subclass's save is wrapped once already."""
    return getattr(method, "__wrapped__", method)


class CSVDataset(_AtomicSave, _CSVDataset):
    """`pandas.CSVDataset` with an atomic save."""

    def save(self, data: Any) -> None:
        self._atomic_save(_unwrapped(_CSVDataset.save), data)


class JSONDataset(_AtomicSave, _JSONDataset):
    """`json.JSONDataset` with an atomic save."""

    def save(self, data: Any) -> None:
        self._atomic_save(_unwrapped(_JSONDataset.save), data)


class TextDataset(_AtomicSave, _TextDataset):
    """`text.TextDataset` with an atomic save."""

    def save(self, data: str) -> None:
        self._atomic_save(_unwrapped(_TextDataset.save), data)


class MatplotlibDataset(_AtomicSave, _MatplotlibDataset):
    """`matplotlib.MatplotlibDataset` with an atomic save (pyplot is process state: locked)."""

    def save(self, data: Any) -> None:
        with PROCESS_STATE_LOCK:
            self._atomic_save(_unwrapped(_MatplotlibDataset.save), data)


class KerasModelDataset(_AtomicSave, TensorFlowModelDataset):
    """A `.keras` model file whose custom layers are registered before loading; atomic save.

    A file that does not load is reported with its path and version, not the temporary copy
    that Keras reads.
    """

    def save(self, data: Any) -> None:
        with PROCESS_STATE_LOCK:
            self._atomic_save(_unwrapped(TensorFlowModelDataset.save), data)

    def load(self) -> Any:
        path = self._get_load_path()
        version = self.resolve_load_version()
        try:
            with PROCESS_STATE_LOCK:
                return _unwrapped(TensorFlowModelDataset.load)(self)
        except Exception as exc:
            at_version = f" (version {version})" if version else ""
            raise DatasetError(
                f"Could not load the Keras model {path}{at_version}: "
                f"{type(exc).__name__}: {exc}. The file is corrupt or incomplete; re-run the "
                f"pipeline that trains it, or load another version with "
                f"`--load-versions=<dataset name>:<version>` (versions are the folder names "
                f"under {self._filepath})."
            ) from exc


class InMemoryDataset(SharedMemoryDataset):
    """Data kept in memory for the run, shared across ParallelRunner's worker processes.

    A declared `MemoryDataset` lives in one process, so a ParallelRunner worker reads nothing
    from it; Kedro shares a `SharedMemoryDataset` through the runner's manager instead, but that
    one holds nothing without a manager. This one holds its data locally until a runner hands it
    a manager, so it works under every runner (and a declared entry gets a kedro-viz layer).
    """

    def __init__(self, metadata: dict[str, Any] | None = None) -> None:
        super().__init__(manager=None)
        self.shared_memory_dataset = MemoryDataset()
        self.metadata = metadata

    def _release(self) -> None:
        # Free the data once its last reader has run, as Kedro does for a plain MemoryDataset.
        self.shared_memory_dataset.release()
