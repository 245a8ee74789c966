"""IRRA (Jiang and Ye, CVPR 2023): implicit relation reasoning and aligning.

Three losses on top of a CLIP backbone; retrieval is the cosine of the global features.

* SDM, similarity distribution matching: for each image (text) the softmax of the scaled cosine
  similarities to all texts (images) of the batch is pulled towards the batch's label
  distribution (1 for every sample of the same person, normalised to sum to 1), as
  ``KL(p || q) = sum p * (log p - log(q + eps))``, in both directions. The scale is fixed at
  ``1 / tau`` with ``tau = 0.02`` (IRRA does not learn it).
* IRR, implicit relation reasoning: masked language modelling of the caption with the image as
  context. 15% of the word tokens (never SOT, EOT or padding) are chosen independently; of these
  80% become the mask token, 10% a random token, 10% stay. The masked caption goes through the
  text encoder; a cross-modal transformer (one cross-attention from text to the image tokens,
  then 4 self-attention layers, width = the joint embedding size) and an MLM head predict the
  original ids at the chosen positions.
* ID: one linear classifier shared by the image and text global features (cross-entropy averaged
  over the two modalities); only when ``num_classes`` is given.

The mask token: CLIP's vocabulary has no [MASK]. IRRA's tokenizer gives the id 49405 (the last
BPE merge of OpenAI's vocabulary, a rare piece of text) to "<|mask|>" and draws random
replacements from ids 1..49404; this module does the same with open_clip's tokenizer, so the
vocabulary size (and the pretrained token embedding) is unchanged.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from open_clip.transformer import LayerNorm, QuickGELU, Transformer
from torch import Tensor, nn

from models.base import ModelConfig
from models.distributed import gather
from models.encoders.clip import EOT_TOKEN_ID, SOT_TOKEN_ID
from models.errors import ModelError
from models.losses import sdm_loss
from models.methods.clip_model import GlobalRetrievalModel

MASK_TOKEN_ID = 49405
RANDOM_TOKEN_RANGE = (1, 49405)  # [low, high): ordinary BPE ids, as IRRA draws them
IGNORE_INDEX = -100


@dataclass
class IRRAConfig(ModelConfig):
    """IRRA.

    Attributes:
        sdm_tau: temperature of the SDM softmax (IRRA: 0.02).
        mask_prob: fraction of word tokens chosen for IRR (0.15).
        cross_layers: self-attention layers after the cross-attention (4).
        sdm_weight, irr_weight, id_weight: loss weights (all 1 in IRRA).
    """

    family: str = "irra"
    sdm_tau: float = 0.02
    mask_prob: float = 0.15
    cross_layers: int = 4
    sdm_weight: float = 1.0
    irr_weight: float = 1.0
    id_weight: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not float(self.sdm_tau) > 0:
            raise ModelError(f"sdm_tau must be positive, got {self.sdm_tau}")
        if not 0.0 < float(self.mask_prob) < 1.0:
            raise ModelError(f"mask_prob must be in (0, 1), got {self.mask_prob}")
        if int(self.cross_layers) < 1:
            raise ModelError(f"cross_layers must be positive, got {self.cross_layers}")


def mask_tokens(
    tokens: Tensor, prob: float = 0.15, generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Choose word tokens for IRR and corrupt them 80/10/10.

    Only word positions (strictly between SOT and the first EOT, non-zero) can be chosen, each
    independently with probability ``prob``. As IRRA's code does, a caption in which the draw
    chose no word gets its first word (position 1) replaced by the mask token, so that every
    caption with a word gives IRR a signal (without it a 2-word caption would get none about
    72% of the time: 0.85^2).

    Returns:
        (corrupted tokens, labels) where labels hold the original id at chosen positions and
        ``IGNORE_INDEX`` elsewhere.
    """
    positions = torch.arange(tokens.shape[1], device=tokens.device)
    eot = tokens.argmax(dim=1, keepdim=True)
    words = (positions > 0) & (positions < eot) & (tokens != 0)
    words &= (tokens != SOT_TOKEN_ID) & (tokens != EOT_TOKEN_ID)
    draw = torch.rand(tokens.shape, generator=generator, device=tokens.device)
    chosen = words & (draw < prob)
    kind = torch.rand(tokens.shape, generator=generator, device=tokens.device)
    to_mask = chosen & (kind < 0.8)
    to_random = chosen & (kind >= 0.8) & (kind < 0.9)
    random_ids = torch.randint(*RANDOM_TOKEN_RANGE, tokens.shape, generator=generator,
                               device=tokens.device)
    fallback = words[:, 1] & ~chosen.any(dim=1)  # IRRA: "at least mask 1", at position 1
    chosen[:, 1] |= fallback
    to_mask[:, 1] |= fallback
    to_random[:, 1] &= ~fallback
    corrupted = tokens.clone()
    corrupted[to_mask] = MASK_TOKEN_ID
    corrupted[to_random] = random_ids[to_random]
    labels = torch.full_like(tokens, IGNORE_INDEX)
    labels[chosen] = tokens[chosen]
    return corrupted, labels


