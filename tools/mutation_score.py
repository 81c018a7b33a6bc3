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
    lines.append(f"Mutants in scope: {len(statuses)} ({dict(sorted(counts.items()))})")
    score = caught / max(len(statuses), 1)
    lines.append(f"Mutation score: {caught}/{len(statuses)} = {score:.1%} killed")
    sys.stdout.write("\n".join(lines) + "\n")
    return 1 if counts["not checked"] else 0


if __name__ == "__main__":
    sys.exit(main())
