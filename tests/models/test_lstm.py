"""The Bi-LSTM text encoder: padding-independent features, pooling, token scores, word vectors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models.encoders.lstm import BiLSTMEncoder
from models.encoders.vocabulary import Vocabulary
from models.errors import ModelError

WORDS = ["a", "man", "in", "red", "shirt", "woman", "blue", "coat", "with", "bag"]


def _encoder(**kwargs) -> BiLSTMEncoder:
    torch.manual_seed(0)
    return BiLSTMEncoder(Vocabulary(WORDS), word_dim=8, hidden_dim=6, **kwargs).eval()


def test_features_do_not_depend_on_padding_or_batch() -> None:
    encoder = _encoder()
    captions = ["a man in a red shirt with a bag", "a woman", ""]
    with torch.no_grad():
        batch = encoder(encoder.tokenize(captions))
        alone = encoder(encoder.tokenize(captions[1:2]))
    assert batch.tokens.shape == (3, 9, 12) and batch.pooled.shape == (3, 12)
    assert batch.mask.sum(dim=1).tolist() == [9, 2, 0]
    torch.testing.assert_close(batch.pooled[1], alone.pooled[0])
    torch.testing.assert_close(batch.tokens[1, :2], alone.tokens[0, :2])
    # max pooling over the caption's own words only
    torch.testing.assert_close(batch.pooled[0], batch.tokens[0].max(dim=0).values)
    torch.testing.assert_close(batch.pooled[1], batch.tokens[1, :2].max(dim=0).values)
    assert torch.isfinite(batch.pooled[2]).all()  # an empty caption is finite
    assert batch.attention[2].sum() == 0 and not batch.mask[2].any()


def test_max_pooling_score_is_the_share_of_dimensions_won() -> None:
    encoder = _encoder()
    with torch.no_grad():
        feats = encoder(encoder.tokenize(["a man in a red shirt", "a blue coat"]))
    for row, length in ((0, 6), (1, 3)):
        winners = feats.tokens[row, :length].argmax(dim=0)  # which word gives each dimension
        expected = torch.bincount(winners, minlength=feats.tokens.shape[1]).float() / 12
        torch.testing.assert_close(feats.attention[row], expected)


def test_last_state_pooling() -> None:
    encoder = _encoder(pooling="last")
    with torch.no_grad():
        feats = encoder(encoder.tokenize(["a man in a red shirt", "a blue coat"]))
    hidden = 6
    # forward direction's final state is the state at the caption's last word, backward's at
    # its first word
    torch.testing.assert_close(feats.pooled[1, :hidden], feats.tokens[1, 2, :hidden])
    torch.testing.assert_close(feats.pooled[1, hidden:], feats.tokens[1, 0, hidden:])
    torch.testing.assert_close(feats.attention.sum(dim=1), torch.ones(2))


def test_word_vectors_initialise_known_words(tmp_path: Path) -> None:
    glove = tmp_path / "glove.txt"
    glove.write_text("man 1 2 3 4 5 6 7 8\nzebra 0 0 0 0 0 0 0 0\nRED 8 7 6 5 4 3 2 1\n")
    encoder = _encoder(word_vectors=str(glove))
    vocab = encoder.vocabulary
    table = encoder.embedding.weight
    assert table[vocab.ids("man")[0]].tolist() == [1, 2, 3, 4, 5, 6, 7, 8]
    assert table[vocab.ids("red")[0]].tolist() == [8, 7, 6, 5, 4, 3, 2, 1]
    assert table[0].abs().sum() == 0  # padding stays zero
    word2vec = tmp_path / "vectors.txt"
    word2vec.write_text("2 8\nbag 1 1 1 1 1 1 1 1\ncoat 2 2 2 2 2 2 2 2\n")
    encoder = _encoder(word_vectors=str(word2vec))
    assert encoder.embedding.weight[vocab.ids("coat")[0]].tolist() == [2.0] * 8


def test_word_vector_errors_name_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "short.txt"
    bad.write_text("man 1 2 3 4 5 6 7 8\nred 1 2 3\n")
    with pytest.raises(ModelError, match=r"short.txt: line 2: 3 numbers, expected word_dim=8"):
        _encoder(word_vectors=str(bad))
    with pytest.raises(ModelError, match="word-vector file not found"):
        _encoder(word_vectors=str(tmp_path / "absent.txt"))
    none = tmp_path / "foreign.txt"
    none.write_text("zebra 1 2 3 4 5 6 7 8\n")
    with pytest.raises(ModelError, match="no word of the vocabulary"):
        _encoder(word_vectors=str(none))
