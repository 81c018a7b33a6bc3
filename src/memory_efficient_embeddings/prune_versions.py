"""Keep only the newest N versions of every versioned dataset under data/ (each run adds one).

    python -m memory_efficient_embeddings.prune_versions --keep 3 [--dry-run] [--root data]
    make prune KEEP=3

A versioned dataset is a folder `<file>/` holding version folders named like Kedro's timestamps
(`2026-11-22T22.34.40.334Z/`), each holding `<file>`. Only such version folders are deleted;
anything else (raw archives, unversioned files, folders of another shape) is left alone.

A `kedro run` in progress declares the versions it reads and writes in a live-run file
(`<run_id>.live.json` beside the run manifests, removed when the run ends); those versions are
never pruned while its process lives, so pruning during a run cannot delete that run's inputs.
A live-run file whose process has ended (a killed run) is stale and ignored.
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


def process_start_ticks(pid: int) -> int | None:
    """When the process started (clock ticks since boot, Linux); None when it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime); the command name (field 2) may hold spaces, so split after its ')'.
    return int(stat.rsplit(")", 1)[1].split()[19])


def live_run_record(folders: list[Path]) -> dict:
    """The live-run file's content for this process and the version folders it holds."""
    pid = os.getpid()
    return {
        "pid": pid,
        "start_ticks": process_start_ticks(pid),
        "folders": sorted(str(folder.resolve()) for folder in folders),
    }


def held_by_live_runs(root: Path) -> set[Path]:
    """Version folders that running `kedro run` processes hold (stale live-run files ignored)."""
    held: set[Path] = set()
    for path in root.rglob(f"*{LIVE_RUN_SUFFIX}"):
        try:
            record = json.loads(path.read_text())
            pid, start = int(record["pid"]), record.get("start_ticks")
            folders = [Path(folder) for folder in record["folders"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # Half-written or foreign: keep everything rather than guess (prune again later).
            raise ValueError(
                f"{path} is not a readable live-run file ({exc}); if no `kedro run` is running, "
                "delete it and prune again."
            ) from exc
        now = process_start_ticks(pid)
        if now is None or (start is not None and now != start):
            logger.info("Ignoring %s: its run (pid %d) has ended", path, pid)
            continue
        held.update(folders)
    return held


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
    held = held_by_live_runs(root)
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
    return Pruned(folders, freed, tuple(kept))


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
