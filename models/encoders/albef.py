"""ALBEF's text side: a BERT whose upper layers cross-attend to image tokens (Li et al.,
"Align before Fuse", NeurIPS 2021), as RaSa and APTM build on it.

Why our own layers and not ``transformers.BertModel``: ALBEF splits one 12-layer BERT in two at
``fusion_layer`` (6). The lower layers are a text encoder (self-attention only, ``mode='text'``
in ALBEF's ``xbert.py``); the upper layers add a cross-attention to the image tokens after the
self-attention and run either on those text states (``mode='fusion'``: the image-text matching
head and retrieval's second stage) or after the lower ones in one pass (``multi_modal``: masked
language modelling, RaSa's replaced-token detection). ``transformers`` ties cross-attention to
decoder (causal) models and its internals change between releases; the layers are small enough
to write, and keeping the release's module names (``embeddings``, ``encoder.layer.N.attention``,
``crossattention``, ``intermediate``, ``output``; ``cls.predictions`` for the MLM head) makes a
released checkpoint load with identity key names (:mod:`models.albef_weights`).

Numerics follow ``xbert.py``: masked keys get ``-10000`` added before the softmax, exact (erf)
GELU, LayerNorm eps from the architecture (1e-12), dropout where BERT has it.

The WordPiece vocabulary travels in the state dict as a ``uint8`` buffer (as in
:mod:`models.encoders.bert`), so a checkpoint rebuilds its tokenizer offline.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.encoders.bert import (
    _bytes_to_vocab,
    _vocab_to_bytes,
    make_tokenizer,
    read_lowercase,
    read_vocab_file,
    resolve_source,
    tiny_vocabulary,
)
from models.errors import ModelError

MASK_VALUE = -10000.0  # xbert.py's additive mask

# bert-base-uncased with ALBEF's split (configs/config_bert.json of RaSa and APTM)
ALBEF_BERT_ARCHITECTURE: dict[str, Any] = {
    "vocab_size": 30522, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
    "intermediate_size": 3072, "max_position_embeddings": 512, "type_vocab_size": 2,
    "layer_norm_eps": 1e-12, "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
    "fusion_layer": 6, "encoder_width": 768,
}
ARCHITECTURE_FIELDS = tuple(ALBEF_BERT_ARCHITECTURE)


def tiny_albef_architecture(encoder_width: int = 64) -> dict[str, Any]:
    """4 layers of width 64 (2 text + 2 fusion), 2 heads, the tiny built-in vocabulary."""
    return {"vocab_size": len(tiny_vocabulary()), "hidden_size": 64, "num_hidden_layers": 4,
            "num_attention_heads": 2, "intermediate_size": 128, "max_position_embeddings": 128,
            "type_vocab_size": 2, "layer_norm_eps": 1e-12, "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1, "fusion_layer": 2,
            "encoder_width": encoder_width}


def additive_mask(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """``[B, L]`` 1/0 (or bool) -> ``[B, 1, 1, L]`` with 0 where kept and -10000 where masked."""
    return (1.0 - mask[:, None, None, :].to(dtype)) * MASK_VALUE


class _SelfAttention(nn.Module):
    """Multi-head scaled dot-product attention; keys/values from ``kv_width``-wide states."""

    def __init__(self, hidden: int, heads: int, kv_width: int, dropout: float) -> None:
        super().__init__()
        if hidden % heads:
            raise ModelError(f"hidden size {hidden} is not a multiple of {heads} heads")
        self.heads, self.head_dim = heads, hidden // heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(kv_width, hidden)
        self.value = nn.Linear(kv_width, hidden)
        self.dropout = nn.Dropout(dropout)

    def _split(self, x: Tensor) -> Tensor:
        return x.view(x.shape[0], x.shape[1], self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x: Tensor, mask: Tensor, context: Tensor | None = None) -> Tensor:
        context = x if context is None else context
        q, k, v = self._split(self.query(x)), self._split(self.key(context)), \
            self._split(self.value(context))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim) + mask
        probs = self.dropout(scores.softmax(dim=-1))
        out = (probs @ v).transpose(1, 2)
        return out.reshape(out.shape[0], out.shape[1], -1)


class _Residual(nn.Module):
    """Dense + dropout + residual LayerNorm (BERT's ``*Output`` blocks)."""

    def __init__(self, width_in: int, hidden: int, eps: float, dropout: float) -> None:
        super().__init__()
        self.dense = nn.Linear(width_in, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)  # noqa: N815 (the release's name)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, residual: Tensor) -> Tensor:
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class _Attention(nn.Module):
    def __init__(self, arch: dict[str, Any], kv_width: int) -> None:
        super().__init__()
        hidden = int(arch["hidden_size"])
        self.self = _SelfAttention(hidden, int(arch["num_attention_heads"]), kv_width,
                                   float(arch["attention_probs_dropout_prob"]))
        self.output = _Residual(hidden, hidden, float(arch["layer_norm_eps"]),
                                float(arch["hidden_dropout_prob"]))

    def forward(self, x: Tensor, mask: Tensor, context: Tensor | None = None) -> Tensor:
        return self.output(self.self(x, mask, context), x)


class _Intermediate(nn.Module):
    def __init__(self, hidden: int, inner: int) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden, inner)

    def forward(self, x: Tensor) -> Tensor:
        return F.gelu(self.dense(x))


