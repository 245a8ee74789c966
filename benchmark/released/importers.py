"""Import released checkpoints of IRRA, RDE, TBPS-CLIP, RaSa, APTM and OpenAI CLIP as run folders.

``bench import --format FORMAT FILE --out RUN_DIR [--dataset NAME=ROOT]`` reads the release's
file weights-only, renames its keys onto our model (:data:`FORMATS`), refuses a file whose
keys or shapes do not fit with one line naming the first mismatch, and writes a run folder
(:mod:`benchmark.released.untrained`) that records the file's sha256 and format. With ``--dataset``
it is evaluated on that dataset's test split (occluded/clean breakdown included), so ``bench
table`` shows it, marked "released checkpoint".

The releases' layouts (read in their public code; nothing of it is used here):

* ``irra`` (anosorae/IRRA ``best.pth``): ``{"model": state_dict, "optimizer", "scheduler",
  ...}``; the CLIP under ``base_model.`` in OpenAI's key layout (= open_clip's), float16, the
  image position embedding already resized to 24x8 + 1 for 384x128; ``cross_attn``,
  ``cross_modal_transformer``, ``ln_pre_t``, ``ln_pre_i``, ``ln_post``, ``mlm_head``,
  ``classifier``. No ``logit_scale`` (IRRA's SDM uses a fixed temperature).
* ``rde`` (QinYang79/RDE): the same checkpoint shape; ``base_model.`` plus
  ``visul_emb_layer`` (``fc``, ``mlp``; its ``linear`` is unused by the release's forward) and
  ``texual_emb_layer`` (``linear``, ``mlp``). Each MLP's second BatchNorm is never used by the
  release's forward; both unused parts are dropped.
* ``tbps-clip`` (Flame-Chasers/TBPS-CLIP ``checkpoint_best.pth``): ``{"model", "optimizer",
  "config"}`` where ``config`` is an ``easydict.EasyDict``; the image tower under ``visual.``,
  the text tower under ``encode_text.``, ``logit_scale``, ``simclr_mlp``; 224x224.
* ``openai``: OpenAI's CLIP file (a TorchScript archive, or its state dict), as zero-shot CLIP.
* ``rasa`` (Flame-Chasers/RaSa ``checkpoint_best.pth``): ``{"model", "optimizer",
  "lr_scheduler", "config", "epoch", ...}``; ALBEF's modules under the names our RaSa keeps
  (``visual_encoder``, ``text_encoder.bert``/``.cls``, projections, ``itm_head``,
  ``prd_head``, ``mrtd_head``, the momentum copies, queues); 384x384.
* ``aptm`` (Shuyu-XJTU/APTM fine-tuned ``checkpoint_best.pth``): ``{"model": ...}`` or the
  bare dict; Microsoft's Swin-B under ``vision_encoder.``, ``text_encoder.bert``, projections,
  ``temp``, the MLP ``itm_head``; 384x128. Key mapping: :mod:`models.albef_weights`.
  Neither release stores its WordPiece vocabulary: it is bert-base-uncased's (``--bert``
  names a folder holding its ``vocab.txt``; ``tiny`` for the tiny test configurations).

Safety: every pickle is read with ``torch.load(weights_only=True)``, so a file that would need
arbitrary unpickling is refused before any of its code runs. The one foreign class a release
needs (TBPS-CLIP's ``easydict.EasyDict`` configuration) is read as a plain ``dict`` subclass
of ours, never imported. OpenAI's TorchScript archives are read tensor by tensor through the same
weights-only unpickler (:func:`models.encoders.weights_file.read_torchscript_state_dict`), never
with ``torch.jit.load``.
"""

from __future__ import annotations

import hashlib
import pickle
import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from models.albef_weights import our_key_to_release, release_key_to_ours
from models.encoders.weights_file import is_torchscript_archive, read_torchscript_state_dict
from toreid.errors import ToreidError
from toreid.unpickling import numpy_data_globals

