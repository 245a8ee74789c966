"""``bench robustness`` never evaluates one dataset's images for another: its cache of split
copies is keyed by content (annotation *and* every image), re-checked before use, and an
already-occluded ``--source`` is refused unless asked for."""

from __future__ import annotations

import json
import shutil

from click.testing import CliRunner

from benchmark.cli import main
from benchmark.evaluation.robustness import CONTENT_NAME, split_copy
from ogor.datasets import annotation_sha256, read_dataset


def _robustness_r0(run, source, cache, out, *extra):
    """Ratio-0 R@1 of ``bench robustness`` (seed 0), i.e. the split evaluated as it is."""
    result = CliRunner().invoke(main, [
        "robustness", "--run", str(run), "--source", str(source), "--ratios", "0",
        "--seeds", "0", "--out", str(out), "--quiet", *extra],
        env={"TOREID_CACHE": str(cache)})
    assert result.exit_code == 0, result.output
    record = json.loads((out / "robustness.json").read_text())
    return record["runs"][0]["sweep"][0]["mean"], record["cache"]


def _eval(run, dataset, out):
    result = CliRunner().invoke(main, ["eval", "--run", str(run), "--dataset", str(dataset),
                                       "--json-out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text())["test"]


def test_clean_and_occluded_copies_with_one_annotation_get_their_own_cache(demo_run, tmp_path):
    clean, occluded = demo_run["clean"], demo_run["occluded"]
    # The situation of the bug: ogor keeps the annotation file as it is.
    assert (annotation_sha256(read_dataset(clean).annotation_path)
            == annotation_sha256(read_dataset(occluded).annotation_path))
    cache = tmp_path / "cache"
    clean_metrics, clean_cache = _robustness_r0(demo_run["run"], clean, cache, tmp_path / "a")
    occ_metrics, occ_cache = _robustness_r0(demo_run["run"], occluded, cache, tmp_path / "b",
                                            "--allow-generated-source")
    assert clean_cache != occ_cache
    # The two differ, so a shared cache entry would have shown (it did before the fix).
    assert clean_metrics["mAP"] != occ_metrics["mAP"]
    # Each equals bench eval on its own images, whichever ran first.
    for metrics, root, name in ((clean_metrics, clean, "c"), (occ_metrics, occluded, "o")):
        own = _eval(demo_run["run"], root, tmp_path / f"{name}.json")
        assert metrics["R@1"] == own["R@1"] and metrics["mAP"] == own["mAP"]


def test_one_changed_image_changes_the_key_and_a_stale_copy_is_rebuilt(demo_run, tmp_path):
    source = tmp_path / "source"
    shutil.copytree(demo_run["clean"], source)
    cache = tmp_path / "cache"
    first = split_copy(source, "test", cache)
    record = json.loads((first / CONTENT_NAME).read_text())
    rel, _ = next(iter(record["images"].items()))
    image_dir = read_dataset(source).format.image_dir
    # A cached copy altered behind its key is re-checked and rebuilt, not used.
    (first / image_dir / rel).write_bytes(b"not the image")
    again = split_copy(source, "test", cache)
    assert again == first
    assert (again / image_dir / rel).read_bytes() == (source / image_dir / rel).read_bytes()
    # One image of the source changed: another cache entry, holding the new bytes.
    target = source / image_dir / rel
    target.write_bytes(target.read_bytes() + b"\0")
    changed = split_copy(source, "test", cache)
    assert changed != first
    assert (changed / image_dir / rel).read_bytes() == target.read_bytes()


def test_generated_source_is_refused_in_one_line_before_anything_is_written(demo_run, tmp_path):
    cache, out = tmp_path / "cache", tmp_path / "out"
    result = CliRunner().invoke(main, [
        "robustness", "--run", str(demo_run["run"]), "--source", str(demo_run["occluded"]),
        "--out", str(out), "--quiet"], env={"TOREID_CACHE": str(cache)})
    assert result.exit_code != 0
    line = result.output.strip()
    assert "\n" not in line and "--allow-generated-source" in line and "Traceback" not in line
    assert not out.exists() and not cache.exists()