class CrossModalTransformer(nn.Module):
    """Text queries attend to image tokens once, then ``layers`` self-attention blocks.

    Built from open_clip's own blocks (width = the joint embedding size, 64-d heads).
    """

    def __init__(self, width: int, layers: int, vocab_size: int) -> None:
        super().__init__()
        heads = max(1, width // 64)
        self.ln_pre_text = LayerNorm(width)
        self.ln_pre_image = LayerNorm(width)
        self.cross_attn = nn.MultiheadAttention(width, heads, batch_first=True)
        self.transformer = Transformer(width=width, layers=layers, heads=heads,
                                       act_layer=QuickGELU)
        self.ln_post = LayerNorm(width)
        self.mlm_head = nn.Sequential(OrderedDict([
            ("dense", nn.Linear(width, width)),
            ("gelu", QuickGELU()),
            ("ln", LayerNorm(width)),
            ("fc", nn.Linear(width, vocab_size)),
        ]))
        self._init(width, layers)

    def _init(self, width: int, layers: int) -> None:
        proj_std = width ** -0.5 * (2 * layers) ** -0.5
        attn_std = width ** -0.5
        fc_std = (2 * width) ** -0.5
        for block in self.transformer.resblocks:
            nn.init.normal_(block.attn.in_proj_weight, std=attn_std)
            nn.init.normal_(block.attn.out_proj.weight, std=proj_std)
            nn.init.normal_(block.mlp.c_fc.weight, std=fc_std)
            nn.init.normal_(block.mlp.c_proj.weight, std=proj_std)
        nn.init.normal_(self.cross_attn.in_proj_weight, std=attn_std)
        nn.init.normal_(self.cross_attn.out_proj.weight, std=proj_std)
        nn.init.normal_(self.mlm_head.dense.weight, std=fc_std)
        nn.init.normal_(self.mlm_head.fc.weight, std=proj_std)

    def forward(self, text_tokens: Tensor, image_tokens: Tensor) -> Tensor:
        """``[B, L, D]`` text, ``[B, 1 + n, D]`` image -> ``[B, L, D]`` fused text states."""
        image = self.ln_pre_image(image_tokens)
        x = self.cross_attn(self.ln_pre_text(text_tokens), image, image, need_weights=False)[0]
        x = self.transformer(x)
        return self.ln_post(x)


class IRRA(GlobalRetrievalModel):
    """IRRA; ``forward`` returns {"sdm", "irr", "id"} (no "id" without ``num_classes``)."""

    batch_gathers = ("image global", "text global", "person ids")

    config: IRRAConfig

    def __init__(self, config: IRRAConfig) -> None:
        super().__init__(config)
        # IRRA's SDM uses the fixed scale 1 / sdm_tau; CLIP's learnable one is unused, so it is
        # frozen rather than left without a gradient.
        self.backbone.clip.logit_scale.requires_grad_(False)
        width = self.backbone.embed_dim
        self.cross_modal = CrossModalTransformer(width, int(config.cross_layers),
                                                 self.backbone.vocab_size)
        self.classifier: nn.Linear | None = None
        if config.num_classes is not None:
            self.classifier = nn.Linear(width, config.num_classes)
            nn.init.normal_(self.classifier.weight, std=0.001)
            nn.init.zeros_(self.classifier.bias)

    def reference_parameter_names(self) -> dict[str, str]:
        """Our names -> IRRA's (``model/build.py``), for IRRA's name-matching optimiser rules:
        ``base_model.*`` (CLIP), ``cross_attn``, ``cross_modal_transformer``, ``ln_pre_t``,
        ``ln_pre_i``, ``ln_post``, ``mlm_head``, ``classifier``."""
        renames = (("cross_modal.cross_attn.", "cross_attn."),
                   ("cross_modal.transformer.", "cross_modal_transformer."),
                   ("cross_modal.ln_pre_text.", "ln_pre_t."),
                   ("cross_modal.ln_pre_image.", "ln_pre_i."),
                   ("cross_modal.ln_post.", "ln_post."),
                   ("cross_modal.mlm_head.", "mlm_head."))
        names = super().reference_parameter_names()
        for ours in list(names):
            for prefix, replacement in renames:
                if ours.startswith(prefix):
                    names[ours] = replacement + ours[len(prefix):]
        return names

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        config = self.config
        image_global, patches, _ = self.backbone.image_tokens(batch["images"])
        text_tokens = batch["tokens"]
        _, _, _, text_global = self.backbone.text_tokens(text_tokens)
        # SDM over the global batch under DDP (models.distributed); IRR and ID stay per sample
        losses = {"sdm": config.sdm_weight * sdm_loss(
            gather(image_global), gather(text_global), gather(batch["pids"]),
            tau=config.sdm_tau)}

        corrupted, labels = mask_tokens(text_tokens, prob=config.mask_prob)
        chosen = labels != IGNORE_INDEX
        masked_states, _, _, _ = self.backbone.text_tokens(corrupted)
        image_tokens = torch.cat([image_global.unsqueeze(1), patches], dim=1)
        fused = self.cross_modal(masked_states, image_tokens)
        if chosen.any():
            logits = self.cross_modal.mlm_head(fused[chosen])  # only the chosen positions
            irr = F.cross_entropy(logits.float(), labels[chosen])
        else:  # keep every parameter in the graph even when nothing was drawn
            irr = self.cross_modal.mlm_head(fused[:, :1]).float().sum() * 0.0
        losses["irr"] = config.irr_weight * irr

        if self.classifier is not None:
            pids = batch["pids"]
            image_logits = self.classifier(image_global.float())
            text_logits = self.classifier(text_global.float())
            id_loss = (F.cross_entropy(image_logits, pids) + F.cross_entropy(text_logits, pids)) / 2
            losses["id"] = config.id_weight * id_loss
        return losses
