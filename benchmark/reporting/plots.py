"""Matplotlib figures of the benchmark: robustness sweeps and breakdowns, training curves.

Every figure is saved as PNG (for the README and the HTML report) and SVG (for papers), written
atomically. The Agg backend is used, so no display is needed; SVGs carry no date and a fixed
hash salt, so the same record gives the same SVG bytes.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (the backend is chosen first)

from ogor.io import atomic_write_bytes  # noqa: E402

plt.rcParams["svg.hashsalt"] = "toreid"


def save(figure: Any, stem: Path, formats: Sequence[str] = ("png", "svg"),
         dpi: int = 100) -> list[Path]:
    """Write ``stem.png`` and ``stem.svg``; close the figure."""
    written = []
    for fmt in formats:
        buffer = io.BytesIO()
        metadata = {"Date": None} if fmt == "svg" else None
        figure.savefig(buffer, format=fmt, dpi=dpi, bbox_inches="tight", metadata=metadata)
        path = stem.with_suffix(f".{fmt}")
        atomic_write_bytes(path, buffer.getvalue())
        written.append(path)
    plt.close(figure)
    return written


def sweep_figure(record: dict[str, Any], metrics: Sequence[str] = ("R@1", "mAP")) -> Any:
    """R@1 and mAP against the occlusion ratio, one line per run, error bars = std over seeds;
    the dashed line is chance R@1 (100 / #test ids)."""
    figure, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.3), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        for run in record["runs"]:
            ratios = [p["ratio"] for p in run["sweep"]]
            means = [p["mean"][metric] for p in run["sweep"]]
            stds = [p["std"][metric] or 0.0 for p in run["sweep"]]
            ax.errorbar(ratios, means, yerr=stds, marker="o", capsize=3, label=run["label"])
        if metric == "R@1" and record["runs"]:
            ids = record["runs"][0]["sweep"][0]["num_ids"]
            ax.axhline(100.0 / ids, color="grey", linestyle="--", linewidth=1,
                       label=f"chance ({ids} ids)")
        ax.set_xlabel("occlusion ratio (share of test images occluded)")
        ax.set_ylabel(f"{metric} (%)")
        ax.set_title(f"{metric} vs occlusion")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    seeds = len(record["seeds"])
    figure.suptitle(f"{record['split']} split of {Path(record['source']).name}, "
                    f"mean ± std over {seeds} generation seed{'s' if seeds > 1 else ''}",
                    fontsize=9)
    figure.tight_layout()
    return figure


def breakdown_figure(record: dict[str, Any], kind: str, ratio: float,
                     metric: str = "R@1") -> Any:
    """Grouped bars: ``metric`` per group of ``kind`` (set, class or fraction) at ``ratio``,
    one bar per run; the number of queries of each group is printed under its name."""
    import numpy as np

    runs = record["runs"]
    parts = [next(p for p in run["breakdown"] if p["ratio"] == ratio) for run in runs]
    groups: list[str] = []
    for part in parts:
        groups += [g for g in part[f"by_{kind}"] if g not in groups]
    width = 0.8 / max(1, len(runs))
    figure, ax = plt.subplots(figsize=(max(4.5, 0.55 * len(groups) * max(1, len(runs)) + 2),
                                       3.3))
    x = np.arange(len(groups))
    for k, (run, part) in enumerate(zip(runs, parts, strict=True)):
        table = part[f"by_{kind}"]
        values = [table[g][metric] if g in table else np.nan for g in groups]
        errors = [(table[g]["std"][metric] or 0.0) if g in table else 0.0 for g in groups]
        ax.bar(x + (k - (len(runs) - 1) / 2) * width, values, width, yerr=errors, capsize=2,
               label=run["label"])
        ax.axhline(part["whole"][metric], color=f"C{k}", linestyle=":", linewidth=1)
    counts = [parts[0][f"by_{kind}"].get(g, {}).get("num_queries", 0) for g in groups]
    ax.set_xticks(x, [f"{g}\n(n={n})" for g, n in zip(groups, counts, strict=True)],
                  rotation=45 if len(groups) > 6 else 0, ha="right" if len(groups) > 6 else
                  "center", fontsize=8)
    ax.set_ylabel(f"{metric} (%)")
    title = {"set": "position set", "class": "occluder class",
             "fraction": "occluded fraction"}[kind]
    ax.set_title(f"{metric} per {title} of the query's own image (ratio {ratio:g}; "
                 "dotted: all queries)", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    figure.tight_layout()
    return figure


def robustness_plots(record: dict[str, Any], out: Path) -> list[Path]:
    """The sweep, and the set / class / fraction bars at the largest ratio."""
    out = Path(out)
    written = save(sweep_figure(record), out / "robustness_sweep")
    ratio = max(record["ratios"])
    for kind in ("set", "class", "fraction"):
        written += save(breakdown_figure(record, kind, ratio), out / f"robustness_{kind}")
    return written


def read_history(path: Path) -> list[dict[str, float]]:
    """``history.csv`` rows as numbers (empty cells dropped)."""
    rows = []
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            rows.append({k: float(v) for k, v in row.items() if v not in ("", None)})
    return rows


def history_figure(histories: dict[str, list[dict[str, float]]]) -> Any:
    """Training loss and val R@1 per epoch, one line per run."""
    figure, (loss_ax, val_ax) = plt.subplots(1, 2, figsize=(8.4, 3.2))
    for label, rows in histories.items():
        epochs = [r["epoch"] for r in rows if "loss/total" in r]
        loss_ax.plot(epochs, [r["loss/total"] for r in rows if "loss/total" in r], marker=".",
                     label=label)
        val = [(r["epoch"], r["val/R@1"]) for r in rows if "val/R@1" in r]
        if val:
            val_ax.plot(*zip(*val, strict=True), marker=".", label=label)
    loss_ax.set(xlabel="epoch", ylabel="training loss (total)", title="loss")
    val_ax.set(xlabel="epoch", ylabel="val R@1 (%)", title="val R@1 (selects the checkpoint)")
    for ax in (loss_ax, val_ax):
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    figure.tight_layout()
    return figure