OPENAI_EXTRA_KEYS = ("input_resolution", "context_length", "vocab_size")


class ForeignConfig:
    """Stands in for a release's configuration class (``easydict.EasyDict``) when unpickling.

    Creating one gives a plain ``OrderedDict`` (one of the few types torch's weights-only
    unpickler fills), so the release's class is never imported and its items load as data.
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> OrderedDict:  # type: ignore[misc]
        return OrderedDict()


# (stand-in, "module.Class" as written in the pickle)
_SAFE_STAND_INS = [(ForeignConfig, "easydict.EasyDict")]


@dataclass(frozen=True)
class Format:
    """One release: which model it becomes, its defaults, and how its keys map onto ours."""

    model: str
    description: str
    image_size: tuple[int, int]
    rename: Callable[[str], str | None]  # release key -> our key (None: drop it)
    backbone: str = "ViT-B-16"  # the release's (``--backbone`` default)


def _rename_clip(key: str, prefix: str) -> str | None:
    return "backbone.clip." + key[len(prefix):] if key.startswith(prefix) else None


_IRRA_HEAD = {
    "cross_attn.": "cross_modal.cross_attn.",
    "cross_modal_transformer.": "cross_modal.transformer.",
    "ln_pre_t.": "cross_modal.ln_pre_text.",
    "ln_pre_i.": "cross_modal.ln_pre_image.",
    "ln_post.": "cross_modal.ln_post.",
    "mlm_head.": "cross_modal.mlm_head.",
    "classifier.": "classifier.",
}


def _rename_by_prefix(key: str, table: dict[str, str]) -> str | None:
    for theirs, ours in table.items():
        if key.startswith(theirs):
            return ours + key[len(theirs):]
    return "?" + key  # unknown: reported as unexpected


def rename_irra(key: str) -> str | None:
    if key.startswith("base_model."):
        return _rename_clip(key, "base_model.")
    return _rename_by_prefix(key, _IRRA_HEAD)


def rename_rde(key: str) -> str | None:
    if key.startswith("base_model."):
        return _rename_clip(key, "base_model.")
    if key.startswith("visul_emb_layer.linear.") or ".mlp.bns.1." in key:
        return None  # unused by the release's forward
    return _rename_by_prefix(key, {"visul_emb_layer.fc.": "visual_tse.linear.",
                                   "visul_emb_layer.": "visual_tse.",
                                   "texual_emb_layer.": "textual_tse."})


def rename_tbps(key: str) -> str | None:
    if key.startswith("visual."):
        return "backbone.clip." + key
    if key.startswith("encode_text."):
        return "backbone.clip." + key[len("encode_text."):]
    if key == "logit_scale":
        return "backbone.clip.logit_scale"
    if key.endswith(".attn_mask"):
        return None
    return _rename_by_prefix(key, {"simclr_mlp.": "simclr_mlp."})


def rename_openai(key: str) -> str | None:
    if key in OPENAI_EXTRA_KEYS or key == "attn_mask":
        return None
    return "backbone.clip." + key.removeprefix("module.")


FORMATS: dict[str, Format] = {
    "irra": Format("irra", "IRRA (CVPR 2023) best.pth", (384, 128), rename_irra),
    "rde": Format("rde", "RDE (CVPR 2024) best.pth", (384, 128), rename_rde),
    "tbps-clip": Format("tbps-clip", "TBPS-CLIP (AAAI 2024) checkpoint_best.pth", (224, 224),
                        rename_tbps),
    "openai": Format("clip-zeroshot", "OpenAI CLIP (ViT-B-16.pt), as zero-shot CLIP",
                     (384, 128), rename_openai),
    "rasa": Format("rasa", "RaSa (IJCAI 2023) checkpoint_best.pth", (384, 384),
                   release_key_to_ours),
    "aptm": Format("aptm", "APTM (ACM MM 2023) fine-tuned checkpoint", (384, 128),
                   release_key_to_ours, backbone="swin-base"),
}

#: the releases of cross-encoder rankers (ALBEF family): their vocabulary is bert-base-uncased's
ALBEF_FORMATS = ("rasa", "aptm")


def list_formats() -> list[str]:
    return list(FORMATS)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_checkpoint(path: Path, fmt: str) -> dict[str, Tensor]:
    """The release's state dict, read weights-only (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise ToreidError(f"{path}: checkpoint not found")
    if fmt == "openai" and is_torchscript_archive(path):
        # the tensors only, through the weights-only unpickler: the archive's code never runs
        return read_torchscript_state_dict(path)
    try:
        with torch.serialization.safe_globals([*_SAFE_STAND_INS, *numpy_data_globals()]):
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"GLOBAL (\S+)", str(error))
        what = f"it asks for {found.group(1)}" if found else _first_line(error)[:80]
        raise ToreidError(f"{path}: refused: the file needs arbitrary unpickling, which could run "
                          f"code ({what}); only weights-only checkpoints are read") from None
    except (RuntimeError, EOFError, ValueError, OSError) as error:
        text = str(error).strip().splitlines()
        raise ToreidError(f"{path}: not a readable checkpoint "
                          f"({type(error).__name__}: {text[0] if text else ''})") from None
    state = payload.get("model", payload) if isinstance(payload, dict) else None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not state or not all(
            isinstance(k, str) and torch.is_tensor(v) for k, v in state.items()):
        raise ToreidError(f"{path}: field 'model': not a state dict of tensors")
    return dict(state)


