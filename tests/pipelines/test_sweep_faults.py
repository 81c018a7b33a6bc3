"""Sweeps that survive faults: a lost worker, a killed parent (issue 22); a worker killed at any
moment after its spawn, a pool that will not take its tasks (issue 30)."""

from __future__ import annotations

import json
import operator
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

from memory_efficient_embeddings.pipelines.sweep import executors
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
        # A sweep killed with SIGKILL cannot remove its shared inputs' file; the next one does.
        folder = Path(executors.tempfile.gettempdir())
        (left,) = folder.glob(f"{executors.SHARED_FILE_PREFIX}{parent.pid}-*.pickle")
        run_tasks(operator.truediv, 12, [(2,)], ["a"], PROCESSES)
        assert not left.exists()
    finally:
        parent.kill()
        for path in tmp_path.glob("worker_*"):
            try:
                os.kill(int(path.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass


KILLING_PARENT = """
import json, sys
from tests.pipelines import sweep_faults
print(json.dumps(sweep_faults.sweep_with_a_worker_killed(float(sys.argv[1]), sys.argv[2])))
"""


def _subprocess_env() -> dict:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT / "src"), str(PROJECT_ROOT)]),
    }


@pytest.mark.parametrize("delay", [0.5, 1, 2, 3, 6])
def test_a_worker_killed_at_any_moment_after_its_spawn_loses_no_run(tmp_path, delay) -> None:
    # Before issue 30 a kill in the first seconds hung the sweep for ever (the parent blocked
    # writing the worker's start message, the 8 MB of shared inputs, into its pipe), and a kill
    # at 6 s failed it. Each case runs in a process of its own so that a hang fails, not blocks.
    undisturbed = run_tasks(
        sweep_faults.row_of,
        sweep_faults.shared_ratings(),
        sweep_faults.KILL_TASKS,
        [str(task) for task in sweep_faults.KILL_TASKS],
        {"type": "in_process", "progress": False},
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", KILLING_PARENT, str(delay), str(tmp_path)],
        env=_subprocess_env(),
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = parent.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        parent.kill()
        parent.communicate()
        pytest.fail(f"the sweep hung after a worker was killed {delay} s after its spawn")
    assert parent.returncode == 0, stderr[-3000:]
    killed = json.loads((tmp_path / "killed.json").read_text())
    assert killed["age"] >= delay  # a real worker really died, that late after its spawn
    assert "A sweep worker process died" in stderr  # ... while the sweep used it
    assert "did not return within" not in stderr  # submitting never stalled on the dead worker
    rows = json.loads(stdout.strip().splitlines()[-1])
    assert rows == [[outcome.value, None] for outcome in undisturbed]


class _RecordingPool(ProcessPoolExecutor):
    start_messages: list[int] = []

    def __init__(self, *args, **kwargs) -> None:
        type(self).start_messages.append(len(pickle.dumps(kwargs["initargs"])))
        super().__init__(*args, **kwargs)


def test_a_workers_start_message_is_small_whatever_the_shared_inputs(monkeypatch) -> None:
    # A start message larger than a pipe's buffer (64 KiB) blocks the parent until the worker
    # reads it, for ever if the worker dies first.
    monkeypatch.setattr(_RecordingPool, "start_messages", [])
    monkeypatch.setattr(executors, "ProcessPoolExecutor", _RecordingPool)
    shared = sweep_faults.shared_ratings()
    outcomes = run_tasks(sweep_faults.row_of, shared, [(2, 1), (3, 2)], ["a", "b"], PROCESSES)
    assert [o.value for o in outcomes] == [
        sweep_faults.row_of(shared, 2, 1),
        sweep_faults.row_of(shared, 3, 2),
    ]
    assert _RecordingPool.start_messages and max(_RecordingPool.start_messages) < 1024
    assert not list(
        Path(executors.tempfile.gettempdir()).glob(f"{executors.SHARED_FILE_PREFIX}{os.getpid()}-*")
    )  # the shared inputs' file is gone with the sweep


def test_a_pool_that_will_not_take_its_tasks_is_given_up_and_its_runs_retried(monkeypatch):
    entered, returned, release = threading.Event(), threading.Event(), threading.Event()

    class StuckPool(ProcessPoolExecutor):
        # What a worker dying before it reads its start message did: submit never returned.
        def submit(self, *args, **kwargs):
            entered.set()
            release.wait(30)
            returned.set()
            raise RuntimeError("released")

    real_pool = executors._pool
    pools = []

    def first_pool_stuck(workers, shared_path):
        pools.append(StuckPool(max_workers=workers) if not pools else real_pool(1, shared_path))
        return pools[-1]

    monkeypatch.setattr(executors, "_pool", first_pool_stuck)
    monkeypatch.setattr(executors, "SUBMIT_TIMEOUT_SECONDS", 0.5)
    try:
        outcomes = run_tasks(operator.truediv, 12, [(2,), (3,), (4,)], list("abc"), PROCESSES)
        assert entered.is_set() and not returned.is_set()  # it did not wait for the stuck pool
    finally:
        release.set()
    assert [o.value for o in outcomes] == [6.0, 4.0, 3.0]
    assert len(pools) >= 2  # the runs went to fresh workers