class AlbefLayer(nn.Module):
    """Self-attention, then (fusion layers) cross-attention to the image, then the FFN."""

    def __init__(self, arch: dict[str, Any], cross: bool) -> None:
        super().__init__()
        hidden, inner = int(arch["hidden_size"]), int(arch["intermediate_size"])
        self.attention = _Attention(arch, hidden)
        self.has_cross_attention = cross
        if cross:
            self.crossattention = _Attention(arch, int(arch["encoder_width"]))
        self.intermediate = _Intermediate(hidden, inner)
        self.output = _Residual(inner, hidden, float(arch["layer_norm_eps"]),
                                float(arch["hidden_dropout_prob"]))

    def forward(self, x: Tensor, mask: Tensor, image: Tensor | None = None,
                image_mask: Tensor | None = None) -> Tensor:
        x = self.attention(x, mask)
        if self.has_cross_attention:
            if image is None or image_mask is None:
                raise ModelError("a fusion layer needs the image tokens")
            x = self.crossattention(x, image_mask, image)
        return self.output(self.intermediate(x), x)


class _Embeddings(nn.Module):
    def __init__(self, arch: dict[str, Any]) -> None:
        super().__init__()
        hidden = int(arch["hidden_size"])
        self.word_embeddings = nn.Embedding(int(arch["vocab_size"]), hidden, padding_idx=0)
        self.position_embeddings = nn.Embedding(int(arch["max_position_embeddings"]), hidden)
        self.token_type_embeddings = nn.Embedding(int(arch["type_vocab_size"]), hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=float(arch["layer_norm_eps"]))  # noqa: N815
        self.dropout = nn.Dropout(float(arch["hidden_dropout_prob"]))

    def forward(self, ids: Tensor) -> Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = (self.word_embeddings(ids) + self.position_embeddings(positions)[None]
             + self.token_type_embeddings.weight[0])
        return self.dropout(self.LayerNorm(x))


class _Encoder(nn.Module):
    def __init__(self, arch: dict[str, Any]) -> None:
        super().__init__()
        fusion = int(arch["fusion_layer"])
        self.layer = nn.ModuleList(AlbefLayer(arch, cross=i >= fusion)
                                   for i in range(int(arch["num_hidden_layers"])))


class AlbefBert(nn.Module):
    """ALBEF's BERT: ``text`` (layers below ``fusion_layer``), ``fusion`` (the rest, on text
    states, cross-attending to image tokens) and ``multimodal`` (both in one pass)."""

    def __init__(self, arch: dict[str, Any]) -> None:
        super().__init__()
        unknown = sorted(set(arch) - set(ARCHITECTURE_FIELDS))
        missing = [k for k in ARCHITECTURE_FIELDS if k not in arch]
        if unknown or missing:
            raise ModelError(f"ALBEF BERT architecture: unknown field(s) {unknown}, missing "
                             f"{missing}")
        if not 0 < int(arch["fusion_layer"]) < int(arch["num_hidden_layers"]):
            raise ModelError(f"fusion_layer must be inside 1..num_hidden_layers-1, got "
                             f"{arch['fusion_layer']}")
        self.fusion_layer = int(arch["fusion_layer"])
        self.embeddings = _Embeddings(arch)
        self.encoder = _Encoder(arch)
        self.apply(init_bert_weights)

    def text(self, ids: Tensor, mask: Tensor) -> Tensor:
        """Text-only states ``[B, L, H]`` (ALBEF ``mode='text'``)."""
        x, extended = self.embeddings(ids), additive_mask(mask, torch.float32)
        for layer in self.encoder.layer[: self.fusion_layer]:
            x = layer(x, extended)
        return x

    def fusion(self, states: Tensor, mask: Tensor, image: Tensor, image_mask: Tensor) -> Tensor:
        """Fusion layers on text states (ALBEF ``mode='fusion'``)."""
        x, extended = states, additive_mask(mask, states.dtype)
        image_extended = additive_mask(image_mask, states.dtype)
        for layer in self.encoder.layer[self.fusion_layer:]:
            x = layer(x, extended, image, image_extended)
        return x

    def multimodal(self, ids: Tensor, mask: Tensor, image: Tensor, image_mask: Tensor) -> Tensor:
        """Every layer in one pass (ALBEF ``mode='multi_modal'``)."""
        return self.fusion(self.text(ids, mask), mask, image, image_mask)


