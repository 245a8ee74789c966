"""TBPS-CLIP (Cao et al., AAAI 2024, "An Empirical Study of CLIP for Text-based Person Search").

A plain CLIP fine-tuned with the paper's kept tricks; retrieval is the cosine of the global
features. What the paper lists and this module does (defaults = the release's
``config/config.yaml``):

* Image augmentation: every training image gets two operations drawn (with replacement) from
  {colour jitter 0.1, rotation +-15 deg, resized crop of 90-100% area, grayscale, horizontal flip,
  random erasing of 10-20%} (the paper's "removal + alteration" pool), applied to the [0, 1]
  image before normalisation.
* Multi-view supervision (MVS): a second view drawn the same way is also aligned with the
  caption; the two N-ITC losses are averaged.
* Image self-supervision (SS): SimCLR between two strongly augmented views (resized crop of
  20-100%, colour jitter 0.4/0.4/0.4/0.1 with p 0.8, grayscale p 0.2, Gaussian blur p 0.5, flip)
  through a 512-128-512 MLP, temperature 0.1, weight 0.4.
* Text augmentation: EDA random deletion (each word piece dropped with probability 0.05).
* Losses (:mod:`models.losses.tbps`): N-ITC (soft-label ratio 0.5), R-ITC (eps 0.01, weight 1),
  C-ITC (in-modal 0.25, cross-modal 0.25, weight 0.1). MLM and ID are off in the release's
  configuration and not built here.
* The patch embedding (``conv1``) is frozen, as the release's visual tower does.
* Images at 224x224 with ImageNet mean/std (the release's normalisation), not CLIP's.

Paper and code disagree, and what this module does:

* Back-translation (the release replaces a caption by a pre-computed back-translation with
  probability 0.1) needs translated captions that no dataset ships: left out.
* The soft targets of N-ITC: the release re-encodes the batch without gradients (differing from
  the trained pass only by the text tower's dropout, 0.05); open_clip's text tower has no
  dropout, so the same features, detached, are used. The release also ramps the soft-label ratio
  from 0 over the first epoch; it is constant here (the model does not see the step).
* Random deletion works on BPE pieces of the tokenised caption, not on whitespace words.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.transforms import v2

from models.base import ModelConfig
from models.distributed import gather
from models.errors import ModelError
from models.losses.tbps import citc_loss, nitc_loss, ritc_loss, simclr_loss
from models.methods.clip_model import GlobalRetrievalModel
from models.methods.irra import MASK_TOKEN_ID

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class TBPSCLIPConfig(ModelConfig):
    """TBPS-CLIP.

    Attributes:
        image_mean, image_std: input normalisation (ImageNet's, as the release); ``None`` keeps
            the backbone's (CLIP's).
        augment: draw the two-operation image augmentation for the main view (and MVS).
        mvs: multi-view supervision (a second augmented view in N-ITC).
        softlabel_ratio: N-ITC's ``alpha``.
        ss_weight: weight of the SimCLR loss (0 disables SS); ``simclr_hidden``: MLP width;
            ``simclr_temperature``: its temperature.
        ritc_weight, ritc_eps: R-ITC.
        citc_weight, citc_in_modal, citc_cross_modal: C-ITC.
        deletion_prob: EDA random deletion of word pieces (0 disables it).
        freeze_patch_embed: keep ``conv1`` fixed.
    """

    family: str = "tbps-clip"
    image_mean: tuple[float, float, float] | None = IMAGENET_MEAN
    image_std: tuple[float, float, float] | None = IMAGENET_STD
    augment: bool = True
    mvs: bool = True
    softlabel_ratio: float = 0.5
    ss_weight: float = 0.4
    simclr_hidden: int = 128
    simclr_temperature: float = 0.1
    ritc_weight: float = 1.0
    ritc_eps: float = 1e-2
    citc_weight: float = 0.1
    citc_in_modal: float = 0.25
    citc_cross_modal: float = 0.25
    deletion_prob: float = 0.05
    freeze_patch_embed: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("image_mean", "image_std"):
            value = getattr(self, name)
            if value is not None:
                value = tuple(float(v) for v in value)
                if len(value) != 3:
                    raise ModelError(f"{name} must have 3 values, got {value}")
                setattr(self, name, value)
        if not 0.0 <= float(self.softlabel_ratio) <= 1.0:
            raise ModelError(f"softlabel_ratio must be in [0, 1], got {self.softlabel_ratio}")
        if not 0.0 <= float(self.deletion_prob) < 1.0:
            raise ModelError(f"deletion_prob must be in [0, 1), got {self.deletion_prob}")
        if not float(self.simclr_temperature) > 0:
            raise ModelError(f"simclr_temperature must be positive, got "
                             f"{self.simclr_temperature}")


def _blur_kernel(size: tuple[int, int]) -> int:
    side = max(3, min(size) // 10)
    return side if side % 2 else side + 1


def weak_operations(size: tuple[int, int]) -> list[nn.Module]:
    """The release's pool of six operations, two of which each training view gets."""
    return [
        v2.ColorJitter(0.1, 0.1, 0.1, 0.0),
        v2.RandomRotation(15),
        v2.RandomResizedCrop(size, scale=(0.9, 1.0), antialias=True),
        v2.RandomGrayscale(),
        v2.RandomHorizontalFlip(),
        v2.RandomErasing(scale=(0.10, 0.20)),
    ]


