"""What a run is: its training configuration and what to train.

:class:`TrainConfig` (with the vocabulary of its options) and :class:`RunSpec` sit in
records/ because every stage reads them: training runs them, evaluation and reporting read
them back from ``config.json``, the dry run prints them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.data.samplers import PERSON_CAPTIONS, SAMPLERS
from benchmark.data.sets import Augment
from benchmark.records.protocol import ICFG_SPLITS
from toreid.errors import ToreidError

OPTIMIZERS = ("adam", "adamw", "sgd")
SELECT_ON = ("val", "test")
AMP_MODES = ("off", "bf16", "fp16")
SELECT_METRICS = ("R@1", "Rsum", "mAP")
OPTIMIZER_RULES = ("groups", "irra")
SCHEDULE_UNITS = ("step", "epoch")
#: ``bench run --lr-scale``: how the lr follows a global batch other than the preset's.
LR_SCALES = ("none", "linear", "sqrt")


@dataclass
class TrainConfig:
    """Every knob of a training run (``config.json`` stores the resolved values).

    Attributes:
        epochs: training epochs.
        batch_size: the global batch: samples per step over all processes (the paper's
            number); each of W processes takes batch_size / W, and the models that declare
            ``batch_gathers`` compute their batch losses over the whole global batch.
        lr: learning rate of the encoder group, the one the optimiser uses (after
            ``lr_scale``).
        lr_scale: ``none`` (the preset's lr whatever the global batch: no silent scaling),
            ``linear`` or ``sqrt``: the preset's lr times ``batch_size / lr_reference_batch``
            or its square root (``bench run --lr-scale``; applied when the run is resolved,
            :func:`benchmark.pipeline.runner.make_train_config`).
        lr_reference_batch: the global batch the preset's lr was set for (the preset's
            ``batch_size``); recorded with every scaled run, ``None`` without scaling.
        lr_new_mult: multiplier for the ``new`` group (MGCC: x10, 1e-5 -> 1e-4; IRRA: x5).
        bias_lr_mult: multiplier for biases (IRRA: x2).
        weight_decay: weight decay of weights.
        bias_weight_decay: weight decay of biases and norms (IRRA: 0); ``None`` = weight_decay.
        optimizer: ``adam``, ``adamw`` or ``sgd`` (with ``momentum``, Nesterov; Dual-Path).
        momentum: SGD momentum (ignored by Adam).
        adam_eps: Adam epsilon (IRRA: 1e-3).
        warmup_epochs: linear warm-up from ``warmup_factor * lr`` (IRRA: 5 epochs, 0.1).
        warmup_factor: the warm-up's starting fraction of the lr.
        lr_milestones: epochs after which the lr is multiplied by ``lr_gamma`` (a step schedule
            instead of the cosine; Dual-Path); empty: cosine.
        lr_gamma: the step schedule's factor.
        grad_clip: max global grad norm; ``None`` disables clipping.
        amp: ``off``, ``bf16`` or ``fp16`` (CUDA only; fp16 uses a GradScaler).
        seed: the run's seed (model init, order, augmentation).
        eval_every: evaluate on val every N epochs (and always after the last one).
        select_metric: the val metric that picks ``best.pt``.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        workers: DataLoader worker processes.
        eval_batch_size: images per encoding batch at evaluation.
        query_chunk: queries per similarity block at evaluation (bounds memory).
        hflip, pad_crop, random_erasing: the augmentation (see
        :class:`benchmark.data.sets.Augment`). i2t: also report image-to-text metrics on test.
        compile_similarity: ``torch.compile`` the model's pair similarity for evaluation on
            CUDA (3x faster MGCC evaluation on an H100; ignored on the CPU).
        optimizer_rules: ``groups`` (the model's encoder/new groups, biases = 1-d tensors) or
            ``irra`` (IRRA's name rules, :mod:`benchmark.training.optim`).
        schedule_unit: ``step`` (warm-up and cosine per step) or ``epoch`` (the lr changes once
            per epoch, as IRRA's scheduler: epoch e of E uses the factor of ``e - 1``).
        select_on: ``val`` (default: never test) or ``test`` (the published protocol of the
            MGCC, IRRA, RDE and TBPS-CLIP releases; recorded and marked in every table).
        icfg_split: ``irra`` (all 19,848 ICFG-PEDES test images are test) or ``mgcc-code``
            (the MGCC release: the first 10,000 test entries are test, the rest val).
        sampler: ``random`` (a shuffled order) or ``identity`` (every batch P persons x
            ``ims_per_id`` samples, :class:`benchmark.data.samplers.IdentityBatchSampler`; ViTAA).
        ims_per_id: K, samples per person in an identity-balanced batch (ViTAA: 4).
        person_caption: ``own`` (each image with its own caption) or ``same-person`` (with a
            random caption of its person, drawn per sample and epoch; Dual-Path).
        weak_caption: also give each sample a caption of another image of its person (the
            batch's ``weak_tokens``; SSAN's weak positive).
    """

    epochs: int = 60
    batch_size: int = 128
    lr: float = 1e-5
    lr_scale: str = "none"
    lr_reference_batch: int | None = None
    lr_new_mult: float = 10.0
    bias_lr_mult: float = 1.0
    weight_decay: float = 0.0
    bias_weight_decay: float | None = None
    optimizer: str = "adam"
    momentum: float = 0.9
    adam_eps: float = 1e-8
    warmup_epochs: int = 0
    warmup_factor: float = 0.1
    lr_milestones: list[int] = field(default_factory=list)
    lr_gamma: float = 0.1
    grad_clip: float | None = None
    amp: str = "off"
    seed: int = 1
    eval_every: int = 1
    select_metric: str = "R@1"
    device: str = "auto"
    workers: int = 0
    eval_batch_size: int = 128
    query_chunk: int = 512
    hflip: float = 0.5
    pad_crop: int = 0
    random_erasing: float = 0.0
    i2t: bool = False
    compile_similarity: bool = False
    optimizer_rules: str = "groups"
    schedule_unit: str = "step"
    select_on: str = "val"
    icfg_split: str = "irra"
    sampler: str = "random"
    ims_per_id: int = 4
    person_caption: str = "own"
    weak_caption: bool = False

    def validate(self) -> None:
        """Refuse impossible values with a one-line error naming the option."""
        checks = [
            (self.epochs >= 1, "epochs", "must be >= 1"),
            (self.batch_size >= 1, "batch_size", "must be >= 1"),
            (self.lr > 0, "lr", "must be > 0"),
            (self.lr_scale in LR_SCALES, "lr_scale", f"must be one of {', '.join(LR_SCALES)}"),
            (self.lr_scale == "none" or (self.lr_reference_batch or 0) >= 1,
             "lr_reference_batch", "must be the preset's global batch (>= 1) with lr_scale"),
            (self.optimizer in OPTIMIZERS, "optimizer", f"must be one of {', '.join(OPTIMIZERS)}"),
            (self.amp in AMP_MODES, "amp", f"must be one of {', '.join(AMP_MODES)}"),
            (self.select_metric in SELECT_METRICS, "select_metric",
             f"must be one of {', '.join(SELECT_METRICS)}"),
            (0 <= self.warmup_epochs <= self.epochs, "warmup_epochs",
             "must be between 0 and epochs"),
            (self.eval_every >= 1, "eval_every", "must be >= 1"),
            (self.optimizer_rules in OPTIMIZER_RULES, "optimizer_rules",
             f"must be one of {', '.join(OPTIMIZER_RULES)}"),
            (self.schedule_unit in SCHEDULE_UNITS, "schedule_unit",
             f"must be one of {', '.join(SCHEDULE_UNITS)}"),
            (self.select_on in SELECT_ON, "select_on", f"must be one of {', '.join(SELECT_ON)}"),
            (self.icfg_split in ICFG_SPLITS, "icfg_split",
             f"must be one of {', '.join(ICFG_SPLITS)}"),
            (self.sampler in SAMPLERS, "sampler", f"must be one of {', '.join(SAMPLERS)}"),
            (self.ims_per_id >= 1, "ims_per_id", "must be >= 1"),
            (self.sampler != "identity" or self.batch_size % self.ims_per_id == 0, "batch_size",
             f"must be a multiple of ims_per_id={self.ims_per_id} with the identity sampler"),
            (self.person_caption in PERSON_CAPTIONS, "person_caption",
             f"must be one of {', '.join(PERSON_CAPTIONS)}"),
        ]
        for ok, name, message in checks:
            if not ok:
                raise ToreidError(f"training option '{name}': {message} (got "
                                  f"{getattr(self, name)!r})")

    @property
    def augment(self) -> Augment:
        return Augment(hflip=self.hflip, pad_crop=self.pad_crop, erase=self.random_erasing)


@dataclass
class RunSpec:
    """What to train: a model (name + build options), a dataset (label + root), a seed."""

    model: str
    dataset: str
    dataset_root: Path
    train: TrainConfig
    model_options: dict[str, Any] = field(default_factory=dict)
    preset: str = "custom"


def model_options_for(model_name: str, dataset_format: str, options: dict[str, Any]) -> dict:
    """The model's build options for a dataset; explicit options win.

    MGCC's token-selection ratios depend on the dataset (paper: CUHK-PEDES (0.3, 0.4),
    ICFG-PEDES (0.4, 0.5), RSTPReid (0.5, 0.5)); the table lives in the models package
    (``models.methods.mgcc.MGCC_PAPER_RATIOS``, keyed by dataset format) and applies to
    ``mgcc``, its architecture variants and ``baseline1`` / ``baseline2`` (MGCC's model on
    other backbones, Table 2's backbone ablation): ``models.registry.MGCC_DATASET_RATIO_MODELS``;
    not to ablation variants, which carry their own ratios.
    """
    from models.registry import MGCC_DATASET_RATIO_MODELS

    resolved = dict(options)
    if model_name in MGCC_DATASET_RATIO_MODELS:
        from models.methods.mgcc import MGCC_PAPER_RATIOS

        ratios = MGCC_PAPER_RATIOS.get(dataset_format)
        if ratios is not None:
            resolved.setdefault("rho_image", ratios[0])
            resolved.setdefault("rho_text", ratios[1])
    return resolved
