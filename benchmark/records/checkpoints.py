"""Checkpoints are data, not code: weights-only files, written atomically, refused when foreign.

A ``.pt`` file is a pickle, and unpickling runs whatever the file says; checkpoints are exactly
the files people download from strangers. So every checkpoint is read with
``torch.load(..., weights_only=True)``, which rebuilds only tensors and plain containers, and a
file it cannot read that way is refused with one line naming it. It is never unpickled.

For that, everything a checkpoint holds beyond tensors is stored as plain data: the optimiser,
scheduler and grad-scaler state dicts already are (tensors, numbers, strings, lists, tuples,
dicts), and the RNG states are converted (:func:`rng_state`): Python's ``random`` state as a list
of ints, NumPy's as a tensor of its 624 key words plus ints, torch's as byte tensors. Restoring
gives the exact same generators (tested by the exact-resume test).

A checkpoint is written to a temporary file in the same folder, fsynced and renamed over the
old one, so a crash or a full disk in the middle leaves the previous good checkpoint in place
and never a half-written one under the real name.
"""

from __future__ import annotations

import os
import pickle
import random
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from toreid.errors import ToreidError
from toreid.unpickling import refused_global

# mkstemp creates files readable by their owner only; checkpoints get the usual mode instead.
_UMASK = os.umask(0)
os.umask(_UMASK)


class CheckpointError(ToreidError):
    """A checkpoint that is missing, corrupt, not weights-only, or made for another model."""


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__


# ------------------------------------------------------------------------------ RNG states


def rng_state() -> dict[str, Any]:
    """The process's RNG states as plain data that a weights-only load reads back."""
    version, internal, gauss_next = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    state: dict[str, Any] = {
        "python": {"version": int(version), "internal": [int(v) for v in internal],
                   "gauss_next": gauss_next},
        "numpy": {"bit_generator": str(name), "keys": torch.from_numpy(keys.astype(np.int64)),
                  "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` recorded, exactly."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss_next"]))
    npy = state["numpy"]
    np.random.set_state((npy["bit_generator"], npy["keys"].numpy().astype(np.uint32),
                         npy["pos"], npy["has_gauss"], npy["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ------------------------------------------------------------------------------ save / load


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` with ``torch.save`` to a temporary sibling, fsync, rename over ``path``.

    Written straight to the temporary file rather than through memory, so a checkpoint of a
    large model does not need twice its size in RAM. Any failure (a full disk included) removes
    the temporary file and leaves the previous ``path`` as it was; the :class:`OSError` then
    names ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            torch.save(payload, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        cause = _os_error_in(exc)
        if cause is not None and (cause is not exc or exc.filename is None):
            # torch's zip writer turns a failed write (a full disk) into a RuntimeError whose
            # context is the OSError; either way the error names the checkpoint
            raise OSError(cause.errno, cause.strerror or str(cause), str(path)) from exc
        raise


def _os_error_in(exc: BaseException) -> OSError | None:
    """``exc`` itself or the first :class:`OSError` in its cause/context chain."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, OSError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def load_checkpoint(path: str | Path, what: str = "checkpoint") -> dict[str, Any]:
    """Read a checkpoint weights-only on the CPU; refuse anything else with one line.

    Raises:
        CheckpointError: the file is missing, truncated or corrupt, holds objects that a
            weights-only load refuses (it is never unpickled), or is not a dict.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: {what} not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        refused = refused_global(exc)
        hint = (" (a last.pt of an older toreid, whose NumPy RNG state was an array? delete "
                "the file to train the run from the start)" if "numpy" in refused else "")
        raise CheckpointError(
            f"{path}: refused: the {what} holds Python objects other than tensors and plain data "
            f"({refused}); it was not unpickled, since unpickling can run code{hint}"
        ) from None
    except (RuntimeError, EOFError, ValueError, zipfile.BadZipFile, KeyError, IndexError,
            TypeError, AttributeError) as exc:
        raise CheckpointError(
            f"{path}: not a readable {what}, truncated or corrupt ({_first_line(exc)})") from None
    if not isinstance(payload, dict):
        raise CheckpointError(f"{path}: not a {what} (holds a {type(payload).__name__}, "
                              "expected a dict)")
    return payload


def require_keys(payload: dict[str, Any], keys: tuple[str, ...], path: str | Path,
                 what: str = "checkpoint") -> None:
    """Refuse a checkpoint that lacks a field, naming the file and the field."""
    for key in keys:
        if key not in payload:
            raise CheckpointError(f"{path}: field '{key}' missing: not a toreid {what} "
                                  "(or written by another version)")


def load_model_weights(model: torch.nn.Module, state: Any, path: str | Path,
                       model_name: str = "the model") -> None:
    """``model.load_state_dict(state)`` strictly, a mismatch as one line naming the file.

    A checkpoint of another model (missing or unexpected keys) or of another shape (a size
    mismatch) gives torch's many-line message; this says what is wrong and where, in one. The
    module's own loading runs first (a module may resize a buffer it owns, as BERT's vocabulary
    does), so only what torch itself refuses is reported.
    """
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise CheckpointError(f"{path}: field 'model' is not a state dict of tensors")
    try:
        model.load_state_dict(state)
        return
    except RuntimeError as exc:
        refusal = exc
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected:
        example = (missing or unexpected)[0]
        raise CheckpointError(
            f"{path}: not a checkpoint of {model_name}: {len(missing)} missing and "
            f"{len(unexpected)} unexpected weights (e.g. '{example}')")
    if shapes:
        key = shapes[0]
        raise CheckpointError(
            f"{path}: weights of another shape than {model_name}: '{key}' is "
            f"{tuple(state[key].shape)} in the file, {tuple(own[key].shape)} in the model "
            f"({len(shapes)} such weights)")
    raise CheckpointError(f"{path}: cannot load into {model_name} ({_first_line(refusal)})")
