"""``perf/gpu_check.py --dry-run`` (the GPU check's tiny CPU mode) runs every part of the script,
so that the check is ready whenever a GPU machine is at hand."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "perf" / "gpu_check.py"


def _load():
    spec = importlib.util.spec_from_file_location("perf_gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_dry_run_measures_training_evaluation_and_scaling(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    check = _load()
    # the real check is the issue's: the paper batches' models, both test scales
    assert check.TRAIN_MODELS == ("mgcc", "irra")
    assert {v[1:3] for v in check.EVAL_SCALES.values()} == {(3074, 6156), (19848, 19848)}
    result = check.main(["--dry-run", "--json-out", str(tmp_path / "check.json")])
    assert json.loads((tmp_path / "check.json").read_text()) == json.loads(json.dumps(result))
    assert [r["model"] for r in result["training"]] == ["mgcc", "irra"]
    assert all(r["images_per_second"] > 0 and r["peak_bytes"] > 0 for r in result["training"])
    # the exact evaluation ranked every caption against the whole gallery, with MGCC's ratios
    shapes = {r["scale"]: (r["gallery"], r["queries"], r["ratios"])
              for r in result["evaluation"]}
    assert shapes == {label: (g, q, list(ratios)) for (label, (fmt, g, q, _)), ratios in zip(
        check.DRY_EVAL_SCALES.items(), ([0.3, 0.4], [0.4, 0.5]), strict=True)}
    assert all(0 <= r["R@1"] <= 100 for r in result["evaluation"])
    # two processes (torchrun, gloo) split each global batch and gather the batch losses
    assert [(r["model"], r["processes"], r["per_process"] * 2 == r["batch"])
            for r in result["scaling"]] == [("mgcc", 2, True), ("irra", 2, True)]
    assert all(r["efficiency"] > 0 for r in result["scaling"])
    table = capsys.readouterr().out
    assert "images/s" in table and "efficiency" in table and "DRY RUN" in table
