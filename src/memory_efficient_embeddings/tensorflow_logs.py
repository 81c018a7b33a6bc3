"""Keep TensorFlow's C++ start-up lines off the terminal, before TensorFlow loads.

TensorFlow 2.21 logs through absl, which writes everything to stderr until absl is initialised,
and that happens during `import tensorflow`: TF_CPP_MIN_LOG_LEVEL does not reach those lines
(oneDNN, CUDA probing). So the import runs with the C-level stderr captured, and whatever is not
an absl line below the chosen level is written back. After the import, TF_CPP_MIN_LOG_LEVEL works
and governs the rest (e.g. `E0000 ... failed call to cuInit` on a machine without a GPU).
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import re
import sys
import tempfile
from collections.abc import Iterator, Sequence
from types import ModuleType

# Default: no INFO, WARNING or ERROR line from TensorFlow's C++ runtime (0 shows everything).
DEFAULT_LEVEL = "3"
# e.g. "I0000 00:00:1795386614.250104    6584 port.cc:153] oneDNN custom operations are on."
_ABSL_LINE = re.compile(rb"^([IWE])\d{4} \d\d:\d\d:\d+\.\d+ +\d+ [^\]]+\] ")
_ABSL_PREAMBLE = b"WARNING: All log messages before absl::InitializeLog() is called"
_SEVERITY_LEVEL = {b"I": 0, b"W": 1, b"E": 2}


def min_log_level() -> int:
    """TensorFlow's own switch, TF_CPP_MIN_LOG_LEVEL: 0 all, 1 no INFO, 2 no WARNING, 3 no ERROR."""
    try:
        return int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        return 0


def filter_absl_lines(text: bytes, level: int) -> bytes:
    """Drop absl log lines whose severity is below `level` (TF_CPP_MIN_LOG_LEVEL's meaning)."""
    kept = []
    for line in text.splitlines(keepends=True):
        match = _ABSL_LINE.match(line)
        if match and _SEVERITY_LEVEL[match.group(1)] < level:
            continue
        if line.startswith(_ABSL_PREAMBLE) and level > 0:
            continue
        kept.append(line)
    return b"".join(kept)


@contextlib.contextmanager
def absl_lines_filtered(level: int) -> Iterator[None]:
    """Capture file descriptor 2 for the block, then write back what survives the filter."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            remaining = filter_absl_lines(captured.read(), level)
            if remaining:
                sys.stderr.flush()
                os.write(2, remaining)


class _QuietLoader(importlib.abc.Loader):
    """Runs the real loader of `tensorflow` with its start-up lines filtered."""

    def __init__(self, loader: importlib.abc.Loader, level: int) -> None:
        self._loader = loader
        self._level = level

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        with absl_lines_filtered(self._level):
            self._loader.exec_module(module)

    def load_module(self, fullname: str) -> ModuleType:
        # The legacy entry point, which import hooks that chain loaders call (MLflow's does).
        # importlib's default would build a module without `__path__`: "tensorflow is not a
        # package". Build it from the real spec instead.
        module = importlib.util.module_from_spec(self.spec)
        sys.modules[fullname] = module
        try:
            self.exec_module(module)
        except BaseException:
            sys.modules.pop(fullname, None)
            raise
        return sys.modules[fullname]


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Wraps the first import of `tensorflow` (by Keras or anyone) in the filter, then leaves."""

    def __init__(self, level: int) -> None:
        self._level = level

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name != "tensorflow":
            return None
        with contextlib.suppress(ValueError):  # another thread got here first
            sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _QuietLoader(spec.loader, self._level)
            spec.loader.spec = spec
        return spec


def quiet_tensorflow_startup() -> None:
    """Set TF_CPP_MIN_LOG_LEVEL (unless the user did) and filter the import's absl lines."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", DEFAULT_LEVEL)
    level = min_log_level()
    if level <= 0 or "tensorflow" in sys.modules:
        return
    if not any(isinstance(finder, _QuietTensorFlowFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowFinder(level))
