"""Task functions that misbehave, importable by spawned sweep workers (see test_sweep_faults)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def die_once(folder: str, value: int) -> int:
    """Kill this worker the first time it runs task `value` == 1; otherwise return value * 10."""
    marker = Path(folder) / f"died_{value}"
    if value == 1 and not marker.exists():
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    return value * 10


def always_die(folder: str, value: int) -> int:
    """Kill this worker whenever it runs task `value` == 1."""
    if value == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(0.2)
    return value * 10


def sleep_and_report(folder: str, value: int) -> int:
    """Write this worker's pid, then sleep long (the test kills the parent meanwhile)."""
    (Path(folder) / f"worker_{value}").write_text(str(os.getpid()))
    time.sleep(60)
    return value
