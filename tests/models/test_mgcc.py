"""MGCC: every similarity against a naive per-pair loop over the paper's equations."""

from __future__ import annotations

import math

import pytest
import torch

from models import build_model
from models.errors import ModelError
from models.methods.mgcc import COMPONENTS, FUSIONS, MGCC_PAPER_RATIOS, MGCCConfig

from .conftest import random_features

TAU = 0.01


def _reduce(values: list[float], op: str, tau: float) -> float:
    """One level of fusion over a plain list, in float64."""
    if op == "mean":
        return sum(values) / len(values)
    if op == "max":
        return max(values)
    top = max(v / tau for v in values)
    weights = [math.exp(v / tau - top) for v in values]
    total = sum(weights)
    return sum(w / total * v for w, v in zip(weights, values, strict=True))


def _unit(vector: torch.Tensor) -> torch.Tensor:
    return vector.double() / vector.double().norm()


def naive_components(text, image, q: int, g: int, fusion: str, tau: float) -> dict[str, float]:
    """Eq. 2, 5-11 for one (text q, image g) pair, with only the valid tokens, by loops."""
    first, second = ("af", "af") if fusion == "af" else fusion.split("-")
    t_global, i_global = _unit(text.pooled[q]), _unit(image.pooled[g])
    words = [_unit(w) for w, ok in zip(text.tokens[q], text.mask[q], strict=True) if ok]
    patches = [_unit(p) for p, ok in zip(image.tokens[g], image.mask[g], strict=True) if ok]
    s = [[float(p @ w) for w in words] for p in patches]  # Eq. 1: n x m
    n, m = len(patches), len(words)
    s_img = [_reduce([s[i][j] for i in range(n)], first, tau) for j in range(m)]  # Eq. 5
    s_txt = [_reduce([s[i][j] for j in range(m)], first, tau) for i in range(n)]  # Eq. 6
    spw = (_reduce(s_img, second, tau) + _reduce(s_txt, second, tau)) / 2  # Eq. 7-9
    spt = _reduce([float(p @ t_global) for p in patches], second, tau)  # Eq. 10
    siw = _reduce([float(w @ i_global) for w in words], second, tau)  # Eq. 11
    return {"sit": float(t_global @ i_global), "spw": spw, "spt": spt, "siw": siw}


@pytest.mark.parametrize("fusion", FUSIONS)
def test_every_component_and_the_fusion_match_the_naive_loop(fusion: str) -> None:
    model = build_model("mgcc", backbone="tiny", fusion=fusion)
    text, image = random_features(num_texts=5, num_images=5, seed=1)
    with torch.no_grad():
        computed = model.component_similarities(text, image)
        fused = model.similarity(text, image)
    assert set(computed) == set(COMPONENTS)
    for q in range(len(text)):
        for g in range(len(image)):
            expected = naive_components(text, image, q, g, fusion, TAU)
            for name in COMPONENTS:
                assert computed[name][q, g].item() == pytest.approx(expected[name], abs=1e-5)
            mean = sum(expected.values()) / 4  # Eq. 12
            assert fused[q, g].item() == pytest.approx(mean, abs=1e-5)


def test_fused_similarity_is_the_mean_of_the_enabled_components_only() -> None:
    model = build_model("mgcc-spt-siw", backbone="tiny", tau=0.05)
    text, image = random_features(seed=2)
    with torch.no_grad():
        fused = model.similarity(text, image)
    for q in range(len(text)):
        for g in range(len(image)):
            expected = naive_components(text, image, q, g, "af", 0.05)
            assert fused[q, g].item() == pytest.approx(
                (expected["spt"] + expected["siw"]) / 2, abs=1e-5)


def test_af_reads_eq5_per_word_over_patches_not_the_transpose() -> None:
    """Pins the documented reading of the ambiguous Eq. 5-6 on a case where it matters."""
    model = build_model("mgcc-spw", backbone="tiny", tau=1.0)
    text, image = random_features(num_texts=1, num_images=1, seed=4)
    with torch.no_grad():
        value = model.similarity(text, image)[0, 0].item()
    expected = naive_components(text, image, 0, 0, "af", 1.0)["spw"]
    assert value == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("chunk", [1, 2, (3, 1), (1, 4), 100])
def test_chunked_similarity_equals_unchunked(chunk) -> None:
    model = build_model("mgcc", backbone="tiny")
    text, image = random_features(num_texts=5, num_images=5, seed=5)
    with torch.no_grad():
        whole = model.pair_similarity(text, image)
        chunked = model.similarity(text, image, chunk=chunk)
    torch.testing.assert_close(chunked, whole, rtol=0, atol=1e-6)


