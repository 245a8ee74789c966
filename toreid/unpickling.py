"""Naming what a weights-only load refused, in a few words instead of torch's dozen lines.

Shared by every reader of weight files (``benchmark.checkpoints``, ``models.encoders``,
``ogor.extract``); pure string handling, so the core package stays free of torch.
"""

from __future__ import annotations


def refused_global(error: BaseException) -> str:
    """What torch's weights-only unpickler refused, e.g. ``refused global io.open``.

    Its message is a dozen lines of advice (including "load with weights_only=False", which
    is exactly what must not be done with a stranger's file); the refused name is what matters.
    """
    text = str(error)
    for marker in ("Unsupported global: GLOBAL ", "refused global "):
        start = text.find(marker)
        if start >= 0:
            name = text[start + len(marker):].split()[0].rstrip(".,:;")
            return f"refused global {name}"
    for marker in ("Unsupported operand", "Unsupported class"):
        start = text.find(marker)
        if start >= 0:
            return text[start:].splitlines()[0].strip()[:100]
    return type(error).__name__