# Keys of our models that a release may lack, kept at our initialisation: CLIP's logit scale
# (IRRA and RDE use a fixed temperature and do not store it).
_OPTIONAL_KEYS = ("backbone.clip.logit_scale",)
# ... and of the ALBEF family: the WordPiece vocabulary (from ``bert``, the releases keep it in
# a separate vocab.txt) and the MLM head (a release fine-tuned without MLM has none)
_OPTIONAL_ALBEF = ("text_encoder.vocab_bytes", "text_encoder_m.vocab_bytes",
                   "text_encoder.cls.")


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _map_keys(state: dict[str, Tensor], fmt: str, path: Path) -> dict[str, Tensor]:
    rename = FORMATS[fmt].rename
    mapped: dict[str, Tensor] = {}
    for key, value in state.items():
        ours = rename(key)
        if ours is None:
            continue
        if ours.startswith("?"):
            raise ToreidError(f"{path}: key '{key}' does not belong to a {fmt} checkpoint "
                              "(first mismatch)")
        mapped[ours] = value.float() if value.is_floating_point() else value
    return mapped


def _build_options(fmt: str, mapped: dict[str, Tensor], backbone: str,
                   bert: str | None) -> dict[str, Any]:
    """Architecture choices the release's tensors decide (classes, TSE width, SS head)."""
    if fmt in ALBEF_FORMATS:  # vocabulary: the tiny built-in one, or bert-base-uncased's
        options: dict[str, Any] = {"bert": bert or ("tiny" if backbone == "tiny"
                                                    else "bert-base-uncased")}
        if "vision_proj.weight" in mapped:
            options["embed_dim"] = int(mapped["vision_proj.weight"].shape[0])
        if "image_queue" in mapped:
            options["queue_size"] = int(mapped["image_queue"].shape[1])
        return options
    options = {"quick_gelu": True}  # every other release here is OpenAI-CLIP based
    if fmt in ("irra", "rde"):  # their eval transform: T.Resize((h, w)), PIL bilinear
        options["image_interpolation"] = "bilinear"
    if fmt == "irra" and "classifier.weight" in mapped:
        options["num_classes"] = int(mapped["classifier.weight"].shape[0])
    if fmt == "rde" and "textual_tse.linear.weight" in mapped:
        options["tse_dim"] = int(mapped["textual_tse.linear.weight"].shape[0])
    if fmt == "tbps-clip":
        if "simclr_mlp.0.weight" in mapped:
            options["simclr_hidden"] = int(mapped["simclr_mlp.0.weight"].shape[0])
        else:
            options["ss_weight"] = 0.0
    return options