def test_padding_and_unselected_tokens_never_contribute() -> None:
    model = build_model("mgcc", backbone="tiny")
    text, image = random_features(seed=6)
    with torch.no_grad():
        before = model.similarity(text, image)
        text.tokens[~text.mask] = 1e3 * torch.randn_like(text.tokens[~text.mask])
        image.tokens[~image.mask] = 1e3 * torch.randn_like(image.tokens[~image.mask])
        after = model.similarity(text, image)
    torch.testing.assert_close(after, before)


def test_encoders_apply_the_token_ratios(captions) -> None:
    rho_image, rho_text = MGCC_PAPER_RATIOS["cuhk-pedes"]
    model = build_model("mgcc-cuhk", backbone="tiny")
    tokens = model.tokenize(captions)
    with torch.no_grad():
        image = model.encode_images(torch.randn(2, 3, *model.image_size))
        text = model.encode_texts(tokens)
    assert image.mask.sum(dim=1).tolist() == [math.ceil(rho_image * 32)] * 2  # 32 patches
    word_counts = (tokens.argmax(dim=1) - 1).tolist()
    assert text.mask.sum(dim=1).tolist() == [math.ceil(round(rho_text * m, 9))
                                             for m in word_counts]


def test_max_words_caps_captions_before_selection(captions) -> None:
    model = build_model("mgcc", backbone="tiny", max_words=5, rho_text=0.5)
    with torch.no_grad():
        text = model.encode_texts(model.tokenize(captions))
    counts = (model.tokenize(captions).argmax(dim=1) - 1).clamp(max=5)
    assert text.mask.sum(dim=1).tolist() == [math.ceil(c / 2) for c in counts.tolist()]


def test_invalid_chunk_is_a_model_error() -> None:
    model = build_model("mgcc", backbone="tiny")
    text, image = random_features()
    with pytest.raises(ModelError, match="chunk"):
        model.similarity(text, image, chunk=0)


def test_loss_reduction_sum_is_twice_mean(captions) -> None:
    torch.manual_seed(0)
    summed = build_model("mgcc", backbone="tiny", loss_reduction="sum")
    averaged = build_model("mgcc", backbone="tiny", loss_reduction="mean")
    averaged.load_state_dict(summed.state_dict())
    batch = {"images": torch.randn(4, 3, 64, 32), "tokens": summed.tokenize(captions),
             "pids": torch.arange(4)}
    with torch.no_grad():
        loss_sum = summed(batch)["infonce"]
        loss_mean = averaged(batch)["infonce"]
    assert loss_sum.item() == pytest.approx(2 * loss_mean.item(), rel=1e-6)


def test_infonce_matches_eq13_to_15_by_hand(captions) -> None:
    model = build_model("mgcc", backbone="tiny")
    batch = {"images": torch.randn(4, 3, 64, 32), "tokens": model.tokenize(captions),
             "pids": torch.arange(4)}
    with torch.no_grad():
        loss = model(batch)["infonce"].item()
        sim = model.similarity(model.encode_texts(batch["tokens"]),
                               model.encode_images(batch["images"])).double()
        s = sim * model.logit_scale().double()  # s[text, image]
    b = 4
    image_to_text = -sum(math.log(math.exp(s[i, i]) / sum(math.exp(s[j, i]) for j in range(b)))
                         for i in range(b)) / b  # Eq. 13: over texts j for image i
    text_to_image = -sum(math.log(math.exp(s[i, i]) / sum(math.exp(s[i, j]) for j in range(b)))
                         for i in range(b)) / b  # Eq. 14
    assert loss == pytest.approx(image_to_text + text_to_image, rel=1e-5)  # Eq. 15


def test_clip_baseline_equals_mgcc_with_sit_alone(captions) -> None:
    # in CLIP's joint space (the mgcc-b16-384 setting); the paper's 768-d space adds a new
    # text projection that the CLIP baseline does not have
    clip = build_model("clip", backbone="tiny")
    sit = build_model("mgcc-sit", backbone="tiny", feature_space="joint")
    sit.load_state_dict(clip.state_dict())
    batch = {"images": torch.randn(4, 3, 64, 32), "tokens": clip.tokenize(captions),
             "pids": torch.arange(4)}
    with torch.no_grad():
        assert clip(batch)["infonce"].item() == pytest.approx(sit(batch)["infonce"].item(),
                                                              rel=1e-6)
        torch.testing.assert_close(
            clip.similarity(clip.encode_texts(batch["tokens"]), clip.encode_images(
                batch["images"])),
            sit.similarity(sit.encode_texts(batch["tokens"]), sit.encode_images(
                batch["images"])))


@pytest.mark.parametrize(
    ("field", "value"),
    [("fusion", "sum-max"), ("components", ("sit", "xyz")), ("components", ()),
     ("rho_image", 0.0), ("rho_text", 1.2), ("tau", 0), ("loss_reduction", "median")],
)
def test_invalid_config_is_a_one_line_model_error(field: str, value) -> None:
    with pytest.raises(ModelError) as caught:
        MGCCConfig(**{field: value})
    assert "\n" not in str(caught.value)
