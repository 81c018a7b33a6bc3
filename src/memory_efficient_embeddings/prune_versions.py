"""Keep only the newest N versions of every versioned dataset under data/ (each run adds one).

    python -m memory_efficient_embeddings.prune_versions --keep 3 [--dry-run] [--root data]
    make prune KEEP=3

A versioned dataset is a folder `<file>/` holding version folders named like Kedro's timestamps
(`2026-11-22T22.34.40.334Z/`), each holding `<file>`. Only such version folders are deleted;
anything else (raw archives, unversioned files, folders of another shape) is left alone.

A `kedro run` in progress declares the versions it reads and writes in a live-run file
(`<run_id>.live.json` beside the run manifests, removed when the run ends); those versions are
never pruned while its process lives, so pruning during a run cannot delete that run's inputs.
A live-run file whose process has ended (a killed run: no such pid, a zombie, or the pid reused by
a process started at another time) is stale: pruning deletes it (a dry run lists it), and so does
the start of every `kedro run`. A live run's file is never deleted.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

# Kedro's save version: UTC time, e.g. 2026-11-22T22.34.40.334Z (sorts chronologically as text).
VERSION_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}\.\d{2}\.\d{2}\.\d{3}Z$")


LIVE_RUN_SUFFIX = ".live.json"  # <run_id>.live.json: the versions a running `kedro run` holds


@dataclass(frozen=True)
class Pruned:
    """Version folders deleted (or to delete, in a dry run) and the bytes they held."""

    folders: list[Path]
    bytes: int
    held_by_live_runs: tuple[Path, ...] = ()  # old versions kept because a running run uses them
    stale_live_runs: tuple[Path, ...] = ()  # live-run files of ended runs, deleted (or to delete)


def _process_stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (Linux); None without such a pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces: split after its ')'. Field 3 is the state.
    return stat.rsplit(")", 1)[1].split()


def process_start_ticks(pid: int) -> int | None:
    """When the process started (clock ticks since boot, Linux); None when it does not exist."""
    fields = _process_stat(pid)
    return int(fields[19]) if fields is not None else None  # field 22, starttime


def process_running(pid: int, start_ticks: int | None) -> bool:
    """Whether the process `pid`, started at `start_ticks` (None: unknown), is still running.

    A zombie (ended, its exit status not yet collected) is not running; a pid now used by a
    process started at another time is another process. Without /proc (not Linux), a pid that
    exists counts as running.
    """
    fields = _process_stat(pid)
    if fields is not None:
        ended = fields[0] in {"Z", "X"}  # zombie, dead
        return not ended and (start_ticks is None or int(fields[19]) == start_ticks)
    if Path("/proc/self/stat").exists():  # /proc works, and has no such pid
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


def live_run_record(folders: list[Path]) -> dict:
    """The live-run file's content for this process and the version folders it holds."""
    pid = os.getpid()
    return {
        "pid": pid,
        "start_ticks": process_start_ticks(pid),
        "folders": sorted(str(folder.resolve()) for folder in folders),
    }


def _read_live_run(path: Path) -> tuple[int, int | None, list[Path]]:
    """A live-run file's pid, start ticks and held folders; ValueError if it is not one."""
    try:
        record = json.loads(path.read_text())
        return (
            int(record["pid"]),
            record.get("start_ticks"),
            [Path(folder) for folder in record["folders"]],
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"{path} is not a readable live-run file ({exc}); if no `kedro run` is running, "
            "delete it and prune again."
        ) from exc


def remove_stale_live_runs(folder: Path, dry_run: bool = False) -> list[Path]:
    """Delete the live-run files in `folder` whose run has ended; return them.

    A file that cannot be read is left alone (it may be another tool's), and a live run's file
    is never touched: its process is running with the start time the file records.
    """
    stale = []
    for path in sorted(folder.glob(f"*{LIVE_RUN_SUFFIX}")) if folder.is_dir() else []:
        try:
            pid, start, _ = _read_live_run(path)
        except ValueError:
            continue
        if not process_running(pid, start):
            stale.append(path)
            if not dry_run:
                path.unlink(missing_ok=True)
    return stale


def held_by_live_runs(root: Path) -> tuple[set[Path], list[Path]]:
    """Version folders that running `kedro run` processes hold, and the stale live-run files
    (of runs that have ended) under `root`; ValueError, before anything is deleted, for a
    live-run file that cannot be read."""
    held: set[Path] = set()
    stale: list[Path] = []
    for path in sorted(root.rglob(f"*{LIVE_RUN_SUFFIX}")):
        # Half-written or foreign: keep everything rather than guess (prune again later).
        pid, start, folders = _read_live_run(path)
        if process_running(pid, start):
            held.update(folders)
        else:
            stale.append(path)
    return held, stale


def _versions(dataset: Path) -> list[Path]:
    """The version folders of a versioned dataset folder, oldest first."""
    return sorted(
        child
        for child in dataset.iterdir()
        if child.is_dir()
        and not child.is_symlink()
        and VERSION_NAME.match(child.name)
        and (child / dataset.name).exists()
    )


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def prune_versions(root: Path, keep: int, dry_run: bool = False) -> Pruned:
    """Delete all but the `keep` newest versions of each versioned dataset under `root`."""
    if keep < 1:
        raise ValueError(f"keep is {keep}; keep at least 1 version (the latest run's).")
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder; pass the project's data folder.")
    held, stale = held_by_live_runs(root)
    folders: list[Path] = []
    kept: list[Path] = []
    for dataset in sorted(p for p in root.rglob("*") if p.is_dir() and not p.is_symlink()):
        if VERSION_NAME.match(dataset.name):
            continue
        versions = _versions(dataset)
        for folder in versions[: max(len(versions) - keep, 0)]:
            (kept if folder.resolve() in held else folders).append(folder)
    freed = sum(_size(folder) for folder in folders)
    if not dry_run:
        for folder in folders:
            shutil.rmtree(folder)
        for path in stale:
            path.unlink(missing_ok=True)
    return Pruned(folders, freed, tuple(kept), tuple(stale))


def main(argv: list[str] | None = None) -> int:
    """Command line: prune, then say what went (or would go) and how much space it frees."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--keep", type=int, required=True, help="versions to keep per dataset")
    parser.add_argument("--root", type=Path, default=Path("data"), help="default: data")
    parser.add_argument("--dry-run", action="store_true", help="list, delete nothing")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        pruned = prune_versions(args.root, args.keep, args.dry_run)
    except (ValueError, FileNotFoundError) as exc:
        logger.error("%s", exc)
        return 2
    verb = "Would delete" if args.dry_run else "Deleted"
    for folder in pruned.folders:
        logger.info("%s %s", verb, folder)
    for folder in pruned.held_by_live_runs:
        logger.info("Kept %s: a running `kedro run` uses it", folder)
    for path in pruned.stale_live_runs:
        logger.info("%s %s: its run has ended", verb, path)
    logger.info(
        "%s %d old version(s), %.1f MiB; kept the newest %d of each dataset.",
        verb,
        len(pruned.folders),
        pruned.bytes / 2**20,
        args.keep,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
