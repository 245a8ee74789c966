"""``bench run`` reads a dataset copy in any layout (issue 28): TextReID's per-split files, and the
Occluded-* output of a split-less caption_all.json copy (whose split its manifest records)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from benchmark.cli import main
from benchmark.pipeline import runner
from ogor.datasets import read_dataset
from ogor.generation import generate_dataset
from tests.ogor.datasets.layout_copies import make_copy, synth_roots  # noqa: F401 (fixture)


def test_dry_run_keys_per_dataset_settings_by_the_dataset_not_the_layout(
    synth_roots, tmp_path: Path  # noqa: F811
) -> None:
    root, _ = make_copy(synth_roots["cuhk-pedes"], "textreid", tmp_path / "textreid")
    result = CliRunner().invoke(main, ["run", "--models", "mgcc", "--datasets", f"t={root}",
                                       "--dry-run"])
    assert result.exit_code == 0, result.output
    record = json.loads(result.output)[0]
    assert record["dataset_format"] == "cuhk-pedes"
    # MGCC's CUHK-PEDES token-selection ratios (paper), not the defaults of an unknown dataset
    assert (record["model_config"]["rho_image"], record["model_config"]["rho_text"]) == (0.3, 0.4)


def test_bench_run_trains_on_the_occluded_output_of_a_caption_all_copy(
    synth_roots, tmp_path: Path  # noqa: F811
) -> None:
    source, split_file = make_copy(synth_roots["cuhk-pedes"], "caption_all.json", tmp_path / "c")
    occluded = tmp_path / "Occluded-c"
    generate_dataset(source, occluded, ratio=0.5, seed=0, split_file=split_file)
    assert read_dataset(occluded).format.name == "cuhk-pedes-caption-all"
    runs = tmp_path / "runs"
    finished = runner.run_benchmark(["clip"], [("occ", occluded)], [1], preset="tiny",
                                    overrides={"epochs": 1}, out=runs, progress=False,
                                    log=lambda _: None)
    metrics = finished[0].record
    assert metrics["dataset_format"] == "cuhk-pedes-caption-all"
    test_captions = sum(len(r.captions) for r in read_dataset(occluded).split("test"))
    assert metrics["test"]["num_queries"] == test_captions > 0
    assert metrics["occlusion"]["occluded"]["num_queries"] > 0
