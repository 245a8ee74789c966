"""The systems of the MGCC paper's Table 2 as registry names, in the paper's row order.

The list is defined once: the ``"models"`` of each row of ``benchmark/paper_table2.json`` (the
first name of a row is the model that reproduces it), so the published numbers, ``bench run
--models table2`` and the leaderboard's row order cannot drift apart. ``bench run --models all``
is every registered model.

Some Table 2 systems may not be registered in a given checkout (they land one by one);
:func:`expand_model_names` refuses ``table2`` then with one line naming the missing ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from benchmark.reporting.leaderboard import load_paper_table, paper_rank
from toreid.errors import ToreidError

#: Model-list keywords of ``bench run --models``.
ALL = "all"
TABLE2 = "table2"


def table2_models() -> list[str]:
    """The registry name of each Table 2 row, in the paper's order (14 names)."""
    return [row["models"][0] for row in load_paper_table()["rows"] if row.get("models")]


def table2_rank() -> dict[str, int]:
    """Registry name -> its Table 2 row index, for every model a row names (a row may name
    several variants; they share the row's rank)."""
    return paper_rank(load_paper_table())


def missing_table2_models(registered: Iterable[str]) -> list[str]:
    """Table 2 models that are not in ``registered``, in Table 2 order."""
    known = set(registered)
    return [name for name in table2_models() if name not in known]


def expand_model_names(names: Sequence[str], registered: Sequence[str]) -> list[str]:
    """``--models`` with the keywords expanded: ``all`` -> every registered model (registry
    order), ``table2`` -> the paper's rows in order; duplicates dropped, first place kept."""
    out: list[str] = []
    for name in names:
        if name == ALL:
            expanded = list(registered)
        elif name == TABLE2:
            missing = missing_table2_models(registered)
            if missing:
                raise ToreidError(
                    f"--models table2: not registered in this checkout: {', '.join(missing)} "
                    f"(registered Table 2 models: "
                    f"{', '.join(n for n in table2_models() if n not in missing) or 'none'})")
            expanded = table2_models()
        else:
            expanded = [name]
        out.extend(n for n in expanded if n not in out)
    return out


def order_by_table2(models: Sequence[str]) -> list[str]:
    """``models`` with Table 2's in the paper's row order first, the others after, as given."""
    rank = table2_rank()
    ranked = sorted((m for m in models if m in rank), key=lambda m: rank[m])
    return ranked + [m for m in models if m not in rank]
