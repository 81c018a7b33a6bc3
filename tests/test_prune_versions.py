"""Pruning keeps exactly the N newest versions of each versioned dataset and nothing else goes."""

from __future__ import annotations

from pathlib import Path

import pytest

from memory_efficient_embeddings.prune_versions import main, prune_versions

VERSIONS = [f"2026-11-{day:02d}T10.00.00.000Z" for day in (1, 2, 3, 4, 5)]


def _write(path: Path, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def data(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    # Five versions of a file dataset, listed out of order on purpose.
    for version in reversed(VERSIONS):
        _write(root / "08_reporting" / "comparison.md" / version / "comparison.md")
    # Two versions of a model, a `.keras` file, and an older one saved as a folder.
    for version in VERSIONS[:2]:
        _write(root / "06_models" / "baseline.keras" / version / "baseline.keras")
    _write(root / "01_raw" / "ml-100k.zip")  # raw data: never versioned, never touched
    _write(root / "08_reporting" / "notes.md")  # an unversioned file
    # A folder named like a version but not holding its dataset's file: not Kedro's, kept.
    _write(root / "08_reporting" / "mine" / VERSIONS[0] / "something_else.txt")
    return root


def _all_files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def test_keeps_exactly_the_newest_versions_and_deletes_nothing_else(data: Path) -> None:
    before = _all_files(data)
    pruned = prune_versions(data, keep=3)
    comparison = data / "08_reporting" / "comparison.md"
    assert sorted(p.name for p in comparison.iterdir()) == VERSIONS[2:]
    expected_gone = {comparison / v / "comparison.md" for v in VERSIONS[:2]}
    assert before - _all_files(data) == expected_gone
    assert sorted(pruned.folders) == sorted(comparison / v for v in VERSIONS[:2])
    assert pruned.bytes == 2  # two one-byte files


def test_a_dry_run_lists_but_deletes_nothing(data: Path, caplog: pytest.LogCaptureFixture) -> None:
    before = _all_files(data)
    caplog.set_level("INFO")
    assert main(["--keep", "1", "--root", str(data), "--dry-run"]) == 0
    assert _all_files(data) == before
    # comparison.md: 4 of 5; baseline.keras: 1 of 2.
    assert "Would delete 5 old version(s)" in caplog.text


def test_keeping_zero_is_refused(data: Path) -> None:
    assert main(["--keep", "0", "--root", str(data)]) == 2
    with pytest.raises(ValueError, match="keep at least 1"):
        prune_versions(data, keep=0)
