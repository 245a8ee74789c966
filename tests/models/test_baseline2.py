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

from models import build_model, build_model_from_config
from models.encoders.bert import BertTextEncoder
from models.encoders.clip_image import CLIPImageEncoder
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
