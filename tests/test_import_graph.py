"""The package's import graph: no cycles, and the library floors never import a pipeline.

The graph is read from the source files with `ast` (no module is imported), and counts every
`import` of the package, function-level ones included: a cycle through a deferred import still
ties the modules together.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "memory_efficient_embeddings"
SOURCE = Path(__file__).resolve().parents[1] / "src" / PACKAGE
# Floors below the pipelines: the layers, the modeling code and the parameter schema.
LOWER_FLOORS = (f"{PACKAGE}.embeddings", f"{PACKAGE}.modeling", f"{PACKAGE}.parameters")


def _module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _imported(node: ast.AST, module: str, is_package: bool, modules: set[str]) -> set[str]:
    """The package's modules one import statement loads (a submodule, else its package)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:  # relative: from the module's own package upwards
            package = module.split(".") if is_package else module.split(".")[:-1]
            package = package[: len(package) - (node.level - 1)]
            base = ".".join([*package, base] if base else package)
        names = [f"{base}.{alias.name}" for alias in node.names]
        names = [name if name in modules else base for name in names]
    else:
        return set()
    return {module for name in names if (module := _owner(name, modules)) is not None}


def _owner(name: str, modules: set[str]) -> str | None:
    """The package's module that defines `name` (`a.b.f` of a function: `a.b`), or None."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    """Each module of the package -> the package's modules it imports anywhere in its body."""
    files = {_module_name(path): path for path in SOURCE.rglob("*.py")}
    modules = set(files)
    graph = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        edges = set()
        for node in ast.walk(tree):
            edges |= _imported(node, module, _is_package(path), modules)
        graph[module] = edges - {module}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle as its path (first module repeated at the end), or None: depth-first search."""
    state: dict[str, str] = {}  # "open" on the current path, "done" once fully explored
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = "open"
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == "open":
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)) is not None:
                return cycle
        path.pop()
        state[module] = "done"
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)) is not None:
            return cycle
    return None


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, stack = set(), [start]
    while stack:
        for target in graph.get(stack.pop(), ()):
            if target not in seen:
                seen.add(target)
                stack.append(target)
    return seen


def _in(module: str, floor: str) -> bool:
    return module == floor or module.startswith(floor + ".")


def test_the_graph_reads_every_kind_of_import() -> None:
    graph = import_graph()
    assert f"{PACKAGE}.embeddings.layers" in graph[f"{PACKAGE}.embeddings.cce"]  # from-import
    # A relative import of a submodule from a package's __init__.
    assert f"{PACKAGE}.pipelines.sweep.pipeline" in graph[f"{PACKAGE}.pipelines.sweep"]
    # A function-level import.
    assert f"{PACKAGE}.parameters" in graph[f"{PACKAGE}.hooks"]


def test_find_cycle_reports_the_path() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_no_import_cycles() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_lower_floors_never_import_a_pipeline() -> None:
    graph = import_graph()
    problems = [
        f"{module} -> {target}"
        for module in graph
        if any(_in(module, floor) for floor in LOWER_FLOORS)
        for target in sorted(reachable(graph, module))
        if _in(target, f"{PACKAGE}.pipelines")
    ]
    assert not problems, "imports of pipelines/ from below them:\n" + "\n".join(problems)
