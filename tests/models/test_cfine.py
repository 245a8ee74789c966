"""CFine as its code builds it: MGF from the top-K tokens by CLS attention, retrieval by the
multi-grained global features alone, CFR / FCD / diversity against naive loops and hand cases.

The encoders are real and tiny, read from files the test writes: a random tiny open_clip CLIP
(its weights file) and a random 2-layer BERT of width 64 (a ``save_pretrained`` folder with its
own vocabulary), the widths CFine compares without a projection.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from models import build_model, build_model_from_config
from models.encoders.clip import Backbone
from models.errors import ModelError
from models.losses import cmpc_loss, cmpm_loss, hard_triplet_loss
from models.methods.cfine import (
    CFine,
    CFineSide,
    cross_grained_similarity,
    fine_grained_similarity,
    mgf_diversity,
)
from tests.models.test_bert import _write_folder

CAPTIONS = ["a man in a red shirt in blue shirts with a bag and a woman in red .",
            "a woman in blue", "a man with a bag", "a woman ."]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("cfine")
    _write_folder(root / "bert", hidden=64)
    torch.manual_seed(0)
    weights = root / "clip.pt"
    torch.save(Backbone("tiny").clip.state_dict(), weights)
    return weights, root / "bert"


def _build(files: tuple[Path, Path], **options) -> CFine:
    weights, bert = files
    torch.manual_seed(0)
    model = build_model("cfine", backbone="tiny", pretrained=str(weights), bert=str(bert),
                        num_classes=4, **options)
    assert isinstance(model, CFine)
    return model


@pytest.fixture(scope="module")
def model(files: tuple[Path, Path]) -> CFine:
    return _build(files)


def _batch(model: CFine) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    return {"images": torch.randn(len(CAPTIONS), 3, *model.image_size, generator=gen),
            "tokens": model.tokenize(CAPTIONS), "pids": torch.tensor([0, 1, 2, 0])}


def test_k_follows_the_code_ratios_and_the_features_stay_unprojected(model: CFine) -> None:
    # 32 patches + CLS: int(0.1 x 33) = 3; 32 positions (this BERT's limit): int(0.2 x 32) = 6
    assert (model.image_k, model.text_k) == (3, 6)
    assert not hasattr(model, "image_projection") and not hasattr(model, "text_projection")
    assert model.image_mean == (0.485, 0.456, 0.406)  # the code's ImageNet normalisation
    groups = model.parameter_groups()
    new = {id(p) for p in groups["new"]}
    assert {id(p) for p in model.mgf.parameters()} <= new
    assert id(model.cmpc_classifier) in new
    assert id(model.image_norm.bias) not in new and not model.image_norm.bias.requires_grad


def test_retrieval_uses_the_multi_grained_global_features_only(
        files: tuple[Path, Path], model: CFine) -> None:
    batch = _batch(model)
    model.eval()
    with torch.no_grad():
        texts, images = model.encode_texts(batch["tokens"]), model.encode_images(batch["images"])
        scores = model.similarity(texts, images)
        # no tokens reach the ranking: only [global, MGF1, MGF2] (3 x 64)
        assert texts.num_tokens == 0 and images.num_tokens == 0
        assert texts.pooled.shape == (4, 192)
        image_levels = model.image_side(batch["images"]).levels.flatten(1)
        text_levels = model.text_side(batch["tokens"]).levels.flatten(1)
    torch.testing.assert_close(
        scores, F.normalize(text_levels, dim=-1) @ F.normalize(image_levels, dim=-1).t())

    # CFR and FCD are training-only: other CFR / FCD settings and weights leave the ranking
    # unchanged, while they change the training loss
    state = {name: value.clone() for name, value in model.state_dict().items()}
    config = dataclasses.asdict(model.config)
    config.update(cfr_temperature=0.5, fcd_temperature=0.2, fcd_top_k=1, triplet_weight=3.0,
                  triplet_margin=5.0)
    other = build_model_from_config(config, load_pretrained=False)
    other.load_state_dict(model.state_dict())
    other.eval()
    with torch.no_grad():
        assert torch.equal(other.similarity(other.encode_texts(batch["tokens"]),
                                            other.encode_images(batch["images"])), scores)
        model.train(), other.train()
        assert not torch.isclose(model(batch)["triplet"], other(batch)["triplet"])
    model.load_state_dict(state)  # undo the BatchNorm statistics' update
    # ... and the MGF block does reach it
    model.eval()
    with torch.no_grad():
        saved = model.mgf.mlp[2].bias.clone()
        model.mgf.mlp[2].bias.add_(1.0)
        moved = model.similarity(model.encode_texts(batch["tokens"]),
                                 model.encode_images(batch["images"]))
        model.mgf.mlp[2].bias.copy_(saved)
    assert not torch.allclose(moved, scores)


def test_mgf_queries_are_the_top_k_tokens_by_cls_attention(model: CFine) -> None:
    batch = _batch(model)
    calls: list[tuple[torch.Tensor, ...]] = []
    hook = model.mgf.register_forward_hook(lambda _m, args, _out: calls.append(args))
    model.eval()
    with torch.no_grad():
        model.encode_images(batch["images"])
        model.encode_texts(batch["tokens"])
        cls, patches, attention = model.image_encoder.backbone.image_tokens(
            batch["images"], project=False)
        tokens = batch["tokens"]
        out = model.text_encoder.bert(input_ids=tokens, attention_mask=(tokens != 0).long(),
                                      output_attentions=True)
    hook.remove()
    assert len(calls) == 4  # image group 1, image group 2, text group 1, text group 2

    k = model.image_k
    order = attention.argsort(dim=1, descending=True)
    assert not torch.equal(order[:, :k], torch.arange(k).expand(4, k))  # not just the first K
    for group, (queries, query_valid, keys, key_valid) in enumerate(calls[:2]):
        expected = patches[torch.arange(4).unsqueeze(1), order[:, group * k:(group + 1) * k]]
        torch.testing.assert_close(queries, torch.cat([cls.unsqueeze(1), expected], 1))
        assert bool(query_valid.all()) and bool(key_valid.all())
        torch.testing.assert_close(keys, torch.cat([cls.unsqueeze(1), patches], 1))

    k = model.text_k
    states = out.last_hidden_state
    score = out.attentions[-1][:, :, 0, :].mean(dim=1)
    for row in range(len(CAPTIONS)):
        positions = [p for p in range(1, tokens.shape[1]) if tokens[row, p] != 0]  # + [SEP]
        ranked = sorted(positions, key=lambda p: -float(score[row, p]))
        for group, (queries, query_valid, _keys, key_valid) in enumerate(calls[2:]):
            picked = ranked[group * k:(group + 1) * k]
            assert query_valid[row].tolist() == [True] * (1 + len(picked)) + [False] * (
                k - len(picked))  # padding is never a query
            torch.testing.assert_close(queries[row, :1 + len(picked)],
                                       states[row, [0, *picked]])
            assert key_valid[row].tolist() == (tokens[row] != 0).tolist()
    assert len(ranked) < 2 * k  # the last caption is short: its second group is partly empty


def test_forward_combines_the_code_losses(model: CFine) -> None:
    batch = _batch(model)
    model.train()
    with torch.no_grad():
        state = {k: v.clone() for k, v in model.state_dict().items()}
        torch.manual_seed(5)  # the same dropout masks in both passes
        losses = model(batch)
        model.load_state_dict(state)
        torch.manual_seed(5)
        image, text = model.image_side(batch["images"]), model.text_side(batch["tokens"])
        model.load_state_dict(state)
    pids = batch["pids"]
    assert set(losses) == {"cmpm", "cmpc", "diversity", "triplet"}
    cmpm = sum(w * cmpm_loss(image.levels[:, i], text.levels[:, i], pids, match_norm="l2")
               for i, w in enumerate((1.0, 1.0, 0.1)))
    cmpc = sum(cmpc_loss(image.levels[:, i], text.levels[:, i], pids, model.cmpc_classifier)
               for i in range(3))
    diversity = 0.2 * (mgf_diversity(image.levels[:, 1:]) + mgf_diversity(text.levels[:, 1:]))
    triplet = 10 * hard_triplet_loss(cross_grained_similarity(image, text, 0.07)
                                     + fine_grained_similarity(image, text, 0.01, 3), pids, 0.2)
    for name, want in (("cmpm", cmpm), ("cmpc", cmpc), ("diversity", diversity),
                       ("triplet", triplet)):
        torch.testing.assert_close(losses[name], want, rtol=1e-5, atol=1e-5)


def test_config_refuses_what_cfine_cannot_build(files: tuple[Path, Path]) -> None:
    with pytest.raises(ModelError, match="image_encoder must be 'clip'"):
        build_model("cfine", image_encoder="resnet", backbone="tiny", bert="tiny")
    with pytest.raises(ModelError, match="two groups of K must fit"):
        _build(files, image_k_ratio=0.6)
    narrow = files[1].parent / "narrow"
    _write_folder(narrow, hidden=32)
    with pytest.raises(ModelError, match="widths must match"):
        build_model("cfine", backbone="tiny", bert=str(narrow))


# ------------------------------------------------------------------- CFR, FCD, diversity
def _side(levels_dim: int, glob: torch.Tensor, selected: torch.Tensor, valid: torch.Tensor,
          k: int) -> CFineSide:
    return CFineSide(torch.zeros(len(glob), 3, levels_dim), glob, selected, valid, k)


def _random_sides(seed: int = 0) -> tuple[CFineSide, CFineSide]:
    gen = torch.Generator().manual_seed(seed)
    batch, dim = 3, 5
    image = _side(dim, torch.randn(batch, dim, generator=gen),
                  torch.randn(batch, 6, dim, generator=gen), torch.ones(batch, 6, dtype=bool), 3)
    valid = torch.tensor([[True] * 8, [True] * 5 + [False] * 3, [True] * 2 + [False] * 6])
    text = _side(dim, torch.randn(batch, dim, generator=gen),
                 torch.randn(batch, 8, dim, generator=gen), valid, 4)
    return image, text


def _naive_cfr(image: CFineSide, text: CFineSide, t: float) -> torch.Tensor:
    def weighted(glob: torch.Tensor, tokens: torch.Tensor, valid: torch.Tensor) -> float:
        s = [float(F.cosine_similarity(glob, tokens[n], dim=0)) / t
             for n in range(len(tokens)) if valid[n]]
        top = max(s)
        z = sum(math.exp(v - top) for v in s)
        return sum(math.exp(v - top) / z * v for v in s)

    out = torch.zeros(len(image.glob), len(text.glob))
    for i in range(len(image.glob)):
        for j in range(len(text.glob)):
            out[i, j] = (weighted(image.glob[i], text.selected[j], text.selected_valid[j])
                         + weighted(text.glob[j], image.selected[i], image.selected_valid[i])) / 2
    return out


def test_cfr_equals_a_naive_loop_and_a_hand_case() -> None:
    image, text = _random_sides()
    torch.testing.assert_close(cross_grained_similarity(image, text, 0.07),
                               _naive_cfr(image, text, 0.07), rtol=1e-5, atol=1e-5)
    # hand case, t = 1: each global meets (its own direction, an orthogonal one):
    # sum softmax([1, 0]) * [1, 0] = e / (e + 1); the invalid third slot (its direction too)
    # takes no part
    e = math.e
    tokens = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]])
    valid = torch.tensor([[True, True, False]])
    image = _side(2, torch.tensor([[1.0, 0.0]]), tokens, valid, 1)
    text = _side(2, torch.tensor([[1.0, 0.0]]), tokens, valid, 1)
    got = cross_grained_similarity(image, text, 1.0)
    assert float(got) == pytest.approx(e / (e + 1), abs=1e-6)


def _naive_fcd(image: CFineSide, text: CFineSide, t: float, top: int) -> torch.Tensor:
    """The code's loops, over the valid group-1 slots."""
    batch = len(image.glob)
    cos = F.cosine_similarity
    word_match, patch_match = [], []
    for b in range(batch):
        patches = [image.selected[b, p] for p in range(image.k) if image.selected_valid[b, p]]
        words = [text.selected[b, w] for w in range(text.k) if text.selected_valid[b, w]]
        sim = torch.tensor([[float(cos(p, w, dim=0)) for w in words] for p in patches])
        soft = sim.softmax(dim=1)
        word_match.append([torch.stack([words[w] for w in soft[p].argsort(descending=True)[:top]])
                           .mean(0) for p in range(len(patches))])
        patch_match.append([torch.stack([patches[p] for p in
                                         soft[:, w].argsort(descending=True)[:top]]).mean(0)
                            for w in range(len(words))])
    out = torch.zeros(batch, batch)
    for i in range(batch):
        for j in range(batch):
            p_terms = [float(cos(image.selected[i, p], word_match[j][p], dim=0)) / t
                       for p in range(min(len(word_match[i]), len(word_match[j])))]
            w_terms = [float(cos(patch_match[i][w], text.selected[j, w], dim=0)) / t
                       for w in range(min(len(patch_match[i]), len(patch_match[j])))]
            out[i, j] = (sum(p_terms) / len(p_terms) + sum(w_terms) / len(w_terms)) / 2
    return out