def strong_augmentation(size: tuple[int, int]) -> nn.Module:
    """SimCLR's augmentation as the release configures it for SS."""
    return v2.Compose([
        v2.RandomResizedCrop(size, scale=(0.2, 1.0), antialias=True),
        v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
        v2.RandomGrayscale(p=0.2),
        v2.RandomApply([v2.GaussianBlur(_blur_kernel(size), sigma=(0.1, 2.0))], p=0.5),
        v2.RandomHorizontalFlip(),
    ])


def random_deletion(tokens: Tensor, prob: float, generator: torch.Generator | None = None,
                    ) -> Tensor:
    """Drop each word piece with probability ``prob`` (EDA); a caption keeps >= 1 piece."""
    words = (tokens > 0) & (tokens < MASK_TOKEN_ID)
    drop = words & (torch.rand(tokens.shape, generator=generator, device=tokens.device) < prob)
    rows = []
    for row, row_drop, row_words in zip(tokens, drop, words, strict=True):
        if int(row_words.sum()) - int(row_drop.sum()) < 1:
            row_drop = torch.zeros_like(row_drop)
        kept = row[~row_drop]
        rows.append(F.pad(kept, (0, row.numel() - kept.numel())))
    return torch.stack(rows)


class TBPSCLIP(GlobalRetrievalModel):
    """TBPS-CLIP; ``forward`` returns {"nitc", "ritc", "citc", "ss"} (those switched on)."""

    batch_gathers = ("image global (both views)", "text global", "person ids",
                     "SimCLR projections")

    config: TBPSCLIPConfig

    def __init__(self, config: TBPSCLIPConfig) -> None:
        super().__init__(config)
        if config.image_mean is not None:
            self.image_mean = tuple(config.image_mean)  # type: ignore[assignment]
        if config.image_std is not None:
            self.image_std = tuple(config.image_std)  # type: ignore[assignment]
        if config.freeze_patch_embed:
            self.backbone.clip.visual.conv1.requires_grad_(False)
        width = self.backbone.embed_dim
        self.simclr_mlp: nn.Sequential | None = None
        if config.ss_weight > 0:
            self.simclr_mlp = nn.Sequential(nn.Linear(width, int(config.simclr_hidden)),
                                            nn.ReLU(inplace=True),
                                            nn.Linear(int(config.simclr_hidden), width))
        size = tuple(self.image_size)
        self._weak = weak_operations(size)  # type: ignore[arg-type]
        self._strong = strong_augmentation(size)  # type: ignore[arg-type]

    # ----------------------------------------------------------------------------- views
    def _views(self, pixels: Tensor, make) -> Tensor:
        """Un-normalise, apply ``make(image)`` to every image on its own, normalise again."""
        mean = pixels.new_tensor(self.image_mean).view(1, 3, 1, 1)
        std = pixels.new_tensor(self.image_std).view(1, 3, 1, 1)
        raw = (pixels * std + mean).clamp(0.0, 1.0)
        out = torch.stack([make(image) for image in raw])
        return (out - mean) / std

    def _weak_view(self, image: Tensor) -> Tensor:
        picks = torch.randint(0, len(self._weak), (2,)).tolist()
        for index in picks:
            image = self._weak[index](image)
        return image

    def weak_view(self, pixels: Tensor) -> Tensor:
        """A batch of two-operation views (the release's ``Choose``)."""
        return self._views(pixels, self._weak_view)

    def strong_view(self, pixels: Tensor) -> Tensor:
        """A batch of SimCLR views."""
        return self._views(pixels, self._strong)

    def _image_global(self, pixels: Tensor) -> Tensor:
        return self.backbone.image_tokens(pixels)[0]

    # ----------------------------------------------------------------------------- losses
    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        config = self.config
        pixels, tokens, pids = batch["images"], batch["tokens"], batch["pids"]
        if self.training and config.deletion_prob > 0:
            tokens = random_deletion(tokens, config.deletion_prob)
        main = self.weak_view(pixels) if self.training and config.augment else pixels
        # the global batch under DDP (models.distributed), as its release's 4 x 80 gathered
        image = gather(F.normalize(self._image_global(main).float(), dim=-1))
        text = gather(F.normalize(self.backbone.text_tokens(tokens)[3].float(), dim=-1))
        pids = gather(pids)
        scale = self.logit_scale()
        nitc = nitc_loss(image, text, pids, scale, config.softlabel_ratio)
        if config.mvs:
            second = self.weak_view(pixels) if self.training else pixels
            image_2 = gather(F.normalize(self._image_global(second).float(), dim=-1))
            nitc = (nitc + nitc_loss(image_2, text, pids, scale, config.softlabel_ratio)) / 2
        losses = {"nitc": nitc}
        if config.ritc_weight > 0:
            losses["ritc"] = config.ritc_weight * ritc_loss(image, text, pids, scale,
                                                            config.ritc_eps)
        if config.citc_weight > 0:
            losses["citc"] = config.citc_weight * citc_loss(
                image, text, scale, config.citc_in_modal, config.citc_cross_modal)
        if self.simclr_mlp is not None:
            view_a = gather(self.simclr_mlp(self._image_global(self.strong_view(pixels))))
            view_b = gather(self.simclr_mlp(self._image_global(self.strong_view(pixels))))
            losses["ss"] = config.ss_weight * simclr_loss(view_a, view_b,
                                                          config.simclr_temperature)
        return losses

