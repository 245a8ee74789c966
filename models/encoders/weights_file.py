"""Read a weights file as data: tensors only, never code, whatever the file's format.

``torch.load(..., weights_only=True)`` rebuilds only tensors and plain containers, so a file
crafted to run code when unpickled is refused instead. Three formats are read:

* ``.safetensors``: tensors by construction (``safetensors.torch.load_file``);
* a ``torch.save`` file (an open_clip or OpenAI state dict, optionally under ``"state_dict"``):
  ``torch.load`` weights-only;
* a TorchScript archive, the format of OpenAI's released CLIP ``.pt`` files. ``torch.jit.load``
  would read it, but an archive carries TorchScript code that loading compiles and may run
  (``__setstate__`` methods), so it is not a data-only path. Instead the archive's pickled
  module tree (``data.pkl``) and its tensor records (``data/<n>``) are copied into an in-memory
  ``torch.save`` archive and read with the same weights-only unpickler, where each TorchScript
  class (``__torch__.*``) is allowed only as :class:`ScriptObjectState`, a plain record of the
  attributes the pickle gives it. The code in the archive is never read. The state dict is then
  the tensors of that tree under their dotted attribute names, which is what
  ``torch.jit.load(path).state_dict()`` returns (tested on a traced open_clip model).
"""

from __future__ import annotations

import io
import pickle
import pickletools
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from models.errors import ModelError
from toreid.unpickling import refused_global


class ScriptObjectState:
    """A TorchScript object read as data: its pickled attributes (``state``), no behaviour."""

    def __init__(self) -> None:
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


def is_torchscript_archive(path: Path) -> bool:
    """A zip whose records include ``constants.pkl`` (what ``torch.jit.save`` writes)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any(name.endswith("/constants.pkl") for name in archive.namelist())


def read_weights(path: Path) -> tuple[dict[str, Tensor], bool]:
    """The state dict in ``path`` and whether it came from a TorchScript archive.

    Raises:
        ModelError: one line naming the file: not found, corrupt, not weights-only (refused,
            never unpickled), or not a state dict.
    """
    if not path.is_file():
        raise ModelError(f"weights file not found: {path}")
    torchscript = False
    try:
        if path.name.endswith(".safetensors"):
            from safetensors.torch import load_file

            payload: Any = load_file(str(path), device="cpu")
        elif is_torchscript_archive(path):
            payload, torchscript = read_torchscript_state_dict(path), True
        else:
            payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ModelError(
            f"{path}: refused: holds Python objects other than tensors and plain data "
            f"({refused_global(error)}); it was not unpickled, since unpickling can run code"
        ) from None
    except ModelError:
        raise
    except Exception as error:  # noqa: BLE001 - any failure to parse is a corrupt file
        raise ModelError(f"{path}: not a readable checkpoint ({_first_line(error)})") from None
    if isinstance(payload, dict) and isinstance(payload.get("state_dict"), dict):
        payload = payload["state_dict"]
    if not isinstance(payload, dict) or not payload:
        raise ModelError(f"{path}: not a state dict")
    for key, value in payload.items():
        if not torch.is_tensor(value):
            raise ModelError(f"{path}: not a state dict of tensors (field '{key}' is a "
                             f"{type(value).__name__})")
    state = {str(k).removeprefix("module."): v for k, v in payload.items()}
    return state, torchscript


def read_torchscript_state_dict(path: Path) -> dict[str, Tensor]:
    """The parameters and buffers of a TorchScript archive, read weights-only (no code)."""
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.count("/") == 1 and n.endswith("/data.pkl")]
        if len(pickles) != 1:
            raise ModelError(f"{path}: TorchScript archive without one data.pkl record")
        prefix = pickles[0].split("/")[0] + "/"
        data = archive.read(pickles[0])
        repacked = io.BytesIO()
        with zipfile.ZipFile(repacked, "w", zipfile.ZIP_STORED) as out:
            out.writestr("archive/data.pkl", data)
            out.writestr("archive/byteorder", "little")
            version = prefix + "version"
            out.writestr("archive/version", archive.read(version) if version in names else "3\n")
            for name in names:
                if name.startswith(prefix + "data/"):
                    out.writestr("archive/" + name[len(prefix):], archive.read(name))
    classes = _script_class_names(data)
    repacked.seek(0)
    try:
        with torch.serialization.safe_globals([(ScriptObjectState, name) for name in classes]):
            root = torch.load(repacked, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:  # a crafted archive: named, never unpickled
        raise ModelError(
            f"{path}: refused: the TorchScript archive's data.pkl holds Python objects other "
            f"than tensors and plain data ({refused_global(error)}); it was not unpickled, "
            "since unpickling can run code") from None
    except (RuntimeError, EOFError, ValueError, KeyError) as error:
        raise ModelError(f"{path}: not a readable TorchScript archive "
                         f"({_first_line(error)})") from None
    state: dict[str, Tensor] = {}
    _collect_tensors(root, "", state)
    return state


def _script_class_names(data: bytes) -> list[str]:
    """The ``__torch__.*`` classes a TorchScript ``data.pkl`` names (``GLOBAL`` opcodes)."""
    found = set()
    for opcode, arg, _pos in pickletools.genops(data):
        if opcode.name == "GLOBAL" and isinstance(arg, str) and arg.startswith("__torch__."):
            module, _, name = arg.partition(" ")
            found.add(f"{module}.{name}")
    return sorted(found)


def _collect_tensors(node: Any, prefix: str, out: dict[str, Tensor]) -> None:
    if not isinstance(node, ScriptObjectState) or not isinstance(node.state, dict):
        return
    for name, value in node.state.items():
        if torch.is_tensor(value):
            out[prefix + str(name)] = value.detach()
        elif isinstance(value, ScriptObjectState):
            _collect_tensors(value, f"{prefix}{name}.", out)
