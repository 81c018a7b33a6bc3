"""docs/parameters.md and the README's Configuration table tell the truth about conf/base.

Each table row names keys (the first a full dotted path, the others its siblings unless they start
with a section) and, in the default column, one backticked YAML value per key, before any `;` or
` (`; `<model>` stands for both models and `(`memory_efficient`: `v`)` gives that model's own
value. Every documented key must exist in conf/base with the stated default; every key of
conf/base must be documented in docs/parameters.md (itself or a section above it); and each
"N techniques, M points" must be what the grid expands to.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from memory_efficient_embeddings.modeling.grid import plan_sweep
from memory_efficient_embeddings.parameters import optimizer_names, release_names
from tests.test_parameters import _parameters

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PARAMETERS_DOC = PROJECT_ROOT / "docs" / "parameters.md"
README = PROJECT_ROOT / "README.md"
MODELS = ("baseline", "memory_efficient")
SIDES = ("user_embedding", "movie_embedding")
# Rows whose default is described rather than given: each is checked another way below.
DESCRIBED_DEFAULTS = {
    "data.synthetic.*": "the release's shape and the calibrated knobs (synthetic-data.md)",
    "sweep.techniques": "the counts of techniques (the recipe's included) and points, by plan_sweep",
    "sweep.recipe": "the recipe's two models, counted by plan_sweep",
    "<model>.model.<side>.blocks": "part of the embedding spec given in full above it",
    "memory_efficient.layouts": "the candidates, by tests/modeling/test_layout_selection.py",
}
ROW = re.compile(r"^\| *(?P<keys>`[^|]*?) *\| *(?P<default>[^|]*?) *\| .*\|$")
UNSET = object()


def _rows(path: Path) -> Iterator[tuple[list[str], str]]:
    """(key names, default cell) of each table row whose first cell names keys.

    In the README, only its Configuration section's table.
    """
    text = path.read_text()
    if path == README:
        text = text.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    for line in text.splitlines():
        match = ROW.match(line)
        if match:
            yield re.findall(r"`([^`]+)`", match["keys"]), match["default"]


def _full_paths(names: list[str], sections: set[str]) -> list[str]:
    """`training.seed`, `deterministic` -> training.seed, training.deterministic."""
    first, *others = names
    parent = first.rpartition(".")[0]
    return [first] + [
        name if name.split(".")[0] in sections else f"{parent}.{name}" for name in others
    ]


def _expand(path: str) -> list[str]:
    """`<model>` and `<side>` placeholders -> every concrete path."""
    paths = [path]
    for placeholder, values in (("<model>", MODELS), ("<side>", SIDES)):
        paths = (
            [p.replace(placeholder, v) for p in paths for v in values]
            if any(placeholder in p for p in paths)
            else paths
        )
    return paths


def _lookup(parameters: dict, path: str) -> Any:
    value: Any = parameters
    for key in path.split("."):
        if not isinstance(value, dict) or key not in value:
            return UNSET
        value = value[key]
    return value


def _stated(default: str, key: str = "") -> tuple[list[Any], Any]:
    """The stated values (leading backticked YAML) and memory_efficient's own, or UNSET."""
    if key.endswith(".*"):
        return [], UNSET  # a whole section: its keys' defaults are described
    leading = re.split(r";| \(", default, maxsplit=1)[0]
    values = [yaml.safe_load(v) for v in re.findall(r"`([^`]+)`", leading)]
    own = re.search(r"\(`memory_efficient`: `([^`]+)`\)", default)
    prose = "(`memory_efficient`:" in default and own is None
    return values, (yaml.safe_load(own[1]) if own else (None if prose else UNSET))


def _problems(path: Path, parameters: dict) -> list[str]:
    """Each documented key that conf/base lacks, or whose stated default is not conf/base's."""
    problems = []
    sections = set(parameters) | {"<model>"}
    for names, default in _rows(path):
        keys = _full_paths(names, sections)
        values, own = _stated(default, keys[0])
        if len(values) > len(keys):
            problems.append(f"{names}: {len(values)} defaults for {len(keys)} keys")
        for index, key in enumerate(keys):
            concrete = _expand(key.removesuffix(".*"))
            found = [p for p in concrete if _lookup(parameters, p) is not UNSET]
            if not found:
                problems.append(f"{key}: not in conf/base")
                continue
            if index >= len(values):
                continue  # described, not given (checked elsewhere or in prose)
            for concrete_path in found:
                expected = values[index]
                if concrete_path.startswith("memory_efficient.") and own is not UNSET:
                    if own is None:
                        continue  # memory_efficient's own value is described in prose
                    expected = own
                actual = _lookup(parameters, concrete_path)
                if actual != expected:
                    problems.append(
                        f"{concrete_path}: documented {expected!r}, conf/base {actual!r}"
                    )
    return problems


