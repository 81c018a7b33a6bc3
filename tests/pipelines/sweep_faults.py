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


# -- A worker killed at a set moment after it was spawned (issue 30) --------------------------

RELEASE_FILE = "SWEEP_FAULTS_RELEASE_FILE"  # set: tasks wait for this file (the kill happened)
KILL_TASKS = [(point, seed) for point in (2, 3) for seed in (1, 2)]


def shared_ratings() -> dict:
    """Shared inputs of 8 MB (far more than the 64 KiB a pipe holds unread), led by an object
    whose module is slow to import in the first worker, as TensorFlow is in a real sweep's."""
    import numpy as np  # noqa: PLC0415

    from tests.pipelines.slow_import import Model  # noqa: PLC0415

    return {"model": Model(), "ratings": np.random.default_rng(0).random(1_000_000)}


def row_of(shared: dict, point: int, seed: int) -> dict:
    """A deterministic row from the shared inputs; waits for RELEASE_FILE when it is set, so
    that the runs are still going whenever the worker is killed."""
    release = os.environ.get(RELEASE_FILE)
    deadline = time.monotonic() + 30
    while release and not Path(release).exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return {"point": point, "seed": seed, "sum": float(shared["ratings"][seed::point].sum())}


def kill_first_worker(delay: float, record: Path) -> None:
    """SIGKILL this process's first spawned worker `delay` s after it started; write its pid and
    age at the kill to `record` (which also releases the waiting runs)."""
    import psutil  # noqa: PLC0415  # comes with dask.distributed

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        workers = []
        for child in psutil.Process().children():
            try:
                if "spawn_main" in " ".join(child.cmdline()):
                    workers.append((child.create_time(), child.pid))
            except psutil.Error:  # ended meanwhile
                continue
        if workers:
            started, pid = min(workers)
            age = time.time() - started
            if age >= delay:
                os.kill(pid, signal.SIGKILL)
                record.write_text(f'{{"pid": {pid}, "age": {age:.3f}}}')
                return
        time.sleep(0.01)


def sweep_with_a_worker_killed(delay: float, folder: str) -> list:
    """Run KILL_TASKS on two worker processes while one is killed `delay` s after its spawn."""
    import threading  # noqa: PLC0415

    from memory_efficient_embeddings.pipelines.sweep.executors import run_tasks  # noqa: PLC0415
    from tests.pipelines.slow_import import SLOW_IMPORT_CLAIM  # noqa: PLC0415

    shared = shared_ratings()  # imports slow_import here before the claim is set: at once
    record = Path(folder) / "killed.json"
    os.environ[RELEASE_FILE] = str(record)  # the spawned workers inherit these
    os.environ[SLOW_IMPORT_CLAIM] = str(Path(folder) / "slow_import_claimed")
    threading.Thread(target=kill_first_worker, args=(delay, record), daemon=True).start()
    outcomes = run_tasks(
        row_of,
        shared,
        KILL_TASKS,
        [f"point {p} seed {s}" for p, s in KILL_TASKS],
        {"type": "processes", "workers": 2, "progress": False},
    )
    return [[outcome.value, outcome.error] for outcome in outcomes]
