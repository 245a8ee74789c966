"""What a generation made: the value ``generate_dataset`` returns and the CLI prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ogor.generation.manifest import (
    format_summary,
)


@dataclass(frozen=True)
class GenerationSummary:
    """What a generation made (or, with ``dry_run``, would make).

    Attributes:
        out_root: the finished dataset folder (not created in a dry run).
        protocol: protocol name.
        counts: per split ``source_images``, ``occluded``, ``output_images``, ``records``.
        summary: the manifest's closing table (see ``ogor.generation.manifest.summarize``).
        processed: images made in this call.
        reused: images kept from an interrupted run (``--resume``).
        dry_run: nothing was written.
        elapsed_s: wall time of the call.
    """

    out_root: Path
    protocol: str
    counts: dict[str, dict[str, int]]
    summary: dict[str, Any]
    processed: int = 0
    reused: int = 0
    dry_run: bool = False
    elapsed_s: float = 0.0

    @property
    def occluded(self) -> int:
        return sum(row["occluded"] for row in self.counts.values())

    def table(self) -> str:
        """The summary table printed at the end of ``ogor generate``."""
        return format_summary(self.summary)
