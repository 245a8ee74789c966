"""``bench report``: one static HTML page about a runs folder, to open from the file system.

The page holds the leaderboard (measured rows and the MGCC paper's published Table 2 rows, as
``bench table --with-paper``), the train -> test matrix when there are crossings, the robustness
plots of every ``robustness.json`` found, training curves from each run's ``history.csv``, ranked
strips (paper Figure 4) for a few test captions per run, and an occlusion preview of each
generated dataset the runs used. Every image is embedded as a base64 PNG ``data:`` URI, so the
page is one file: no server, no network, nothing beside it to lose when it is copied.

Sample queries are chosen without randomness: the first caption of gallery images spread evenly
over the test split, so two reports of the same runs show the same queries.
"""

from __future__ import annotations

import base64
import html
import math
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.records.results import RunResult, find_results
from benchmark.reporting import leaderboard
from toreid.errors import ToreidError

REPORT_NAME = "index.html"

STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; max-width: 1400px; }
h1 { font-size: 1.5em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table { border-collapse: collapse; font-size: 12px; margin: .5em 0 1em; }
th, td { border: 1px solid #ccc; padding: 3px 6px; text-align: right; }
th { background: #eef; } td.name { text-align: left; font-weight: bold; }
tr.published td { color: #666; background: #fafafa; }
.scroll { overflow-x: auto; } img { max-width: 100%; border: 1px solid #ddd; margin: 4px 0; }
.note { color: #666; font-size: 12px; } figure { margin: .5em 0 1.2em; }
figcaption { font-size: 12px; color: #444; }
"""


def _png_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _img(data: bytes, caption: str, alt: str) -> str:
    return (f'<figure><img alt="{html.escape(alt)}" src="{_png_uri(data)}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _figure_png(figure: Any) -> bytes:
    import io

    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def _cell(mean: float, std: float) -> str:
    if math.isnan(mean):
        return "-"
    return f"{mean:.2f}" if math.isnan(std) else f"{mean:.2f} ± {std:.2f}"


def leaderboard_html(frame: pd.DataFrame) -> str:
    """The leaderboard frame as an HTML table, datasets spanning their metrics."""
    datasets = list(dict.fromkeys(frame.columns.get_level_values("dataset")))
    metrics = list(dict.fromkeys(frame.columns.get_level_values("metric")))
    head = "<tr><th rowspan=2>Model</th>" + "".join(
        f"<th colspan={len(metrics)}>{html.escape(d)}</th>" for d in datasets) + "</tr>"
    head += "<tr>" + "".join(f"<th>{html.escape(m)}</th>" for _ in datasets
                             for m in metrics) + "</tr>"
    body = []
    for key in frame.index:
        source, model = key
        published = source != leaderboard.MEASURED
        cells = "".join(
            f"<td>{_cell(frame.loc[key, (d, m, 'mean')], frame.loc[key, (d, m, 'std')])}</td>"
            for d in datasets for m in metrics)
        label = html.escape(model) + (" <small>[published]</small>" if published else "")
        body.append(f'<tr class="{"published" if published else "measured"}">'
                    f'<td class="name">{label}</td>{cells}</tr>')
    return f'<div class="scroll"><table>{head}{"".join(body)}</table></div>'


def crossings_html(found: Sequence[RunResult]) -> str:
    from benchmark.evaluation import crossings

    if not crossings.has_crossings(found):
        return ""
    frame = crossings.crossing_matrix(found)
    tests = list(dict.fromkeys(frame.columns.get_level_values("test")))
    rows = "".join(
        f'<tr><td class="name">{html.escape(m)}</td><td class="name">{html.escape(t)}</td>'
        + "".join(f"<td>{_cell(frame.loc[(m, t), (c, 'mean')], frame.loc[(m, t), (c, 'std')])}"
                  "</td>" for c in tests) + "</tr>"
        for m, t in frame.index)
    head = "<tr><th>Model</th><th>Train \\ Test</th>" + "".join(
        f"<th>{html.escape(c)}</th>" for c in tests) + "</tr>"
    return ("<h2>Train &rarr; test (R@1)</h2><p class=note>Trained once on the row's dataset, "
            "evaluated on each column's test split.</p>"
            f"<table>{head}{rows}</table>")


def robustness_html(paths: Sequence[Path]) -> str:
    """Plots and the sweep table of each robustness record."""
    from benchmark.reporting import plots
    from benchmark.reporting.robustness_files import read_record

    parts = []
    for path in paths:
        record = read_record(path)
        ratio = max(record["ratios"])
        parts.append(f"<h3>{html.escape(Path(record['source']).name)} ({record['split']}), "
                     f"seeds {', '.join(map(str, record['seeds']))}</h3>")
        head = "<tr><th>Run</th>" + "".join(f"<th>R@1 @ {r:g}</th>" for r in record["ratios"])
        rows = "".join(
            f'<tr><td class="name">{html.escape(run["label"])}</td>' + "".join(
                f"<td>{_cell(p['mean']['R@1'], p['std']['R@1'] or math.nan)}</td>"
                for p in run["sweep"]) + "</tr>" for run in record["runs"])
        parts.append(f"<table>{head}</tr>{rows}</table>")
        parts.append(_img(_figure_png(plots.sweep_figure(record)),
                          "R@1 and mAP against the occlusion ratio", "robustness sweep"))
        for kind in ("set", "class", "fraction"):
            parts.append(_img(_figure_png(plots.breakdown_figure(record, kind, ratio)),
                              f"R@1 per {kind} at ratio {ratio:g}", f"robustness per {kind}"))
        if record.get("corruptions"):
            from benchmark.reporting.severity_figures import corruption_html

            parts.append(corruption_html(record, _img, _figure_png))
    if not parts:
        return ""
    return "<h2>Robustness to occlusion</h2>" + "".join(parts)


def curves_html(found: Sequence[RunResult]) -> str:
    from benchmark.reporting import plots

    histories = {}
    for run in found:
        path = Path(run.path) / "history.csv"
        if path.is_file():
            histories[f"{run.model} ({run.dataset}, seed {run.seed})"] = plots.read_history(path)
    if not histories:
        return ""
    return ("<h2>Training curves</h2>" + _img(_figure_png(plots.history_figure(histories)),
                                              "from each run's history.csv", "training curves"))


def sample_captions(captions: Sequence[str], query_image: Sequence[int], n: int) -> list[int]:
    """Indices of ``n`` queries: the first caption of gallery images spread evenly."""
    firsts: dict[int, int] = {}
    for index, image in enumerate(query_image):
        firsts.setdefault(int(image), index)
    images = sorted(firsts)
    if not images or n < 1:
        return []
    step = len(images) / min(n, len(images))
    return [firsts[images[int(k * step)]] for k in range(min(n, len(images)))]


def strips_html(found: Sequence[RunResult], queries: int, topk: int, device: str) -> str:
    """Ranked strips for a few test captions per run (gallery encoded once per run)."""
    import torch

    from benchmark.data.sets import eval_set
    from benchmark.evaluation.evaluate import encode_images, encode_texts
    from benchmark.evaluation.query import Ranking, draw_strip
    from benchmark.records.rebuild import rebuild_from_run
    from benchmark.runtime.device import resolve_device
    from ogor.datasets import read_dataset

    parts = []
    dev = resolve_device(device)
    with tempfile.TemporaryDirectory() as tmp:
        for run in found:
            model, config = rebuild_from_run(Path(run.path))
            model.to(dev).eval()
            problem = eval_set(read_dataset(Path(config["dataset"]["root"])), "test")
            picks = sample_captions(problem.captions, problem.query_image.tolist(), queries)
            images = encode_images(model, problem.image_paths(), device=dev, progress=False)
            texts = encode_texts(model, [problem.captions[i] for i in picks], device=dev,
                                 progress=False)
            with torch.no_grad():
                scores = model.similarity(texts.to(dev), images.to(dev)).float().cpu()
            parts.append(f"<h3>{html.escape(run.model)} ({html.escape(run.dataset)}, seed "
                         f"{run.seed})</h3>")
            for row, query in enumerate(picks):
                order = torch.sort(scores[row], descending=True, stable=True).indices[:topk]
                pid = int(problem.query_pids[query])
                pids = [int(problem.gallery_pids[i]) for i in order]
                ranking = Ranking(text=problem.captions[query],
                                  gallery_index=[int(i) for i in order],
                                  scores=[float(scores[row, i]) for i in order], person_ids=pids,
                                  is_match=[p == pid for p in pids], query_pid=pid)
                out = draw_strip(problem, ranking, Path(tmp) / "strip.png")
                parts.append(_img(out.read_bytes(), f"“{ranking.text}” (id {pid}; green: true "
                                  "match)", f"ranked strip {run.model}"))
    if not parts:
        return ""
    return f"<h2>Sample queries (top {topk})</h2>" + "".join(parts)


def previews_html(roots: Sequence[Path]) -> str:
    """An occlusion preview (source | occluded pairs) of each generated dataset."""
    from ogor.generation import MANIFEST_NAME, make_preview

    parts = []
    with tempfile.TemporaryDirectory() as tmp:
        for root in dict.fromkeys(Path(r) for r in roots):
            if not (root / MANIFEST_NAME).is_file():
                parts.append(f"<p class=note>{html.escape(str(root))}: a clean dataset (no "
                             "ogor manifest), no occlusion preview.</p>")
                continue
            try:
                out = make_preview(root, Path(tmp) / "preview.png", n=8, columns=4)
            except ToreidError as exc:
                parts.append(f"<p class=note>{html.escape(str(exc))}</p>")
                continue
            parts.append(_img(out.read_bytes(), f"{root}: source | occluded", "occlusion preview"))
    return "<h2>Occlusion previews</h2>" + "".join(parts) if parts else ""


def find_robustness(runs_root: Path) -> list[Path]:
    return sorted(p for p in Path(runs_root).rglob("robustness.json"))


def build_report(runs_root: Path, out: Path, *, robustness: Sequence[Path] = (),
                 queries: int = 3, topk: int = 8, device: str = "auto") -> Path:
    """Write ``out/index.html`` for the finished runs under ``runs_root``; return its path."""
    from benchmark.records.results import toolkit_version
    from ogor.io import atomic_write_bytes, read_json

    found = find_results(runs_root)
    if not found:
        raise ToreidError(f"{runs_root}: no finished run (no metrics.json) found")
    table = leaderboard.build_table(found, with_paper=True)
    chance = "; ".join(sorted({f"{r.dataset}: {r.record['num_test_ids']} test ids, chance R@1 "
                               f"~ {100.0 / r.record['num_test_ids']:.2f}%"
                               for r in found if r.record.get("num_test_ids")}))
    roots = [Path(r.record.get("dataset_root", "")) for r in found if r.record.get("dataset_root")]
    for run in found:
        folder = Path(run.path) / "crossings"
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            roots.append(Path(read_json(path, "crossing record")["dataset"]))
    records = list(dict.fromkeys([*find_robustness(runs_root), *map(Path, robustness)]))
    sections = [
        f"<h1>toreid report: {html.escape(str(runs_root))}</h1>",
        f"<p class=note>{len(found)} finished runs; toreid {toolkit_version()}. Static page, no "
        "network: every image is embedded.</p>",
        "<h2>Leaderboard</h2><p class=note>Measured rows: mean ± std over seeds. "
        "[published] rows are copied from the MGCC paper's Table 2, not measured here."
        + (f" Chance level: {html.escape(chance)}." if chance else "") + "</p>",
        leaderboard_html(table), crossings_html(found), robustness_html(records),
        curves_html(found), strips_html(found, queries, topk, device), previews_html(roots),
    ]
    page = ("<!DOCTYPE html><html lang=en><head><meta charset=utf-8>"
            f"<title>toreid report</title><style>{STYLE}</style></head><body>"
            + "\n".join(s for s in sections if s) + "</body></html>\n")
    path = Path(out) / REPORT_NAME
    atomic_write_bytes(path, page.encode("utf-8"))
    return path
