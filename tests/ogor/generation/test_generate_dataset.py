"""generate_dataset end to end on tiny hand-made datasets: output shape, determinism, refusals."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from ogor.cli import main
from ogor.datasets import read_dataset
from ogor.errors import GenerationError, LibraryError
from ogor.generation.generate import PARTIAL_SUFFIX, generate_dataset
from ogor.generation.manifest import JOB_NAME, MANIFEST_NAME, occlusion_flags, read_manifest
from ogor.generation.verify import verify_dataset

from .conftest import tree_digest, write_dataset


def test_replace_mode_output_reads_back_and_mirrors_source(
    source: Path, tmp_path: Path, library_root: Path
) -> None:
    before = tree_digest(source)
    summary = generate_dataset(source, tmp_path / "out", oil=library_root, ratio=0.5, seed=1)
    out = tmp_path / "out"
    assert tree_digest(source) == before  # the source is untouched

    src_ds, out_ds = read_dataset(source), read_dataset(out)
    assert out_ds.format.name == "cuhk-pedes" and out_ds.annotation_path.name == "reid_raw.json"
    assert [r.image_path for r in out_ds.records] == [r.image_path for r in src_ds.records]
    assert out_ds.annotation_path.read_bytes() == src_ds.annotation_path.read_bytes()

    manifest = read_manifest(out)  # schema-valid
    flags = occlusion_flags(out)
    assert flags is not None and len(flags) == len(src_ds.records)
    assert sum(flags.values()) == summary.occluded == 11  # round(.5*12)+round(.5*4)+round(.5*6)
    for item in manifest["images"]:
        src_file = source / "imgs" / item["source_path"]
        out_file = out / "imgs" / item["path"]
        if item["occluded"]:
            assert out_file.read_bytes() != src_file.read_bytes()
            assert 0 < item["occluded_fraction"] <= 1
        else:
            assert out_file.read_bytes() == src_file.read_bytes()
            assert os.stat(out_file).st_ino == os.stat(src_file).st_ino  # hard link
    assert manifest["summary"]["splits"]["train"] == {
        "images": 12, "occluded": 6,
        "mean_occluded_fraction": manifest["summary"]["splits"]["train"]["mean_occluded_fraction"],
    }
    assert not (tmp_path / ("out" + PARTIAL_SUFFIX)).exists()
    assert not (out / JOB_NAME).exists()
    assert occlusion_flags(source) is None  # a plain dataset has no manifest


def test_workers_do_not_change_a_byte(
    source: Path, tmp_path: Path, library_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trees = []
    for workers in (1, 2):
        run = tmp_path / f"w{workers}"
        run.mkdir()
        monkeypatch.chdir(run)
        generate_dataset(source, "out", oil=library_root, ratio=0.4, seed=3, workers=workers)
        trees.append(tree_digest(run / "out"))
    assert trees[0] == trees[1] and len(trees[0]) == 24


def test_add_mode_keeps_originals_and_adds_suffixed_copies(
    source: Path, tmp_path: Path, library_root: Path
) -> None:
    generate_dataset(source, tmp_path / "out", oil=library_root, ratio=0.5, mode="add")
    src_records = read_dataset(source).records
    records = read_dataset(tmp_path / "out").records
    copies = [r for r in records if r.image_path.endswith("_occ.jpg")]
    assert len(records) == len(src_records) + len(copies) and len(copies) == 11
    by_path = {r.image_path: r for r in src_records}
    for copy in copies:
        original = by_path[copy.image_path.replace("_occ.jpg", ".jpg")]
        assert (copy.person_id, copy.split, copy.captions) == (
            original.person_id, original.split, original.captions,
        )
    for record in src_records:  # originals byte-identical
        assert (tmp_path / "out/imgs" / record.image_path).read_bytes() == (
            source / "imgs" / record.image_path
        ).read_bytes()
    flags = occlusion_flags(tmp_path / "out")
    assert flags is not None and sum(flags.values()) == 11 and len(flags) == 22 + 11
    verify_dataset(tmp_path / "out", source=source)


def test_mgcc_code_protocol_occludes_first_of_each_run(
    source: Path, tmp_path: Path, library_root: Path
) -> None:
    generate_dataset(source, tmp_path / "out", oil=library_root, protocol="mgcc-code", ratio=0.9)
    manifest = read_manifest(tmp_path / "out")
    assert manifest["ratio"] is None
    occluded = sorted(i["path"] for i in manifest["images"] if i["occluded"])
    assert occluded == sorted(f"cam_a/{pid:04d}_0.jpg" for pid in range(1, 11))
    for item in manifest["images"]:
        if item["occluded"]:
            from ogor.library.taxonomy import load_taxonomy

            cls = load_taxonomy().classes[item["placement"]["class"]]
            assert item["placement"]["delta"] == cls.mgcc_area


def test_png_and_rstpreid_keep_format_and_name(tmp_path: Path, library_root: Path) -> None:
    src = tmp_path / "rstp"
    write_dataset(src, fmt="rstpreid", ext=".png", layout={"train": [2, 2], "test": [2]})
    generate_dataset(src, tmp_path / "out", oil=library_root, ratio=1.0)
    out = read_dataset(tmp_path / "out")
    assert out.format.name == "rstpreid" and out.annotation_path.name == "data_captions.json"
    for record in out.records:
        assert (tmp_path / "out/imgs" / record.image_path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_dry_run_writes_nothing(source: Path, tmp_path: Path, library_root: Path) -> None:
    summary = generate_dataset(source, tmp_path / "out", oil=library_root, dry_run=True)
    assert summary.dry_run and summary.occluded == 4 + 1 + 2
    assert sum(summary.summary["sets"].values()) == 7
    assert not (tmp_path / "out").exists() and not (tmp_path / ("out" + PARTIAL_SUFFIX)).exists()


# -- refusals ------------------------------------------------------------------------------


def test_refuses_out_inside_source(source: Path, library_root: Path) -> None:
    with pytest.raises(GenerationError, match="inside the source"):
        generate_dataset(source, source / "imgs" / "occ", oil=library_root)
    link = source.parent / "link"
    link.symlink_to(source)
    with pytest.raises(GenerationError, match="inside the source"):
        generate_dataset(source, link / "occ", oil=library_root)
    assert not (source / "imgs" / "occ").exists()


@pytest.mark.parametrize("ratio", [-0.1, 1.5])
def test_refuses_ratio_outside_unit_interval(
    source: Path, tmp_path: Path, library_root: Path, ratio: float
) -> None:
    with pytest.raises(GenerationError, match="outside \\[0, 1\\]"):
        generate_dataset(source, tmp_path / "out", oil=library_root, ratio=ratio)


def test_refuses_non_empty_out_unless_resume_or_overwrite(
    source: Path, tmp_path: Path, library_root: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    for flags in ({}, {"overwrite": True}, {"resume": True}):
        with pytest.raises(GenerationError, match="not empty"):
            generate_dataset(source, out, oil=library_root, **flags)
    assert (out / "notes.txt").read_text() == "mine"
    (out / "notes.txt").unlink()
    generate_dataset(source, out, oil=library_root)  # an empty folder is fine
    with pytest.raises(GenerationError, match="--resume or --overwrite"):
        generate_dataset(source, out, oil=library_root, seed=4)
    with pytest.raises(GenerationError, match="other inputs"):
        generate_dataset(source, out, oil=library_root, seed=4, resume=True)
    done = generate_dataset(source, out, oil=library_root, resume=True)  # already complete
    assert done.occluded == 7
    generate_dataset(source, out, oil=library_root, seed=4, overwrite=True)
    assert read_manifest(out)["seed"] == 4


def test_missing_source_image_is_named_and_nothing_looks_finished(
    source: Path, tmp_path: Path, library_root: Path
) -> None:
    (source / "imgs/cam_b/0001_1.jpg").unlink()
    with pytest.raises(GenerationError, match=r"0001_1\.jpg: source image not found"):
        generate_dataset(source, tmp_path / "out", oil=library_root, ratio=1.0, workers=2)
    assert not (tmp_path / "out").exists()
    assert (tmp_path / ("out" + PARTIAL_SUFFIX) / JOB_NAME).is_file()
    with pytest.raises(GenerationError, match="unfinished"):
        occlusion_flags(tmp_path / ("out" + PARTIAL_SUFFIX))


def test_refuses_unknown_protocol_and_broken_library(
    source: Path, tmp_path: Path, library_root: Path
) -> None:
    with pytest.raises(GenerationError, match="unknown protocol 'x'"):
        generate_dataset(source, tmp_path / "out", oil=library_root, protocol="x")
    with pytest.raises(LibraryError, match="index.json"):
        generate_dataset(source, tmp_path / "out", oil=tmp_path)


def test_cli_errors_are_one_line_and_help_has_examples(
    source: Path, tmp_path: Path, library_root: Path
) -> None:
    runner = CliRunner()
    result = runner.invoke(
        main, ["generate", str(source), "--out", str(source / "x"), "--oil", str(library_root)]
    )
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and result.output.startswith("error: ")
    result = runner.invoke(main, ["generate", str(source), "--out", str(tmp_path / "o"),
                                  "--oil", str(library_root), "--ratio", "2"])
    assert result.exit_code == 2 and "ratio 2.0 is outside [0, 1]" in result.output
    result = runner.invoke(main, ["generate", str(source), "--out", str(tmp_path / "o"),
                                  "--oil", str(library_root), "--protocol", "mgcc-code",
                                  "--ratio", "0.5", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "--ratio does not apply" in result.output
    for command in ("generate", "verify", "preview"):
        help_text = runner.invoke(main, [command, "--help"]).output
        assert "Example:" in help_text and f"ogor {command} " in help_text


def test_manifest_records_parameters_and_placements(
    source: Path, tmp_path: Path, library_root: Path
) -> None:
    generate_dataset(source, tmp_path / "out", oil=library_root, seed=9, quality=80, feather=1.0)
    manifest = json.loads((tmp_path / "out" / MANIFEST_NAME).read_text())
    assert (manifest["seed"], manifest["quality"], manifest["feather"]) == (9, 80, 1.0)
    assert manifest["library"]["instances"] == 7
    assert list(manifest)[-1] == "summary"
    for item in manifest["images"]:
        if item["occluded"]:
            x, y, w, h = item["placement"]["box"]
            assert 0 <= x and x + w <= 32 and 0 <= y and y + h <= 64
        else:
            assert item["placement"] is None and item["occluded_fraction"] == 0.0


def test_default_library_is_the_embedded_one(source: Path, tmp_path: Path) -> None:
    from ogor.library.oil import OcclusionLibrary, default_library_path

    generate_dataset(source, tmp_path / "out", ratio=0.5)
    manifest = read_manifest(tmp_path / "out")
    assert manifest["library"]["default"] is True
    assert manifest["library"]["fingerprint"] == OcclusionLibrary.load(
        default_library_path(), verify=False
    ).fingerprint
    assert verify_dataset(tmp_path / "out", source=source).placements == 11
