"""Helpers of the benchmark tests: a small learnable dataset written in a real format.

``color_dataset`` writes a CUHK-PEDES-format root whose people differ by the colours of their
upper and lower clothes, described in the captions: real files read through ``ogor.datasets``,
small enough that tiny real models train on it in seconds. The end-to-end demo test uses the real
synthetic generator instead (``ogor.synth`` + ``ogor.generate``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ogor.datasets import Record, get_format

COLOURS = {
    "red": (200, 30, 30), "green": (30, 160, 60), "blue": (30, 60, 200), "yellow": (220, 200, 40),
    "black": (20, 20, 20), "white": (235, 235, 235), "purple": (120, 40, 150),
    "orange": (240, 130, 20),
}


def make_color_dataset(root: Path, *, ids: int = 24, views: int = 2, seed: int = 0,
                       splits: dict[str, int] | None = None, size=(64, 32)) -> Path:
    """Write ``root`` (``reid_raw.json`` + ``imgs/``): ids split train/val/test by count."""
    rng = np.random.default_rng(seed)
    names = list(COLOURS)
    splits = splits or {"train": ids // 2, "val": ids // 4, "test": ids - ids // 2 - ids // 4}
    order = [s for s, n in splits.items() for _ in range(n)]
    records = []
    (root / "imgs").mkdir(parents=True, exist_ok=True)
    for pid in range(1, ids + 1):
        top, bottom = names[(pid - 1) % 8], names[((pid - 1) // 8 + (pid - 1)) % 8]
        for view in range(views):
            h, w = size
            img = np.zeros((h, w, 3), np.float32)
            img[: h // 2] = COLOURS[top]
            img[h // 2 :] = COLOURS[bottom]
            img += rng.normal(0, 12, img.shape)
            path = f"p{pid:03d}_{view}.png"
            Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(root / "imgs" / path)
            captions = (f"a person in a {top} shirt and {bottom} trousers",
                        f"this pedestrian wears {bottom} trousers with a {top} top")
            records.append(Record(path, pid, order[pid - 1], captions))
    get_format("cuhk-pedes").write(records, root)
    return root


def make_random_run(path: Path, seed: int, model_name: str = "mgcc") -> Path:
    """A run folder of a tiny model with random weights (saved to and read back from
    ``checkpoints/best.pt`` like any run): MGCC by default, whose second stage is real."""
    import torch

    from benchmark.released.untrained import write_run
    from models.registry import build_model, tiny_options

    torch.manual_seed(seed)
    model = build_model(model_name, **tiny_options(model_name))
    write_run(path, model, model_label=model_name, source={"rule": "random weights (test)"},
              dataset=None, device="cpu")
    return path
