"""NAFS: full-scale stripes, sub-sentences, non-local similarity, visual-neighbour re-ranking."""

from __future__ import annotations

import torch

from models import build_model, tiny_options
from models.methods.nafs import stripe_bounds, visual_neighbour_rerank

CAPTIONS = ["a man in a red shirt, blue jeans and white shoes. he carries a black bag",
            "a woman with long hair"]


def test_rerank_lifts_the_image_whose_neighbours_the_query_found_first():
    """Hand-made: the query ranks g0 > g1 > g3 > g2 (g3 barely above g2). g2 looks like g0 and
    g1 (the same person's other views); g3 looks like nothing the query found. With K = 3,
    N(q) = {g0, g1, g3}, N(g2) = {g2, g0, g1} (Jaccard 2/4) and N(g3) = {g3, g4, g5} (1/5):
    g2 overtakes g3."""
    scores = torch.tensor([[0.90, 0.80, 0.70, 0.72, 0.10, 0.05]])
    feats = torch.tensor([[1.0, 0.0, 0.0], [0.95, 0.3, 0.0], [0.9, 0.35, 0.0],
                          [0.0, 0.0, 1.0], [0.0, 0.3, 0.95], [0.0, 0.35, 0.9]])
    feats = torch.nn.functional.normalize(feats, dim=1)
    before = scores.argsort(dim=1, descending=True)[0].tolist()
    reranked = visual_neighbour_rerank(scores, feats @ feats.t(), k=3)
    after = reranked.argsort(dim=1, descending=True)[0].tolist()
    assert before.index(3) < before.index(2)
    assert after.index(2) < after.index(3)
    assert torch.allclose(reranked[0, 2] - scores[0, 2], torch.tensor(2 / 4))
    assert torch.allclose(reranked[0, 3] - scores[0, 3], torch.tensor(1 / 5))


def test_rerank_is_an_evaluation_option_of_the_model():
    torch.manual_seed(0)
    model = build_model("nafs", **tiny_options("nafs")).eval()
    pixels = torch.randn(6, 3, *model.image_size)
    with torch.no_grad():
        texts = model.encode_texts(model.tokenize(CAPTIONS))
        images = model.encode_images(pixels)
        plain = model.similarity(texts, images)
        model.config.rerank_k = 2
        reranked = model.similarity(texts, images)
    model.config.rerank_k = 0
    assert not torch.equal(plain, reranked)
    assert ((reranked - plain) >= 0).all() and ((reranked - plain) <= 1).all()


def test_full_scale_and_sub_sentence_features():
    torch.manual_seed(0)
    model = build_model("nafs", **tiny_options("nafs")).eval()
    config = model.config
    with torch.no_grad():
        images = model.encode_images(torch.randn(2, 3, *model.image_size))
        tokens = model.tokenize(CAPTIONS)
        texts = model.encode_texts(tokens)
    parts = 1 + config.parts_fine + config.parts_coarse
    assert images.tokens.shape == (2, 2 * parts, config.embed_dim)  # queries, then values
    rows, owner, slot = model.sub_sentences(tokens)
    assert owner.tolist() == [0, 0, 0, 1] and slot.tolist() == [0, 1, 2, 0]
    pieces = model.text_encoder._tokenizer.convert_ids_to_tokens(rows[1].tolist())
    assert "blue" in pieces and "red" not in pieces  # the second sub-sentence alone
    half = texts.num_tokens // 2
    assert texts.mask[0, 1:1 + config.max_sub_sentences].sum() == 3
    assert texts.mask[1, 1:1 + config.max_sub_sentences].sum() == 1
    assert torch.equal(texts.mask[:, :half], texts.mask[:, half:])
    assert stripe_bounds(4, 3) == [(0, 1), (1, 2), (2, 4)]
