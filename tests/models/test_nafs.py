"""NAFS: full-scale stripes, sub-sentences, non-local similarity, visual-neighbour re-ranking."""

from __future__ import annotations

import torch

from models import build_model, tiny_options
from models.methods.nafs import local_contrastive_loss, stripe_bounds, visual_neighbour_rerank

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
    assert config.max_sub_sentences == 2  # the code's n_sep: the third piece is dropped
    assert owner.tolist() == [0, 0, 1] and slot.tolist() == [0, 1, 0]
    pieces = model.text_encoder._tokenizer.convert_ids_to_tokens(rows[1].tolist())
    assert "blue" in pieces and "red" not in pieces  # the second sub-sentence alone
    assert texts.mask[0, 1:1 + config.max_sub_sentences].sum() == 2
    assert texts.mask[1, 1:1 + config.max_sub_sentences].sum() == 1
    # each slot's key and value side by side: padding the tokens (another batch, another
    # process) cannot pair a key with another slot's value
    assert texts.tokens.shape[-1] == 2 * config.embed_dim
    padded = type(texts).cat([texts, model.encode_texts(model.tokenize(["a much longer caption "
                                                                         "than any " * 6]))])
    assert torch.allclose(model.similarity(padded[:2], images), model.similarity(texts, images),
                          atol=1e-6)
    assert stripe_bounds(4, 3) == [(0, 1), (1, 2), (2, 4)]


def test_local_loss_is_image_to_text_only():
    """Each image ranks its own caption first (rows right), but caption 0 cannot tell image 0
    from image 1 (column 0 nearly flat): a text-to-image term would cost about log 2."""
    pids = torch.tensor([0, 1])
    similarity = torch.tensor([[10.0, 0.0], [9.9, 20.0]])  # [images, texts]
    assert local_contrastive_loss(similarity, pids, scale=1.0) < 1e-3
    assert local_contrastive_loss(similarity.t(), pids, scale=1.0) > 0.6  # the t2i view
    swapped = torch.tensor([[0.0, 10.0], [20.0, 9.9]])  # every image prefers the wrong caption
    assert local_contrastive_loss(swapped, pids, scale=1.0) > 5.0


def test_first_text_slot_is_the_joint_global_feature_and_stage4_runs_at_stride_1():
    torch.manual_seed(0)
    model = build_model("nafs", **tiny_options("nafs")).eval()
    tokens = model.tokenize(CAPTIONS)
    with torch.no_grad():
        texts = model.encode_texts(tokens)
        joint = texts.pooled[:, None]
        dim = texts.tokens.shape[-1] // 2  # each slot: its key, then its value
        assert torch.allclose(texts.tokens[:, :1, :dim], model.text_key(joint), atol=1e-6)
        assert torch.allclose(texts.tokens[:, :1, dim:], model.text_value(joint), atol=1e-6)
        raw_cls = model.text_encoder(tokens).pooled[:, None]
        assert not torch.allclose(texts.tokens[:, :1, :dim], model.text_key(raw_cls), atol=1e-3)
        pixels = torch.randn(1, 3, *model.image_size)
        net = model.image_encoder.net
        stage3 = net.layer3(net.layer2(net.layer1(net.maxpool(net.relu(net.bn1(net.conv1(
            pixels)))))))
        assert net.layer4(stage3).shape[-2:] == stage3.shape[-2:]
        assert model.coarse_branch(stage3).shape[-2:] == stage3.shape[-2:]