def build_imported_model(fmt: str, path: Path, *, backbone: str | None = None,
                         image_size: tuple[int, int] | None = None,
                         bert: str | None = None) -> torch.nn.Module:
    """Read ``path`` in the ``fmt`` layout and return our model holding its weights.

    Raises a one-line :class:`ToreidError` naming the first key that does not fit (unexpected,
    wrongly shaped or missing).
    """
    from models import build_model
    from models.errors import ModelError

    if fmt not in FORMATS:
        raise ToreidError(f"unknown checkpoint format {fmt!r} (valid: {', '.join(FORMATS)})")
    spec = FORMATS[fmt]
    backbone = backbone or spec.backbone
    mapped = _map_keys(read_checkpoint(path, fmt), fmt, path)
    if image_size is None and backbone == spec.backbone:
        image_size = spec.image_size
    try:
        model = build_model(spec.model, backbone=backbone, image_size=image_size,
                            **_build_options(fmt, mapped, backbone, bert))
    except ModelError as error:
        raise ToreidError(f"{path}: cannot build a {spec.model} model for it "
                          f"({_first_line(error)})") from None
    if fmt == "openai":
        _resize_openai_pos_embed(mapped, model, path)
    expected = model.state_dict()
    for key, value in mapped.items():
        if key not in expected:
            raise ToreidError(f"{path}: key '{_release_key(key, fmt)}' is not part of a {fmt} "
                              f"model with backbone {backbone} (first mismatch)")
        if tuple(value.shape) != tuple(expected[key].shape):
            raise ToreidError(f"{path}: key '{_release_key(key, fmt)}' has shape "
                              f"{tuple(value.shape)}, the {fmt} model with backbone {backbone} "
                              f"at {model.image_size[0]}x{model.image_size[1]} expects "
                              f"{tuple(expected[key].shape)} (first mismatch)")
    optional = _OPTIONAL_ALBEF if fmt in ALBEF_FORMATS else ()
    missing = [k for k in expected if k not in mapped and k not in _OPTIONAL_KEYS
               and not (optional and k.startswith(optional))]
    if missing:
        raise ToreidError(f"{path}: key '{_release_key(missing[0], fmt)}' is missing "
                          f"({len(missing)} missing in all; first mismatch)")
    model.load_state_dict({**expected, **mapped}, strict=True)
    return model.eval()


def _release_key(ours: str, fmt: str) -> str:
    """The release's name of our key, for error messages (best effort)."""
    if fmt in ALBEF_FORMATS:
        return our_key_to_release(ours)
    if fmt == "openai" and ours.startswith("backbone.clip."):
        return ours[len("backbone.clip."):]
    if fmt in ("irra", "rde") and ours.startswith("backbone.clip."):
        return "base_model." + ours[len("backbone.clip."):]
    if fmt == "tbps-clip" and ours.startswith("backbone.clip."):
        rest = ours[len("backbone.clip."):]
        keep = rest.startswith("visual.") or rest == "logit_scale"
        return rest if keep else "encode_text." + rest
    for table in (_IRRA_HEAD, {"visul_emb_layer.fc.": "visual_tse.linear.",
                               "visul_emb_layer.": "visual_tse.",
                               "texual_emb_layer.": "textual_tse."}):
        for theirs, mine in table.items():
            if fmt != "tbps-clip" and ours.startswith(mine):
                return theirs + ours[len(mine):]
    return ours