def test_fcd_equals_a_naive_loop_and_a_hand_case() -> None:
    image, text = _random_sides(1)
    for top in (1, 3):
        torch.testing.assert_close(fine_grained_similarity(image, text, 0.01, top),
                                   _naive_fcd(image, text, 0.01, top), rtol=1e-5, atol=1e-4)
    # hand case, t = 1, one soft match: the patch (1, 0) matches the word (1, 0): cos 1; the
    # words (1, 0), (0, 1) both match that patch: cos 1 and 0 -> 0.5; (1 + 0.5) / 2
    image = _side(2, torch.zeros(1, 2), torch.tensor([[[1.0, 0.0]]]), torch.ones(1, 1, dtype=bool),
                  1)
    text = _side(2, torch.zeros(1, 2), torch.tensor([[[1.0, 0.0], [0.0, 1.0]]]),
                 torch.ones(1, 2, dtype=bool), 2)
    assert float(fine_grained_similarity(image, text, 1.0, 1)) == pytest.approx(0.75)


def test_diversity_equals_a_naive_loop_and_a_hand_case() -> None:
    gen = torch.Generator().manual_seed(2)
    parts = torch.randn(4, 3, 6, generator=gen)
    naive = 0.0
    for sample in parts:
        unit = [v / v.norm() for v in sample]
        off = sum(float(unit[a] @ unit[b]) ** 2 for a in range(3) for b in range(3) if a != b)
        naive += math.sqrt(off) / 9
    assert float(mgf_diversity(parts)) == pytest.approx(naive / 4, abs=1e-6)
    same = torch.tensor([[[1.0, 0.0], [2.0, 0.0]]])
    orthogonal = torch.tensor([[[1.0, 0.0], [0.0, 3.0]]])
    assert float(mgf_diversity(same)) == pytest.approx(math.sqrt(2) / 4)
    assert float(mgf_diversity(orthogonal)) == 0.0
