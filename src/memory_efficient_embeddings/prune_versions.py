"""Keep only the newest N versions of every versioned dataset under data/ (each run adds one).

    python -m memory_efficient_embeddings.prune_versions --keep 3 [--dry-run] [--root data]
    make prune KEEP=3

A versioned dataset is a folder `<file>/` holding version folders named like Kedro's timestamps
(`2026-11-22T22.34.40.334Z/`), each holding `<file>`. Only such version folders are deleted;
anything else (raw archives, unversioned files, folders of another shape) is left alone.
"""

from __future__ import annotations

import argparse
import logging
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

# Kedro's save version: UTC time, e.g. 2026-11-22T22.34.40.334Z (sorts chronologically as text).
VERSION_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}\.\d{2}\.\d{2}\.\d{3}Z$")


@dataclass(frozen=True)
class Pruned:
    """Version folders deleted (or to delete, in a dry run) and the bytes they held."""

    folders: list[Path]
    bytes: int


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
    folders: list[Path] = []
    for dataset in sorted(p for p in root.rglob("*") if p.is_dir() and not p.is_symlink()):
        if VERSION_NAME.match(dataset.name):
            continue
        versions = _versions(dataset)
        folders.extend(versions[: max(len(versions) - keep, 0)])
    freed = sum(_size(folder) for folder in folders)
    if not dry_run:
        for folder in folders:
            shutil.rmtree(folder)
    return Pruned(folders, freed)


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
