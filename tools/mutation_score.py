"""Mutation score of `make mutation`'s scope, from `mutmut results --all true` on stdin.

Usage: mutmut results --all true | python tools/mutation_score.py PATTERN...
Killed means a test failed (or timed out) on the mutant; every other outcome of a mutant in
scope counts against the score. Survivors are listed for review (see the README).
"""

from __future__ import annotations

import fnmatch
import sys
from collections import Counter

CAUGHT = {"killed", "timeout"}


def _by_module(statuses: dict[str, str]) -> dict[str, tuple[int, int]]:
    """(killed, total) per module: the mutant name up to its mangled function (`.x_`, `.xǁ`)."""
    tally: dict[str, list[int]] = {}
    for name, status in statuses.items():
        module = name.split(".x_", 1)[0].split(".x\u01c1", 1)[0]
        killed_total = tally.setdefault(module, [0, 0])
        killed_total[0] += status in CAUGHT
        killed_total[1] += 1
    return {module: (killed, total) for module, (killed, total) in tally.items()}


def main() -> int:
    """Print the score and the survivors; exit 1 when a mutant in scope was never run."""
    patterns = sys.argv[1:]
    statuses: dict[str, str] = {}
    for line in sys.stdin:
        name, _, status = line.strip().rpartition(": ")
        if name and any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns):
            statuses[name] = status
    counts = Counter(statuses.values())
    survivors = sorted(name for name, status in statuses.items() if status not in CAUGHT)
    caught = sum(counts[status] for status in CAUGHT)
    lines = [f"  {statuses[name]}: {name}" for name in survivors]
    for module, (killed, total) in sorted(_by_module(statuses).items()):
        lines.append(f"{module}: {killed}/{total} killed")
    lines.append(f"Mutants in scope: {len(statuses)} ({dict(sorted(counts.items()))})")
    score = caught / max(len(statuses), 1)
    lines.append(f"Mutation score: {caught}/{len(statuses)} = {score:.1%} killed")
    sys.stdout.write("\n".join(lines) + "\n")
    return 1 if counts["not checked"] else 0


if __name__ == "__main__":
    sys.exit(main())
