"""No module of the repository over 500 lines (the developers' guide): a longer one is split
by what its parts do, not by line count (see ``docs/architecture.md`` for the rooms)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 500


def test_largest_module_is_at_most_500_lines():
    sizes = {
        path.relative_to(ROOT).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for top in ("toreid", "ogor", "models", "benchmark", "tests", "perf")
        for path in (ROOT / top).rglob("*.py")
    }
    assert sizes, "no module found: the test would be vacuous"
    assert {p: n for p, n in sizes.items() if n > LIMIT} == {}
