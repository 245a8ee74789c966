"""cmpm and baseline1: their losses and similarities are the library's, on their encoders."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from models import build_model, build_model_from_config, tiny_options
from models.errors import ModelError
from models.losses import cmpc_loss, cmpm_loss
from models.methods.mgcc import component_similarities
from models.registry import requires_vocabulary, with_vocabulary
from tests.models.conftest import CAPTIONS

PIDS = torch.tensor([0, 1, 0, 2])


def _batch(model) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    return {"images": torch.randn(len(CAPTIONS), 3, *model.image_size, generator=gen),
            "tokens": model.tokenize(CAPTIONS), "pids": PIDS}


def test_cmpm_forward_is_cmpm_plus_cmpc_of_its_global_features() -> None:
    torch.manual_seed(0)
    model = build_model("cmpm", num_classes=3, **tiny_options("cmpm")).eval()
    batch = _batch(model)
    with torch.no_grad():
        losses = model(batch)
        image = model.encode_images(batch["images"])
        text = model.encode_texts(batch["tokens"])
    assert set(losses) == {"cmpm", "cmpc"} and image.num_tokens == 0  # globals only
    torch.testing.assert_close(losses["cmpm"], cmpm_loss(image.pooled, text.pooled, PIDS))
    torch.testing.assert_close(losses["cmpc"], cmpc_loss(image.pooled, text.pooled, PIDS,
                                                         model.cmpc_weight))
    cosine = torch.nn.functional.cosine_similarity(text.pooled[:, None], image.pooled[None], -1)
    torch.testing.assert_close(model.similarity(text, image), cosine)
    # the ResNet is the pretrained encoder; the Bi-LSTM, projections and W are new
    groups = model.parameter_groups()
    assert {id(p) for p in groups["encoder"]} == {id(p) for p in model.image_encoder.parameters()}
    assert any(p is model.cmpc_weight for p in groups["new"])


def test_baseline1_selects_by_token_share_and_averages_the_four_similarities() -> None:
    torch.manual_seed(0)
    model = build_model("baseline1", num_classes=3, rho_image=0.5, rho_text=0.4,
                        **tiny_options("baseline1")).eval()
    batch = _batch(model)
    with torch.no_grad():
        image = model.encode_images(batch["images"])
        text = model.encode_texts(batch["tokens"])
        full = model.project_images(batch["images"])
    assert image.mask.sum(dim=1).tolist() == [4] * 4  # ceil(0.5 * 8) of the 4x2 locations
    words = (batch["tokens"] != 0).sum(dim=1)
    assert text.mask.sum(dim=1).tolist() == torch.ceil(words * 0.4).long().tolist()
    # the kept locations are those with the largest share of the global feature
    top = full.attention.topk(4, dim=1).indices
    torch.testing.assert_close(image.tokens, torch.gather(
        full.tokens, 1, top.unsqueeze(-1).expand(-1, -1, full.tokens.shape[-1])))
    parts = component_similarities(text, image, ("sit", "spw", "spt", "siw"), "af", 0.01)
    expected = torch.stack(list(parts.values())).mean(dim=0)
    torch.testing.assert_close(model.similarity(text, image), expected)


def test_a_word_model_without_vocabulary_is_one_line_error() -> None:
    options = {k: v for k, v in tiny_options("cmpm").items() if k != "vocabulary"}
    with pytest.raises(ModelError, match="needs a vocabulary") as error:
        build_model("cmpm", **options)
    assert "\n" not in str(error.value)


def test_with_vocabulary_fits_the_train_captions() -> None:
    assert requires_vocabulary("cmpm") and requires_vocabulary("baseline1")
    captions = ["A man, a bag.", "a man in red", "a woman"]
    options = with_vocabulary("cmpm", {"backbone": "tiny"}, captions)
    assert options["vocabulary"] == ["a", "man", "bag", "in", "red", "woman"]
    assert with_vocabulary("cmpm", {"min_word_count": 2}, captions)["vocabulary"] == ["a", "man"]
    given = {"vocabulary": ["x"]}
    assert with_vocabulary("cmpm", given, captions) == given


def test_rebuild_without_pretrained_needs_neither_weights_nor_word_vectors(
        tmp_path: Path) -> None:
    weights, vectors = tmp_path / "rn.pth", tmp_path / "glove.txt"
    source = build_model("baseline1", **tiny_options("baseline1"))
    torch.save(source.image_encoder.net.state_dict(), weights)
    vectors.write_text("man " + " ".join(["0.5"] * 32) + "\n")
    model = build_model("baseline1", pretrained=str(weights), word_vectors=str(vectors),
                        **tiny_options("baseline1"))
    man = model.text_encoder.vocabulary.ids("man")[0]
    assert model.text_encoder.embedding.weight[man].tolist() == [0.5] * 32
    config = dataclasses.asdict(model.config)
    weights.unlink()
    vectors.unlink()
    rebuilt = build_model_from_config(config, load_pretrained=False)
    assert rebuilt.config.word_vectors == str(vectors)  # recorded, not read
    assert rebuilt.tokenize(CAPTIONS).equal(model.tokenize(CAPTIONS))
