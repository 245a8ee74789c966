"""The files of a robustness sweep: the CSV, the plots and ``robustness.json``.

Apart from the sweep (:mod:`benchmark.evaluation.robustness`) so that evaluation never
imports plotting; the report reads the records back from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmark.evaluation.metrics import METRICS
from benchmark.evaluation.robustness import ROBUSTNESS_FORMAT
from toreid.errors import ToreidError

CSV_COLUMNS = ("label", "run", "kind", "ratio", "group", "num_queries",
               *METRICS, *(f"{m}_std" for m in METRICS))


def csv_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Long rows: ``kind`` is ``sweep`` (group ``all``) or ``set`` / ``class`` / ``fraction``."""
    rows = []
    for run in record["runs"]:
        for point in run["sweep"]:
            rows.append({"label": run["label"], "run": run["run"], "kind": "sweep",
                         "ratio": point["ratio"], "group": "all",
                         "num_queries": point["num_queries"] * len(point["per_seed"]),
                         **point["mean"], **{f"{m}_std": point["std"][m] for m in METRICS}})
        for part in run["breakdown"]:
            for kind in ("set", "class", "fraction"):
                for group, m in part[f"by_{kind}"].items():
                    rows.append({"label": run["label"], "run": run["run"], "kind": kind,
                                 "ratio": part["ratio"], "group": group,
                                 "num_queries": m["num_queries"],
                                 **{k: m[k] for k in METRICS},
                                 **{f"{k}_std": m["std"][k] for k in METRICS}})
    if record.get("corruptions"):
        from benchmark.evaluation.corruptions.sweep import csv_rows as corruption_rows

        rows += corruption_rows(record, METRICS)
    return rows


def to_csv(record: dict[str, Any]) -> str:
    import csv
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in csv_rows(record):
        writer.writerow({k: ("" if row[k] is None else row[k]) for k in CSV_COLUMNS})
    return buffer.getvalue()


def write_outputs(record: dict[str, Any], out: Path) -> list[Path]:
    """``robustness.csv``, the plots (PNG + SVG), then ``robustness.json`` (written last: a
    folder without it is unfinished)."""
    from benchmark.reporting import plots
    from ogor.io import atomic_write_bytes, atomic_write_json

    out = Path(out)
    written = [out / "robustness.csv"]
    atomic_write_bytes(written[0], to_csv(record).encode("utf-8"))
    written += plots.robustness_plots(record, out)
    if record.get("corruptions"):
        from benchmark.reporting.severity_figures import corruption_outputs

        written += corruption_outputs(record, out)
    atomic_write_json(out / "robustness.json", record)
    written.append(out / "robustness.json")
    return written


def read_record(path: Path) -> dict[str, Any]:
    """A ``robustness.json`` (file or folder holding one); a one-line error otherwise."""
    from ogor.io import read_json

    path = Path(path)
    if path.is_dir():
        path = path / "robustness.json"
    record = read_json(path, "robustness record")
    if not isinstance(record, dict) or record.get("format") != ROBUSTNESS_FORMAT:
        raise ToreidError(f"{path}: field 'format': not a {ROBUSTNESS_FORMAT} record")
    return record
