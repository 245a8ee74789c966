"""Dual-Path's residual text CNN: shapes, masks, token scores, position shift, weight files."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
import torch

from models.encoders.textcnn import (
    PAD_ID,
    TINY_BLOCKS,
    TextCNN,
    read_word_vectors,
    shift_positions,
)
from models.errors import ModelError


def tiny_cnn(vocab: int = 20, blocks=TINY_BLOCKS, seed: int = 0) -> TextCNN:
    torch.manual_seed(seed)
    return TextCNN(vocab, embed_dim=8, blocks=blocks).eval()


def padded(rows: list[list[int]], length: int) -> torch.Tensor:
    return torch.tensor([row + [PAD_ID] * (length - len(row)) for row in rows])


def test_paper_strides_take_56_words_to_14_positions() -> None:
    cnn = tiny_cnn(blocks=((8, 16, 1), (8, 16, 2), (8, 16, 2)))
    pooled, tokens, mask, score = cnn(padded([[3, 4, 5]], 56))
    assert pooled.shape == (1, 16) and tokens.shape == (1, 14, 16)
    assert mask.shape == score.shape == (1, 14)


def test_mask_covers_the_words_and_the_score_ranks_only_them() -> None:
    cnn = tiny_cnn()  # one stride-2 block: position i covers words 2i-1 and 2i
    pooled, tokens, mask, score = cnn(padded([[3, 4, 5], [6, 7, 8, 9, 10, 11, 12]], 8))
    assert mask.tolist() == [[True, True, False, False], [True, True, True, True]]
    assert torch.allclose(score.sum(dim=1), torch.ones(2))
    assert (score[~mask] == 0).all()
    # the pooled feature is the max over the valid positions only
    assert torch.equal(pooled[0], tokens[0, :2].max(dim=0).values)


def test_features_do_not_depend_on_the_padding_after_the_caption() -> None:
    cnn = tiny_cnn()
    short = cnn(padded([[3, 4, 5, 6, 7]], 6))
    long = cnn(padded([[3, 4, 5, 6, 7]], 15))
    assert torch.allclose(short[0], long[0], atol=1e-6)
    valid = short[2][0].sum()
    assert torch.allclose(short[1][0, :valid], long[1][0, :valid], atol=1e-6)


def test_a_caption_without_words_gives_zeros_and_no_token() -> None:
    pooled, _, mask, score = tiny_cnn()(padded([[], [3]], 4))
    assert (pooled[0] == 0).all() and not mask[0].any() and (score[0] == 0).all()


def test_position_shift_moves_words_without_cutting_or_reordering() -> None:
    tokens = padded([[3, 4, 5], [6, 7, 8, 9, 10, 11]], 6)
    shifted = [shift_positions(tokens, torch.Generator().manual_seed(s)) for s in range(20)]
    for out in shifted:
        for row, original in zip(out.tolist(), tokens.tolist(), strict=True):
            assert [t for t in row if t != PAD_ID] == [t for t in original if t != PAD_ID]
            first = next(i for i, t in enumerate(row) if t != PAD_ID)
            assert row[first:first + 3] == [t for t in original if t != PAD_ID][:3]
    offsets = {next(i for i, t in enumerate(out[0].tolist()) if t != PAD_ID) for out in shifted}
    assert offsets == {0, 1, 2, 3}  # 3 words in 6 positions: every offset occurs
    assert all(torch.equal(out[1], tokens[1]) for out in shifted)  # a full row cannot move


def test_weights_round_trip_through_a_file(tmp_path: Path) -> None:
    source, target = tiny_cnn(seed=0), tiny_cnn(seed=1)
    torch.save(source.state_dict(), tmp_path / "textcnn.pt")
    target.load_weights(tmp_path / "textcnn.pt")
    tokens = padded([[3, 4, 5], [9, 2]], 5)
    assert torch.equal(source(tokens)[0], target(tokens)[0])


@pytest.mark.parametrize(("blocks", "vocab", "key"), [
    (((16, 32, 1), (32, 64, 2)), 20, "missing key 'blocks.2"),
    (TINY_BLOCKS, 30, "key 'embedding.weight' has shape (30, 8), expected (20, 8)"),
])
def test_weights_of_another_architecture_are_refused(tmp_path: Path, blocks, vocab, key) -> None:
    file = tmp_path / "other.pt"
    torch.save(TextCNN(vocab, embed_dim=8, blocks=blocks).state_dict(), file)
    with pytest.raises(ModelError) as error:
        tiny_cnn().load_weights(file)
    message = str(error.value)
    assert str(file) in message and key in message and "\n" not in message


def test_unreadable_or_missing_weights_are_one_line_errors(tmp_path: Path) -> None:
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    for name in ("junk.pt", "missing.pt"):
        with pytest.raises(ModelError, match=name):
            tiny_cnn().load_weights(tmp_path / name)


def _write_word2vec(tmp_path: Path, entries: dict[str, list[float]]) -> tuple[Path, Path]:
    text = tmp_path / "vectors.txt"
    text.write_text(f"{len(entries)} 3\n" + "".join(
        f"{w} {' '.join(str(v) for v in vec)}\n" for w, vec in entries.items()), encoding="utf-8")
    binary = tmp_path / "vectors.bin"
    with binary.open("wb") as handle:
        handle.write(f"{len(entries)} 3\n".encode())
        for word, vec in entries.items():
            handle.write(word.encode() + b" " + struct.pack("<3f", *vec) + b"\n")
    return text, binary


def test_word2vec_text_and_binary_files_initialise_the_embedding(tmp_path: Path) -> None:
    entries = {"red": [0.5, -1.0, 2.0], "shirt": [1.0, 0.0, 0.25], "unused": [9.0, 9.0, 9.0]}
    words = ["<pad>", "red", "shirt", "zebra"]
    read = [read_word_vectors(file, words, 3) for file in _write_word2vec(tmp_path, entries)]
    for vectors, found in read:
        assert found.tolist() == [False, True, True, False]
        assert vectors[1].tolist() == entries["red"] and vectors[2].tolist() == entries["shirt"]
    cnn = TextCNN(len(words), embed_dim=3, blocks=TINY_BLOCKS)
    before = cnn.embedding.weight.detach().clone()
    cnn.set_word_vectors(*read[1])
    after = cnn.embedding.weight.detach()
    assert after[1].tolist() == entries["red"] and torch.equal(after[3], before[3])
    assert (after[PAD_ID] == 0).all()


def test_word_vector_file_errors_name_the_file(tmp_path: Path) -> None:
    text, _ = _write_word2vec(tmp_path, {"red": [1.0, 2.0, 3.0]})
    with pytest.raises(ModelError, match="3 dimensions.*embed_dim=3"):
        read_word_vectors(text, ["<pad>", "red"], 300)
    with pytest.raises(ModelError, match="GoogleNews-vectors-negative300.bin"):
        read_word_vectors(tmp_path / "absent.bin", ["<pad>"], 300)


def test_the_paper_network_has_14_positions_of_2048_channels_for_56_words() -> None:
    from models.encoders.textcnn import PAPER_BLOCKS, PAPER_MAX_WORDS

    assert len(PAPER_BLOCKS) == 3 + 4 + 6 + 1
    cnn = TextCNN(50, blocks=PAPER_BLOCKS).eval()
    with torch.no_grad():
        pooled, tokens, mask, _ = cnn(padded([[3, 4, 5, 6, 7, 8]], PAPER_MAX_WORDS))
    assert pooled.shape == (1, 2048) and tokens.shape == (1, 14, 2048)
    # position 0 covers word 0, position j > 0 words 4j-3 .. 4j: 6 words reach position 2
    assert mask[0].tolist() == [True] * 3 + [False] * 11
