"""SAF as its release builds it: [CLS]-queried full-width heads, a shared BatchNorm, CMPM + CMPC
over the global and part features + diversity, retrieval by the sum of the 11 cosines."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from models import build_model, tiny_options
from models.errors import ModelError
from models.methods.saf import SAF, SAFConfig, part_diversity, release_part_layout, saf_losses

CAPTIONS = ["a man in a red shirt", "a woman", "a child in a yellow coat", "an old man"]


@pytest.fixture(scope="module")
def saf(tmp_path_factory: pytest.TempPathFactory) -> SAF:
    """The tiny SAF with the paper's 10 parts, its random weights saved and loaded back."""
    torch.manual_seed(0)
    options = {**tiny_options("saf"), "num_parts": 10}
    model = build_model("saf", num_classes=3, **options)
    path = Path(tmp_path_factory.mktemp("saf")) / "saf.pt"
    torch.save(model.state_dict(), path)
    loaded = build_model("saf", num_classes=3, **options)
    loaded.load_state_dict(torch.load(path, weights_only=True))
    assert isinstance(loaded, SAF)
    return loaded.eval()


def _naive_parts(model: SAF, sequence: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Each sample's parts by a loop: head h's query is the LayerNormed [CLS] of *that* sample,
    keys and values all its real tokens; heads concatenated and read in the release's layout."""
    agg = model.aggregation
    dim, heads = sequence.shape[-1], agg.num_parts
    weight = agg.qkv.weight.view(3, heads, dim, dim)  # [q/k/v, head, out, in]
    out = []
    for b in range(sequence.shape[0]):
        x = agg.norm(sequence[b][valid[b]])
        concatenated = []
        for h in range(heads):
            query = weight[0, h] @ x[0]
            keys, values = x @ weight[1, h].t(), x @ weight[2, h].t()
            attention = torch.softmax(keys @ query / math.sqrt(dim), dim=0)
            concatenated.append(attention @ values)
        flat = torch.cat(concatenated)                        # [H * D], head-major
        out.append(torch.stack([flat[torch.arange(dim) * heads + j] for j in range(heads)]))
    return torch.stack(out)


def test_part_queries_are_each_samples_own_cls(saf: SAF) -> None:
    with torch.no_grad():
        sequence, valid = saf.text_sequence(saf.tokenize(CAPTIONS))
        parts, attention = saf.aggregation(sequence, valid)
        torch.testing.assert_close(parts, _naive_parts(saf, sequence, valid), atol=1e-5,
                                   rtol=1e-5)
        assert attention.shape == (4, 10, sequence.shape[1])
        assert torch.all(attention[~valid.unsqueeze(1).expand_as(attention)] == 0)
        # the query is this sample's own [CLS]: changing sample 1's [CLS] changes how its heads
        # weigh its *other* tokens (a fixed query would keep their ratios), and nothing else
        changed = sequence.clone()
        changed[1, 0] += 2.0 * torch.randn(sequence.shape[-1])
        moved, moved_attention = saf.aggregation(changed, valid)
    ratio = attention[:, :, 2] / attention[:, :, 3]
    moved_ratio = moved_attention[:, :, 2] / moved_attention[:, :, 3]
    assert (moved_ratio[1] - ratio[1]).abs().amax() > 1e-3
    torch.testing.assert_close(moved_ratio[[0, 2, 3]], ratio[[0, 2, 3]])
    torch.testing.assert_close(moved[[0, 2, 3]], parts[[0, 2, 3]])


def test_release_part_layout_interleaves_the_heads() -> None:
    heads = torch.arange(2 * 3 * 4, dtype=torch.float).view(2, 3, 4)  # [B, H=3, C=4]
    parts = release_part_layout(heads)
    flat = heads.reshape(2, 12)
    for j in range(3):
        for c in range(4):
            assert torch.equal(parts[:, j, c], flat[:, c * 3 + j])


def test_retrieval_is_the_sum_of_the_11_cosines(saf: SAF) -> None:
    pixels = torch.randn(3, 3, *saf.image_size)
    with torch.no_grad():
        image, text = saf.encode_images(pixels), saf.encode_texts(saf.tokenize(CAPTIONS))
        scores = saf.similarity(text, image, chunk=2)
    assert text.tokens.shape == (4, 10, 64) and image.pooled.shape == (3, 64)
    want = torch.zeros(4, 3)
    for q in range(4):
        for g in range(3):
            want[q, g] = F.cosine_similarity(text.pooled[q], image.pooled[g], dim=0) + sum(
                F.cosine_similarity(text.tokens[q, k], image.tokens[g, k], dim=0)
                for k in range(10))
    torch.testing.assert_close(scores, want, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        self_scores = saf.similarity(text, type(image)(text.pooled, text.tokens, text.mask,
                                                        text.attention))
    torch.testing.assert_close(self_scores.diagonal(), torch.full((4,), 11.0))


def test_features_are_the_shared_batchnorm_of_the_raw_ones(saf: SAF) -> None:
    pixels = torch.randn(2, 3, *saf.image_size)
    bn = saf.bottleneck
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(64))
        bn.running_var.copy_(torch.rand(64) + 0.5)
        features = saf.encode_images(pixels)
        global_raw, parts_raw = saf._raw(*saf.image_sequence(pixels))
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    torch.testing.assert_close(features.pooled, (global_raw - bn.running_mean) * scale + bn.bias)
    torch.testing.assert_close(features.tokens, (parts_raw - bn.running_mean) * scale + bn.bias)
    assert not bn.bias.requires_grad
    with torch.no_grad():
        bn.reset_running_stats()


def _naive_cmpm(image: torch.Tensor, text: torch.Tensor, pids: torch.Tensor) -> float:
    n, total = len(pids), 0.0
    for a, b in ((image, text), (text, image)):
        for i in range(n):
            logits = [float(a[i] @ b[j] / b[j].norm()) for j in range(n)]
            top = max(logits)
            z = sum(math.exp(v - top) for v in logits)
            same = [float(pids[i] == pids[j]) for j in range(n)]
            for j in range(n):
                p = math.exp(logits[j] - top) / z
                q = same[j] / sum(same)
                total += p * (math.log(p) - math.log(q + 1e-8)) / n
    return total


def _naive_cmpc(image: torch.Tensor, text: torch.Tensor, pids: torch.Tensor,
                weight: torch.Tensor) -> float:
    total = 0.0
    columns = [weight[:, c] / weight[:, c].norm() for c in range(weight.shape[1])]
    for a, b in ((image, text), (text, image)):
        for i in range(len(pids)):
            direction = b[i] / b[i].norm()
            projected = float(a[i] @ direction) * direction
            logits = [float(projected @ w) for w in columns]
            top = max(logits)
            log_z = top + math.log(sum(math.exp(v - top) for v in logits))
            total += (log_z - logits[int(pids[i])]) / len(pids)
    return total


def _naive_diversity(parts: torch.Tensor) -> float:
    batch, k = parts.shape[:2]
    total = 0.0
    for b in range(batch):
        squares = sum(float(F.cosine_similarity(parts[b, i], parts[b, j], dim=0)) ** 2
                      for i in range(k) for j in range(k) if i != j)
        total += math.sqrt(squares) / k ** 2
    return total / batch


def test_each_loss_term_equals_a_naive_loop(saf: SAF) -> None:
    torch.manual_seed(1)
    image, text = torch.randn(5, 11, 8), torch.randn(5, 11, 8)
    pids = torch.tensor([0, 1, 0, 2, 1])
    weight = torch.randn(8, 3)
    losses = saf_losses(image, text, pids, saf.config, weight)
    assert set(losses) == {"cmpm", "cmpc", "diversity"}
    cmpm = sum(_naive_cmpm(image[:, k], text[:, k], pids) for k in range(11))
    cmpc = sum(_naive_cmpc(image[:, k], text[:, k], pids, weight) for k in range(11))
    diversity = 0.2 * (_naive_diversity(image[:, 1:]) + _naive_diversity(text[:, 1:]))
    assert losses["cmpm"].item() == pytest.approx(cmpm, abs=1e-5, rel=1e-5)
    assert losses["cmpc"].item() == pytest.approx(cmpc, abs=1e-5, rel=1e-5)
    assert losses["diversity"].item() == pytest.approx(diversity, abs=1e-5, rel=1e-5)


def test_loss_terms_on_a_hand_computed_case() -> None:
    # 2 samples of 2 persons; global and both parts are e0 (sample 0) and e1 (sample 1) in
    # both modalities: each CMPM direction is p log(p / 1) + (1 - p) log((1 - p) / 1e-8) per row
    # with p = e / (e + 1); CMPC with W = I: the same softmax, -log p per row and direction
    config = SAFConfig(backbone="tiny", bert="tiny", embed_dim=64, num_parts=2)
    basis = torch.eye(2)
    features = basis.unsqueeze(1).expand(2, 3, 2)
    losses = saf_losses(features, features, torch.tensor([0, 1]), config, torch.eye(2))
    p = math.e / (math.e + 1)
    per_row = p * math.log(p / (1 + 1e-8)) + (1 - p) * math.log((1 - p) / 1e-8)
    assert losses["cmpm"].item() == pytest.approx(3 * 2 * per_row, rel=1e-5)
    assert losses["cmpc"].item() == pytest.approx(3 * 2 * -math.log(p), rel=1e-5)
    # identical parts: the Gram's off-diagonal is all ones, norm sqrt(2) over K^2 = 4
    assert losses["diversity"].item() == pytest.approx(0.2 * 2 * math.sqrt(2) / 4, rel=1e-5)
    assert part_diversity(torch.eye(3).unsqueeze(0)).item() == 0.0


def test_training_step_reaches_the_aggregation_and_the_classifier(saf: SAF) -> None:
    saf.train()
    batch = {"images": torch.randn(4, 3, *saf.image_size), "tokens": saf.tokenize(CAPTIONS),
             "pids": torch.tensor([0, 1, 0, 2])}
    losses = saf(batch)
    saf.zero_grad()
    sum(losses.values()).backward()
    assert saf.aggregation.qkv.weight.grad.abs().sum() > 0
    assert saf.cmpc_weight is not None and saf.cmpc_weight.grad.abs().sum() > 0
    assert saf.bottleneck.bias.grad is None
    saf.eval()
    with torch.no_grad():
        saf.bottleneck.reset_running_stats()


def test_backbone_widths_must_equal_embed_dim() -> None:
    with pytest.raises(ModelError, match="no projection: embed_dim"):
        build_model("saf", **{**tiny_options("saf"), "embed_dim": 32})
