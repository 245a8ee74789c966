"""Dual-Path's deep residual text CNN (Zheng et al., TOMM 2020): words -> 1-D ResNet -> max-pool.

The text branch of Dual-Path treats a caption as a 1 x L "image" whose channels are word
vectors: a word embedding (in the paper a 1x1 convolution over one-hot words, initialised from
word2vec; here an :class:`torch.nn.Embedding`, the same map), batch normalisation, then
bottleneck residual blocks ``1x1 -> 1xK -> 1x1`` (K = 2) with batch normalisation and ReLU, as
ResNet-50's blocks with the 3x3 kernels replaced by 1x2 ones, and a max-pool over the positions.
The released CUHK-PEDES code has 3 + 4 + 6 + 1 blocks of widths 256, 512, 1024, 2048 (each stage
but the first and last starts with a stride-2 block), captions of 56 words, so that the last
stage has 14 positions; :data:`PAPER_BLOCKS` follows it block by block.

The 1x2 kernel looks at a word and the one before it (one position of padding on the left, as
the released code pads), so no position ever sees the padding after the caption: the features of
a caption do not depend on how far it is padded. The max-pool takes only valid positions.

Tokens for token-level methods: the last stage's positions, each summarising the words its
strided windows cover (with the paper's two stride-2 blocks, position 0 holds word 0 and position
j > 0 words 4j-3 .. 4j; with stride-1 blocks, one position per word). ``mask`` marks positions
covering at least one real word. The token score (the role attention plays for ViTs, used to
rank tokens for selection) is the share of the pooled feature's channels whose maximum comes
from that position: a max-pooled network's own measure of how much each position contributes
to the global feature. It sums to 1 over the valid positions and carries no gradient.

Weights: the text CNN has no public pretrained weights beyond its word vectors.
:func:`read_word_vectors` reads word2vec files (the text format, and the binary format of
``GoogleNews-vectors-negative300.bin`` that Dual-Path used) for the words of a vocabulary;
:meth:`TextCNN.load_weights` loads a state dict file this module saved (strictly: a file of
another architecture is refused with the first mismatching key).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.encoders.resnet import load_matching, read_state_dict
from models.errors import ModelError

PAD_ID = 0
KERNEL_SIZE = 2
WORD2VEC_HINT = ("GoogleNews-vectors-negative300.bin (word2vec, "
                 "https://code.google.com/archive/p/word2vec/)")

# (bottleneck width, output width, stride) of every block, as Dual-Path's CUHK-PEDES network.
PAPER_BLOCKS: tuple[tuple[int, int, int], ...] = (
    (128, 256, 1), (64, 256, 1), (64, 256, 1),
    (512, 512, 2), (128, 512, 1), (128, 512, 1), (128, 512, 1),
    (1024, 1024, 2), *((256, 1024, 1),) * 5,
    (2048, 2048, 1),
)
PAPER_EMBED_DIM = 300  # word2vec's GoogleNews vectors
PAPER_MAX_WORDS = 56  # CUHK-PEDES captions in the released code

# A three-block network for tests and the CPU demo (one stride-2 block: two words a position).
TINY_BLOCKS: tuple[tuple[int, int, int], ...] = ((16, 32, 1), (32, 64, 2), (16, 64, 1))


def _bn_conv(in_channels: int, out_channels: int, kernel: int = 1, stride: int = 1
             ) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(in_channels, out_channels, kernel, stride=stride, bias=False),
                         nn.BatchNorm1d(out_channels))


class ResidualTextBlock(nn.Module):
    """Bottleneck ``1x1 -> 1xK (stride s) -> 1x1`` plus a shortcut (projected when the width or
    the length changes), ReLU after the sum."""

    def __init__(self, in_channels: int, mid: int, out: int, stride: int = 1,
                 kernel: int = KERNEL_SIZE) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride
        self.reduce = _bn_conv(in_channels, mid)
        self.conv = _bn_conv(mid, mid, kernel, stride)
        self.expand = _bn_conv(mid, out)
        self.shortcut = (nn.Identity() if in_channels == out and stride == 1
                         else _bn_conv(in_channels, out, 1, stride))

    def forward(self, x: Tensor) -> Tensor:
        """``[B, C, L] -> [B, out, ceil(L / stride)]``."""
        y = F.relu(self.reduce(x))
        y = F.relu(self.conv(F.pad(y, (self.kernel - 1, 0))))  # left: a word and the one before
        return F.relu(self.expand(y) + self.shortcut(x))

    def downsample_mask(self, mask: Tensor) -> Tensor:
        """A position is valid when the words its strided window covers include a real one."""
        if self.stride == 1:
            return mask
        padded = F.pad(mask.float().unsqueeze(1), (self.kernel - 1, 0))
        return F.max_pool1d(padded, self.kernel, self.stride).squeeze(1) > 0


class TextCNN(nn.Module):
    """Word ids ``[B, L]`` (0 = padding) -> pooled ``[B, D]``, tokens ``[B, N, D]``, mask, score.

    Args:
        vocab_size: number of word ids (id 0 is padding and has a zero vector).
        embed_dim: word vector size (300 for word2vec).
        blocks: (bottleneck, output, stride) per residual block; :data:`PAPER_BLOCKS`.
        kernel: the 1xK kernel of the middle convolutions (2 in Dual-Path).
    """

    def __init__(self, vocab_size: int, embed_dim: int = PAPER_EMBED_DIM,
                 blocks: Sequence[Sequence[int]] = PAPER_BLOCKS, kernel: int = KERNEL_SIZE
                 ) -> None:
        super().__init__()
        if vocab_size < 2:
            raise ModelError(f"text CNN: vocab_size must be at least 2, got {vocab_size}")
        if not blocks:
            raise ModelError("text CNN: at least one residual block is needed")
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD_ID)
        self.embedding_norm = nn.BatchNorm1d(embed_dim)
        layers, width = [], embed_dim
        for spec in blocks:
            mid, out, stride = (int(v) for v in spec)
            layers.append(ResidualTextBlock(width, mid, out, stride, kernel))
            width = out
        self.blocks = nn.ModuleList(layers)
        self.out_dim = width

    def forward(self, tokens: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(pooled ``[B, D]``, position features ``[B, N, D]``, mask ``[B, N]``, score ``[B, N]``).

        A caption without any word (all padding) gets a zero pooled feature and no valid token.
        """
        mask = tokens != PAD_ID
        x = self.embedding_norm(self.embedding(tokens).transpose(1, 2))  # [B, E, L]
        for block in self.blocks:
            x = block(x)
            mask = block.downsample_mask(mask)
        masked = x.masked_fill(~mask.unsqueeze(1), float("-inf"))
        pooled, winners = masked.max(dim=2)  # [B, D]: per channel, the best valid position
        empty = ~mask.any(dim=1)
        pooled = pooled.masked_fill(empty.unsqueeze(1), 0.0)
        with torch.no_grad():
            wins = F.one_hot(winners, x.shape[2]).float().mean(dim=1)  # [B, N] shares
            score = (wins * mask).masked_fill(empty.unsqueeze(1), 0.0)
        return pooled, x.transpose(1, 2), mask, score

    def set_word_vectors(self, vectors: Tensor, found: Tensor | None = None) -> None:
        """Copy ``[V, E]`` word vectors into the embedding: rows where ``found``, never padding."""
        if tuple(vectors.shape) != tuple(self.embedding.weight.shape):
            raise ModelError(f"word vectors of shape {tuple(vectors.shape)} do not fit the text "
                             f"CNN's embedding {tuple(self.embedding.weight.shape)}")
        rows = torch.ones(len(vectors), dtype=torch.bool) if found is None else found.clone()
        rows[PAD_ID] = False
        with torch.no_grad():
            self.embedding.weight[rows] = vectors[rows].to(self.embedding.weight)

    def load_weights(self, path: str | Path) -> None:
        """Load a state dict file saved from a text CNN of this architecture (strictly: another
        architecture is refused with one line naming the file and the first mismatching key)."""
        load_matching(self, read_state_dict(Path(path)), str(path))


