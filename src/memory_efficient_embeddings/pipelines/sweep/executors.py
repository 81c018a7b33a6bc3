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

import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm  # not tqdm.auto: in Jupyter it wants ipywidgets, or warns

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


# Worker processes keep the shared inputs here: the pool's initializer receives them once.
_worker_shared: Any = None
PARENT_POLL_SECONDS = 0.5  # how soon a worker notices that the sweep's process has died


def _exit_with_parent(parent_pid: int) -> None:
    # A worker outlives a parent killed with SIGKILL (nothing shuts the pool down) and would hold
    # its memory (about 750 MB with TensorFlow) until it finishes its task: poll the parent.
    while os.getppid() == parent_pid:
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(1)


def _start_worker(shared: Any, parent_pid: int) -> None:
    global _worker_shared  # noqa: PLW0603  # one value per worker process, set once
    _worker_shared = shared
    threading.Thread(target=_exit_with_parent, args=(parent_pid,), daemon=True).start()


def _call_with_worker_shared(function: Callable[..., Any], task: tuple[Any, ...]) -> Any:
    return function(_worker_shared, *task)


def _pool(workers: int, shared: Any) -> ProcessPoolExecutor:
    # Spawn, not fork: a forked copy of a process that has started TensorFlow's thread pools
    # can deadlock.
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(shared, os.getpid()),
    )


def _run_on_processes(function, shared, tasks, labels, settings, record) -> None:
    workers = min(settings["workers"] or os.cpu_count() or 1, len(tasks)) or 1
    lost: list[int] = []  # tasks whose pool broke under them: a worker died (killed, OOM)
    with _pool(workers, shared) as pool:
        futures = {
            pool.submit(_call_with_worker_shared, function, task): index
            for index, task in enumerate(tasks)
        }
        for future in as_completed(futures):
            index = futures[future]
            if isinstance(future.exception(), BrokenProcessPool):
                lost.append(index)
            else:
                record(index, _outcome(future, labels[index]))
    if lost:
        logger.warning(
            "A sweep worker process died; %d unfinished run(s) are retried, each in a fresh "
            "worker of its own so that one bad run cannot take the others down.",
            len(lost),
        )
    for index in sorted(lost):  # one at a time: only the run that kills its worker fails
        with _pool(1, shared) as pool:
            future = pool.submit(_call_with_worker_shared, function, tasks[index])
            try:
                outcome = TaskOutcome(labels[index], value=future.result())
            except BrokenProcessPool:
                outcome = TaskOutcome(
                    labels[index],
                    error="its worker process died twice (killed, or out of memory)",
                )
            except Exception as error:  # noqa: BLE001 - the task's own error, reported
                outcome = TaskOutcome(labels[index], error=_describe(error))
        record(index, outcome)


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