@pytest.fixture(scope="module")
def base() -> dict:
    return _parameters("local")


@pytest.mark.parametrize("path", [PARAMETERS_DOC, README], ids=["docs/parameters.md", "README"])
def test_every_documented_key_exists_with_its_stated_default(base, path) -> None:
    assert _problems(path, base) == []


def test_the_checker_sees_a_wrong_default_and_a_missing_key(base, tmp_path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(
        "| key | default | meaning |\n|---|---|---|\n"
        "| `training.learning_rate`, `batch_size` | `0.003`, `1024` | x |\n"
        "| `<model>.model.embedding_dim` | `64` (`memory_efficient`: `8`) | x |\n"
        "| `training.nonexistent` | `1` | x |\n"
    )
    assert _problems(doc, base) == [
        "training.batch_size: documented 1024, conf/base 2048",
        "memory_efficient.model.embedding_dim: documented 8, conf/base None",
        "training.nonexistent: not in conf/base",
    ]


def _leaves(value: Any, path: str = "") -> Iterator[str]:
    if isinstance(value, dict) and value:
        for key, child in value.items():
            yield from _leaves(child, f"{path}.{key}" if path else key)
    else:
        yield path


def test_every_key_of_conf_base_is_documented(base) -> None:
    sections = set(base) | {"<model>"}
    documented = {
        concrete
        for names, _ in _rows(PARAMETERS_DOC)
        for key in _full_paths(names, sections)
        for concrete in _expand(key.removesuffix(".*"))
    }
    undocumented = [
        leaf
        for leaf in _leaves(base)
        if not any(leaf == key or leaf.startswith(f"{key}.") for key in documented)
    ]
    assert undocumented == []


def test_every_described_default_is_checked_elsewhere() -> None:
    sections = {"data", "split", "training", "sweep", "<model>"}
    described = {
        key
        for names, default in _rows(PARAMETERS_DOC)
        for key in _full_paths(names, sections)[:1]
        if not _stated(default, key)[0]
    }
    assert described == set(DESCRIBED_DEFAULTS)


def _grid_size(env: str) -> tuple[int, int]:
    """(techniques, the recipe's included, and points) that the env's grid expands to."""
    parameters = _parameters(env)
    plan = plan_sweep(parameters["sweep"], parameters["baseline"]["model"])
    return len({p["technique"] for p in plan}), len(plan)


def _size_claims(path: Path) -> list[tuple[str, tuple[int, int]]]:
    """Each "N techniques[ (...)], M points" with the env it is about: the last `--env=X` before
    it in the same sentence or table cell, else the base configuration."""
    text = " ".join(path.read_text().split())
    claims = []
    for match in re.finditer(r"(\d+) techniques(?: \([^)]*\))?, (\d+) points", text):
        before = re.split(r" \| |\. ", text[max(0, match.start() - 100) : match.start()])[-1]
        envs = re.findall(r"--env=(\w+)", before)
        claims.append((envs[-1] if envs else "local", (int(match[1]), int(match[2]))))
    return claims


@pytest.mark.parametrize("path", [PARAMETERS_DOC, README], ids=["docs/parameters.md", "README"])
def test_the_stated_sweep_sizes_are_what_the_grid_expands_to(path) -> None:
    claims = _size_claims(path)
    assert claims, "no sweep size stated"
    for env, stated in claims:
        assert stated == _grid_size(env), env


def _choices(path: Path, first_key: str) -> set[str]:
    """The backticked names in the meaning column of the row for `first_key`, before ` (` or `;`."""
    for line in path.read_text().splitlines():
        if line.startswith(f"| `{first_key}`"):
            meaning = line.split(" | ")[2]
            return set(re.findall(r"`([^`]+)`", re.split(r";| \(", meaning, maxsplit=1)[0]))
    raise AssertionError(f"no row for {first_key} in {path.name}")


@pytest.mark.parametrize(
    ("path", "first_key", "choices"),
    [
        (PARAMETERS_DOC, "training.optimizer", optimizer_names),
        (README, "training.optimizer", optimizer_names),
        (PARAMETERS_DOC, "data.dataset", release_names),
    ],
)
def test_the_listed_choices_are_the_schemas(path, first_key, choices) -> None:
    assert _choices(path, first_key) == set(choices())
