"""The rooms of ``benchmark/`` import in one direction (issue 24), read from the source by ``ast``.

``tests/ogor/test_import_graph.py`` holds the rules between packages (no cycles; ``models``
imports nothing of ``benchmark`` or ``ogor``); this file holds the rules inside ``benchmark``:
every module sits in a room, and a room imports only the rooms :data:`ALLOWED` names. The
lower rooms (``runtime``, ``data``, ``records``) are what every stage shares; evaluation and
reporting never import training, so reading a run does not need the training loop.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ogor.test_import_graph import _imports, _modules

#: room -> the rooms it may import (its own always). A new room needs a line here.
ALLOWED: dict[str, set[str]] = {
    "runtime": set(),
    "data": {"runtime"},
    "records": {"runtime", "data"},
    "evaluation": {"runtime", "data", "records"},
    "training": {"runtime", "data", "records", "evaluation"},
    "released": {"runtime", "data", "records", "evaluation"},
    "reporting": {"runtime", "data", "records", "evaluation"},
    "search": {"runtime", "data", "records", "evaluation"},
    "pipeline": {"runtime", "data", "records", "evaluation", "training", "released",
                 "reporting"},
    "cli": {"runtime", "data", "records", "evaluation", "training", "released", "reporting",
            "pipeline", "search"},
}


def room_of(module: str) -> str | None:
    """``benchmark.training.loop`` -> ``training``; the package itself and other packages: None."""
    parts = module.split(".")
    return parts[1] if parts[0] == "benchmark" and len(parts) > 1 else None


def backward_imports(edges: dict[str, set[str]]) -> list[str]:
    """Every edge between rooms that :data:`ALLOWED` does not list, as one line each."""
    wrong = []
    for module, targets in sorted(edges.items()):
        room = room_of(module)
        if room is None:
            continue
        if room not in ALLOWED:
            wrong.append(f"{module}: room {room!r} has no line in ALLOWED")
            continue
        for target in sorted(targets):
            other = room_of(target)
            if other is not None and other != room and other not in ALLOWED[room]:
                wrong.append(f"{module} imports {target} ({room} may import: "
                             f"{', '.join(sorted(ALLOWED[room])) or 'no other room'})")
    return wrong


@pytest.fixture(scope="module")
def modules() -> dict[str, Path]:
    return _modules()


@pytest.fixture(scope="module")
def edges(modules) -> dict[str, set[str]]:
    known = set(modules)
    return {name: {t for t, _ in _imports(name, path, known)}
            for name, path in modules.items() if name.split(".")[0] == "benchmark"}


def test_every_module_sits_in_a_room(modules):
    flat = [name for name, path in modules.items()
            if name.startswith("benchmark.") and name.count(".") == 1 and path.suffix == ".py"
            and path.name != "__init__.py"]
    assert flat == [], "place each module in a room (docs/architecture.md)"
    rooms = {room_of(name) for name in modules if room_of(name)}
    assert rooms <= set(ALLOWED), f"rooms without a line in ALLOWED: {rooms - set(ALLOWED)}"


def test_rooms_import_in_one_direction(edges):
    assert edges["benchmark.training.loop"], "the walker saw no edge: the test would be vacuous"
    assert backward_imports(edges) == []


def test_evaluation_and_reporting_never_import_training(edges):
    wrong = [f"{m} imports {t}" for m, ts in edges.items() for t in ts
             if room_of(m) in ("evaluation", "reporting", "released", "records")
             and room_of(t) == "training"]
    assert wrong == []


def test_a_planted_backward_import_fails(tmp_path, modules, edges):
    """A real module file importing the training loop from evaluation, read by the same walker,
    is caught: the rule is live, not vacuous."""
    planted = tmp_path / "planted.py"
    planted.write_text("def f():\n    from benchmark.training.loop import run_training\n")
    name = "benchmark.evaluation.planted"
    found = {t for t, _ in _imports(name, planted, set(modules) | {name})}
    assert "benchmark.training.loop" in found
    wrong = backward_imports({**edges, name: found})
    assert wrong == [f"{name} imports benchmark.training.loop (evaluation may import: data, "
                     "records, runtime)"]
    assert backward_imports({"benchmark.data.sets": {"benchmark.records.results"}})
    assert backward_imports({"benchmark.newroom.x": set()}) == [
        "benchmark.newroom.x: room 'newroom' has no line in ALLOWED"]
