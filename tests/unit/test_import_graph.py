"""The import graph of the repository's code has no cycle, and imports flow one way.

A cycle makes a module impossible to read, test or load on its own, and hides a
layer that was never drawn; a product module that imports ops/, bench/ or tools/
would ship operator tooling into every function. The graph is built with `ast`:
every `import x` and `from x import y` anywhere in a file (inside functions and
under `if TYPE_CHECKING:` too, since both still tie the modules together), resolved
to the repository's own modules. Imports by string (`importlib.import_module`) are
not seen: main.py and the writers' registry load their targets that way on purpose.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("functions", "shared", "ops", "bench", "tools")
SINGLE_FILES = ("main.py",)

# (importer's top-level package, a top-level package it must never import) and why.
FORBIDDEN = {
    ("shared", "functions"): "the library never imports a deployed function",
    ("shared", "ops"): "the product never imports operator tooling",
    ("shared", "bench"): "the product never imports the benchmarks",
    ("shared", "tools"): "the product never imports developer tools",
    ("functions", "ops"): "a deployed function never imports operator tooling",
    ("functions", "bench"): "a deployed function never imports the benchmarks",
    ("functions", "tools"): "a deployed function never imports developer tools",
    ("main", "ops"): "the deployed entry point never imports operator tooling",
    ("main", "bench"): "the deployed entry point never imports the benchmarks",
    ("main", "tools"): "the deployed entry point never imports developer tools",
}


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def discover(root: Path = ROOT) -> dict[str, Path]:
    """Every module of the graph: dotted name -> file."""
    files = [root / name for name in SINGLE_FILES]
    for package in PACKAGES:
        files += sorted((root / package).rglob("*.py"))
    return {module_name(path, root): path for path in files if path.exists()}


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The deepest repository module that `name` names (`ops.x.Y` -> `ops.x`), or None if not ours."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def imports_of(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The repository modules that `module` imports, wherever in the file the import stands."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        names: Iterable[str] = ()
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's own package, up `level - 1` packages
                package = module.split(".") if is_package else module.split(".")[:-1]
                base_parts = package[: len(package) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # `from pkg import sub` imports the module pkg.sub when there is one, else a name of pkg.
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                     for alias in node.names]
        for name in names:
            target = _resolve(name, modules)
            if target is not None and target != module:
                found.add(target)
    return found


def build_graph(root: Path = ROOT) -> dict[str, set[str]]:
    modules = discover(root)
    return {module: imports_of(module, path, modules) for module, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(start: str) -> None:
        nonlocal counter
        # Iterative, so a deep graph does not meet the recursion limit.
        work: list[tuple[str, Iterable[str]]] = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = counter
                    counter += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph[succ]))))
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def _describe(component: list[str], graph: dict[str, set[str]]) -> str:
    members = set(component)
    arrows = [f"    {a} -> {b}" for a in component for b in sorted(graph[a] & members)]
    return f"  {len(component)} modules: {', '.join(component)}\n" + "\n".join(arrows)


def test_the_import_graph_has_no_cycle() -> None:
    graph = build_graph()
    found = cycles(graph)
    assert not found, "import cycles:\n" + "\n".join(_describe(c, graph) for c in found)


def against_the_flow(graph: dict[str, set[str]]) -> list[str]:
    """Each import from one top-level package into one it must never import, with why."""
    return [f"  {a} -> {b}: {FORBIDDEN[(a.split('.')[0], b.split('.')[0])]}"
            for a, targets in sorted(graph.items()) for b in sorted(targets)
            if (a.split(".")[0], b.split(".")[0]) in FORBIDDEN]


def test_imports_flow_one_way() -> None:
    wrong = against_the_flow(build_graph())
    assert not wrong, "imports against the flow:\n" + "\n".join(wrong)


# -- the checker itself can see what it must --------------------------------
def _graph_of(tmp_path: Path, files: dict[str, str]) -> dict[str, set[str]]:
    """The import graph of a tree of these files; every folder is a package (an empty `__init__.py` unless given)."""
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        for folder in path.relative_to(tmp_path).parents[:-1]:
            (tmp_path / folder / "__init__.py").touch()
    return build_graph(tmp_path)


@pytest.mark.parametrize(("files", "edges", "found_cycles", "wrong_way"), [
    ({"ops/a.py": "from ops.b import thing\n",
      "ops/b.py": "def thing():\n    from .c import other\n    return other\n",
      "ops/c.py": "from ops import a\n",  # the module ops.a
      "ops/d.py": "import ops.a\n",
      "shared/x.py": "from ops.d import y\n"},
     {"ops.b": {"ops.c"}, "ops.c": {"ops.a"}, "shared.x": {"ops.d"}}, [["ops.a", "ops.b", "ops.c"]],
     ["  shared.x -> ops.d: the product never imports operator tooling"]),
    ({"ops/pkg/__init__.py": "from .model import M\nfrom ops.pkg.service import run\n",
      "ops/pkg/model.py": "class M: ...\n",
      "ops/pkg/service.py": "from ops.pkg.model import M\n",
      "ops/user.py": "from ops.pkg import M, run\n"},
     {"ops.pkg": {"ops.pkg.model", "ops.pkg.service"}, "ops.user": {"ops.pkg"}}, [], []),
], ids=["function-level and relative imports close a cycle", "an __init__ re-exporting its modules is no cycle"])
def test_the_checker_sees_every_import_and_only_real_cycles(
        tmp_path: Path, files: dict[str, str], edges: dict[str, set[str]], found_cycles: list[list[str]],
        wrong_way: list[str]) -> None:
    graph = _graph_of(tmp_path, files)
    assert {module: graph[module] for module in edges} == edges
    assert cycles(graph) == found_cycles
    assert against_the_flow(graph) == wrong_way
