"""The BERT text encoder: its tokenizer, features, token score, loading and refusals.

Every folder here is written by the test itself: a random tiny ``BertConfig`` model saved with
``save_pretrained`` and a vocabulary file of a few pieces, read back through the encoder's real
loading path. The Hub is never reached (offline mode is forced where a Hub name is used).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertForMaskedLM, BertModel, RobertaConfig, RobertaModel

from models.encoders.bert import SPECIAL_TOKENS, BertTextEncoder, tiny_vocabulary
from models.errors import ModelError

VOCAB = [*SPECIAL_TOKENS, "a", "man", "woman", "in", "red", "blue", "shirt", "##s", "bag", "."]


def _tiny_config(hidden: int = 32) -> BertConfig:
    return BertConfig(vocab_size=len(VOCAB) + 3, hidden_size=hidden, num_hidden_layers=2,
                      num_attention_heads=2, intermediate_size=2 * hidden,
                      max_position_embeddings=32)


def _write_folder(folder: Path, model_cls: type = BertModel, hidden: int = 32,
                  vocab: list[str] = VOCAB) -> torch.nn.Module:
    torch.manual_seed(0)
    model = model_cls(_tiny_config(hidden)).eval()
    model.save_pretrained(folder)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return model


@pytest.fixture(scope="module")
def bert_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bert")
    _write_folder(folder)
    return folder


def test_tiny_vocabulary_splits_any_lower_case_word_without_unknown() -> None:
    encoder = BertTextEncoder("tiny")
    ids = encoder.tokenize(["A man in a RED shirt, carrying a zebra bag.", "a woman"])
    pieces = encoder._tokenizer.convert_ids_to_tokens(ids[0])
    # lower-cased; "zebra" is not a whole piece, so it splits into letters and ##-letters
    assert pieces == ["[CLS]", "a", "man", "in", "a", "red", "shirt", ",", "carrying", "a",
                      "z", "##e", "##b", "##r", "##a", "bag", ".", "[SEP]"]
    vocab = tiny_vocabulary()
    assert ids[1].tolist() == [vocab.index(p) for p in ("[CLS]", "a", "woman", "[SEP]")] + [0] * 14
    assert len(set(vocab)) == len(vocab) and vocab[:5] == list(SPECIAL_TOKENS)


def test_features_mask_words_only_and_score_is_the_cls_attention(bert_folder: Path) -> None:
    encoder = BertTextEncoder(str(bert_folder)).eval()
    tokens = encoder.tokenize(["a man in a red shirt", "a woman"])
    assert tokens[1].tolist() == [2, 5, 7, 3, 0, 0, 0, 0]  # [CLS] a woman [SEP] + padding
    with torch.no_grad():
        features = encoder(tokens)
        reference = BertModel.from_pretrained(bert_folder, attn_implementation="eager").eval()
        out = reference(input_ids=tokens, attention_mask=(tokens != 0).long(),
                        output_attentions=True)
    assert torch.allclose(features.pooled, out.last_hidden_state[:, 0], atol=1e-6)
    assert torch.allclose(features.tokens, out.last_hidden_state[:, 1:], atol=1e-6)
    # words are the positions strictly between [CLS] and [SEP]: 6 and 2 of them
    assert features.mask.sum(dim=1).tolist() == [6, 2]
    assert features.mask[1].tolist() == [True, True] + [False] * 5
    # the score is the last layer's [CLS] row averaged over heads, renormalised over the words
    row = out.attentions[-1][:, :, 0, 1:].mean(dim=1) * features.mask
    assert torch.allclose(features.attention, row / row.sum(dim=1, keepdim=True), atol=1e-6)


@pytest.mark.parametrize("model_cls", [BertModel, BertForMaskedLM])
def test_loads_a_saved_folder_exactly(model_cls: type, tmp_path: Path) -> None:
    saved = _write_folder(tmp_path, model_cls)
    encoder = BertTextEncoder(str(tmp_path))
    base = saved.bert if model_cls is BertForMaskedLM else saved
    reference = {k: v for k, v in base.state_dict().items() if not k.startswith("pooler.")}
    loaded = encoder.bert.state_dict()
    assert reference.keys() == loaded.keys()
    assert all(torch.equal(reference[k], loaded[k]) for k in reference)
    assert encoder.vocabulary == VOCAB and encoder.architecture["hidden_size"] == 32


def test_checkpoint_carries_the_vocabulary_so_the_folder_is_not_needed(tmp_path: Path) -> None:
    folder = tmp_path / "bert"
    _write_folder(folder)
    encoder = BertTextEncoder(str(folder)).eval()
    captions = ["a man in red shirts", "a woman with a blue bag"]
    with torch.no_grad():
        before = encoder(encoder.tokenize(captions))
    torch.save(encoder.state_dict(), tmp_path / "weights.pt")
    shutil.rmtree(folder)  # evaluation elsewhere: no BERT folder, no Hub
    rebuilt = BertTextEncoder(None, architecture=encoder.architecture).eval()
    with pytest.raises(ModelError, match="no WordPiece vocabulary"):
        rebuilt.tokenize(captions)
    rebuilt.load_state_dict(torch.load(tmp_path / "weights.pt", weights_only=True))
    assert rebuilt.vocabulary == VOCAB
    tokens = rebuilt.tokenize(captions)
    assert torch.equal(tokens, encoder.tokenize(captions))
    with torch.no_grad():
        after = rebuilt(tokens)
    assert torch.equal(before.pooled, after.pooled) and torch.equal(before.tokens, after.tokens)


def _one_line(error: pytest.ExceptionInfo) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def test_refuses_a_folder_of_another_architecture(tmp_path: Path) -> None:
    RobertaModel(RobertaConfig(vocab_size=30, hidden_size=32, num_hidden_layers=1,
                               num_attention_heads=2, intermediate_size=64)).save_pretrained(
        tmp_path)
    (tmp_path / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    with pytest.raises(ModelError) as error:
        BertTextEncoder(str(tmp_path))
    message = _one_line(error)
    assert str(tmp_path / "config.json") in message and "'roberta'" in message


def test_refuses_weights_that_do_not_fit_the_config(tmp_path: Path) -> None:
    _write_folder(tmp_path, hidden=48)  # the weights of a wider BERT ...
    config = json.loads((tmp_path / "config.json").read_text())
    config.update(hidden_size=32, intermediate_size=64)  # ... under a config that says 32
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError) as error:
        BertTextEncoder(str(tmp_path))
    message = _one_line(error)
    assert str(tmp_path / "model.safetensors") in message
    assert "first: 'embeddings.word_embeddings.weight'" in message


@pytest.mark.parametrize("problem", ["no-folder", "no-vocab", "bad-vocab", "no-weights"])
def test_refuses_incomplete_folders_with_one_line(problem: str, tmp_path: Path) -> None:
    _write_folder(tmp_path)
    if problem == "no-folder":
        source, expected = str(tmp_path / "missing"), "BERT folder not found"
    elif problem == "no-vocab":
        (tmp_path / "vocab.txt").unlink()
        source, expected = str(tmp_path), str(tmp_path / "vocab.txt")
    elif problem == "bad-vocab":
        (tmp_path / "vocab.txt").write_text("a\nman\n")
        source, expected = str(tmp_path), "no [PAD] entry"
    else:
        (tmp_path / "model.safetensors").unlink()
        source, expected = str(tmp_path), "no model.safetensors or pytorch_model.bin"
    with pytest.raises(ModelError) as error:
        BertTextEncoder(source)
    assert expected in _one_line(error)


def test_a_hub_name_offline_says_what_to_fetch(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(ModelError) as error:
        BertTextEncoder("bert-base-uncased")
    message = _one_line(error)
    assert "https://huggingface.co/bert-base-uncased" in message
    assert "vocab.txt" in message and "model.safetensors" in message
