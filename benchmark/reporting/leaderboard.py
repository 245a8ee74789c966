"""The leaderboard (Table 2 of the MGCC paper): run results -> pandas -> Markdown / CSV / LaTeX.

Rows are models, columns are datasets x (R@1, R@5, R@10, mAP, Rsum); a cell is the mean over
seeds, with the standard deviation (sample std, ddof=1) when there is more than one seed.
``with_paper`` appends the published rows of the paper's Table 2 (``paper_table2.json``), marked
as published so that nobody mistakes them for numbers measured here.

The frame is "long-wide": one row per (source, model), columns ``(dataset, metric, stat)`` with
stat in ``mean``, ``std``, ``n``. CSV writes every float with ``repr`` precision, so reading the
CSV back (:func:`read_csv`) gives the same numbers exactly (tested).
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from benchmark.records.protocol import SELECTED_ON_TEST, is_selected_on_test
from benchmark.records.results import RunResult
from toreid.errors import ToreidError

#: Table 2's columns, in the paper's order.
TABLE_METRICS: tuple[str, ...] = ("R@1", "R@5", "R@10", "mAP", "Rsum")
FORMATS: tuple[str, ...] = ("md", "csv", "latex")
PAPER_TABLE = Path(__file__).resolve().parents[1] / "paper_table2.json"
MEASURED = "measured"
#: The source of runs whose checkpoint was selected on test (``bench run --select-on test``).
MEASURED_ON_TEST = f"measured ({SELECTED_ON_TEST})"
PUBLISHED = "published (MGCC paper, Table 2)"
#: Which MGCC is which, in md and LaTeX labels (the CSV keeps the bare registry name). The
#: labels name the design, not the size: a run's backbone and input size are in its config
#: (the tiny demo builds every variant on the tiny backbone).
VARIANT_LABELS = {
    "mgcc": "mgcc (paper's design: vision-width space, m=25)",
    "mgcc-b16-384": "mgcc-b16-384 (CLIP joint space, all words)",
    "mgcc-release": "mgcc-release (release architecture)",
}


def load_paper_table() -> dict:
    """The published Table 2 as stored in ``benchmark/paper_table2.json``."""
    return json.loads(PAPER_TABLE.read_text(encoding="utf-8"))


def paper_rank(paper: dict) -> dict[str, int]:
    """Registry name -> the index of the published row that names it (``"models"``)."""
    return {name: index for index, row in enumerate(paper["rows"])
            for name in row.get("models", [])}


def _stats(values: Sequence[float]) -> tuple[float, float, int]:
    n = len(values)
    mean = math.fsum(values) / n
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else math.nan
    return mean, std, n


def build_table(
    results: Iterable[RunResult],
    *,
    with_paper: bool = False,
    metrics: Sequence[str] = TABLE_METRICS,
) -> pd.DataFrame:
    """The leaderboard frame: index (source, model), columns (dataset, metric, stat).

    Measured rows of Table 2's models come in the paper's row order, other models after them
    in the order found. With the paper, each published row is followed by the measured rows of
    the models it names (its ``"models"`` list in ``paper_table2.json``, e.g. DPath ->
    ``dpath``), so a reproduction sits under the number it reproduces; measured models of no
    published row come first. Runs selected on test (``bench run --select-on test``) form
    their own rows (source :data:`MEASURED_ON_TEST`), never averaged with val-selected ones.
    """
    grouped: dict[tuple[str, str, str], dict[str, list[float]]] = {}
    models: list[tuple[str, str]] = []
    datasets: list[str] = []
    for result in results:
        source = MEASURED_ON_TEST if is_selected_on_test(result.record) else MEASURED
        if (source, result.model) not in models:
            models.append((source, result.model))
        if result.dataset not in datasets:
            datasets.append(result.dataset)
        for metric in metrics:
            grouped.setdefault((source, result.model, result.dataset), {}).setdefault(
                metric, []).append(float(result.test[metric]))
    rows: dict[tuple[str, str], dict[tuple[str, str, str], float]] = {}
    for (source, model, dataset), by_metric in grouped.items():
        row = rows.setdefault((source, model), {})
        for metric, values in by_metric.items():
            mean, std, n = _stats(values)
            row[(dataset, metric, "mean")] = mean
            row[(dataset, metric, "std")] = std
            row[(dataset, metric, "n")] = float(n)
    paper = load_paper_table()
    rank = paper_rank(paper)  # measured rows in Table 2's order, the others after, as found
    models.sort(key=lambda key: rank.get(key[1], len(rank)))
    index = list(models)
    if with_paper:
        for dataset in paper["datasets"]:
            if dataset not in datasets:
                datasets.append(dataset)
        claimed = {m: entry["method"] for entry in paper["rows"] for m in entry.get("models", [])}
        index = [k for k in models if k[1] not in claimed]
        for entry in paper["rows"]:
            key = (PUBLISHED, entry["method"])
            index.append(key)
            index.extend(k for k in models if claimed.get(k[1]) == entry["method"])
            row = rows.setdefault(key, {})
            for dataset, values in entry["results"].items():
                for metric in metrics:
                    value = values.get(metric)
                    row[(dataset, metric, "mean")] = math.nan if value is None else float(value)
                    row[(dataset, metric, "std")] = math.nan
                    row[(dataset, metric, "n")] = math.nan
    columns = pd.MultiIndex.from_tuples(
        [(d, m, s) for d in datasets for m in metrics for s in ("mean", "std", "n")],
        names=["dataset", "metric", "stat"],
    )
    frame = pd.DataFrame(
        [[rows.get(key, {}).get(col, math.nan) for col in columns] for key in index],
        index=pd.MultiIndex.from_tuples(index, names=["source", "model"]),
        columns=columns,
        dtype="float64",
    )
    return frame


def _cell(frame: pd.DataFrame, key: tuple[str, str], dataset: str, metric: str, pm: str) -> str:
    mean = frame.loc[key, (dataset, metric, "mean")]
    if math.isnan(mean):
        return "-"
    std = frame.loc[key, (dataset, metric, "std")]
    return f"{mean:.2f}" if math.isnan(std) else f"{mean:.2f} {pm} {std:.2f}"


def _datasets_and_metrics(frame: pd.DataFrame) -> tuple[list[str], list[str]]:
    datasets = list(dict.fromkeys(frame.columns.get_level_values("dataset")))
    metrics = list(dict.fromkeys(frame.columns.get_level_values("metric")))
    return datasets, metrics


def _label(key: tuple[str, str]) -> str:
    source, model = key
    name = VARIANT_LABELS.get(model, model)
    if source == MEASURED:
        return name
    if source == MEASURED_ON_TEST:
        return f"{name} [{SELECTED_ON_TEST}]"
    return f"{model} [published]"


def to_markdown(frame: pd.DataFrame) -> str:
    """A GitHub Markdown table; ``[published]`` marks the paper's rows."""
    datasets, metrics = _datasets_and_metrics(frame)
    header = ["Model"] + [f"{d} {m}" for d in datasets for m in metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] *
                                                               (len(header) - 1)) + "|"]
    for key in frame.index:
        cells = [_label(key)] + [_cell(frame, key, d, m, "±") for d in datasets for m in metrics]
        lines.append("| " + " | ".join(cells) + " |")
    counts = frame.loc[:, [c for c in frame.columns if c[2] == "n"]].to_numpy().ravel()
    seeds = sorted({int(n) for n in counts if not math.isnan(n)})
    if seeds:
        lines.append("")
        lines.append(f"Mean ± std over seeds (seeds per cell: {', '.join(map(str, seeds))}); "
                     "[published] rows are copied from the MGCC paper, not measured here.")
    if any(key[0] == MEASURED_ON_TEST for key in frame.index):
        lines.append("")
        lines.append(f"[{SELECTED_ON_TEST}]: the checkpoint was chosen by its test score, as "
                     "the published releases do; the other measured rows select on val.")
    return "\n".join(lines) + "\n"


