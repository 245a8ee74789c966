"""The embedded procedural default library: loads, covers the taxonomy, regenerates identically."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from ogor.cli import main
from ogor.library.oil import OcclusionLibrary, default_library_path
from ogor.library.render.registry import list_renderers, render_instance
from ogor.library.taxonomy import load_taxonomy

from ..recorded import image_library_versions, require_recorded_versions

#: The image-library versions the shipped ``oil_assets/default`` was rendered under.
RENDERED_UNDER = Path(__file__).with_name("default_oil_versions.json")


def test_default_library_loads_and_covers_15_classes_4_each():
    lib = OcclusionLibrary.load(default_library_path())  # verifies every hash and alpha
    tax = load_taxonomy()
    groups = lib.by_class()
    assert list(groups) == tax.names()
    assert all(len(members) >= 4 for members in groups.values())
    assert {i.detector for i in lib.instances} == {"procedural"}
    total = sum(p.stat().st_size for p in default_library_path().iterdir())
    assert total < 2_000_000


def test_default_instances_look_like_occluders():
    """Paper-like sizes, soft alpha edges, shading rather than flat colour, real silhouettes."""
    lib = OcclusionLibrary.load(default_library_path(), verify=False)
    for inst in lib.instances:
        rgba = lib.rgba(inst)
        alpha = rgba[..., 3]
        assert 18 <= inst.width <= 230 and 40 <= inst.height <= 230, inst.id
        soft = np.count_nonzero((alpha > 0) & (alpha < 255))
        assert soft > 0.02 * inst.mask_area, f"{inst.id}: hard alpha edge"
        opaque = rgba[alpha == 255][:, :3].astype(float)
        assert opaque.std(axis=0).max() > 8, f"{inst.id}: flat colour"
        assert inst.mask_area < 0.97 * inst.width * inst.height, f"{inst.id}: a plain rectangle"


def test_every_class_has_a_renderer_and_rendering_is_deterministic():
    assert sorted(list_renderers()) == sorted(load_taxonomy().names())
    first = render_instance("umbrella", 0)
    assert np.array_equal(first, render_instance("umbrella", 0))
    assert not np.array_equal(first[..., 3], render_instance("umbrella", 1)[..., 3])
    assert render_instance("umbrella", 0, seed=1).shape == first.shape  # seed changes texture only


def test_render_command_regenerates_the_shipped_bytes(tmp_path):
    """The shipped PNGs are the asset; ``ogor render-default-oil`` reproduces them byte for byte
    under the locked versions (requirements.lock: opencv-python-headless 5.0.0.93, the build they
    were rendered with, recorded in ``default_oil_versions.json``).

    Their pixels depend on OpenCV's drawing code: OpenCV 5.1.0 anti-aliases the Hershey-font text
    of the 6 instances that carry text (card: MENU, BUS; road_sign: STOP, P, !, CITY) differently
    (up to 68 levels on 51 to 234 colour pixels each, alpha unchanged), and so changes their bytes
    and the library fingerprint. We keep the asset fixed rather than redraw it with our own
    rasteriser, so the fingerprints of datasets already made with it stay valid. Under other
    versions this test fails in CI and is skipped elsewhere, saying how to re-record; under the
    recorded versions any difference is ours. ``OGOR_RECORD_GOLDEN=1`` after
    ``ogor render-default-oil`` records the versions with the re-rendered asset.
    """
    if os.environ.get("OGOR_RECORD_GOLDEN"):
        RENDERED_UNDER.write_text(
            json.dumps(image_library_versions(), indent=1) + "\n", encoding="utf-8"
        )
    recorded = json.loads(RENDERED_UNDER.read_text(encoding="utf-8"))
    require_recorded_versions(f"{RENDERED_UNDER.name}: oil_assets/default was", recorded)
    out = tmp_path / "default"
    result = CliRunner().invoke(main, ["render-default-oil", "--out", str(out)])
    assert result.exit_code == 0, result.output
    shipped = default_library_path()
    names = sorted(p.name for p in shipped.iterdir())
    assert sorted(p.name for p in out.iterdir()) == names
    for name in names:
        assert (out / name).read_bytes() == (shipped / name).read_bytes(), name
