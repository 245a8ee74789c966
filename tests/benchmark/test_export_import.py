"""``bench export`` then ``bench import`` (format detected from the file) gives the same model:
the same similarities and the same ranking on the run's test split."""

from __future__ import annotations

import json

import torch
from click.testing import CliRunner

from benchmark.cli import main
from benchmark.records.rebuild import rebuild_from_run


def test_export_then_import_gives_the_same_ranking(demo_run, tmp_path):
    exported = tmp_path / "model.safetensors"
    runner = CliRunner()
    result = runner.invoke(main, ["export", "--run", str(demo_run["run"]), "--out",
                                  str(exported)])
    assert result.exit_code == 0, result.output
    imported = tmp_path / "runs" / "demo" / "clip-exported"
    result = runner.invoke(main, ["import", str(exported), "--out", str(imported),
                                  "--dataset", f"demo={demo_run['occluded']}", "--quiet"])
    assert result.exit_code == 0, result.output
    original, _ = rebuild_from_run(demo_run["run"])
    again, config = rebuild_from_run(imported)
    assert config["source"]["format"] == "toreid"
    original.eval(), again.eval()
    captions = ["a man in a red shirt", "a woman with a black bag"]
    images = torch.rand(3, 3, *original.image_size)
    with torch.no_grad():
        want = original.similarity(original.encode_texts(original.tokenize(captions)),
                                   original.encode_images(images))
        got = again.similarity(again.encode_texts(again.tokenize(captions)),
                               again.encode_images(images))
    assert torch.equal(want, got)
    # The imported run evaluates to the trained run's own test metrics.
    trained = json.loads((demo_run["run"] / "metrics.json").read_text())["test"]
    metrics = json.loads((imported / "metrics.json").read_text())["test"]
    assert metrics["R@1"] == trained["R@1"] and metrics["mAP"] == trained["mAP"]


def test_import_without_format_names_what_is_missing(tmp_path):
    path = tmp_path / "best.pth"
    torch.save({"model": {"w": torch.zeros(1)}}, path)
    result = CliRunner().invoke(main, ["import", str(path), "--out", str(tmp_path / "run")])
    assert result.exit_code != 0
    assert result.output.strip().startswith(f"error: {path}: --format missing")
    assert not (tmp_path / "run").exists()