def init_bert_weights(module: nn.Module) -> None:
    """BERT's random initialisation (``initializer_range`` 0.02, zero biases, unit norms), as
    ``transformers`` gives a BERT built from its config: PyTorch's defaults (unit-variance
    embeddings, Kaiming-uniform projections) train the random tiny model far more slowly."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
        if isinstance(module, nn.Embedding) and module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


class MLMHead(nn.Module):
    """``cls.predictions``: dense + GELU + LayerNorm, then the (tied) word embeddings + bias."""

    def __init__(self, arch: dict[str, Any]) -> None:
        super().__init__()
        hidden = int(arch["hidden_size"])
        self.transform = nn.Module()
        self.transform.dense = nn.Linear(hidden, hidden)
        self.transform.LayerNorm = nn.LayerNorm(hidden, eps=float(arch["layer_norm_eps"]))
        self.bias = nn.Parameter(torch.zeros(int(arch["vocab_size"])))
        self.apply(init_bert_weights)

    def forward(self, states: Tensor, word_embeddings: Tensor) -> Tensor:
        x = self.transform.LayerNorm(F.gelu(self.transform.dense(states)))
        return x @ word_embeddings.t() + self.bias


class _Predictions(nn.Module):
    def __init__(self, arch: dict[str, Any]) -> None:
        super().__init__()
        self.predictions = MLMHead(arch)


class AlbefTextEncoder(nn.Module):
    """``text_encoder`` of the releases (their ``BertForMaskedLM``): ``bert`` + ``cls`` + the
    tokenizer. ``vocab_source``: ``"tiny"`` (built-in vocabulary), a BERT folder or Hub name
    (its ``vocab.txt`` only: the weights come from ALBEF / the release) or ``None`` (the
    vocabulary arrives with a checkpoint)."""

    vocab_bytes: Tensor

    def __init__(self, arch: dict[str, Any], vocab_source: str | None, max_length: int,
                 lowercase: bool = True) -> None:
        super().__init__()
        pieces: list[str] = []
        if vocab_source == "tiny":
            pieces = tiny_vocabulary()
        elif vocab_source is not None:
            folder = resolve_source(vocab_source)
            pieces = read_vocab_file(Path(folder) / "vocab.txt")
            lowercase = read_lowercase(Path(folder), lowercase)
        if max_length < 3:
            raise ModelError(f"max_words must be at least 3, got {max_length}")
        self.architecture = dict(arch)
        self.lowercase = bool(lowercase)
        self.max_length = min(int(max_length), int(arch["max_position_embeddings"]))
        self.bert = AlbefBert(arch)
        self.cls = _Predictions(arch)
        self.register_buffer("vocab_bytes", _vocab_to_bytes(pieces), persistent=True)
        self._set_vocabulary(pieces)

    def _set_vocabulary(self, pieces: list[str]) -> None:
        if len(pieces) > int(self.architecture["vocab_size"]):
            raise ModelError(f"the WordPiece vocabulary has {len(pieces)} entries, more than "
                             f"the {self.architecture['vocab_size']} embedding rows")
        self._tokenizer = make_tokenizer(pieces, self.lowercase) if pieces else None

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any,
                              **kwargs: Any) -> None:
        key = prefix + "vocab_bytes"
        if key in state_dict and state_dict[key].shape != self.vocab_bytes.shape:
            self.vocab_bytes = torch.empty_like(state_dict[key], device=self.vocab_bytes.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        if key in state_dict:
            self._set_vocabulary(_bytes_to_vocab(self.vocab_bytes))

    def tokenize(self, texts: list[str]) -> Tensor:
        """``[CLS]`` pieces ``[SEP]`` ``[PAD]``..., at most ``max_length`` (the code's
        ``max_words`` cut)."""
        if self._tokenizer is None:
            raise ModelError("this ALBEF text encoder has no vocabulary yet: load the run's "
                             "checkpoint (it carries it) or build it with a BERT vocabulary")
        encoded = self._tokenizer(list(texts), padding=True, truncation=True,
                                  max_length=self.max_length, return_tensors="pt")
        return encoded["input_ids"]

    @property
    def special_ids(self) -> dict[str, int]:
        tok = self._tokenizer
        if tok is None:
            raise ModelError("this ALBEF text encoder has no vocabulary yet")
        return {"pad": int(tok.pad_token_id), "cls": int(tok.cls_token_id),
                "sep": int(tok.sep_token_id), "mask": int(tok.mask_token_id)}

    def mlm_logits(self, states: Tensor) -> Tensor:
        return self.cls.predictions(states, self.bert.embeddings.word_embeddings.weight)