def _resize_openai_pos_embed(mapped: dict[str, Tensor], model: torch.nn.Module,
                             path: Path) -> None:
    """OpenAI's 14x14 grid -> the model's grid, as :class:`models.encoders.clip.Backbone` loads
    such a file (its ``pos_embed_resize``: open_clip's bicubic-antialias by default)."""
    from open_clip.model import resize_pos_embed

    from models.encoders.clip import resize_pos_embed_bilinear

    key = "backbone.clip.visual.positional_embedding"
    if key not in mapped:
        return
    holder = {"visual.positional_embedding": mapped[key]}
    try:
        if model.backbone.pos_embed_resize == "bilinear":
            resize_pos_embed_bilinear(holder, tuple(model.backbone.clip.visual.grid_size))
        else:
            resize_pos_embed(holder, model.backbone.clip)
    except Exception as error:  # a grid that is not square cannot be resized
        raise ToreidError(f"{path}: key 'visual.positional_embedding' cannot be resized "
                          f"({_first_line(error)})") from None
    mapped[key] = holder["visual.positional_embedding"]


#: ``bench import --format toreid``: a ``.safetensors`` file written by ``bench export``.
EXPORT_FORMAT = "toreid"


def detect_format(path: Path) -> str:
    """The format of ``path`` when ``--format`` is not given: only our own export carries its
    format in the file (the ``.safetensors`` header); a release's pickle does not say which
    release wrote it, so it must be named."""
    from benchmark.released.export import FORMAT as EXPORT_HEADER

    path = Path(path)
    if not path.is_file():
        raise ToreidError(f"{path}: checkpoint not found")
    if path.name.endswith(".safetensors"):
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as handle:
                header = handle.metadata() or {}
        except Exception as error:  # noqa: BLE001 - any parse failure is a corrupt file
            raise ToreidError(f"{path}: not a readable .safetensors file "
                              f"({type(error).__name__})") from None
        if header.get("format") == EXPORT_HEADER:
            return EXPORT_FORMAT
    raise ToreidError(f"{path}: --format missing: the file does not say which release wrote it "
                      f"(give one of {', '.join(sorted([*FORMATS, EXPORT_FORMAT]))})")


def import_checkpoint(
    fmt: str, path: Path, out: Path, *, dataset: tuple[str, Path] | None = None,
    backbone: str | None = None, image_size: tuple[int, int] | None = None,
    device: str = "auto", batch_size: int = 128, progress: bool = False,
    bert: str | None = None,
) -> dict[str, Any] | None:
    """Import ``path`` into the run folder ``out``; evaluate on ``dataset`` when given.

    Returns the ``metrics.json`` record (``None`` without a dataset).
    """
    from benchmark.released.untrained import RELEASED_MARK, refuse_existing, write_run

    path, out = Path(path), Path(out)
    refuse_existing(out)
    if fmt == EXPORT_FORMAT:  # our own bench export: the model and its config are in the file
        from benchmark.released.export import load_exported

        model, config = load_exported(path)
        name = str(config.get("name") or "model")
        digest = sha256_of(path)
        source = {"format": fmt, "file": str(path.resolve()), "sha256": digest,
                  "size_bytes": path.stat().st_size,
                  "rule": f"exported by bench export ({path.name}, sha256 {digest[:12]}): "
                          "trained elsewhere, not selected here"}
        return write_run(out, model, model_label=f"{name} [exported]", source=source,
                         dataset=dataset, preset=f"exported:{name}", device=device,
                         batch_size=batch_size, progress=progress)
    model = build_imported_model(fmt, path, backbone=backbone, image_size=image_size, bert=bert)
    digest = sha256_of(path)
    source = {"format": fmt, "file": str(path.resolve()), "sha256": digest,
              "size_bytes": path.stat().st_size,
              "rule": f"{RELEASED_MARK} ({fmt}, {path.name}, sha256 {digest[:12]}): not trained "
                      "or selected here"}
    label = f"{FORMATS[fmt].model} [{RELEASED_MARK}]"
    return write_run(out, model, model_label=label, source=source, dataset=dataset,
                     preset=f"released:{fmt}", device=device, batch_size=batch_size,
                     progress=progress)
