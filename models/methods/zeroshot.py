"""Zero-shot CLIP: the pretrained model evaluated as it is, the floor every fine-tuned row of the
table should clear.

It is the CLIP baseline (cosine of the global features) under its own name and family, marked
``needs_training = False``: ``bench run --models clip-zeroshot`` writes a run folder with the
weights it was built from and evaluates them, without a training epoch. Its ``forward`` is
CLIP's own pretraining loss (InfoNCE in both directions), so the model can still be fine-tuned
through the library, and it goes through the same contract tests as every model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from models.methods.clip import CLIPBaseline, CLIPConfig


@dataclass
class ZeroShotCLIPConfig(CLIPConfig):
    """Zero-shot CLIP (the CLIP baseline's fields)."""

    family: str = "clip-zeroshot"


class ZeroShotCLIP(CLIPBaseline):
    """CLIP's pretrained encoders; similarity is the cosine of the global features."""

    config: ZeroShotCLIPConfig
    needs_training: ClassVar[bool] = False
