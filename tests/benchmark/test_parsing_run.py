"""Human-parsing masks through a real run: found, recorded, augmented with the pixels; refused
when absent; and the synthetic dataset's own maps."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from benchmark.data.parsing import ParsingMaps
from benchmark.data.sets import Augment, TrainPairs, collate_pairs
from benchmark.records.spec import RunSpec, TrainConfig
from benchmark.training.loop import run_training
from ogor.datasets import read_dataset
from ogor.errors import DatasetError, ToreidError
from ogor.synth import synthesize
from ogor.synth.parsing import MARKER_FILE, write_parsing_maps


def _write_maps(dataset_root: Path, out: Path) -> Path:
    """The colour dataset's maps: upper body (2) on the top half, lower body (3) below."""
    for record in read_dataset(dataset_root).records:
        labels = np.zeros((64, 32), np.uint8)
        labels[:32], labels[32:] = 2, 3
        labels[:, :4] = 0  # a left background margin, to see flips
        target = out / Path(record.image_path).with_suffix(".png")
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(labels, mode="L").save(target)
    return out


def _spec(root: Path, options: dict) -> RunSpec:
    cfg = TrainConfig(epochs=1, batch_size=8, lr=1e-3, lr_new_mult=1.0, optimizer="adamw",
                      device="cpu", seed=1)
    return RunSpec(model="vitaa", dataset="colors", dataset_root=root, train=cfg,
                   model_options={"backbone": "tiny", "embed_dim": 32, "word_dim": 32,
                                  "hidden_dim": 32, "part_dim": 16, **options}, preset="test")


def test_vitaa_without_masks_refuses_in_one_line(color_dataset, tmp_path):
    with pytest.raises(ToreidError) as error:
        run_training(_spec(color_dataset, {}), tmp_path / "runs", progress=False)
    message = str(error.value)
    assert "\n" not in message and "parsing_dir" in message and "docs/parsing.md" in message
    assert not (tmp_path / "runs").exists()  # nothing half-written


def test_vitaa_trains_against_the_given_masks(color_dataset, tmp_path):
    maps = _write_maps(color_dataset, tmp_path / "maps")
    record = run_training(_spec(color_dataset, {"parsing_dir": str(maps)}), tmp_path / "runs",
                          progress=False)
    run = tmp_path / "runs" / "colors" / "vitaa" / "seed1"
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["options"]["parsing_dir"] == str(maps)
    rows = list(csv.DictReader((run / "history.csv").open()))
    assert float(rows[0]["loss/mask"]) > 0
    assert record is not None and record["model"] == "vitaa"


def test_parsing_map_moves_with_the_flip(color_dataset, tmp_path):
    maps = ParsingMaps(_write_maps(color_dataset, tmp_path / "maps"), (64, 32))
    dataset = read_dataset(color_dataset)
    plain = TrainPairs(dataset, (64, 32), (0.5,) * 3, (0.5,) * 3, aug=Augment.none(), seed=0,
                       parsing=maps)
    flipped = TrainPairs(dataset, (64, 32), (0.5,) * 3, (0.5,) * 3, seed=0, parsing=maps,
                         aug=Augment(hflip=1.0))
    a, b = collate_pairs([plain[0]]), collate_pairs([flipped[0]])
    assert torch.equal(a["parsing"].flip(-1), b["parsing"])
    assert torch.equal(a["images"].flip(-1), b["images"])
    assert a["parsing"][0, :, :4].eq(0).all() and a["parsing"][0, :32, 4:].eq(2).all()


def test_bad_parsing_map_is_a_one_line_error_naming_the_file(color_dataset, tmp_path):
    maps = _write_maps(color_dataset, tmp_path / "maps")
    record = read_dataset(color_dataset).records[0]
    bad = maps / Path(record.image_path).with_suffix(".png")
    Image.fromarray(np.full((64, 32), 9, np.uint8), mode="L").save(bad)
    with pytest.raises(DatasetError, match="label 9 outside 0-5") as error:
        ParsingMaps(maps, (64, 32)).get(record.image_path)
    assert str(bad) in str(error.value)


def test_synthetic_dataset_writes_its_parsing_maps(tmp_path):
    root = tmp_path / "synth"
    dataset = synthesize(root, ids=3, views=1, seed=0)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    out = write_parsing_maps(root, tmp_path / "parsing")
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before  # source untouched
    assert (out / MARKER_FILE).is_file()
    truth = json.loads((root / "synth-attributes.json").read_text())
    for record in dataset.records:
        labels = np.asarray(Image.open(out / Path(record.image_path).with_suffix(".png")))
        regions = truth["images"][record.image_path]["regions"]
        x, y, w, h = regions["shoes"]["sample"]  # a box only the shoes cover
        assert (labels[y:y + h, x:x + w] == 4).all()
        x, y, w, h = regions["torso"]["sample"]
        assert (labels[y:y + h, x:x + w] == 2).all()
        assert set(np.unique(labels)) <= {0, 1, 2, 3, 4, 5}
    with pytest.raises(DatasetError, match="inside the source dataset"):
        write_parsing_maps(root, root / "parsing")