def shift_positions(tokens: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Dual-Path's position shift: move each caption's words right by a random offset.

    The released code places a caption at a random position of its fixed-length window during
    training, so that the network does not tie a word's meaning to its absolute position. Each
    row of ``[B, L]`` right-padded ids moves by an offset drawn uniformly from ``0 .. L - n``
    (``n`` its word count); words are never cut.
    """
    length = tokens.shape[1]
    counts = (tokens != PAD_ID).sum(dim=1)
    draw = torch.rand(len(tokens), generator=generator, device=tokens.device)
    offsets = (draw * (length - counts + 1)).long().clamp(max=length - counts)
    positions = torch.arange(length, device=tokens.device).view(1, -1)
    source = positions - offsets.view(-1, 1)
    valid = (source >= 0) & (source < counts.view(-1, 1))
    gathered = tokens.gather(1, source.clamp(min=0, max=length - 1))
    return torch.where(valid, gathered, torch.full_like(tokens, PAD_ID))


def read_word_vectors(path: str | Path, words: Sequence[str], dim: int
                      ) -> tuple[Tensor, Tensor]:
    """Vectors of ``words`` from a word2vec file (text or binary format).

    Text format: an optional ``count dim`` header line, then ``word v1 ... v_dim`` per line.
    Binary format (``.bin``, as GoogleNews-vectors-negative300.bin): a ``count dim`` header,
    then per word its UTF-8 bytes, a space and ``dim`` little-endian float32 values.

    Returns:
        (vectors ``[len(words), dim]``, zero where not found; found ``[len(words)]`` bool).
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"word vector file not found: {path} (fetch {WORD2VEC_HINT}, or a "
                         "word2vec text file, and pass its path)")
    index = {word: i for i, word in enumerate(words)}
    vectors = torch.zeros(len(words), dim)
    found = torch.zeros(len(words), dtype=torch.bool)
    reader = _read_binary if path.suffix == ".bin" else _read_text
    for word, values in reader(path, dim):
        row = index.get(word)
        if row is not None and not found[row]:
            vectors[row] = values
            found[row] = True
    return vectors, found


