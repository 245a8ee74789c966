"""TBPS: cross-modal momentum contrastive learning (Han et al., "Text-Based Person Search with
Limited Data", BMVC 2021; public code BrandonHanx/TextReID), the MGCC paper's "TBPS (S)
RN50-BERT" row of Table 2.

Model: an image encoder and a text encoder (MGCC's Table 2: ResNet-50 + BERT), each projected
to a 256-d joint space by one linear layer; retrieval ranks by the cosine of the two global
features. Training adds, for each tower, a *momentum* copy of the encoder (``key`` encoder, no
gradient) updated before every step as ``k <- m k + (1 - m) q`` (``m = momentum``), and two
queues of the last ``queue_size`` L2-normalised keys (text keys, image keys) with their person
ids. The objective is the public code's:

* ``infonce``: :func:`models.losses.queue_info_nce` in both directions (image query vs its
  caption's momentum key and the text queue; text query vs its image's key and the image
  queue), same-person queue entries excluded, ``T = 0.07``;
* ``instance``: each modality's (unnormalised) joint feature classified into the training ids
  by one shared classifier with L2-normalised columns and no bias, label smoothing 0.1;
* ``align``: :func:`models.losses.global_align_loss` over the batch.

After the losses the batch's keys replace the oldest queue entries (a ring buffer). Queues,
pointer and the key encoders are buffers / parameters of the model, so a checkpoint resumes the
contrast exactly; the key encoders are not trained (``requires_grad`` False) and are never used
at test time.

Choices where the sources differ (see ``docs/fidelity.md``): the key features go through the
trained projection (the public code's ``MOCO.FC: False`` configuration shares the embedding
layer between query and key instead of keeping a momentum copy of it); the public code's best
models use CLIP's RN50 and a Bi-GRU over CLIP's vocabulary, while MGCC's table names RN50-BERT,
which is what ``tbps`` builds (ImageNet ResNet-50 + bert-base-uncased); the last ResNet stage
keeps torchvision's stride 2 (the code sets it to 1).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.distributed import gather
from models.errors import ModelError
from models.losses import global_align_loss, queue_info_nce
from models.methods.two_tower import GlobalTwoTowerModel, TwoTowerConfig


@dataclass
class TBPSConfig(TwoTowerConfig):
    """TBPS; see :class:`TwoTowerConfig` for the encoders.

    Attributes:
        momentum: the key encoders' rate ``m`` (public code default 0.999).
        queue_size: keys kept per modality (public code: 2048 for CUHK-PEDES).
        temperature: the contrast's ``T`` (0.07, fixed in the code).
        label_smoothing: of the instance loss (the code's ``EPSILON: 0.1``).
        infonce_weight, instance_weight, align_weight: the three losses' weights (the code
            adds them unweighted).
    """

    family: str = "tbps"
    image_encoder: str = "resnet"
    text_encoder: str = "bert"
    embed_dim: int = 256
    momentum: float = 0.999
    queue_size: int = 2048
    temperature: float = 0.07
    label_smoothing: float = 0.1
    infonce_weight: float = 1.0
    instance_weight: float = 1.0
    align_weight: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= float(self.momentum) < 1.0:
            raise ModelError(f"momentum must be in [0, 1), got {self.momentum}")
        if int(self.queue_size) < 1:
            raise ModelError(f"queue_size must be positive, got {self.queue_size}")
        if not float(self.temperature) > 0:
            raise ModelError(f"temperature must be positive, got {self.temperature}")
        if not 0.0 <= float(self.label_smoothing) < 1.0:
            raise ModelError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        for name in ("infonce_weight", "instance_weight", "align_weight"):
            if float(getattr(self, name)) < 0:
                raise ModelError(f"{name} must be >= 0, got {getattr(self, name)}")


class TBPS(GlobalTwoTowerModel):
    """TBPS; ``forward`` returns {"infonce", "align"} (+ "instance" with ``num_classes``)."""

    batch_gathers = ("image global", "text global", "person ids",
                     "momentum keys (every process enqueues the global batch)")
    config: TBPSConfig

    def __init__(self, config: TBPSConfig) -> None:
        super().__init__(config)
        self.image_key_encoder = _frozen_copy(self.image_encoder)
        self.text_key_encoder = _frozen_copy(self.text_encoder)
        size, dim = int(config.queue_size), int(config.embed_dim)
        self.register_buffer("image_queue", F.normalize(torch.rand(size, dim), dim=1))
        self.register_buffer("text_queue", F.normalize(torch.rand(size, dim), dim=1))
        self.register_buffer("queue_pids", torch.full((size,), -1, dtype=torch.long))
        self.register_buffer("queue_pointer", torch.zeros((), dtype=torch.long))
        self.classifier: nn.Parameter | None = None
        if config.num_classes is not None and config.instance_weight > 0:
            self.classifier = nn.Parameter(torch.empty(dim, int(config.num_classes)))
            nn.init.xavier_uniform_(self.classifier)

    @torch.no_grad()
    def momentum_update(self) -> None:
        """``k <- m k + (1 - m) q`` for every parameter of both key encoders."""
        m = float(self.config.momentum)
        for query, key in ((self.image_encoder, self.image_key_encoder),
                           (self.text_encoder, self.text_key_encoder)):
            for q, k in zip(query.parameters(), key.parameters(), strict=True):
                k.mul_(m).add_(q.detach(), alpha=1.0 - m)

    @torch.no_grad()
    def keys(self, pixels: Tensor, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """L2-normalised image and text keys of the momentum encoders."""
        image = self.image_projection(self.image_key_encoder(pixels).pooled)
        text = self.text_projection(self.text_key_encoder(tokens).pooled)
        return F.normalize(image.float(), dim=1), F.normalize(text.float(), dim=1)

    @torch.no_grad()
    def enqueue(self, image_keys: Tensor, text_keys: Tensor, pids: Tensor) -> None:
        """Replace the oldest entries with this batch's keys (wrapping round the ring)."""
        size = self.image_queue.shape[0]
        batch = min(len(pids), size)  # a batch larger than the queue keeps its last keys
        slots = (int(self.queue_pointer) + torch.arange(batch, device=pids.device)) % size
        self.image_queue[slots] = image_keys[-batch:].to(self.image_queue.dtype)
        self.text_queue[slots] = text_keys[-batch:].to(self.text_queue.dtype)
        self.queue_pids[slots] = pids[-batch:]
        self.queue_pointer.fill_((int(self.queue_pointer) + batch) % size)

    def forward(self, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        pixels, tokens, pids = batch["images"], batch["tokens"], batch["pids"]
        image = self.encode_images(pixels).pooled
        text = self.encode_texts(tokens).pooled
        config = self.config
        if self.training:
            self.momentum_update()
        image_keys, text_keys = self.keys(pixels, tokens)
        image_q, text_q = F.normalize(image.float(), dim=1), F.normalize(text.float(), dim=1)
        # copies: the graph must not see the in-place enqueue below
        text_queue, image_queue = self.text_queue.clone(), self.image_queue.clone()
        queue_pids = self.queue_pids.clone()
        infonce = (queue_info_nce(image_q, text_keys, text_queue, queue_pids, pids,
                                  config.temperature)
                   + queue_info_nce(text_q, image_keys, image_queue, queue_pids, pids,
                                    config.temperature))
        # each query meets its own key and the queue: per sample, local; the alignment
        # compares all pairs of the (global) batch: gathered
        losses = {"infonce": config.infonce_weight * infonce,
                  "align": config.align_weight * global_align_loss(gather(image), gather(text),
                                                                   gather(pids))}
        if self.classifier is not None:
            weight = F.normalize(self.classifier.float(), dim=0)
            instance = sum(F.cross_entropy(x.float() @ weight, pids,
                                           label_smoothing=config.label_smoothing)
                           for x in (image, text))
            losses["instance"] = config.instance_weight * instance
        if self.training:  # every process enqueues the global batch's keys: one queue
            self.enqueue(gather(image_keys), gather(text_keys), gather(pids))
        return losses


def _frozen_copy(module: nn.Module) -> nn.Module:
    """A copy of ``module`` that starts equal to it and receives no gradient."""
    key = copy.deepcopy(module)
    for param in key.parameters():
        param.requires_grad_(False)
    return key
