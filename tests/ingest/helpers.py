"""Builders of tiny MovieLens-format archives for the ingest tests."""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import replace
from pathlib import Path

from memory_efficient_embeddings.ingest import RELEASES, Release

ROWS = [(1, 10, 5, 100), (1, 20, 3, 101), (2, 10, 4, 102), (3, 30, 1, 103)]


def ratings_text(release: Release, rows=ROWS) -> str:
    """Ratings lines in the release's format."""
    lines = ["userId,movieId,rating,timestamp"] if release.has_header else []
    lines += [release.separator.join(str(v) for v in row) for row in rows]
    return "\n".join(lines) + "\n"


def make_zip(directory: Path, release: Release, text: str, member: str | None = None) -> Path:
    """Write ``<release>.zip`` holding ``text`` as the ratings member."""
    path = directory / release.archive_name
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{release.member.split('/')[0]}/README", "tiny test archive")
        archive.writestr(member or release.member, text)
    return path


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def trusting(release_name: str, path: Path, monkeypatch) -> Release:
    """Make the registry publish this test archive's MD5."""
    release = replace(RELEASES[release_name], md5=md5(path))
    monkeypatch.setitem(RELEASES, release_name, release)
    return release
