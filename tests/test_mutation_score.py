"""`make mutation`'s score: only the mutants in scope count, per module and in all."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "mutation_score.py"
RESULTS = """\
    pkg.grid.x_plan__mutmut_1: killed
    pkg.grid.x_plan__mutmut_2: survived
    pkg.grid.x_plan__mutmut_3: timeout
    pkg.runs.x\u01c1Checkpoints\u01c1identity__mutmut_1: killed
    pkg.runs.x\u01c1Checkpoints\u01c1identity__mutmut_2: no tests
    pkg.runs.x_train__mutmut_1: killed
    pkg.other.x_f__mutmut_1: survived
"""


def _score(*patterns: str, results: str = RESULTS) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *patterns],
        input=results,
        capture_output=True,
        text=True,
        encoding="utf-8",
        check=False,
    )


def test_the_score_counts_only_the_scope_and_lists_its_survivors() -> None:
    result = _score("pkg.grid.*", "pkg.runs.x?Checkpoints?identity__*")
    assert result.returncode == 0
    assert result.stdout.splitlines() == [
        "  survived: pkg.grid.x_plan__mutmut_2",
        "  no tests: pkg.runs.x\u01c1Checkpoints\u01c1identity__mutmut_2",
        "pkg.grid: 2/3 killed",
        "pkg.runs: 1/2 killed",
        "Mutants in scope: 5 ({'killed': 2, 'no tests': 1, 'survived': 1, 'timeout': 1})",
        "Mutation score: 3/5 = 60.0% killed",
    ]


def test_a_mutant_in_scope_never_run_fails_the_score() -> None:
    result = _score("pkg.*", results=RESULTS + "    pkg.runs.x_train__mutmut_2: not checked\n")
    assert result.returncode == 1
    assert "Mutation score: 4/8 = 50.0% killed" in result.stdout