def to_csv(frame: pd.DataFrame) -> str:
    """Wide CSV, one row per (source, model), columns ``dataset|metric|stat``; exact floats."""
    flat = frame.copy()
    flat.columns = ["|".join(col) for col in frame.columns]
    flat = flat.reset_index()
    buffer = io.StringIO()
    flat.to_csv(buffer, index=False, float_format=lambda v: repr(float(v)), lineterminator="\n")
    return buffer.getvalue()


def read_csv(text: str) -> pd.DataFrame:
    """Parse :func:`to_csv` output back into the frame of :func:`build_table`."""
    flat = pd.read_csv(io.StringIO(text))
    flat = flat.set_index(["source", "model"])
    flat.columns = pd.MultiIndex.from_tuples(
        [tuple(c.split("|")) for c in flat.columns], names=["dataset", "metric", "stat"]
    )
    return flat.astype("float64")


def _latex_escape(text: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"),
                 ("#", r"\#"), ("$", r"\$"), ("{", r"\{"), ("}", r"\}")):
        text = text.replace(a, b)
    return text.replace(r"\textbackslash\{\}", r"\textbackslash{}")


def to_latex(frame: pd.DataFrame) -> str:
    """A booktabs tabular shaped like Table 2 (a dataset header spanning its metrics)."""
    datasets, metrics = _datasets_and_metrics(frame)
    spec = "l" + "".join("|" + "r" * len(metrics) for _ in datasets)
    lines = [r"\begin{tabular}{" + spec + "}", r"\toprule"]
    lines.append(" & ".join(["Method"] + [
        rf"\multicolumn{{{len(metrics)}}}{{c}}{{{_latex_escape(d)}}}" for d in datasets
    ]) + r" \\")
    lines.append(" & ".join([""] + [_latex_escape(m) for _ in datasets for m in metrics]) + r" \\")
    lines.append(r"\midrule")
    previous_source = None
    for key in frame.index:
        if previous_source is not None and key[0] != previous_source:
            lines.append(r"\midrule")
        previous_source = key[0]
        cells = [_latex_escape(_label(key))] + [
            _cell(frame, key, d, m, r"$\pm$") for d in datasets for m in metrics
        ]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def render(frame: pd.DataFrame, fmt: str) -> str:
    """Render the frame as ``md``, ``csv`` or ``latex``."""
    if fmt == "md":
        return to_markdown(frame)
    if fmt == "csv":
        return to_csv(frame)
    if fmt == "latex":
        return to_latex(frame)
    raise ToreidError(f"unknown table format {fmt!r} (valid: {', '.join(FORMATS)})")
