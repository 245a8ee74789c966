"""Pure cutout, filter, ranking and near-duplicate functions; the backend registry."""

from __future__ import annotations

import numpy as np
import pytest

from ogor.extract import cutout as cut
from ogor.extract.base import ExtractionError, Instances
from ogor.extract.dedup import keep_distinct, signature, signature_distance
from ogor.extract.pipeline import label_mapper, select_candidates
from ogor.extract.registry import build_backend, list_backends, resolve_auto
from ogor.library.taxonomy import load_taxonomy

from .conftest import run_cli, textured_image


def rect_mask(h: int, w: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    mask = np.zeros((h, w), dtype=bool)
    mask[y0:y1, x0:x1] = True
    return mask


def test_mask_box_and_border_truncation():
    mask = rect_mask(20, 30, 3, 9, 5, 12)
    assert cut.mask_box(mask) == (5, 3, 7, 6)
    assert cut.mask_box(np.zeros((4, 4), bool)) == (0, 0, 0, 0)
    assert not cut.touches_border(mask, margin=1)
    assert cut.touches_border(mask, margin=4)  # 3 px from the top
    assert cut.touches_border(rect_mask(20, 30, 3, 9, 5, 30), margin=1)  # right edge
    assert cut.touches_border(rect_mask(20, 30, 0, 9, 5, 12), margin=1)  # top edge
    assert not cut.touches_border(rect_mask(20, 30, 0, 9, 5, 12), margin=0)


def test_fragment_share_counts_the_largest_piece():
    mask = rect_mask(20, 20, 2, 8, 2, 8)  # 36 px
    assert cut.largest_component_share(mask) == 1.0
    mask[15:17, 15:17] = True  # a 4 px speck
    assert cut.largest_component_share(mask) == pytest.approx(36 / 40)
    assert cut.largest_component_share(np.zeros((5, 5), bool)) == 0.0


@pytest.mark.parametrize(
    ("mask", "score", "reason"),
    [
        (np.zeros((40, 40), bool), 1.0, cut.REJECT_EMPTY),
        (rect_mask(40, 40, 5, 30, 5, 30), 0.5, cut.REJECT_LOW_SCORE),
        (rect_mask(40, 40, 5, 8, 5, 30), 1.0, cut.REJECT_SMALL),  # 3 px high
        (rect_mask(40, 40, 0, 30, 5, 30), 1.0, cut.REJECT_TRUNCATED),
        (rect_mask(40, 40, 5, 15, 5, 30) | rect_mask(40, 40, 20, 30, 5, 30), 1.0, "fragmented"),
        (rect_mask(40, 40, 5, 30, 5, 30), 0.9, None),
    ],
)
def test_assess_reasons(mask, score, reason):
    rules = cut.CutoutFilter(min_score=0.7, min_area=20, min_side=4, min_component_share=0.9)
    verdict = cut.assess(mask, score, rules)
    assert verdict.reason == reason
    if reason is None:
        assert verdict.accepted and verdict.area == 625 and 0 < verdict.quality <= 0.9


def test_quality_prefers_confident_whole_and_larger_instances():
    assert cut.quality_score(0.9, 4000, 1.0) > cut.quality_score(0.8, 4000, 1.0)
    assert cut.quality_score(0.9, 4000, 1.0) > cut.quality_score(0.9, 4000, 0.9)
    assert cut.quality_score(0.9, 8000, 1.0) > cut.quality_score(0.9, 1000, 1.0)
    assert cut.quality_score(0.9, 128**2, 1.0) == cut.quality_score(0.9, 300**2, 1.0)


def test_cut_out_and_feather_never_leave_the_mask():
    image = textured_image(30, 40, seed=0)
    yy, xx = np.mgrid[:30, :40]
    mask = (yy - 15) ** 2 + (xx - 20) ** 2 <= 8**2
    hard = cut.cut_out(image, mask)
    x, y, w, h = cut.mask_box(mask)
    crop = mask[y : y + h, x : x + w]
    np.testing.assert_array_equal(hard[..., 3], crop * 255)
    np.testing.assert_array_equal(hard[..., :3][crop], image[y : y + h, x : x + w][crop])
    soft = cut.cut_out(image, mask, feather=2.0)
    assert np.all(soft[..., 3] <= hard[..., 3])  # inwards only
    assert soft[..., 3][crop].min() < 128  # the edge really is soft
    assert soft[h // 2, w // 2, 3] == 255  # the core stays opaque
    with pytest.raises(ValueError):
        cut.cut_out(image, np.zeros((30, 40), bool))


def test_near_duplicates_are_dropped_best_first_and_distinct_kept():
    rng = np.random.default_rng(0)
    base = np.dstack([rng.integers(0, 256, (40, 30, 3), dtype=np.uint8), np.full((40, 30), 255)])
    base = base.astype(np.uint8)
    noisy = base.copy()
    noisy[..., :3] = np.clip(base[..., :3].astype(int) + rng.integers(-3, 4, (40, 30, 3)), 0, 255)
    other = base.copy()
    other[..., 3] = 0
    other[5:35, 5:25, 3] = 255  # another outline
    bigger = np.repeat(np.repeat(base, 2, axis=0), 2, axis=1)  # same object, twice the size
    sigs = [signature(x) for x in (base, noisy, other, bigger)]
    aspects = [40 / 30, 40 / 30, 40 / 30, 80 / 60]
    assert signature_distance(sigs[0], sigs[1]) < 0.02
    assert keep_distinct(sigs, aspects) == [0, 2]
    assert keep_distinct(sigs, aspects, threshold=0) == [0, 1, 2, 3]
    assert keep_distinct(sigs, aspects, limit=1) == [0]


def test_select_ranks_caps_and_is_order_independent():
    rng = np.random.default_rng(1)

    def candidate(image: str, quality: float) -> dict:
        sig = rng.integers(0, 256, (2, 16, 16), dtype=np.uint8)
        return {
            "class": "car",
            "image": image,
            "file": f"{image}.png",
            "quality": quality,
            "score": quality,
            "box": [0, 0, 10, 10],
            "signature": sig.tobytes().hex(),
        }

    pool = [candidate(f"i{k}", q) for k, q in enumerate([0.2, 0.9, 0.5, 0.9, 0.7])]
    kept, rejected = select_candidates(pool, ["car", "bench"], per_class=3, dedup_threshold=0.06)
    assert [c["image"] for c in kept["car"]] == ["i1", "i3", "i4"]
    assert kept["bench"] == [] and rejected == {"over_per_class_cap": 2}
    again, _ = select_candidates(pool[::-1], ["car"], per_class=3, dedup_threshold=0.06)
    assert again["car"] == kept["car"]


def test_label_maps_per_space():
    taxonomy = load_taxonomy()
    assert label_mapper(taxonomy, "coco")("fire hydrant") == "fire_hydrant"
    assert label_mapper(taxonomy, "coco")("dog") is None
    assert label_mapper(taxonomy, "lvis")("fireplug") == "fire_hydrant"
    gt = label_mapper(taxonomy, "gt")
    assert (gt("stop sign"), gt("road sign"), gt("handbag"), gt("zebra")) == (
        "road_sign",
        "road_sign",
        "bag",
        None,
    )


def test_instances_checks_its_lengths():
    with pytest.raises(ValueError, match="labels"):
        Instances(np.zeros((2, 4, 4), bool), ["a"], np.ones(2))
    assert len(Instances.empty(4, 5)) == 0


def test_registry_lists_and_names_valid_choices(monkeypatch):
    assert list_backends() == ["torchvision", "detectron2", "coco-gt"]
    with pytest.raises(ExtractionError, match="valid backends: auto, torchvision, detectron2"):
        build_backend("yolo")
    with pytest.raises(ExtractionError, match="does not take option.*weights"):
        build_backend("coco-gt", coco="x.json", weights="w.pth")
    assert resolve_auto("coco-gt") == ("coco-gt", None)


def test_unknown_backend_through_the_cli(tmp_path):
    (tmp_path / "p").mkdir()
    result = run_cli("extract-oil", tmp_path / "p", "--backend", "yolo", "--out", tmp_path / "o")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: unknown backend 'yolo'; valid backends: auto, torchvision, detectron2, coco-gt"
    )
