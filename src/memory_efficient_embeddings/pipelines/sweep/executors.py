"""Run independent tasks in-process, on local worker processes or on a Dask cluster.

Nothing here knows about models: a task is a top-level function called as
``function(shared, *args)``. ``shared`` (the large inputs every task reads, e.g. the ratings
arrays) is shipped to each worker once, not once per task; ``args`` are each task's own small,
picklable inputs. A task that raises is reported as a failed :class:`TaskOutcome` and the other
tasks go on. Outcomes come back in task order whatever order the workers finish in.

Determinism: a sweep task seeds everything it uses, so ``in_process`` and ``processes`` give
bit-identical rows (the test sweep; real ml-100k, 8 runs). On Dask they do not: sizes, epochs and
the rows' order are the same, but val RMSE can differ: up to 1.5e-3 on ml-100k (3 epochs; equal in
another round), up to 1.3e-3 on the test sweep.
The cause is not pinned down (a Dask worker runs its own threads beside the task, in the same
process). Use ``processes`` where rows must reproduce exactly.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import pickle
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, as_completed, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tqdm import tqdm  # not tqdm.auto: in Jupyter it wants ipywidgets, or warns

from memory_efficient_embeddings.prune_versions import process_running, process_start_ticks

logger = logging.getLogger(__name__)

EXECUTOR_TYPES = ("in_process", "processes", "dask")
# The standard Dask setting (`DASK_SCHEDULER_ADDRESS` in the environment sets it too).
DASK_SCHEDULER_CONFIG_KEY = "scheduler-address"


@dataclass(frozen=True)
class TaskOutcome:
    """A task's return value, or the error that stopped it (then ``value`` is None)."""

    label: str
    value: Any = None
    error: str | None = None

    @property
    def failed(self) -> bool:
        """Whether the task raised instead of returning."""
        return self.error is not None


OnOutcome = Callable[[int, TaskOutcome], None]


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _outcome(future: Any, label: str) -> TaskOutcome:
    # A task's own error, a lost worker (BrokenProcessPool, KilledWorker) or a cancellation.
    try:
        return TaskOutcome(label, value=future.result())
    except Exception as error:  # one failing task must not lose the others' results
        return TaskOutcome(label, error=_describe(error))


def validate_executor(executor: dict[str, Any] | None) -> dict[str, Any]:
    """The executor settings with defaults filled in; a clear error for a bad one."""
    settings = {"type": "in_process", "workers": None, "scheduler_address": None, "progress": True}
    settings |= executor or {}
    unknown = set(settings) - {"type", "workers", "scheduler_address", "progress"}
    if unknown:
        raise ValueError(f"sweep.executor: unknown keys {sorted(unknown)}.")
    if settings["type"] not in EXECUTOR_TYPES:
        raise ValueError(
            f"sweep.executor.type is {settings['type']!r}; valid types: {list(EXECUTOR_TYPES)}."
        )
    workers = settings["workers"]
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ValueError(
            f"sweep.executor.workers must be a positive integer or null, got {workers!r}."
        )
    return settings


def run_tasks(
    function: Callable[..., Any],
    shared: Any,
    tasks: Sequence[tuple[Any, ...]],
    labels: Sequence[str],
    executor: dict[str, Any] | None = None,
    on_outcome: OnOutcome | None = None,
) -> list[TaskOutcome]:
    """Call ``function(shared, *task)`` for every task on the configured executor.

    ``on_outcome(index, outcome)`` is called in the calling process as each task finishes
    (in completion order), e.g. to log it. Returns the outcomes in task order.
    """
    settings = validate_executor(executor)
    if len(labels) != len(tasks):
        raise ValueError(f"{len(tasks)} tasks but {len(labels)} labels.")
    runner = {"in_process": _run_in_process, "processes": _run_on_processes, "dask": _run_on_dask}
    outcomes: list[TaskOutcome | None] = [None] * len(tasks)
    with tqdm(
        total=len(tasks), desc="sweep runs", unit="run", disable=not settings["progress"]
    ) as progress:

        def record(index: int, outcome: TaskOutcome) -> None:
            outcomes[index] = outcome
            if outcome.failed:
                logger.error("Task %s failed: %s", outcome.label, outcome.error)
            if on_outcome is not None:
                on_outcome(index, outcome)
            progress.update(1)

        runner[settings["type"]](function, shared, tasks, labels, settings, record)
    return outcomes  # type: ignore[return-value]  # every index was recorded


def _run_in_process(function, shared, tasks, labels, settings, record) -> None:
    for index, (task, label) in enumerate(zip(tasks, labels, strict=True)):
        try:
            outcome = TaskOutcome(label, value=function(shared, *task))
        except Exception as error:  # one failing task must not lose the others' results
            outcome = TaskOutcome(label, error=_describe(error))
        record(index, outcome)


