"""``bench run --log tensorboard``: each epoch's history row, live, as TensorBoard scalars.

``history.csv`` already records every epoch; this is for users who watch a long run as it goes.
TensorBoard is an optional extra (``pip install 'toreid[tensorboard]'``); without it the option
is refused with a one-line error before any training starts. Events go to
``<run folder>/tensorboard/``, so ``tensorboard --logdir runs/`` shows every run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from toreid.errors import ToreidError

TENSORBOARD_DIR = "tensorboard"


def tensorboard_hook() -> Callable[[Path, dict[str, Any]], None]:
    """An ``epoch_hook`` for :func:`benchmark.training.loop.run_training` writing TensorBoard
    events."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ToreidError("--log tensorboard: the tensorboard package is not installed (pip "
                          "install 'toreid[tensorboard]' or pip install tensorboard)") from None
    writers: dict[Path, Any] = {}

    def hook(run: Path, row: dict[str, Any]) -> None:
        writer = writers.get(run)
        if writer is None:
            writer = writers[run] = SummaryWriter(log_dir=str(Path(run) / TENSORBOARD_DIR))
        step = int(row["epoch"])
        for key, value in row.items():
            if key != "epoch" and isinstance(value, (int, float)):
                writer.add_scalar(key, float(value), step)
        writer.flush()

    return hook
