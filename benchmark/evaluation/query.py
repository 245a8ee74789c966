"""``bench query``: rank a test gallery for any free text and draw the ranked strip (Figure 4).

When the text is exactly one of the split's captions, the images of that caption's person are
the true matches: the strip frames them green and the others red. For any other text there is no
ground truth and frames are grey.
"""

from __future__ import annotations

import io
import textwrap
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from benchmark.data.sets import EvalSet, load_image
from benchmark.evaluation.evaluate import encode_images, encode_texts
from toreid.io import atomic_write_bytes

GREEN, RED, GREY = (40, 170, 60), (210, 40, 40), (150, 150, 150)


@dataclass
class Ranking:
    """The top of one text query's ranking."""

    text: str
    gallery_index: list[int]
    scores: list[float]
    person_ids: list[int]
    #: per ranked image: True/False when the text is a caption of the split, else None.
    is_match: list[bool | None]
    #: person id of the caption equal to the text, if any.
    query_pid: int | None


@torch.no_grad()
def rank_text(model: torch.nn.Module, problem: EvalSet, text: str, *, topk: int = 10,
              device: torch.device | str = "cpu", progress: bool = True) -> Ranking:
    """Score every gallery image of ``problem`` against ``text``; keep the top ``topk``.

    Ties keep gallery order, as in :mod:`benchmark.evaluation.metrics`.
    """
    device = torch.device(device)
    model.eval()
    images = encode_images(model, problem.image_paths(), device=device, progress=progress)
    texts = encode_texts(model, [text], device=device, progress=False)
    scores = model.similarity(texts.to(device), images.to(device))[0].float().cpu()
    order = torch.sort(scores, descending=True, stable=True).indices[:topk]
    query_pid = None
    if text in problem.captions:
        query_pid = int(problem.query_pids[problem.captions.index(text)])
    pids = [int(problem.gallery_pids[i]) for i in order]
    return Ranking(
        text=text, gallery_index=[int(i) for i in order],
        scores=[float(scores[i]) for i in order], person_ids=pids,
        is_match=[None if query_pid is None else pid == query_pid for pid in pids],
        query_pid=query_pid,
    )


def draw_strip(problem: EvalSet, ranking: Ranking, out: Path, *,
               cell: tuple[int, int] = (192, 96)) -> Path:
    """Write the ranked gallery strip as a PNG: the text on top, rank k under image k."""
    paths = [problem.dataset.image_file(problem.gallery[i]) for i in ranking.gallery_index]
    colours = [GREY if match is None else (GREEN if match else RED)
               for match in ranking.is_match]
    return draw_ranked_images(ranking.text, paths, ranking.scores, colours, out, cell=cell)


def draw_ranked_images(text: str, paths: list[Path], scores: list[float],
                       colours: list[tuple[int, int, int]], out: Path, *,
                       cell: tuple[int, int] = (192, 96)) -> Path:
    """The strip of any ranked images (a split's gallery or an index of a photo folder)."""
    h, w = cell
    border, pad, text_h, label_h = 4, 8, 48, 18
    n = len(paths)
    width = pad + n * (w + 2 * border + pad)
    canvas = Image.new("RGB", (max(width, 400), text_h + h + 2 * border + label_h + 2 * pad),
                       (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    lines = textwrap.wrap(text, width=max(40, width // 7))[:2]
    draw.text((pad, pad), "\n".join(lines), fill=(0, 0, 0))
    for k, path in enumerate(paths):
        x = pad + k * (w + 2 * border + pad)
        y = text_h
        draw.rectangle([x, y, x + w + 2 * border - 1, y + h + 2 * border - 1], fill=colours[k])
        image = load_image(Path(path), (h, w))
        canvas.paste(Image.fromarray(image), (x + border, y + border))
        draw.text((x, y + h + 2 * border + 2), f"#{k + 1} {scores[k]:.3f}", fill=(0, 0, 0))
    out = Path(out)
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    atomic_write_bytes(out, buffer.getvalue())
    return out
