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


def _live_file(root: Path, name: str, record: dict) -> Path:
    import json  # noqa: PLC0415

    path = root / "09_runs" / f"{name}.live.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return path


def test_versions_a_running_run_holds_are_never_pruned(data: Path) -> None:
    from memory_efficient_embeddings.prune_versions import live_run_record  # noqa: PLC0415

    held = data / "08_reporting" / "comparison.md" / VERSIONS[1]
    _live_file(data, "run-1", live_run_record([held]))  # this test's process is the live run
    pruned = prune_versions(data, keep=1)
    assert held.exists()
    assert pruned.held_by_live_runs == (held,)
    remaining = sorted(p.name for p in (data / "08_reporting" / "comparison.md").iterdir())
    assert remaining == [VERSIONS[1], VERSIONS[4]]  # the held one and the newest


def test_a_finished_runs_live_file_holds_nothing(data: Path) -> None:
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    held = data / "08_reporting" / "comparison.md" / VERSIONS[1]
    _live_file(
        data,
        "run-2",
        {"pid": int(finished.stdout), "start_ticks": 1, "folders": [str(held.resolve())]},
    )
    prune_versions(data, keep=1)
    assert not held.exists()


def test_a_reused_pid_is_not_the_run_that_wrote_the_file(data: Path) -> None:
    import os  # noqa: PLC0415

    from memory_efficient_embeddings.prune_versions import process_start_ticks  # noqa: PLC0415

    held = data / "08_reporting" / "comparison.md" / VERSIONS[1]
    # Our pid, but another start time: the run that wrote this file has ended.
    _live_file(
        data,
        "run-3",
        {
            "pid": os.getpid(),
            "start_ticks": process_start_ticks(os.getpid()) - 1,
            "folders": [str(held.resolve())],
        },
    )
    prune_versions(data, keep=1)
    assert not held.exists()


def test_an_unreadable_live_file_stops_the_prune_before_deleting_anything(data: Path) -> None:
    path = data / "09_runs" / "run-4.live.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"pid": ')
    before = _all_files(data)
    with pytest.raises(ValueError, match="is not a readable live-run file"):
        prune_versions(data, keep=1)
    assert _all_files(data) == before


# -- Stale live-run files are removed, a live one never (issue 30) ----------------------------


@pytest.fixture
def zombie():
    """A child that has exited but whose exit status nobody collected yet (pid still taken)."""
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415
    import time  # noqa: PLC0415

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    stat = Path(f"/proc/{child.pid}/stat")
    deadline = time.monotonic() + 30
    while stat.read_text().rsplit(")", 1)[1].split()[0] != "Z" and time.monotonic() < deadline:
        time.sleep(0.05)
    yield child.pid
    child.wait()


def _live_files(root: Path, zombie: int) -> dict[str, Path]:
    import os  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    from memory_efficient_embeddings.prune_versions import (  # noqa: PLC0415
        live_run_record,
        process_start_ticks,
    )

    held = root / "08_reporting" / "comparison.md" / VERSIONS[1]
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    records = {
        "live": live_run_record([held]),  # this test's process: running
        "ended": {"pid": ended.pid, "start_ticks": 1, "folders": [str(held.resolve())]},
        "zombie": {
            "pid": zombie,
            "start_ticks": process_start_ticks(zombie),
            "folders": [str(held.resolve())],
        },
        "pid reused": {
            "pid": os.getpid(),
            "start_ticks": process_start_ticks(os.getpid()) - 1,
            "folders": [str(held.resolve())],
        },
    }
    return {
        name: _live_file(root, name.replace(" ", "-"), record) for name, record in records.items()
    }


def test_stale_live_run_files_are_removed_and_a_live_ones_kept(data: Path, zombie: int) -> None:
    from memory_efficient_embeddings.prune_versions import remove_stale_live_runs  # noqa: PLC0415

    files = _live_files(data, zombie)
    (data / "09_runs" / "notes.live.json").write_text("not a record")  # someone else's: left
    removed = remove_stale_live_runs(data / "09_runs")
    assert sorted(removed) == sorted(files[name] for name in ("ended", "zombie", "pid reused"))
    assert sorted(p.name for p in (data / "09_runs").iterdir()) == [
        "live.live.json",
        "notes.live.json",
    ]


def test_prune_deletes_stale_live_run_files_and_a_dry_run_only_lists_them(data: Path, zombie: int):
    files = _live_files(data, zombie)
    stale = sorted(files[name] for name in ("ended", "zombie", "pid reused"))
    dry = prune_versions(data, keep=1, dry_run=True)
    assert sorted(dry.stale_live_runs) == stale and all(path.exists() for path in stale)
    pruned = prune_versions(data, keep=1)
    assert sorted(pruned.stale_live_runs) == stale and not any(path.exists() for path in stale)
    assert files["live"].exists()
    assert pruned.held_by_live_runs == (data / "08_reporting" / "comparison.md" / VERSIONS[1],)


def test_a_run_removes_stale_live_run_files_when_it_starts(data: Path, zombie: int) -> None:
    from kedro.io import DataCatalog, Version  # noqa: PLC0415
    from kedro_datasets.json import JSONDataset  # noqa: PLC0415

    from memory_efficient_embeddings.hooks import RunRecordHooks  # noqa: PLC0415

    files = _live_files(data, zombie)
    manifest = JSONDataset(
        filepath=str(data / "09_runs" / "run_manifest.json"), version=Version(None, None)
    )
    RunRecordHooks()._declare_live_run("new-run", DataCatalog({"run_manifest": manifest}), {})
    left = sorted(p.name for p in (data / "09_runs").iterdir())
    assert left == ["live.live.json", "new-run.live.json"]
    assert files["live"].exists()
