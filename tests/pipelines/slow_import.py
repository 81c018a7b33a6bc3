"""Stands in for TensorFlow in a sweep worker's start: the first worker of a sweep to import this
module takes seconds to, as a worker unpickling the sweep's data imports TensorFlow."""

from __future__ import annotations

import contextlib
import os
import time

SLOW_IMPORT_CLAIM = (
    "SWEEP_FAULTS_SLOW_IMPORT_CLAIM"  # set: a file path; the first to create it waits
)
IMPORT_SECONDS = 4

_claim = os.environ.get(SLOW_IMPORT_CLAIM)
if _claim:
    with contextlib.suppress(FileExistsError):
        os.close(os.open(_claim, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        time.sleep(IMPORT_SECONDS)


class Model:
    """An object of this module among the shared inputs: unpickling it imports the module."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Model)

    __hash__ = object.__hash__
