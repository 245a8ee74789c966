"""A bidirectional LSTM over word embeddings, as CMPM (Zhang & Lu, ECCV 2018) encodes captions.

Features (unprojected, ``2 * hidden_dim`` wide: forward and backward states concatenated):

* ``tokens``: the per-word hidden states ``h_t = [h_t(fwd); h_t(bwd)]`` (padding excluded from the
  recurrence with packed sequences, so a caption's states do not depend on the batch).
* ``pooled``: ``"max"`` (CMPM's public code and its successors: element-wise max of the ``h_t``
  over the caption's words) or ``"last"`` (the final states of both directions,
  ``[h_T(fwd); h_1(bwd)]``).
* ``mask``: True on the caption's words (not on padding).
* ``attention``: an LSTM has no attention map. With max pooling each dimension of the global
  feature is copied from exactly one word, so the token score is each word's share of the global
  feature: the fraction of dimensions in which it is the maximum. With ``"last"`` pooling the score
  is ``max(0, cos(h_t, pooled))`` renormalised. Scores are computed without gradients: they only
  rank words for MGCC-style token selection.

Word embeddings are trained from scratch, or start from a pretrained word-vector file in the
GloVe / word2vec text format (``word v1 ... vd`` per line; a word2vec ``count dim`` header line is
skipped): rows of vocabulary words found in the file are copied, the others keep their random
initialisation; padding is the zero vector.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from models.encoders.vocabulary import NUM_SPECIAL, PAD_ID, Vocabulary
from models.errors import ModelError
from models.features import TextFeatures

POOLINGS = ("max", "last")


def read_word_vectors(path: Path, vocabulary: Vocabulary, dim: int) -> tuple[Tensor, Tensor]:
    """(vectors ``[len(vocabulary), dim]``, found ``[len(vocabulary)]`` bool) from a text file.

    Raises:
        ModelError: missing file, or a line whose vector is not ``dim`` numbers (named by line).
    """
    if not path.is_file():
        raise ModelError(f"word-vector file not found: {path}")
    index = {w: i + NUM_SPECIAL for i, w in enumerate(vocabulary.words)}
    vectors = torch.zeros(len(vocabulary), dim)
    found = torch.zeros(len(vocabulary), dtype=torch.bool)
    with path.open(encoding="utf-8", errors="replace") as lines:
        for number, line in enumerate(lines, start=1):
            parts = line.rstrip().split(" ")
            if number == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                continue  # word2vec header: "<count> <dim>"
            if len(parts) < 2:
                continue
            word = parts[0].lower()
            if word not in index or found[index[word]]:
                continue
            if len(parts) - 1 != dim:
                raise ModelError(f"{path}: line {number}: {len(parts) - 1} numbers, expected "
                                 f"word_dim={dim}")
            try:
                vectors[index[word]] = torch.tensor([float(v) for v in parts[1:]])
            except ValueError:
                raise ModelError(f"{path}: line {number}: not a word followed by numbers") from None
            found[index[word]] = True
    return vectors, found


class BiLSTMEncoder(nn.Module):
    """Word embedding + one or more bidirectional LSTM layers, returning :class:`TextFeatures`.

    Args:
        vocabulary: the word list (see :mod:`models.encoders.vocabulary`).
        word_dim: embedding width (CMPM's code: 512; GloVe files: 300).
        hidden_dim: LSTM units per direction (CMPM's code: 512).
        num_layers: stacked LSTM layers.
        dropout: dropout on the LSTM's inputs (the word embeddings).
        output_dropout: dropout on the LSTM's outputs, before pooling (CMPM's code wraps its
            cells in a ``DropoutWrapper`` keeping 0.7 of both inputs and outputs).
        pooling: ``"max"`` or ``"last"`` (see the module docstring).
        max_words: cut captions after this many words (CMPM's code: 100).
        word_vectors: optional GloVe/word2vec text file to initialise the embeddings.
    """

    # trained from scratch (only its embeddings may start from word vectors): "new" parameters
    pretrained_encoder = False

    def __init__(self, vocabulary: Vocabulary, word_dim: int = 512, hidden_dim: int = 512,
                 num_layers: int = 1, dropout: float = 0.0, pooling: str = "max",
                 max_words: int | None = 100, word_vectors: str | None = None,
                 output_dropout: float = 0.0) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ModelError(f"unknown text pooling '{pooling}'; valid: {', '.join(POOLINGS)}")
        for name, value in (("word_dim", word_dim), ("hidden_dim", hidden_dim),
                            ("num_layers", num_layers)):
            if int(value) < 1:
                raise ModelError(f"{name} must be positive, got {value}")
        for name, value in (("dropout", dropout), ("output_dropout", output_dropout)):
            if not 0.0 <= float(value) < 1.0:
                raise ModelError(f"{name} must be in [0, 1), got {value}")
        self.vocabulary = vocabulary
        self.pooling = pooling
        self.max_words = max_words
        self.feature_dim = 2 * int(hidden_dim)
        self.embedding = nn.Embedding(len(vocabulary), int(word_dim), padding_idx=PAD_ID)
        self.dropout = nn.Dropout(float(dropout))
        self.output_dropout = nn.Dropout(float(output_dropout))
        self.lstm = nn.LSTM(int(word_dim), int(hidden_dim), num_layers=int(num_layers),
                            batch_first=True, bidirectional=True)
        if word_vectors is not None:
            vectors, found = read_word_vectors(Path(word_vectors), vocabulary, int(word_dim))
            if not found.any():
                raise ModelError(f"{word_vectors}: no word of the vocabulary is in this file")
            with torch.no_grad():
                self.embedding.weight[found] = vectors[found]

    def tokenize(self, texts: list[str]) -> Tensor:
        """Word ids ``[B, L]`` (padded with 0, ``L`` the longest caption, cut at max_words)."""
        return self.vocabulary.encode(texts, self.max_words)

    def forward(self, tokens: Tensor) -> TextFeatures:
        mask = tokens != PAD_ID
        lengths = mask.sum(dim=1)
        # an empty caption runs over its first (padding) position so the LSTM has a step
        run_lengths = lengths.clamp_min(1).cpu()
        embedded = self.dropout(self.embedding(tokens))
        packed = pack_padded_sequence(embedded, run_lengths, batch_first=True,
                                      enforce_sorted=False)
        output, (h_n, _) = self.lstm(packed)
        states, _ = pad_packed_sequence(output, batch_first=True, total_length=tokens.shape[1])
        states = self.output_dropout(states)
        first = torch.arange(tokens.shape[1], device=tokens.device) == 0
        valid = mask | ((lengths == 0).unsqueeze(1) & first.unsqueeze(0))
        if self.pooling == "max":
            masked = states.masked_fill(~valid.unsqueeze(-1), float("-inf"))
            pooled, winner = masked.max(dim=1)  # winner: [B, D] word index per dimension
        else:
            pooled = torch.cat([h_n[-2], h_n[-1]], dim=-1)  # last layer: forward, backward
        with torch.no_grad():
            if self.pooling == "max":
                share = torch.zeros(tokens.shape, dtype=torch.float32, device=tokens.device)
                share.scatter_add_(1, winner, torch.ones_like(winner, dtype=torch.float32))
            else:
                share = torch.cosine_similarity(states, pooled.unsqueeze(1), dim=-1).clamp_min(0)
            share = share * mask
            share = share / share.sum(dim=1, keepdim=True).clamp_min(1e-12)
        return TextFeatures(pooled=pooled, tokens=states, mask=mask, attention=share)
