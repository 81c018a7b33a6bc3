"""Sweeps that survive faults: a lost worker, a killed parent (issue 22)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from memory_efficient_embeddings.pipelines.sweep.executors import run_tasks
from tests.pipelines import sweep_faults

PROCESSES = {"type": "processes", "workers": 2, "progress": False}
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_a_killed_worker_is_retried_and_the_other_runs_finish(tmp_path) -> None:
    outcomes = run_tasks(
        sweep_faults.die_once, str(tmp_path), [(0,), (1,), (2,), (3,)], list("abcd"), PROCESSES
    )
    assert [o.value for o in outcomes] == [0, 10, 20, 30]
    assert not any(o.failed for o in outcomes)
    assert (tmp_path / "died_1").exists()  # the worker really died once


def test_a_run_that_always_kills_its_worker_is_recorded_failed_and_the_rest_finish(tmp_path):
    outcomes = run_tasks(
        sweep_faults.always_die, str(tmp_path), [(0,), (1,), (2,)], list("abc"), PROCESSES
    )
    assert [o.value for o in outcomes] == [0, None, 20]
    assert outcomes[1].error == "its worker process died twice (killed, or out of memory)"


PARENT = """
import sys
from memory_efficient_embeddings.pipelines.sweep.executors import run_tasks
from tests.pipelines import sweep_faults
run_tasks(sweep_faults.sleep_and_report, sys.argv[1], [(0,), (1,)], ["a", "b"],
          {"type": "processes", "workers": 2, "progress": False})
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited: only its exit status is left for its (new) parent.
    status = Path(f"/proc/{pid}/stat")
    return status.exists() and status.read_text().rsplit(")", 1)[1].split()[0] != "Z"


def test_workers_end_when_the_sweep_process_is_killed(tmp_path) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT / "src"), str(PROJECT_ROOT)]),
    }
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tmp_path)], env=env, cwd=PROJECT_ROOT
    )
    try:
        deadline = time.monotonic() + 60
        while len(list(tmp_path.glob("worker_*"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        workers = [int(p.read_text()) for p in tmp_path.glob("worker_*")]
        assert len(workers) == 2, "the workers did not start"
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(pid) for pid in workers), "a worker outlived the killed sweep"
    finally:
        parent.kill()
        for path in tmp_path.glob("worker_*"):
            try:
                os.kill(int(path.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass
