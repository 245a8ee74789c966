"""Pictures of a corruption sweep: an R@1 heatmap (corruption x severity) per run, a bar chart
comparing runs, a contact sheet of one gallery image at every severity of every image corruption,
and a table of one caption under every text perturbation, so a reader sees what each level means.

The sheet and the caption table are remade from the source with the sweep's first seed and the
same per-item keys as the derived sets, so they show the pixels and words the model was given.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.evaluation.corruptions.sweep import SUMMARY
from benchmark.evaluation.corruptions.table import MAX_SEVERITY


def _blocks(record: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(run["label"], block) for run in record["runs"] for block in run.get("corruptions", ())]


def heatmap_figure(record: dict[str, Any]) -> Any:
    """One panel per (run, ratio): R@1 (mean over seeds) of each corruption at each severity,
    column 0 being the clean set; the panel title gives mRR@1."""
    import matplotlib.pyplot as plt

    blocks = _blocks(record)
    names = list(record["corruptions"])
    levels = [0, *record["severities"]]
    figure, axes = plt.subplots(1, len(blocks), squeeze=False,
                                figsize=(1.6 + 0.75 * len(levels) * len(blocks) + 1.2 *
                                         (len(blocks) - 1), 0.9 + 0.34 * len(names)))
    for ax, (label, block) in zip(axes[0], blocks, strict=True):
        table = np.full((len(names), len(levels)), np.nan)
        table[:, 0] = block["clean"]["mean"]["R@1"]
        for cell in block["cells"]:
            table[names.index(cell["corruption"]), levels.index(cell["severity"])] = \
                cell["mean"]["R@1"]
        image = ax.imshow(table, cmap="viridis", aspect="auto", vmin=0,
                          vmax=max(1.0, float(np.nanmax(table))))
        for (i, j), value in np.ndenumerate(table):
            ax.text(j, i, f"{value:.1f}", ha="center", va="center", fontsize=7,
                    color="white" if value < 0.6 * np.nanmax(table) else "black")
        ax.set_xticks(range(len(levels)), [str(s) for s in levels])
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.set_xlabel("severity (0 = clean)")
        summary = block[SUMMARY]
        ax.set_title(f"{label}, ratio {block['ratio']:g}: R@1\n{SUMMARY} "
                     f"{'-' if summary is None else f'{summary:.1f}'}", fontsize=9)
        figure.colorbar(image, ax=ax, fraction=0.05, pad=0.02)
    figure.tight_layout()
    return figure


def bars_figure(record: dict[str, Any]) -> Any:
    """Per corruption, each run's R@1 relative to its clean R@1 (mean over the severities
    run), one panel per ratio; the legend gives each run's mRR@1."""
    import matplotlib.pyplot as plt

    names = list(record["corruptions"])
    ratios = list(dict.fromkeys(block["ratio"] for _, block in _blocks(record)))
    figure, axes = plt.subplots(len(ratios), 1, squeeze=False,
                                figsize=(max(6.0, 0.55 * len(names) + 2), 3.2 * len(ratios)))
    for ax, ratio in zip(axes[:, 0], ratios, strict=True):
        blocks = [(label, b) for label, b in _blocks(record) if b["ratio"] == ratio]
        width = 0.8 / max(1, len(blocks))
        for k, (label, block) in enumerate(blocks):
            values = []
            for name in names:
                rel = [c["relative"]["R@1"] for c in block["cells"]
                       if c["corruption"] == name and c["relative"]["R@1"] is not None]
                values.append(float(np.mean(rel)) if rel else np.nan)
            summary = block[SUMMARY]
            ax.bar(np.arange(len(names)) + (k - (len(blocks) - 1) / 2) * width, values, width,
                   label=f"{label} ({SUMMARY} {'-' if summary is None else f'{summary:.1f}'})")
        ax.axhline(100, color="grey", linestyle="--", linewidth=1)
        ax.set_xticks(range(len(names)), names, rotation=40, ha="right", fontsize=8)
        ax.set_ylabel("R@1, % of clean")
        ax.set_title(f"R@1 relative to clean (mean over severities), ratio {ratio:g}",
                     fontsize=9)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8)
    figure.tight_layout()
    return figure


def _first_record(record: dict[str, Any]) -> tuple[Any, Any]:
    from ogor.datasets import read_dataset

    dataset = read_dataset(Path(record["source"]))
    return dataset, dataset.split(record["split"])[0]


def contact_sheet(record: dict[str, Any], names: list[str] | None = None) -> np.ndarray | None:
    """BGR mosaic: one row per image corruption, severities 0..5 across, the first gallery
    image of the split under the sweep's first seed; ``None`` without image corruptions."""
    import cv2

    from benchmark.evaluation.corruptions.image import corrupt_image
    from ogor.imageio import read_image

    names = names or [c.split(":", 1)[1] for c in record["corruptions"] if c.startswith("image:")]
    if not names:
        return None
    dataset, first = _first_record(record)
    image = read_image(dataset.image_file(first))
    image = cv2.resize(image, (64, int(round(64 * image.shape[0] / image.shape[1]))),
                       interpolation=cv2.INTER_AREA) if image.shape[1] < 64 else image
    height, width = image.shape[:2]
    label_w, head_h = 120, 18
    sheet = np.full((head_h + len(names) * height, label_w + (MAX_SEVERITY + 1) * width, 3), 255,
                    np.uint8)
    for s in range(MAX_SEVERITY + 1):
        cv2.putText(sheet, str(s), (label_w + s * width + width // 2 - 4, 13),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    key = f"{record['split']}/{first.image_path}"
    for row, name in enumerate(names):
        y = head_h + row * height
        cv2.putText(sheet, name, (4, y + height // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                    (0, 0, 0), 1, cv2.LINE_AA)
        for s in range(MAX_SEVERITY + 1):
            tile = corrupt_image(image, name, s, int(record["seeds"][0]), key)
            sheet[y:y + height, label_w + s * width:label_w + (s + 1) * width] = tile
    return sheet


def caption_examples(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The split's first caption under each text perturbation at severities 0..5 (first seed)."""
    from benchmark.evaluation.corruptions.text import perturb_caption

    names = [c.split(":", 1)[1] for c in record["corruptions"] if c.startswith("text:")]
    if not names:
        return []
    _, first = _first_record(record)
    key = f"{record['split']}/{first.image_path}/0"
    rows = [{"perturbation": "clean", "severity": 0, "text": first.captions[0]}]
    for name in names:
        for s in range(1, MAX_SEVERITY + 1):
            made = perturb_caption(name, s, first.captions[0], int(record["seeds"][0]), key)
            rows.append({"perturbation": name, "severity": s, "text": made.text,
                         "fallback": made.fallback})
    return rows


def captions_markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| perturbation | severity | what the model read |", "|---|---|---|"]
    for row in rows:
        note = f" *(fallback: {row['fallback']})*" if row.get("fallback") else ""
        text = row["text"].replace("|", "\\|")
        lines.append(f"| {row['perturbation']} | {row['severity']} | {text}{note} |")
    return "\n".join(lines) + "\n"


def captions_html(rows: list[dict[str, Any]]) -> str:
    body = "".join(
        f'<tr><td class="name">{html.escape(r["perturbation"])}</td><td>{r["severity"]}</td>'
        f'<td class="name">{html.escape(r["text"])}</td></tr>' for r in rows)
    return ("<table><tr><th>Perturbation</th><th>Severity</th><th>What the model read</th></tr>"
            f"{body}</table>")


def corruption_outputs(record: dict[str, Any], out: Path) -> list[Path]:
    """``robustness_corruptions.png/svg`` (heatmap), ``robustness_corruption_bars.png/svg``,
    ``robustness_corruption_sheet.png`` and ``robustness_captions.md``."""
    import cv2

    from benchmark.reporting import plots
    from ogor.io import atomic_write_bytes

    out = Path(out)
    written = plots.save(heatmap_figure(record), out / "robustness_corruptions")
    written += plots.save(bars_figure(record), out / "robustness_corruption_bars")
    sheet = contact_sheet(record)
    if sheet is not None:
        ok, data = cv2.imencode(".png", sheet)
        if ok:
            atomic_write_bytes(out / "robustness_corruption_sheet.png", data.tobytes())
            written.append(out / "robustness_corruption_sheet.png")
    rows = caption_examples(record)
    if rows:
        atomic_write_bytes(out / "robustness_captions.md", captions_markdown(rows).encode())
        written.append(out / "robustness_captions.md")
    return written


def corruption_html(record: dict[str, Any], img: Any, figure_png: Any) -> str:
    """The report's section of one record: mRR@1 and worst cells per run, the pictures."""
    import cv2

    from benchmark.evaluation.corruptions.sweep import worst_cells

    if not record.get("corruptions"):
        return ""
    rows = ""
    for label, block in _blocks(record):
        worst = ", ".join(f"{c['corruption']}@{c['severity']} {c['mean']['R@1']:.1f}"
                          for c in worst_cells(block))
        summary = block[SUMMARY]
        rows += (f'<tr><td class="name">{html.escape(label)}</td><td>{block["ratio"]:g}</td>'
                 f'<td>{block["clean"]["mean"]["R@1"]:.2f}</td>'
                 f"<td>{'-' if summary is None else f'{summary:.1f}'}</td>"
                 f'<td class="name">{html.escape(worst)}</td></tr>')
    parts = [f"<h3>Corruptions and witness text</h3><p class=note>{SUMMARY}: "
             f"{html.escape(record['summary']['definition'])}.</p>",
             "<table><tr><th>Run</th><th>Ratio</th><th>Clean R@1</th>"
             f"<th>{SUMMARY}</th><th>Five worst cells (R@1)</th></tr>{rows}</table>",
             img(figure_png(heatmap_figure(record)), "R@1 per corruption and severity",
                 "corruption heatmap"),
             img(figure_png(bars_figure(record)), "R@1 relative to clean per corruption",
                 "corruption bars")]
    sheet = contact_sheet(record)
    if sheet is not None:
        ok, data = cv2.imencode(".png", sheet)
        if ok:
            parts.append(img(data.tobytes(), "one gallery image at severities 0-5",
                             "corruption contact sheet"))
    rows_text = caption_examples(record)
    if rows_text:
        parts.append(captions_html(rows_text))
    return "".join(parts)
