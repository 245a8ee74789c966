"""LGUR as its release trains and scores: retrieval by the dictionary branch alone, a frozen
BERT under a trained Bi-LSTM, and the semi-hard ranking + per-part ID losses."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from models import build_model, tiny_options
from models.losses import semi_hard_ranking_loss_from_scores
from models.methods.lgur import LGUR

CAPTIONS = ["a man in a red shirt", "a woman with long hair", "a child in a yellow coat",
            "an old man with a stick"]


@pytest.fixture(scope="module")
def lgur(tmp_path_factory: pytest.TempPathFactory) -> LGUR:
    """The tiny LGUR, its random weights saved to a file and loaded back."""
    torch.manual_seed(0)
    model = build_model("lgur", num_classes=3, **tiny_options("lgur"))
    path = Path(tmp_path_factory.mktemp("lgur")) / "lgur.pt"
    torch.save(model.state_dict(), path)
    loaded = build_model("lgur", num_classes=3, **tiny_options("lgur"))
    loaded.load_state_dict(torch.load(path, weights_only=True))
    assert isinstance(loaded, LGUR)
    return loaded.eval()


def _batch(model: LGUR) -> dict[str, torch.Tensor]:
    torch.manual_seed(3)
    return {"images": torch.randn(4, 3, *model.image_size),
            "tokens": model.tokenize(CAPTIONS), "pids": torch.tensor([0, 1, 0, 2])}


def test_similarity_depends_only_on_the_dictionary_branch(lgur: LGUR) -> None:
    batch = _batch(lgur)
    with torch.no_grad():
        image, text = lgur.encode_images(batch["images"]), lgur.encode_texts(batch["tokens"])
        scores = lgur.similarity(text, image)
        image_tokens = lgur.image_tokens(batch["images"])
        text_tokens, valid = lgur.text_tokens(batch["tokens"])
        image_dict = lgur.unify(lgur.dga(image_tokens, lgur.dictionary.expand(4, -1, -1))
                                * lgur.image_gate(image_tokens))
        text_dict = lgur.unify(lgur.dga(text_tokens, lgur.dictionary.expand(4, -1, -1)), valid)
    # one feature per sample: the 2 dictionary-branch parts side by side (not 2 branches)
    assert image.pooled.shape == (4, 2 * 32) and image.tokens.shape[1] == 0
    want = torch.stack([torch.stack([F.cosine_similarity(text_dict[q].flatten(),
                                                         image_dict[g].flatten(), dim=0)
                                     for g in range(4)]) for q in range(4)])
    torch.testing.assert_close(scores, want, atol=1e-5, rtol=1e-5)
    # and the dictionary, which only the dictionary branch reads, moves it
    with torch.no_grad():
        saved = lgur.dictionary.detach().clone()
        lgur.dictionary.copy_(torch.randn_like(saved))
        moved = lgur.similarity(lgur.encode_texts(batch["tokens"]),
                                lgur.encode_images(batch["images"]))
        lgur.dictionary.copy_(saved)
    assert (moved - scores).abs().amax() > 1e-4


def test_bert_is_frozen_and_the_bilstm_is_trained(lgur: LGUR) -> None:
    lgur.train()
    assert not lgur.text_encoder.training  # frozen BERT stays in eval mode (no dropout)
    losses = lgur(_batch(lgur))
    assert set(losses) == {"ranking", "consistency", "id"}
    lgur.zero_grad()
    sum(losses.values()).backward()
    bert = list(lgur.text_encoder.bert.parameters())
    assert bert and all(p.grad is None and not p.requires_grad for p in bert)
    assert lgur.lstm.weight_ih_l0.grad.abs().sum() > 0
    assert lgur.dictionary.grad.abs().sum() > 0 and lgur.prototypes.grad.abs().sum() > 0
    groups = lgur.parameter_groups()
    in_groups = {id(p) for ps in groups.values() for p in ps}
    assert not any(id(p) in in_groups for p in bert)
    assert {id(p) for p in lgur.lstm.parameters()} <= {id(p) for p in groups["new"]}
    assert id(lgur.dictionary) in {id(p) for p in groups["encoder"]}
    lgur.eval()


def test_image_encoder_reads_the_tokens_before_its_last_block(lgur: LGUR) -> None:
    net = lgur.image_encoder.net
    assert len(net.blocks) == 1 and isinstance(net.norm, torch.nn.Identity)  # tiny ViT: 2 blocks


def _naive_semi_hard(scores: torch.Tensor, pids: torch.Tensor, margin: float,
                     draws: list[torch.Tensor]) -> float:
    total = 0.0
    for direction, matrix in enumerate((scores, scores.t())):
        n = matrix.shape[0]
        found, last_negatives = [], []
        for i in range(n):
            negatives = [j for j in range(n) if pids[j] != pids[i]]
            candidates = [j for j in negatives
                          if 0 < float(matrix[i, j] - matrix[i, i] + margin) < margin]
            last_negatives = negatives
            if candidates:
                j = candidates[int(float(draws[direction][i]) * len(candidates))]
                found.append(max(0.0, margin - float(matrix[i, i]) + float(matrix[i, j])))
        if not found:
            j = last_negatives[0]
            found.append(max(0.0, margin - float(matrix[n - 1, n - 1])
                             + float(matrix[n - 1, j])))
        total += sum(found)
    return total


def test_semi_hard_ranking_equals_a_naive_loop() -> None:
    torch.manual_seed(0)
    pids = torch.tensor([0, 1, 2, 1, 3, 4, 5, 6])
    for trial in range(5):
        scores = torch.rand(8, 8) * 0.4 + torch.eye(8) * 0.1 * trial
        generator = torch.Generator().manual_seed(trial)
        got = semi_hard_ranking_loss_from_scores(scores, pids, 0.3, generator=generator)
        replay = torch.Generator().manual_seed(trial)
        draws = [torch.rand(8, generator=replay), torch.rand(8, generator=replay)]
        assert got.item() == pytest.approx(_naive_semi_hard(scores, pids, 0.3, draws), abs=1e-5)


def test_semi_hard_ranking_on_a_hand_computed_case() -> None:
    # row anchors (positive on the diagonal, margin 0.3): anchor 0's only semi-hard negative
    # is column 1 (0.5 - 0.7 + 0.3 = 0.1); anchor 1's negative column 0 is hard (hinge 0.6 >=
    # the margin: never drawn) and column 2 easy; anchor 2 has only easy ones. Column anchors:
    # column 1's only semi-hard negative is row 0 (0.5 - 0.6 + 0.3 = 0.2); columns 0 and 2 have
    # none. Loss 0.1 + 0.2; gradient -1 on s00 and s11, +2 on s01.
    scores = torch.tensor([[0.7, 0.5, 0.1],
                           [0.9, 0.6, 0.1],
                           [0.2, 0.1, 0.8]], requires_grad=True)
    loss = semi_hard_ranking_loss_from_scores(scores, torch.tensor([0, 1, 2]), margin=0.3)
    assert loss.item() == pytest.approx(0.1 + 0.2, abs=1e-6)
    loss.backward()
    want = torch.tensor([[-1.0, 2.0, 0.0], [0.0, -1.0, 0.0], [0.0, 0.0, 0.0]])
    torch.testing.assert_close(scores.grad, want)
    # no semi-hard negative anywhere: the release's fallback, the last anchor's first negative
    easy = torch.eye(3)
    fallback = semi_hard_ranking_loss_from_scores(easy, torch.tensor([0, 1, 2]), margin=0.3)
    assert fallback.item() == pytest.approx(2 * max(0.0, 0.3 - 1.0 + 0.0))
    hard = torch.full((3, 3), 0.9) - 0.8 * torch.eye(3)  # every negative above its positive
    fallback = semi_hard_ranking_loss_from_scores(hard, torch.tensor([0, 1, 2]), margin=0.3)
    assert fallback.item() == pytest.approx(2 * (0.3 - 0.1 + 0.9), abs=1e-6)


def test_forward_losses_equal_a_naive_loop(lgur: LGUR) -> None:
    batch, pids = _batch(lgur), torch.tensor([0, 1, 0, 2])
    torch.manual_seed(11)
    with torch.no_grad():
        losses = lgur(batch)
        image = lgur.image_tokens(batch["images"])
        text, valid = lgur.text_tokens(batch["tokens"])
        gate = lgur.image_gate(image)
        dictionary = lgur.dictionary.expand(4, -1, -1)
        parts = {"image_raw": lgur.unify(lgur.dga(image, text, valid) * gate),
                 "image_dict": lgur.unify(lgur.dga(image, dictionary) * gate),
                 "text_raw": lgur.unify(text, valid),
                 "text_dict": lgur.unify(lgur.dga(text, dictionary), valid)}
    torch.manual_seed(11)
    # the picks come from models.distributed.shared_generator: seeded by one draw of the
    # global stream (the same generator state on every process of a distributed run)
    replay = torch.Generator().manual_seed(int(torch.randint(0, 2 ** 62, (1,))))
    draws = [torch.rand(4, generator=replay) for _ in range(8)]  # rows then columns, in order

    def cosine(a: str, b: str) -> torch.Tensor:
        x, y = parts[a].flatten(1), parts[b].flatten(1)
        return torch.tensor([[float(F.cosine_similarity(x[i], y[j], dim=0)) for j in range(4)]
                             for i in range(4)])

    pairs = [("image_raw", "text_raw"), ("image_dict", "text_dict"),
             ("text_raw", "text_dict"), ("image_raw", "image_dict")]
    terms = [_naive_semi_hard(cosine(a, b), pids, 0.3, draws[2 * k:2 * k + 2])
             for k, (a, b) in enumerate(pairs)]
    assert losses["ranking"].item() == pytest.approx(terms[0] + terms[1], abs=1e-5)
    assert losses["consistency"].item() == pytest.approx(terms[2] + terms[3], abs=1e-5)

    def identity(image_parts: torch.Tensor, text_parts: torch.Tensor) -> float:
        total = 0.0
        assert lgur.classifiers is not None
        for k, classifier in enumerate(lgur.classifiers):
            for feats in (image_parts, text_parts):
                for i in range(4):
                    logits = classifier(feats[i, k]).tolist()
                    log_z = math.log(sum(math.exp(v) for v in logits))
                    total += (log_z - logits[int(pids[i])]) / 4
        return total / len(lgur.classifiers)

    with torch.no_grad():
        want = identity(parts["image_raw"], parts["text_raw"]) + identity(
            parts["image_dict"], parts["text_dict"])
    assert losses["id"].item() == pytest.approx(want, abs=1e-5)


def test_text_padding_does_not_change_the_text_feature(lgur: LGUR) -> None:
    tokens = lgur.tokenize(CAPTIONS)
    padded = torch.cat([tokens, torch.zeros(len(CAPTIONS), 5, dtype=tokens.dtype)], 1)
    with torch.no_grad():
        torch.testing.assert_close(lgur.encode_texts(tokens).pooled,
                                   lgur.encode_texts(padded).pooled, atol=1e-5, rtol=1e-4)


def test_identity_term_on_a_hand_computed_case(lgur: LGUR) -> None:
    # zero classifiers: every logit 0, so each cross-entropy is log 3 (3 classes); per part
    # image + text = 2 log 3, and the mean over parts keeps it
    assert lgur.classifiers is not None
    saved = [(c.weight.detach().clone(), c.bias.detach().clone()) for c in lgur.classifiers]
    with torch.no_grad():
        for c in lgur.classifiers:
            c.weight.zero_()
            c.bias.zero_()
        parts = torch.randn(4, 2, 32)
        got = lgur._identity(parts, parts.flip(0), torch.tensor([0, 1, 2, 0]))
        for c, (w, b) in zip(lgur.classifiers, saved, strict=True):
            c.weight.copy_(w)
            c.bias.copy_(b)
    assert got.item() == pytest.approx(2 * math.log(3), rel=1e-6)
