"""ALBEF-family weight files: ALBEF's pre-trained checkpoint (RaSa's starting point) and the
key names of RaSa's and APTM's released fine-tuned checkpoints.

Our RaSa keeps the release's module names, so its keys are the release's with three kinds of
exception: ``*.embeddings.position_ids`` (a constant buffer older ``transformers`` saved),
``*.cls.predictions.decoder.{weight,bias}`` (tied to the word embeddings and to
``cls.predictions.bias`` in ``BertForMaskedLM``: the same tensors twice) and our
``vocab_bytes`` (the WordPiece vocabulary, which the releases keep in a separate file).
APTM's Swin is Microsoft's implementation; ours is timm's, whose only naming difference is
where the patch merging sits: Microsoft's ``layers.i.downsample`` (end of stage i) is timm's
``layers.{i+1}.downsample`` (start of the next stage), same tensors; its constant buffers
(``relative_position_index``, ``attn_mask``) are recomputed, not read.

Files are read weights-only (``torch.load(weights_only=True)``): one that would need arbitrary
unpickling is refused before any of its code runs.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.errors import ModelError

ALBEF_HINT = ("RaSa starts from ALBEF's pre-trained checkpoint: where a network exists, download "
              "https://storage.googleapis.com/sfr-pcl-data-research/ALBEF/ALBEF.pth (RaSa's "
              "README) and pass its path with --pretrained FILE")

_TIED = re.compile(r"(^|\.)cls\.predictions\.decoder\.(weight|bias)$")
_SWIN_BUFFERS = re.compile(r"\.(relative_position_index|attn_mask)$")
_MS_DOWNSAMPLE = re.compile(r"^vision_encoder\.layers\.(\d+)\.downsample\.")


def read_weights(path: str | Path) -> dict[str, Tensor]:
    """A checkpoint's state dict (``{"model": ...}`` or bare), read weights-only."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelError(f"{path}: weights file not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ModelError(f"{path}: refused: the file needs arbitrary unpickling, which could "
                         "run code; only weights-only checkpoints are read") from None
    except (RuntimeError, EOFError, ValueError, OSError) as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ModelError(f"{path}: not a readable checkpoint ({first})") from None
    state = payload.get("model", payload) if isinstance(payload, dict) else None
    if not isinstance(state, dict) or not state or not all(
            isinstance(k, str) and torch.is_tensor(v) for k, v in state.items()):
        raise ModelError(f"{path}: field 'model': not a state dict of tensors")
    return dict(state)


def release_key_to_ours(key: str) -> str | None:
    """A RaSa / APTM / ALBEF release key -> ours (None: a tied or constant entry, skipped)."""
    if key.endswith("embeddings.position_ids") or _TIED.search(key) or _SWIN_BUFFERS.search(key):
        return None
    found = _MS_DOWNSAMPLE.match(key)
    if found:
        stage = int(found.group(1)) + 1
        return f"vision_encoder.layers.{stage}.downsample." + key[found.end():]
    return key


def our_key_to_release(key: str) -> str:
    """The inverse of :func:`release_key_to_ours` (for messages and tests)."""
    found = re.match(r"^vision_encoder\.layers\.(\d+)\.downsample\.", key)
    if found:
        return f"vision_encoder.layers.{int(found.group(1)) - 1}.downsample." + key[found.end():]
    return key


def resize_pos_embed(pos_embed: Tensor, grid: tuple[int, int]) -> Tensor:
    """A square ``[1, 1 + n*n, D]`` ViT position embedding -> ``grid`` (CLS kept), bicubic
    without antialiasing, as ALBEF's and RaSa's ``interpolate_pos_embed``."""
    cls, tokens = pos_embed[:, :1], pos_embed[:, 1:]
    side = int(round(tokens.shape[1] ** 0.5))
    if side * side != tokens.shape[1]:
        raise ModelError(f"position embedding of {tokens.shape[1]} patches is not a square grid")
    if (side, side) == tuple(grid):
        return pos_embed
    tokens = tokens.reshape(1, side, side, -1).permute(0, 3, 1, 2)
    tokens = F.interpolate(tokens.float(), size=tuple(grid), mode="bicubic", align_corners=False)
    return torch.cat([cls, tokens.permute(0, 2, 3, 1).flatten(1, 2)], dim=1)


