"""Kedro telemetry is off for the project itself, not only where KEDRO_DISABLE_TELEMETRY is set.

The project root's `.telemetry` (`consent: false`) is kedro-telemetry's per-project opt-out: a
plain `kedro` call neither tries the network nor writes a `project_id` into pyproject.toml.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from kedro_telemetry.plugin import _check_for_telemetry_consent

PROJECT_ROOT = Path(__file__).resolve().parents[1]
KEDRO = Path(sys.executable).with_name("kedro")
OPT_OUT_VARIABLES = ("KEDRO_DISABLE_TELEMETRY", "DO_NOT_TRACK")
# Loaded first by the subprocess (sitecustomize): every name lookup or connection is logged and
# refused, so a telemetry call shows up in the log instead of reaching the network.
NETWORK_RECORDER = """
import os, socket
def _refused(name):
    def attempt(*args, **kwargs):
        with open(os.environ["NETWORK_LOG"], "a") as log:
            log.write(f"{name} {args[:1]!r}\\n")
        raise OSError("network refused by the test")
    return attempt
socket.getaddrinfo = _refused("getaddrinfo")
socket.create_connection = _refused("create_connection")
socket.socket.connect = _refused("connect")
"""


def test_the_project_root_says_no_to_telemetry(monkeypatch) -> None:
    for name in OPT_OUT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("GITHUB_REPOSITORY_OWNER", raising=False)
    assert _check_for_telemetry_consent(PROJECT_ROOT) is False


def _project_copy(root: Path, with_opt_out: bool) -> Path:
    project = root / "project"
    project.mkdir()
    shutil.copy2(PROJECT_ROOT / "pyproject.toml", project)
    if with_opt_out:
        shutil.copy2(PROJECT_ROOT / ".telemetry", project)
    for folder in ("conf", "src"):
        shutil.copytree(
            PROJECT_ROOT / folder, project / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    return project


def _plain_kedro_call(root: Path, project: Path) -> tuple[bytes, str]:
    """`kedro info` in `project` with no opt-out variable: pyproject.toml after it, network log."""
    hook = root / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(NETWORK_RECORDER)
    log = root / "network.log"
    env = {k: v for k, v in os.environ.items() if k not in OPT_OUT_VARIABLES}
    env |= {
        "PYTHONPATH": f"{hook}{os.pathsep}{project / 'src'}",
        "NETWORK_LOG": str(log),
        "HOME": str(root / "home"),  # kedro-telemetry's user id file stays out of the real home
        "XDG_CONFIG_HOME": str(root / "home" / ".config"),
    }
    env.pop("GITHUB_REPOSITORY_OWNER", None)
    subprocess.run(
        [str(KEDRO), "info"], cwd=project, env=env, check=True, capture_output=True, timeout=300
    )
    return (project / "pyproject.toml").read_bytes(), log.read_text() if log.exists() else ""


@pytest.mark.slow
def test_a_plain_kedro_call_leaves_pyproject_and_the_network_alone(tmp_path) -> None:
    project = _project_copy(tmp_path, with_opt_out=True)
    before = (project / "pyproject.toml").read_bytes()
    after, network = _plain_kedro_call(tmp_path, project)
    assert after == before
    assert network == ""


@pytest.mark.slow
def test_without_the_opt_out_file_the_same_call_is_seen_writing_and_calling(tmp_path) -> None:
    # The control: the recorder and the byte comparison do see telemetry when it is on.
    project = _project_copy(tmp_path, with_opt_out=False)
    after, network = _plain_kedro_call(tmp_path, project)
    assert b"[tool.kedro_telemetry]" in after
    assert "heapanalytics" in network
