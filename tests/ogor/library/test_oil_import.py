"""import-oil (MGCC and per-class layouts, checksums) and fetch-oil against a local HTTP server."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from ogor.cli import main
from ogor.errors import LibraryError
from ogor.library.importer import (
    MGCC_BASE_URL,
    MGCC_COMMIT,
    fetch_mgcc,
    import_folder,
    mgcc_sums_path,
    read_sha256sums,
)
from ogor.library.oil import OcclusionLibrary
from ogor.library.png import encode_png
from ogor.library.taxonomy import load_taxonomy


def occluder(seed: int, height: int = 30, width: int = 20) -> bytes:
    rng = np.random.default_rng(seed)
    rgba = rng.integers(0, 256, (height, width, 4), dtype=np.uint8)
    rgba[..., 3] = 0
    rgba[3:-3, 3:-3, 3] = 255
    return encode_png(rgba)


def write_sums(folder: Path, names: list[str], path: Path) -> Path:
    lines = [f"{hashlib.sha256((folder / n).read_bytes()).hexdigest()}  {n}\n" for n in names]
    path.write_text("".join(lines))
    return path


MGCC_NAMES = ["bag1.png", "firehydrant1.png", "firehydrant2.png", "roadsign3.png",
              "umbrella10.png", "umbrella2.png"]  # fmt: skip


@pytest.fixture()
def mgcc_folder(tmp_path: Path) -> Path:
    src = tmp_path / "occlusion_img"
    src.mkdir()
    for seed, name in enumerate(MGCC_NAMES):
        (src / name).write_bytes(occluder(seed, 30 + seed, 20 + seed))
    return src


def test_import_mgcc_layout_resolves_stems_and_orders_by_number(tmp_path, mgcc_folder):
    out = import_folder(mgcc_folder, tmp_path / "oil")
    lib = OcclusionLibrary.load(out)
    got = [(i.id, i.class_name, i.source["image"]) for i in lib.instances]
    assert got == [
        ("umbrella-001", "umbrella", "umbrella2.png"),
        ("umbrella-002", "umbrella", "umbrella10.png"),
        ("bag-001", "bag", "bag1.png"),
        ("road_sign-001", "road_sign", "roadsign3.png"),
        ("fire_hydrant-001", "fire_hydrant", "firehydrant1.png"),
        ("fire_hydrant-002", "fire_hydrant", "firehydrant2.png"),
    ]
    assert {i.detector for i in lib.instances} == {"import"}
    assert lib.get("bag-001").source["box"] == [0, 0, 20, 30]
    assert sorted(p.name for p in mgcc_folder.iterdir()) == sorted(MGCC_NAMES)  # source untouched


def test_import_per_class_subfolders(tmp_path):
    src = tmp_path / "src"
    for folder, seed in (("fire hydrant", 1), ("Bench", 2), ("bench", 3)):
        (src / folder).mkdir(parents=True, exist_ok=True)
        (src / folder / f"x{seed}.png").write_bytes(occluder(seed))
    lib = OcclusionLibrary.load(import_folder(src, tmp_path / "oil"))
    assert [i.class_name for i in lib.instances] == ["bench", "bench", "fire_hydrant"]


def test_import_with_checksums_accepts_good_and_rejects_tampered(tmp_path, mgcc_folder):
    sums = write_sums(mgcc_folder, MGCC_NAMES, tmp_path / "SHA256SUMS")
    out = import_folder(mgcc_folder, tmp_path / "good", sha256sums=sums)
    assert len(OcclusionLibrary.load(out)) == 6
    (mgcc_folder / "bag1.png").write_bytes(occluder(99))
    with pytest.raises(LibraryError, match=r"bag1.png: field 'sha256'"):
        import_folder(mgcc_folder, tmp_path / "bad", sha256sums=sums)
    assert not (tmp_path / "bad").exists()
    (mgcc_folder / "stone1.png").write_bytes(occluder(5))
    write_sums(mgcc_folder, MGCC_NAMES, sums)
    with pytest.raises(LibraryError, match="stone1.png: not listed"):
        import_folder(mgcc_folder, tmp_path / "bad", sha256sums=sums)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["SHA256SUMS", "good", "occlusion_img"]


def test_import_refuses_unknown_class_no_alpha_and_output_inside_source(tmp_path, mgcc_folder):
    runner = CliRunner()
    (mgcc_folder / "giraffe1.png").write_bytes(occluder(1))
    result = runner.invoke(main, ["import-oil", str(mgcc_folder), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "giraffe1.png" in result.output and "field 'class'" in result.output
    assert len(result.output.strip().splitlines()) == 1
    (mgcc_folder / "giraffe1.png").unlink()
    ok, rgb = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))
    (mgcc_folder / "kite1.png").write_bytes(rgb.tobytes())
    with pytest.raises(LibraryError, match="kite1.png: field 'alpha'"):
        import_folder(mgcc_folder, tmp_path / "o")
    with pytest.raises(LibraryError, match="inside the source folder"):
        import_folder(mgcc_folder, mgcc_folder / "oil")
    assert not (tmp_path / "o").exists()


def test_cli_import_with_sums(tmp_path, mgcc_folder):
    sums = write_sums(mgcc_folder, MGCC_NAMES, tmp_path / "sums.txt")
    out = tmp_path / "oil"
    args = ["import-oil", str(mgcc_folder), "--out", str(out), "--sha256sums", str(sums)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert OcclusionLibrary.load(out).fingerprint in result.output
    assert CliRunner().invoke(main, args).exit_code == 2  # exists: needs --overwrite
    assert CliRunner().invoke(main, [*args, "--overwrite"]).exit_code == 0


def test_pinned_mgcc_table_lists_60_resolvable_names():
    sums = read_sha256sums(mgcc_sums_path())
    assert len(sums) == 60
    tax = load_taxonomy()
    classes = [tax.resolve(name[:-5]) for name in sums]  # strip "{k}.png"
    assert sorted(set(classes)) == sorted(tax.names())
    assert all(classes.count(c) == 4 for c in tax.names())
    assert MGCC_COMMIT in MGCC_BASE_URL and MGCC_BASE_URL.startswith("https://")


# ----------------------------------------------------------------------------- fetch-oil


@pytest.fixture()
def server(tmp_path):
    """Serve tmp_path/www over HTTP on 127.0.0.1 from a background thread."""
    root = tmp_path / "www"
    (root / "dataset" / "occlusion_img").mkdir(parents=True)
    handler = functools.partial(_QuietHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - keep test output clean
        pass


def _serve_three(root: Path, sums_path: Path) -> Path:
    folder = root / "dataset" / "occlusion_img"
    names = ["car1.png", "roadsign1.png", "kite2.png"]
    for seed, name in enumerate(names):
        (folder / name).write_bytes(occluder(seed))
    return write_sums(folder, names, sums_path)


def test_fetch_accepts_good_files(tmp_path, server):
    root, url = server
    sums = _serve_three(root, tmp_path / "sums")
    out = tmp_path / "libs" / "mgcc"
    fetch_mgcc(out, base_url=url, sha256sums=sums, timeout=5)
    lib = OcclusionLibrary.load(out)
    assert [i.id for i in lib.instances] == ["kite-001", "car-001", "road_sign-001"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["mgcc"]  # no temporary leftovers


def test_fetch_rejects_tampered_file_and_writes_nothing(tmp_path, server):
    root, url = server
    sums = _serve_three(root, tmp_path / "sums")
    (root / "dataset" / "occlusion_img" / "roadsign1.png").write_bytes(occluder(42))
    out = tmp_path / "libs" / "mgcc"
    result = CliRunner().invoke(
        main,
        ["fetch-oil", "mgcc", "--out", str(out), "--base-url", url, "--sha256sums", str(sums)],
    )
    assert result.exit_code == 2
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("error: ") and "roadsign1.png" in last and "sha256" in last
    assert not out.parent.exists()  # not even the parent folder it had to create


def test_fetch_missing_file_and_offline_leave_nothing(tmp_path, server):
    root, url = server
    sums = _serve_three(root, tmp_path / "sums")
    (root / "dataset" / "occlusion_img" / "kite2.png").unlink()
    out = tmp_path / "libs" / "mgcc"
    with pytest.raises(LibraryError, match="kite2.png: HTTP 404"):
        fetch_mgcc(out, base_url=url, sha256sums=sums, timeout=5)
    assert not out.parent.exists()
    with pytest.raises(LibraryError, match="download failed"):
        fetch_mgcc(out, base_url="http://127.0.0.1:9", timeout=5)  # pinned table, nothing listens
    assert not out.parent.exists()
    out.parent.mkdir()
    with pytest.raises(LibraryError):
        fetch_mgcc(out, base_url="http://127.0.0.1:9", timeout=5)
    assert out.parent.is_dir() and list(out.parent.iterdir()) == []  # a user's folder stays