# Ours that ALBEF's pre-training file does not have: RaSa's new heads and id queue, and the
# vocabulary buffer (from the BERT vocabulary source)
_NEW_IN_RASA = ("prd_head.", "mrtd_head.", "idx_queue", "queue_ptr", "image_queue", "text_queue")


def require_albef_file(path: str | Path) -> None:
    """Refuse, in one line naming what to get, an ALBEF file that is not there."""
    if not Path(path).expanduser().is_file():
        raise ModelError(f"ALBEF weights file not found: {path} ({ALBEF_HINT})")


def require_release_file(path: str | Path, release: str) -> None:
    """Refuse, in one line, a release checkpoint that is not there."""
    if not Path(path).expanduser().is_file():
        raise ModelError(f"{release} weights file not found: {path} (a local checkpoint in "
                         f"{release}'s layout, linked from its README; see "
                         "docs/released-models.md)")


def load_albef_pretrained(model: nn.Module, path: str | Path) -> None:
    """Load ALBEF's pre-trained checkpoint into a RaSa model (position embeddings resized to
    its grid, as the code does); RaSa's new heads keep their initialisation and the queues
    start afresh. A missing, unexpected or wrongly shaped entry is refused in one line."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelError(f"ALBEF weights file not found: {path} ({ALBEF_HINT})")
    state = {}
    for key, value in read_weights(path).items():
        ours = release_key_to_ours(key)
        if ours is not None:
            state[ours] = value.float() if value.is_floating_point() else value
    grid = tuple(model.visual_encoder.patch_embed.grid_size)
    for key in ("visual_encoder.pos_embed", "visual_encoder_m.pos_embed"):
        if key in state:
            state[key] = resize_pos_embed(state[key], grid)
    expected = model.state_dict()
    for key, value in state.items():
        if key.startswith(("image_queue", "text_queue", "queue_ptr", "idx_queue")):
            continue
        if key not in expected:
            raise ModelError(f"{path}: key '{key}' is not part of an ALBEF/RaSa model "
                             "(first mismatch): not ALBEF's pre-trained checkpoint?")
        if tuple(value.shape) != tuple(expected[key].shape):
            raise ModelError(f"{path}: key '{key}' has shape {tuple(value.shape)}, the model "
                             f"expects {tuple(expected[key].shape)} (first mismatch)")
    missing = [k for k in expected if k not in state and not k.startswith(_NEW_IN_RASA)
               and not k.endswith("vocab_bytes")]
    if missing:
        raise ModelError(f"{path}: key '{missing[0]}' is missing ({len(missing)} missing in "
                         "all; first mismatch)")
    model.load_state_dict({**expected, **{k: v for k, v in state.items() if k in expected
                                          and not k.startswith(_NEW_IN_RASA)}}, strict=True)


#: ours that a release file may lack: the vocabulary buffer, the MLM head (fine-tuned without it)
RELEASE_OPTIONAL = ("text_encoder.vocab_bytes", "text_encoder_m.vocab_bytes",
                    "text_encoder.cls.")


def load_release_weights(model: nn.Module, path: str | Path, release: str) -> None:
    """Load a checkpoint in the ``release``'s own layout (APTM's pre-trained or fine-tuned
    file) into ``model``; a key that does not fit is refused in one line naming it."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelError(f"{release} weights file not found: {path} (a local checkpoint in "
                         f"{release}'s layout; see docs/released-models.md)")
    state = {}
    for key, value in read_weights(path).items():
        ours = release_key_to_ours(key)
        if ours is not None:
            state[ours] = value.float() if value.is_floating_point() else value
    expected = model.state_dict()
    for key, value in state.items():
        if key not in expected:
            raise ModelError(f"{path}: key '{key}' is not part of the {release} model "
                             "(first mismatch)")
        if tuple(value.shape) != tuple(expected[key].shape):
            raise ModelError(f"{path}: key '{our_key_to_release(key)}' has shape "
                             f"{tuple(value.shape)}, the model expects "
                             f"{tuple(expected[key].shape)} (first mismatch)")
    missing = [k for k in expected if k not in state and not k.startswith(RELEASE_OPTIONAL)]
    if missing:
        raise ModelError(f"{path}: key '{our_key_to_release(missing[0])}' is missing "
                         f"({len(missing)} missing in all; first mismatch)")
    model.load_state_dict({**expected, **state}, strict=True)