def _read_text(path: Path, dim: int):
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            parts = line.rstrip().split(" ")
            if number == 1 and len(parts) == 2:
                _check_header_dim(path, parts, dim)
                continue
            if len(parts) != dim + 1:
                raise ModelError(f"{path}: line {number}: expected a word and {dim} values, got "
                                 f"{len(parts) - 1} values")
            try:
                values = torch.tensor([float(v) for v in parts[1:]])
            except ValueError:
                raise ModelError(f"{path}: line {number}: not a number in the vector") from None
            yield parts[0], values


def _read_binary(path: Path, dim: int):
    with path.open("rb") as handle:
        header = handle.readline().decode("utf-8", errors="replace").split()
        if len(header) != 2:
            raise ModelError(f"{path}: not a word2vec binary file (no 'count dim' header)")
        count = _check_header_dim(path, header, dim)
        for number in range(count):
            word = bytearray()
            while (char := handle.read(1)) not in (b" ", b""):
                if char != b"\n":
                    word += char
            data = handle.read(4 * dim)
            if len(data) != 4 * dim:
                raise ModelError(f"{path}: truncated at word {number + 1} of {count}")
            yield word.decode("utf-8", errors="replace"), torch.frombuffer(
                bytearray(data), dtype=torch.float32).clone()


def _check_header_dim(path: Path, header: list[str], dim: int) -> int:
    try:
        count, file_dim = int(header[0]), int(header[1])
    except ValueError:
        raise ModelError(f"{path}: header '{' '.join(header)}' is not 'count dim'") from None
    if file_dim != dim:
        raise ModelError(f"{path}: word vectors have {file_dim} dimensions, the text CNN's "
                         f"embedding has {dim} (set embed_dim={file_dim})")
    return count