# A worker's start message (its initializer's arguments, written into the spawn pipe) holds only
# the path of a file with the shared inputs: a worker that dies before reading a large message
# would block the parent's write forever (CPython keeps the pipe's read end open while it writes).
_worker_shared_path: str | None = None
_worker_shared: Any = None  # loaded from the file at the worker's first task
_NOT_LOADED = object()
PARENT_POLL_SECONDS = 0.5  # how soon a worker notices that the sweep's process has died
# How long submitting tasks may take (it spawns the workers). It returns in milliseconds; a pool
# that has not taken its tasks by then is given up, its workers killed, and its tasks retried.
SUBMIT_TIMEOUT_SECONDS = 60.0
SHARED_FILE_PREFIX = "sweep-shared-inputs-"  # <prefix><pid>-<start ticks>-<random>.pickle
WORKER_DIED = "its worker process died twice (killed, or out of memory)"


def _exit_with_parent(parent_pid: int) -> None:
    # A worker outlives a parent killed with SIGKILL (nothing shuts the pool down) and would hold
    # its memory (about 750 MB with TensorFlow) until it finishes its task: poll the parent.
    while os.getppid() == parent_pid:
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(1)


def _start_worker(shared_path: str, parent_pid: int) -> None:
    global _worker_shared_path, _worker_shared  # noqa: PLW0603  # one value per worker process
    _worker_shared_path, _worker_shared = shared_path, _NOT_LOADED
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()


def _call_with_worker_shared(function: Callable[..., Any], task: tuple[Any, ...]) -> Any:
    global _worker_shared  # noqa: PLW0603  # read once per worker, at its first task
    if _worker_shared is _NOT_LOADED:
        with open(_worker_shared_path, "rb") as file:  # type: ignore[arg-type]
            _worker_shared = pickle.load(file)  # noqa: S301 - this sweep's own file
    return function(_worker_shared, *task)


@contextlib.contextmanager
def _shared_inputs_file(shared: Any) -> Iterator[str]:
    """The shared inputs pickled to a temporary file, removed when the tasks are done.

    Named by this process's pid and start time, so that a later sweep removes the file of a
    sweep killed with SIGKILL (which has no chance to) and never a running sweep's.
    """
    folder = Path(tempfile.gettempdir())
    for stale in folder.glob(f"{SHARED_FILE_PREFIX}*.pickle"):
        pid, start = (stale.name.removeprefix(SHARED_FILE_PREFIX).split("-") + ["", ""])[:2]
        if pid.isdigit() and start.isdigit() and not process_running(int(pid), int(start)):
            with contextlib.suppress(OSError):  # another user's, or gone meanwhile
                stale.unlink()
    start = process_start_ticks(os.getpid()) or 0
    descriptor, path = tempfile.mkstemp(
        prefix=f"{SHARED_FILE_PREFIX}{os.getpid()}-{start}-", suffix=".pickle", dir=folder
    )
    try:
        with os.fdopen(descriptor, "wb") as file:
            pickle.dump(shared, file, protocol=pickle.HIGHEST_PROTOCOL)
        yield path
    finally:
        Path(path).unlink(missing_ok=True)


def _pool(workers: int, shared_path: str) -> ProcessPoolExecutor:
    # Spawn, not fork: a forked copy of a process that has started TensorFlow's thread pools
    # can deadlock.
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(shared_path, os.getpid()),
    )


def _close(pool: ProcessPoolExecutor, finished: bool, stuck: bool = False) -> None:
    """Shut a pool down; unless its tasks all finished, kill its workers first (no waiting)."""
    if not finished:
        # A kill, Ctrl-C or a given-up pool: a plain shutdown would wait for the running tasks.
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            with contextlib.suppress(Exception):
                process.kill()
    if not stuck:  # a stuck submit holds the pool's lock, which shutdown would wait for
        pool.shutdown(wait=finished, cancel_futures=True)


def _submit_all(
    pool: ProcessPoolExecutor, function: Callable[..., Any], tasks: dict[int, tuple[Any, ...]]
) -> tuple[dict[Future, int], list[int], bool]:
    """Submit tasks, waiting at most SUBMIT_TIMEOUT_SECONDS: their futures, the indices not
    submitted (the pool broke meanwhile), and whether submitting is stuck (then nothing counts
    as submitted)."""
    futures: dict[Future, int] = {}
    pending = list(tasks)

    def submit() -> None:
        # A worker that died while the pool was still taking tasks breaks it: the tasks not
        # submitted are retried like the ones it lost.
        with contextlib.suppress(BrokenProcessPool, RuntimeError):
            while pending:
                future = pool.submit(_call_with_worker_shared, function, tasks[pending[0]])
                futures[future] = pending.pop(0)

    submitter = threading.Thread(target=submit, daemon=True)
    submitter.start()
    submitter.join(SUBMIT_TIMEOUT_SECONDS)
    if submitter.is_alive():
        logger.error(
            "Sweep: starting the worker processes did not return within %.0f s; giving that "
            "pool up and running its runs in fresh workers",
            SUBMIT_TIMEOUT_SECONDS,
        )
        return {}, list(tasks), True
    return futures, pending, False


