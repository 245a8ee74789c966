"""The run folder layout and the records written into it.

One run = one (dataset, model, seed)::

    runs/<dataset>/<model>/seed<k>/
        config.json        the resolved configuration (model, training, data, preset)
        env.json           python/torch/open_clip/numpy versions, git commit, device, host
        history.csv        one row per epoch: losses, lr, val metrics, seconds
        metrics.json       test metrics (+ occluded/clean split) and how the model was selected
        checkpoints/last.pt, checkpoints/best.pt

``metrics.json`` is written last and atomically: a run folder without it is unfinished, which is
what ``bench table`` and ``bench run --resume`` rely on. Its shape is the JSON Schema
``manifests/run-result.schema.json``.
"""

from __future__ import annotations

import csv
import io
import platform
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toreid.errors import ToreidError
from toreid.io import atomic_write_bytes, atomic_write_json, read_json

RESULT_FORMAT = "toreid-run-result"
RESULT_VERSION = 1
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "manifests" / "run-result.schema.json"


def run_dir(out: str | Path, dataset: str, model: str, seed: int) -> Path:
    """``out/<dataset>/<model>/seed<k>``: the folder of one run."""
    return Path(out) / dataset / model / f"seed{seed}"


def checkpoint_dir(run: str | Path) -> Path:
    return Path(run) / "checkpoints"


def git_commit(path: Path | None = None) -> str | None:
    """The toolkit's git commit when it runs from a checkout; ``None`` otherwise."""
    where = path or Path(__file__).resolve().parents[1]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and len(commit) == 40 else None


def environment(device: str) -> dict[str, Any]:
    """What a reader needs to reproduce a number: versions, commit, device, host."""
    import numpy
    import torch

    try:
        import open_clip

        open_clip_version: str | None = open_clip.__version__
    except ImportError:  # pragma: no cover - a declared dependency
        open_clip_version = None
    device_name = device
    if device.startswith("cuda") and torch.cuda.is_available():
        device_name = f"{device} ({torch.cuda.get_device_name(torch.device(device))})"
    elif device == "cpu":
        device_name = f"cpu ({platform.processor() or platform.machine()}, "
        device_name += f"{torch.get_num_threads()} threads)"
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "open_clip": open_clip_version,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "git_commit": git_commit(),
        "device": device_name,
        "hostname": socket.gethostname(),
    }


def write_history(path: Path, rows: list[dict[str, Any]]) -> None:
    """``history.csv``: the union of the rows' keys as columns, in first-seen order."""
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    atomic_write_bytes(path, buffer.getvalue().encode("utf-8"))


def validate_result(result: dict[str, Any], where: str | Path = "metrics.json") -> None:
    """Check a result record against ``manifests/run-result.schema.json``."""
    import jsonschema

    schema = read_json(SCHEMA_PATH, "run result schema")
    try:
        jsonschema.validate(result, schema)
    except jsonschema.ValidationError as exc:
        location = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise ToreidError(f"{where}: field '{location}': {exc.message}") from None


def write_result(run: Path, result: dict[str, Any]) -> Path:
    """Validate and write ``metrics.json`` atomically (it marks the run as finished)."""
    path = Path(run) / "metrics.json"
    validate_result(result, path)
    atomic_write_json(path, result)
    return path


@dataclass(frozen=True)
class RunResult:
    """A finished run as the leaderboard sees it."""

    path: Path
    dataset: str
    model: str
    seed: int
    test: dict[str, float]
    record: dict[str, Any]


def read_result(path: str | Path) -> RunResult:
    """Read one ``metrics.json`` (validated)."""
    path = Path(path)
    record = read_json(path, "run result")
    validate_result(record, path)
    return RunResult(
        path=path.parent, dataset=record["dataset"], model=record["model"], seed=record["seed"],
        test=record["test"], record=record,
    )


def find_results(root: str | Path) -> list[RunResult]:
    """Every finished run under ``root`` (``root`` itself may be one run folder)."""
    root = Path(root)
    if not root.exists():
        raise ToreidError(f"{root}: runs folder not found")
    paths = [root / "metrics.json"] if (root / "metrics.json").is_file() else []
    paths += sorted(p for p in root.rglob("metrics.json") if p.parent != root)
    return [read_result(p) for p in paths]


def toolkit_version() -> str:
    """The installed toreid version (part of each recipe: a new generator, a new version)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("toreid")
    except PackageNotFoundError:  # running from a checkout that is not installed
        return "unknown"
