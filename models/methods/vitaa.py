"""ViTAA: visual-textual attributes alignment (Wang et al., ECCV 2020), Table 2's "ViTAA
RN50-LSTM" row.

Image side (ViTAA's code, ``seg_head.py``): a ResNet-50 up to its third stage feeds

* the global branch: the ResNet's fourth stage, average-pooled, projected to ``embed_dim``
  (ViTAA's code replaces that stage with two new BasicBlocks; we keep the pretrained stage);
* one branch per attribute of :data:`models.phrases.ATTRIBUTES` (head, upper body, lower body,
  shoes, bag): two BasicBlocks to ``part_dim`` channels, max-pooled and projected to
  ``embed_dim`` by one shared linear layer (the *part features*);
* a segmentation layer shared by the branches (x2 transposed convolution, ReLU, 1x1 convolution
  to ``1 + 5`` classes). Branch ``k``'s output is trained with cross-entropy against the mask of
  attribute ``k`` alone: label ``k + 1`` where the human-parsing map says attribute ``k``, 0
  elsewhere (code: ``mask_loss``, weighted by the number of parts). This is what makes branch
  ``k`` look at attribute ``k``.

Text side: a Bi-LSTM; the global text feature is the max over words (projected), and each
attribute's feature is the max over the Bi-LSTM states of that attribute's phrases, found by the
rule-based chunker of :mod:`models.phrases`, projected by one shared linear layer. (ViTAA's code
runs the LSTM again over each phrase alone; pooling the caption's own states over the phrase's
words costs nothing more and keeps the phrase in context: our choice.)

Losses: ViTAA's instance loss (cosine classifier, scale 28) on the global features, its
alignment loss on the global features and, per attribute, on (part, phrase) pairs where the
image shows the attribute (its mask is not empty) and the caption has a phrase about it, and the
mask loss when the batch carries parsing maps (``batch["parsing"]``: ``[B, H, W]`` labels of
``ogor.synth.parsing.PARSING_LABELS``; the benchmark loads them because the class declares
``train_inputs = ("parsing",)`` and refuses to train without them). ViTAA samples extra
positives of the local alignment by k-reciprocal neighbours; we use the identity labels only.

Similarity: the cosine of the global features, as ViTAA's released evaluation ranks
(``evaluation/cuhkpedes.py``: ``rank(similarity)`` on the global features only; its ``re_rank``,
which adds the attribute cosines / 5 to the global one for the top 10, is never called).
``local_weight > 0`` adds ``local_weight * sum_k cos(phrase_k, part_k)`` over the attributes the
caption names, for every gallery image (0.2 is that unused re-ranking's weight), a variant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.resnet import BasicBlock

from models.distributed import gather
from models.encoders.resnet import ResNetEncoder
from models.encoders.vocabulary import NUM_SPECIAL, PAD_ID
from models.errors import ModelError
from models.features import ImageFeatures, TextFeatures
from models.losses import alignment_loss, normalized_identity_loss
from models.methods.two_tower import TwoTowerConfig, TwoTowerModel
from models.phrases import ATTRIBUTES, chunk

NUM_PARTS = len(ATTRIBUTES)


@dataclass
class ViTAAConfig(TwoTowerConfig):
    """ViTAA; see :class:`TwoTowerConfig` for the encoders.

    Attributes:
        part_dim: channels of each attribute branch (code: 256).
        local_weight: weight of the summed attribute cosines in the similarity (0: the global
            cosine only, as ViTAA's released evaluation; its unused re-ranking: 1/5).
        mask_weight, align_weight, local_align_weight, instance_weight: loss weights (code: 1).
        parsing_dir: the folder of human-parsing maps the run trained against (recorded by
            ``bench run``; the model itself never reads files).
    """

    family: str = "vitaa"
    embed_dim: int = 256
    part_dim: int = 256
    local_weight: float = 0.0
    mask_weight: float = 1.0
    align_weight: float = 1.0
    local_align_weight: float = 1.0
    instance_weight: float = 1.0
    parsing_dir: str | None = None

    pretrained_fields: ClassVar[tuple[str, ...]] = ("pretrained", "word_vectors", "bert")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.image_encoder != "resnet" or self.text_encoder != "bilstm":
            raise ModelError("vitaa is defined on a ResNet image encoder and a Bi-LSTM text "
                             f"encoder, got {self.image_encoder} + {self.text_encoder}")
        if int(self.part_dim) < 1:
            raise ModelError(f"part_dim must be positive, got {self.part_dim}")


def _stage_channels(stage: nn.Sequential) -> int:
    last = stage[-1]
    conv = getattr(last, "conv3", None) or last.conv2
    return int(conv.out_channels)


def _branch(inplanes: int, planes: int) -> nn.Sequential:
    """Two BasicBlocks from ``inplanes`` to ``planes`` channels, stride 1 (code: RES5_STRIDE 1)."""
    down = nn.Sequential(nn.Conv2d(inplanes, planes, 1, bias=False), nn.BatchNorm2d(planes))
    return nn.Sequential(BasicBlock(inplanes, planes, 1, down), BasicBlock(planes, planes))


class ViTAA(TwoTowerModel):
    """ViTAA (module docstring); ``forward`` returns {"instance", "align", "local_align"} and
    "mask" when the batch has parsing maps."""

    batch_gathers = ("image global + parts", "text global + parts", "person ids",
                     "part visibility")
    config: ViTAAConfig
    train_inputs: ClassVar[tuple[str, ...]] = ("parsing",)

    def __init__(self, config: ViTAAConfig) -> None:
        super().__init__(config)
        encoder = self.image_encoder
        assert isinstance(encoder, ResNetEncoder)
        inplanes, part_dim, dim = _stage_channels(encoder.net.layer3), int(config.part_dim), \
            int(config.embed_dim)
        self.part_branches = nn.ModuleList(_branch(inplanes, part_dim) for _ in ATTRIBUTES)
        self.segmenter = nn.Sequential(nn.ConvTranspose2d(part_dim, part_dim, 2, 2),
                                       nn.ReLU(inplace=True), nn.Conv2d(part_dim, NUM_PARTS + 1, 1))
        self.part_projection = nn.Linear(part_dim, dim)
        self.attribute_projection = nn.Linear(self.text_encoder.feature_dim, dim)
        self.instance_weight: nn.Parameter | None = None
        if config.num_classes is not None:
            self.instance_weight = nn.Parameter(torch.empty(dim, config.num_classes))
            nn.init.xavier_uniform_(self.instance_weight)

    # -- image side
    def _image_parts(self, pixels: Tensor) -> tuple[Tensor, Tensor, list[Tensor]]:
        """(global ``[B, D]``, part features ``[B, 5, D]``, each branch's map)."""
        net = self.image_encoder.net
        x = net.maxpool(net.relu(net.bn1(net.conv1(pixels))))
        stage3 = net.layer3(net.layer2(net.layer1(x)))
        global_feature = self.image_projection(net.layer4(stage3).mean(dim=(2, 3)))
        maps = [branch(stage3) for branch in self.part_branches]
        parts = torch.stack([self.part_projection(m.amax(dim=(2, 3))) for m in maps], dim=1)
        return global_feature, parts, maps

    def encode_images(self, pixels: Tensor) -> ImageFeatures:
        global_feature, parts, _ = self._image_parts(pixels)
        mask = torch.ones(parts.shape[:2], dtype=torch.bool, device=parts.device)
        return ImageFeatures(global_feature, parts, mask, mask.float() / NUM_PARTS)

    # -- text side
    def phrase_masks(self, tokens: Tensor) -> Tensor:
        """``[B, L, 5]`` bool: word ``l`` belongs to a phrase about attribute ``k``, found by
        :func:`models.phrases.chunk` on the caption's words (read back from the ids; a word
        outside the vocabulary is ``<unk>``, which the chunker takes for a modifier)."""
        words_of = self.text_encoder.vocabulary.words
        out = torch.zeros(*tokens.shape, NUM_PARTS, dtype=torch.bool)
        for b, ids in enumerate(tokens.tolist()):
            words = [words_of[i - NUM_SPECIAL] if i >= NUM_SPECIAL else "<unk>"
                     for i in ids if i != PAD_ID]
            for phrase in chunk(words):
                out[b, phrase.start:phrase.end, ATTRIBUTES.index(phrase.attribute)] = True
        return out.to(tokens.device)

    def encode_texts(self, tokens: Tensor) -> TextFeatures:
        raw = self.text_encoder(tokens)
        global_feature = self.text_projection(raw.pooled)
        phrases = self.phrase_masks(tokens) & raw.mask[..., None]  # [B, L, 5]
        states = raw.tokens[:, :, None, :].masked_fill(~phrases[..., None], float("-inf"))
        present = phrases.any(dim=1)  # [B, 5]
        pooled = states.amax(dim=1).masked_fill(~present[..., None], 0.0)  # [B, 5, C]
        attributes = self.attribute_projection(pooled)
        weights = present.float() / present.float().sum(dim=1, keepdim=True).clamp_min(1)
        return TextFeatures(global_feature, attributes, present, weights)

    # -- retrieval
    def pair_similarity(self, text: TextFeatures, image: ImageFeatures) -> Tensor:
        global_sim = F.normalize(text.pooled.float(), dim=-1) @ F.normalize(
            image.pooled.float(), dim=-1).t()
        if text.num_tokens == 0 or float(self.config.local_weight) == 0:
            return global_sim
        t = F.normalize(text.tokens.float(), dim=-1) * text.mask[..., None]
        v = F.normalize(image.tokens.float(), dim=-1)
        local = torch.einsum("qkd,gkd->qg", t, v)
        return global_sim + float(self.config.local_weight) * local

    # -- training
    def mask_losses(self, maps: list[Tensor], parsing: Tensor) -> Tensor:
        """``[5]``: branch ``k``'s segmentation against attribute ``k``'s mask alone (label
        ``k + 1`` there, background elsewhere), cross-entropy over the 6 classes (the mask
        loss is their sum: ViTAA's ``num_parts * mean``)."""
        losses = []
        for k, feature_map in enumerate(maps):
            logits = self.segmenter(feature_map)
            labels = F.interpolate(parsing[:, None].float(), size=logits.shape[-2:],
                                   mode="nearest")[:, 0].long()
            target = torch.where(labels == k + 1, labels, torch.zeros_like(labels))
            losses.append(F.cross_entropy(logits, target))
        return torch.stack(losses)

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        config, pids = self.config, batch["pids"]
        image_global, parts, maps = self._image_parts(batch["images"])
        text = self.encode_texts(batch["tokens"])
        # the alignments compare all pairs of the (global) batch: gathered; the instance and
        # mask losses are per sample: local
        every_text, every_pid = text.gathered(), gather(pids)
        every_image, every_part = gather(image_global), gather(parts)
        losses = {"align": config.align_weight * alignment_loss(every_image, every_text.pooled,
                                                                every_pid)}
        if self.instance_weight is not None:
            losses["instance"] = config.instance_weight * normalized_identity_loss(
                image_global, text.pooled, pids, self.instance_weight)
        parsing = batch.get("parsing")
        if parsing is not None:
            visible = torch.stack([(parsing == k + 1).flatten(1).any(dim=1)
                                   for k in range(NUM_PARTS)], dim=1)  # [B, 5]
        else:
            visible = torch.ones_like(text.mask)
        visible = gather(visible)
        local = parts.new_zeros(())
        for k in range(NUM_PARTS):  # the same gathered masks on every process
            valid = visible[:, k, None] & every_text.mask[None, :, k]
            if valid.any():
                local = local + alignment_loss(every_part[:, k], every_text.tokens[:, k],
                                               every_pid, valid=valid)
        losses["local_align"] = config.local_align_weight * local / NUM_PARTS
        if parsing is not None:
            losses["mask"] = config.mask_weight * self.mask_losses(maps, parsing).sum()
        return losses