def _run_on_processes(function, shared, tasks, labels, settings, record) -> None:
    workers = min(settings["workers"] or os.cpu_count() or 1, len(tasks)) or 1
    with _shared_inputs_file(shared) as shared_path:
        lost = _run_in_one_pool(function, shared_path, tasks, labels, workers, record)
        if lost:
            logger.warning(
                "A sweep worker process died; %d unfinished run(s) are retried, each alone in a "
                "worker so that one bad run cannot take the others down.",
                len(lost),
            )
            _retry_alone(function, shared_path, tasks, labels, workers, lost, record)


def _run_in_one_pool(function, shared_path, tasks, labels, workers, record) -> list[int]:
    """Run every task on one pool of workers; the indices it lost to a worker's death."""
    pool = _pool(workers, shared_path)
    finished = stuck = False
    try:
        futures, lost, stuck = _submit_all(pool, function, dict(enumerate(tasks)))
        for future in as_completed(futures):
            index = futures[future]
            if isinstance(future.exception(), BrokenProcessPool):
                lost.append(index)
            else:
                record(index, _outcome(future, labels[index]))
        finished = not lost
    finally:
        _close(pool, finished, stuck)
    return lost


def _retry_alone(function, shared_path, tasks, labels, workers, lost, record) -> None:
    """Retry lost tasks on up to ``workers`` one-worker pools (lanes), one task at a time in
    each, so that a worker's death is its task's: that task is recorded failed, not retried."""
    queue = sorted(lost)
    lanes: list[ProcessPoolExecutor | None] = [None] * min(workers, len(queue))
    running: dict[Future, tuple[int, int]] = {}  # future -> (lane, task index)
    try:
        while queue or running:
            busy = {lane for lane, _ in running.values()}
            for lane in [lane for lane in range(len(lanes)) if lane not in busy]:
                if queue:
                    index = queue.pop(0)
                    future = _start_alone(lanes, lane, function, shared_path, tasks[index])
                    if future is None:  # a fresh worker of its own would not take it
                        record(index, TaskOutcome(labels[index], error=WORKER_DIED))
                    else:
                        running[future] = (lane, index)
            if not running:
                continue
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                lane, index = running.pop(future)
                if isinstance(future.exception(), BrokenProcessPool):
                    _close(lanes[lane], finished=False)  # type: ignore[arg-type]
                    lanes[lane] = None
                    record(index, TaskOutcome(labels[index], error=WORKER_DIED))
                else:
                    record(index, _outcome(future, labels[index]))
    finally:
        for pool in lanes:
            if pool is not None:
                _close(pool, finished=not running and not queue)


def _start_alone(
    lanes: list[ProcessPoolExecutor | None],
    lane: int,
    function: Callable[..., Any],
    shared_path: str,
    task: tuple[Any, ...],
) -> Future | None:
    """Submit one task to a lane's pool; None if a fresh pool would not take it."""
    while True:
        fresh = lanes[lane] is None
        pool = lanes[lane] = lanes[lane] or _pool(1, shared_path)
        futures, unsubmitted, stuck = _submit_all(pool, function, {0: task})
        if not unsubmitted:
            return next(iter(futures))
        _close(pool, finished=False, stuck=stuck)
        lanes[lane] = None
        if fresh:
            return None
        # Else the lane's worker died between tasks, not of this task: a fresh one takes it.


def dask_scheduler_address(settings: dict[str, Any]) -> str:
    """The scheduler to connect to: the parameter, else Dask's own configuration."""
    import dask  # noqa: PLC0415  # only the dask executor needs it

    address = settings.get("scheduler_address") or dask.config.get(DASK_SCHEDULER_CONFIG_KEY, None)
    if not address:
        raise ValueError(
            "sweep.executor.type is 'dask' but no scheduler address is set: set "
            "sweep.executor.scheduler_address (e.g. tcp://10.0.0.5:8786) or the environment "
            "variable DASK_SCHEDULER_ADDRESS."
        )
    return address


def _run_on_dask(function, shared, tasks, labels, settings, record) -> None:
    from distributed import Client  # noqa: PLC0415  # only the dask executor needs it
    from distributed import as_completed as dask_as_completed  # noqa: PLC0415

    address = dask_scheduler_address(settings)
    with Client(address) as client:
        logger.info(
            "Sweep on the Dask cluster at %s (%d workers); dashboard: %s",
            address,
            len(client.scheduler_info().get("workers", {})),
            client.dashboard_link,
        )
        # Scattered once, then read by every task: not pickled into each task's message.
        [shared_future] = client.scatter([shared], broadcast=True, hash=False)
        futures = {
            client.submit(function, shared_future, *task, pure=False): index
            for index, task in enumerate(tasks)
        }
        for future in dask_as_completed(futures):
            index = futures[future]
            record(index, _outcome(future, labels[index]))
            future.release()
        shared_future.release()
