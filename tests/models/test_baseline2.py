"""Baseline2 (CLIP image + BERT text in MGCC's multi-granularity model) as a run uses it.

The BERT comes from a folder the test writes (random tiny weights, its own vocabulary), as a
user's ``bert-base-uncased`` download would; after training, the folder is deleted and the model
is rebuilt from the run's records alone (config JSON + weights file), as ``bench eval`` and
``bench query`` do on another machine.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import torch

from models import build_model, build_model_from_config, tiny_options
from models.encoders.bert import BertTextEncoder
from models.encoders.clip_image import CLIPImageEncoder
from models.methods.mgcc import component_similarities
from models.registry import with_vocabulary
from tests.models.test_bert import VOCAB, _write_folder

CAPTIONS = ["a man in a red shirt", "a woman in blue", "a man with a bag", "a woman."]


def test_baseline2_trains_selects_tokens_and_reloads_without_the_bert_folder(
        tmp_path: Path) -> None:
    folder = tmp_path / "bert"
    _write_folder(folder)
    torch.manual_seed(0)
    model = build_model("baseline2", backbone="tiny", bert=str(folder), embed_dim=16,
                        rho_image=0.5, rho_text=0.5)
    assert isinstance(model.image_encoder, CLIPImageEncoder)
    assert isinstance(model.text_encoder, BertTextEncoder)
    # pretrained encoders at the encoder lr; projections and temperature are new
    groups = model.parameter_groups()
    encoder_ids = {id(p) for p in groups["encoder"]}
    assert all(id(p) in encoder_ids for p in model.text_encoder.parameters())
    assert all(id(p) in encoder_ids for p in model.image_encoder.parameters())
    assert {id(p) for p in model.text_projection.parameters()} <= {id(p) for p in groups["new"]}
    # what the folder decided is in the config
    assert model.config.bert_architecture["hidden_size"] == 32
    assert model.config.bert_lowercase is True and model.config.quick_gelu is False

    pixels = torch.randn(len(CAPTIONS), 3, *model.image_size)
    batch = {"images": pixels, "tokens": model.tokenize(CAPTIONS),
             "pids": torch.tensor([0, 1, 0, 1])}
    losses = model.train()(batch)
    losses["infonce"].backward()
    assert model.text_encoder.bert.embeddings.word_embeddings.weight.grad.abs().sum() > 0

    model.eval()
    with torch.no_grad():
        texts = model.encode_texts(model.tokenize(CAPTIONS))
        images = model.encode_images(pixels)
        scores = model.similarity(texts, images)
    # ceil(0.5 * pieces): 6 -> 3; "a woman in blue" 4 -> 2; "a man with a bag" 5 ("with" is
    # [UNK] in this vocabulary) -> 3; "a woman." 3 -> 2
    assert texts.mask.sum(dim=1).tolist() == [3, 2, 3, 2]
    assert images.mask.sum(dim=1).tolist() == [16] * 4  # 32 patches at 64x32, half kept

    torch.save(model.state_dict(), tmp_path / "best.pt")
    (tmp_path / "config.json").write_text(json.dumps(dataclasses.asdict(model.config)))
    shutil.rmtree(folder)
    torch.manual_seed(1)
    rebuilt = build_model_from_config(json.loads((tmp_path / "config.json").read_text()),
                                      load_pretrained=False)
    rebuilt.load_state_dict(torch.load(tmp_path / "best.pt", weights_only=True))
    rebuilt.eval()
    assert rebuilt.text_encoder.vocabulary == VOCAB
    with torch.no_grad():
        again = rebuilt.similarity(rebuilt.encode_texts(rebuilt.tokenize(CAPTIONS)),
                                   rebuilt.encode_images(pixels))
    assert torch.equal(scores, again)


LONG = ("a man with short black hair wears a red jacket over a white shirt and blue jeans with "
        "black shoes and carries a grey bag on his left shoulder while walking")


def _long_captions(model) -> tuple[list[str], int]:
    """Two captions equal in their first 25 word pieces, different after; and the piece count."""
    other = LONG.replace("walking", "running").replace("left shoulder", "right hand")
    pieces = model.text_encoder._tokenizer.tokenize(LONG)
    assert len(pieces) > 30 and model.text_encoder._tokenizer.tokenize(other)[:25] == pieces[:25]
    return [LONG, other], len(pieces)


def test_baseline2_reads_the_whole_caption_and_caps_only_the_fine_grained_words() -> None:
    """The global feature (mean of BERT's states -> LayerNorm -> Linear) changes with the words
    after the 25th; the fine-grained similarities see the first 25 word pieces only: replacing
    BERT's states after them leaves S_P-W and S_I-W unchanged while the global moves."""
    torch.manual_seed(0)
    model = build_model("baseline2", **tiny_options("baseline2"), rho_image=1.0,
                        rho_text=1.0).eval()
    captions, count = _long_captions(model)
    tokens = model.tokenize(captions)
    assert int((tokens[0] != 0).sum()) == count + 2  # [CLS] + every piece + [SEP]: none cut
    with torch.no_grad():
        texts = model.encode_texts(tokens)
        images = model.encode_images(torch.randn(3, 3, *model.image_size))
    assert not torch.allclose(texts.pooled[0], texts.pooled[1], atol=1e-4)
    assert texts.mask.sum(dim=1).tolist() == [25, 25]
    raw = model.text_encoder(tokens[:1])
    with torch.no_grad():
        words = model.word_projection(raw.tokens[0, :25])
    assert torch.allclose(texts.tokens[0, :25], words, atol=1e-5)

    def scramble_after_25(module, inputs, output):  # BERT's states past the 25th piece
        tokens_out = output.tokens.clone()
        tokens_out[:, 25:] = torch.randn_like(tokens_out[:, 25:])
        return dataclasses.replace(output, tokens=tokens_out)

    handle = model.text_encoder.register_forward_hook(scramble_after_25)
    try:
        with torch.no_grad():
            scrambled = model.encode_texts(tokens)
    finally:
        handle.remove()
    assert not torch.allclose(scrambled.pooled, texts.pooled, atol=1e-4)
    fine = component_similarities(texts, images, ("spw", "siw"))
    fine_scrambled = component_similarities(scrambled, images, ("spw", "siw"))
    for name in ("spw", "siw"):
        torch.testing.assert_close(fine_scrambled[name], fine[name])


def test_baseline2_keeps_clips_vision_width_and_the_release_text_head() -> None:
    model = build_model("baseline2", **{**tiny_options("baseline2"), "embed_dim": 64})
    assert model.image_encoder.feature_dim == model.image_encoder.backbone.vision_width
    assert model.image_encoder.backbone.clip.visual.proj is None
    assert isinstance(model.image_projection, torch.nn.Identity)  # 64 = embed_dim
    assert isinstance(model.word_projection, torch.nn.Identity)  # BERT's own states
    norm, linear = model.text_projection
    assert isinstance(norm, torch.nn.LayerNorm) and linear.bias is None


def test_baseline1_caps_the_fine_grained_words_at_25() -> None:
    words = LONG.split()
    options = with_vocabulary("baseline1", {**tiny_options("baseline1"), "rho_text": 1.0},
                              [LONG])
    model = build_model("baseline1", **options).eval()
    with torch.no_grad():
        texts = model.encode_texts(model.tokenize([LONG, " ".join(words[:10])]))
    assert len(words) > 25 and texts.mask.sum(dim=1).tolist() == [25, 10]
