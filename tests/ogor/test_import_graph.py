"""The packages' import graph, read from the source with ``ast``: no cycles, no backward arrows.

Every ``import`` counts, the ones inside functions too: a lazy import hides a cycle from the
interpreter, not from a reader. Edges are between modules of ``toreid``, ``ogor``, ``models`` and
``benchmark`` only (``from a.b import c`` points at ``a.b.c`` when that is a module, else at
``a.b``); a package's ``__init__`` is the package's own module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("toreid", "ogor", "models", "benchmark")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def _imports(name: str, path: Path, known: set[str]) -> list[tuple[str, list[str]]]:
    """(imported module, names taken from it) for every import statement of one module."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[tuple[str, list[str]]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.append((child, []) if child in known else (base, [alias.name]))
    return [(target, names) for target, names in found if target.split(".")[0] in PACKAGES]


@pytest.fixture(scope="module")
def graph() -> dict[str, list[tuple[str, list[str]]]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module, or a module importing itself."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm; the graph has a few hundred nodes
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in edges.get(node, ()):
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_the_graph_is_read(graph):
    """Guards the walker itself: known edges are seen (else every test below passes vacuously)."""
    assert ("ogor.generation.manifest", ["read_manifest"]) in graph["ogor.generation.generate"]
    assert any(t == "ogor.imageio" for t, _ in graph["ogor.generation.verify"])
    assert any(t.startswith("ogor.") for t, _ in graph["benchmark.training.loop"])
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles(graph):
    modules = set(graph)
    edges = {name: {t for t, _ in imports if t in modules} for name, imports in graph.items()}
    assert _cycles(edges) == []


@pytest.mark.parametrize(
    "package, forbidden",
    [
        ("toreid", ("ogor", "models", "benchmark")),
        ("models", ("ogor", "benchmark")),
        ("ogor", ("models", "benchmark")),
    ],
)
def test_nothing_flows_backwards(graph, package, forbidden):
    wrong = [
        f"{name} imports {target}"
        for name, imports in graph.items()
        if name.split(".")[0] == package
        for target, _ in imports
        if target.split(".")[0] in forbidden
    ]
    assert wrong == []


def test_benchmark_uses_only_public_ogor(graph):
    """No private module (a path part starting with ``_``) and no private name of ``ogor``."""
    wrong = [
        f"{name} imports {target} {names}"
        for name, imports in graph.items()
        if name.split(".")[0] == "benchmark"
        for target, names in imports
        if target.split(".")[0] == "ogor"
        and (
            any(part.startswith("_") for part in target.split("."))
            or any(n.startswith("_") for n in names)
        )
    ]
    assert wrong == []


def test_no_package_folder_is_named_like_one_the_tools_skip():
    """``.gitignore``, pytest (``norecursedirs``) and ruff (default excludes) all skip folders
    called ``build`` or ``dist``: code there would go uncommitted, untested and unlinted."""
    skipped = {"build", "dist", "_build", "venv", "node_modules", "site-packages"}
    folders = [
        path.relative_to(ROOT).as_posix()
        for top in (*PACKAGES, "tests")
        for path in (ROOT / top).rglob("*")
        if path.is_dir() and path.name in skipped
    ]
    assert folders == []
