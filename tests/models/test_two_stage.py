"""Two-stage retrieval (models/two_stage.py) and the ALBEF-family rankers that use it.

The re-rank must reorder the first stage only inside each query's top k, in the documented
direction (higher second-stage score first), and leave the rest in first-stage order below.
"""

from __future__ import annotations

import torch

from models import build_model, tiny_options
from models.features import ImageFeatures, TextFeatures
from models.two_stage import TwoStageModel, place_below, two_stage_similarity

CAPTIONS = ["a man in a red shirt", "a woman with a black bag", "a child in a yellow coat"]


class HandMade:
    """A two-stage model whose stages are fixed tables (one query, five gallery items)."""

    def __init__(self, first: list[float], second: dict[int, float], k: int) -> None:
        self.first, self.second, self.k = torch.tensor([first]), second, k

    @property
    def rerank_k(self) -> int:
        return self.k

    def first_stage_similarity(self, text, image):
        return self.first

    def second_stage_scores(self, text, image, first, top):
        return torch.tensor([[self.second[int(g)] for g in row] for row in top])


def _order(scores: torch.Tensor) -> list[int]:
    return torch.sort(scores[0], descending=True, stable=True).indices.tolist()


def test_rerank_reorders_only_inside_the_top_k_by_the_second_stage() -> None:
    # first stage order: 0, 1, 2, 3, 4; the second stage prefers 2 over 1 over 0 and would
    # put 4 first, but 4 is outside the top 3 and must stay where the first stage put it
    model = HandMade([0.9, 0.8, 0.7, 0.6, 0.5], {0: -1.0, 1: 2.0, 2: 5.0, 3: 0.0, 4: 9.0}, k=3)
    assert isinstance(model, TwoStageModel)
    scores = two_stage_similarity(model, None, None)
    assert _order(scores) == [2, 1, 0, 3, 4]
    assert scores[0, 2] == 5.0 and scores[0, 1] == 2.0 and scores[0, 0] == -1.0
    assert scores[0, 3] < -1.0 and scores[0, 4] < scores[0, 3]
    off = HandMade([0.9, 0.8, 0.7, 0.6, 0.5], model.second, k=0)
    assert _order(two_stage_similarity(off, None, None)) == [0, 1, 2, 3, 4]


def test_place_below_keeps_every_candidate_above_every_other_item() -> None:
    first = torch.tensor([[0.1, 0.95, 0.3, 0.99]])
    top = torch.tensor([[3, 1]])
    out = place_below(first, top, torch.tensor([[-50.0, -40.0]]))
    assert _order(out) == [1, 3, 2, 0]
    assert out[0, 2] < -50.0


def _features(model, pixels):
    with torch.no_grad():
        return model.encode_texts(model.tokenize(CAPTIONS)), model.encode_images(pixels)


def test_rasa_similarity_is_cosine_top_k_rescored_by_itm() -> None:
    torch.manual_seed(0)
    model = build_model("rasa", **{**tiny_options("rasa"), "rerank_k": 2}).eval()
    pixels = torch.randn(4, 3, *model.image_size)
    text, image = _features(model, pixels)
    with torch.no_grad():
        scores = model.similarity(text, image)
        cosine = text.pooled @ image.pooled.t()
    for q in range(len(CAPTIONS)):
        top = torch.sort(cosine[q], descending=True, stable=True).indices
        with torch.no_grad():
            itm = model.itm_logits(text.tokens[q:q + 1].expand(2, -1, -1),
                                   text.mask[q:q + 1].expand(2, -1), image.tokens[top[:2]])[:, 1]
        torch.testing.assert_close(scores[q, top[:2]], itm, rtol=1e-5, atol=1e-5)
        rest = scores[q, top[2:]]
        assert (rest < itm.min()).all() and (rest[:-1] > rest[1:]).all()


def test_rasa_features_do_not_depend_on_padding_or_batch() -> None:
    """The evaluator concatenates text batches padded to different lengths: the cross
    encoder's scores must not change with the padding (masked keys add -10000)."""
    torch.manual_seed(0)
    model = build_model("rasa", **tiny_options("rasa")).eval()
    pixels = torch.randn(3, 3, *model.image_size)
    text, image = _features(model, pixels)
    alone = TextFeatures.cat([model.encode_texts(model.tokenize([c])) for c in CAPTIONS])
    with torch.no_grad():
        torch.testing.assert_close(model.similarity(alone, image), model.similarity(text, image),
                                   rtol=1e-5, atol=1e-5)
    assert isinstance(image, ImageFeatures)


def test_rasa_trains_every_head_and_fills_its_queues_with_weak_captions() -> None:
    torch.manual_seed(0)
    model = build_model("rasa", **{**tiny_options("rasa"), "weak_pos_probability": 1.0})
    pixels = torch.randn(4, 3, *model.image_size)
    tokens = model.tokenize(CAPTIONS + ["a man in grey trousers"])
    batch = {"images": pixels, "tokens": tokens, "pids": torch.tensor([0, 1, 0, 2]),
             "weak_tokens": model.tokenize(["a girl", "a boy", "a bag", "a cap"])}
    losses = model.train()(batch)
    assert set(losses) == {"cl", "pitm", "mlm", "prd", "mrtd"}
    sum(losses.values()).backward()
    for head in (model.prd_head, model.mrtd_head, model.itm_head):
        assert head.weight.grad is not None and head.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.visual_encoder_m.parameters())
    assert int(model.queue_ptr) == 4 and model.idx_queue[0, :4].tolist() == [0, 1, 0, 2]


def test_rasa_distils_from_the_momentum_model_after_the_first_epoch() -> None:
    model = build_model("rasa", **tiny_options("rasa"))
    model.set_epoch(1)
    assert model.current_alpha == 0.0
    model.set_epoch(2)
    assert model.current_alpha == model.config.alpha == 0.4
    model = build_model("rasa", **{**tiny_options("rasa"), "alpha_warmup": False})
    model.set_epoch(1)
    assert model.current_alpha == 0.4


def test_albef_initialisation_loads_a_pretraining_file_and_names_a_missing_one(tmp_path) -> None:
    """RaSa starts from ALBEF's checkpoint: its keys (queues of another size, tied MLM decoder,
    a 4x4 position grid resized to the model's) load; a missing file is one line naming it."""
    import pytest

    from models.errors import ModelError

    torch.manual_seed(0)
    albef = build_model("rasa", **{**tiny_options("rasa"), "image_size": (64, 64)})
    state = {k: v for k, v in albef.state_dict().items()
             if not k.startswith(("prd_head", "mrtd_head", "idx_queue")) and "vocab" not in k}
    state["image_queue"] = torch.randn(32, 7)
    state["text_encoder.cls.predictions.decoder.weight"] = \
        state["text_encoder.bert.embeddings.word_embeddings.weight"]
    path = tmp_path / "ALBEF.pth"
    torch.save({"model": state, "epoch": 29}, path)
    model = build_model("rasa", **{**tiny_options("rasa"), "image_size": (32, 32),
                                   "pretrained": str(path)})
    assert torch.equal(model.itm_head.weight, albef.itm_head.weight)
    assert torch.equal(model.text_encoder_m.bert.embeddings.word_embeddings.weight,
                       albef.text_encoder.bert.embeddings.word_embeddings.weight)
    assert model.visual_encoder.pos_embed.shape[1] == 1 + 4
    with pytest.raises(ModelError, match="ALBEF weights file not found: .*ALBEF.pth"):
        build_model("rasa", **{**tiny_options("rasa"), "pretrained": str(tmp_path / "none")})
