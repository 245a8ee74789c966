"""Feature containers that the evaluator can encode in batches, concatenate and slice.

A model's ``encode_images`` / ``encode_texts`` return these instead of bare tensors because the
multi-granularity models need more than one tensor per sample (a global feature, the token
features, which tokens are valid, and the attention used to rank them). Every field has the batch
as its first dimension, so ``features[a:b]`` is the same thing for a sub-batch and
``Features.cat`` undoes any split.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TypeVar

import torch
from torch import Tensor

F = TypeVar("F", bound="_Features")


@dataclass
class _Features:
    """Global feature + token features of a batch, all in the joint embedding space.

    Attributes:
        pooled: ``[B, D]`` the global feature (image: projected CLS; text: projected end-of-text).
        tokens: ``[B, N, D]`` token features projected like ``pooled``. ``N`` may include padding.
        mask: ``[B, N]`` bool, True where ``tokens[b, i]`` is a real token that may contribute.
        attention: ``[B, N]`` the last block's attention of the global token over these tokens,
            averaged over heads, zero on invalid tokens and renormalised to sum to 1 over the
            valid ones (renormalising does not change any ranking; it makes rows comparable).
    """

    pooled: Tensor
    tokens: Tensor
    mask: Tensor
    attention: Tensor

    def __len__(self) -> int:
        return int(self.pooled.shape[0])

    def __getitem__(self: F, index: slice | int | Tensor) -> F:
        if isinstance(index, int):
            index = slice(index, index + 1)
        fields = dataclasses.fields(self)
        return type(self)(**{f.name: getattr(self, f.name)[index] for f in fields})

    def to(
        self: F,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        non_blocking: bool = False,
    ) -> F:
        """Move every tensor to ``device``; cast the floating ones to ``dtype`` if given."""
        moved = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            cast = dtype if dtype is not None and value.is_floating_point() else None
            moved[f.name] = value.to(device=device, dtype=cast, non_blocking=non_blocking)
        return type(self)(**moved)

    def detach(self: F) -> F:
        fields = dataclasses.fields(self)
        return type(self)(**{f.name: getattr(self, f.name).detach() for f in fields})

    def gathered(self: F) -> F:
        """Every process's features of the global batch in rank order, with gradient
        (:func:`models.distributed.gather`); itself without a process group. Token counts may
        differ between processes: padded slots get ``mask`` False and zero attention."""
        from models.distributed import gather, world_size

        if world_size() == 1:
            return self
        return type(self)(pooled=gather(self.pooled),
                          tokens=gather(self.tokens, pad_dim=1),
                          mask=gather(self.mask, pad_dim=1, pad_value=False),
                          attention=gather(self.attention, pad_dim=1))

    @property
    def num_tokens(self) -> int:
        return int(self.tokens.shape[1])

    @classmethod
    def cat(cls: type[F], parts: list[F]) -> F:
        """Concatenate along the batch, padding the token dimension to the longest part.

        Parts may have different token counts (text batches are trimmed to their longest caption;
        selected tokens depend on the ratio); padded positions get ``mask`` False and zero
        attention, so they never contribute.
        """
        if not parts:
            raise ValueError("cannot concatenate an empty list of features")
        width = max(p.num_tokens for p in parts)
        padded = [p.padded_to(width) for p in parts]
        return cls(**{
            f.name: torch.cat([getattr(p, f.name) for p in padded], dim=0)
            for f in dataclasses.fields(cls)
        })

    def padded_to(self: F, width: int) -> F:
        """The same features with ``width`` token slots; the added ones masked out."""
        extra = width - self.num_tokens
        if extra == 0:
            return self
        b, _, d = self.tokens.shape
        return type(self)(
            pooled=self.pooled,
            tokens=torch.cat([self.tokens, self.tokens.new_zeros(b, extra, d)], dim=1),
            mask=torch.cat([self.mask, self.mask.new_zeros(b, extra)], dim=1),
            attention=torch.cat([self.attention, self.attention.new_zeros(b, extra)], dim=1),
        )


@dataclass
class ImageFeatures(_Features):
    """Image features: ``tokens`` are patch tokens (CLS excluded), ``attention`` the CLS row."""


@dataclass
class TextFeatures(_Features):
    """Text features: ``tokens`` are word tokens, ``attention`` the end-of-text token's row.

    "Words" are the positions strictly between start-of-text and end-of-text: SOT, EOT and the
    padding after EOT are never valid tokens.
    """
