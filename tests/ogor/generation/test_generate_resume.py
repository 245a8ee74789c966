"""SIGKILL at a random moment, then --resume: the tree equals an uninterrupted run's."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ogor.generation.generate import PARTIAL_SUFFIX, generate_dataset
from ogor.generation.manifest import JOB_NAME, JOURNAL_NAME
from ogor.generation.verify import verify_dataset

from .conftest import tree_digest, write_dataset

CLI = [sys.executable, "-c", "from ogor.cli import main; main()"]


def test_killed_run_resumes_to_the_identical_tree(
    tmp_path: Path, library_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "src"
    write_dataset(source, layout={"train": [3] * 60, "test": [2] * 30}, size=(256, 128))
    args = [str(source), "--out", "out", "--oil", str(library_root), "--ratio", "1.0",
            "--seed", "5", "--workers", "1"]
    killed = tmp_path / "killed"
    killed.mkdir()
    partial = killed / ("out" + PARTIAL_SUFFIX)
    journal = partial / JOURNAL_NAME
    proc = subprocess.Popen([*CLI, "generate", *args], cwd=killed)
    try:
        while proc.poll() is None and not (journal.is_file() and journal.stat().st_size > 0):
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (killed / "out").exists() and (partial / JOB_NAME).is_file()
    done_before = len(journal.read_text().splitlines())
    assert 0 < done_before < 240

    result = subprocess.run([*CLI, "generate", *args], cwd=killed, capture_output=True, text=True)
    assert result.returncode == 2 and "--resume" in result.stderr  # refuses without --resume

    monkeypatch.chdir(killed)
    summary = generate_dataset(
        source, "out", oil=library_root, ratio=1.0, seed=5, workers=2, resume=True
    )
    assert summary.reused >= done_before and summary.reused + summary.processed == 240

    clean = tmp_path / "clean"
    clean.mkdir()
    monkeypatch.chdir(clean)
    generate_dataset(source, "out", oil=library_root, ratio=1.0, seed=5)
    assert tree_digest(killed / "out") == tree_digest(clean / "out")
    assert not partial.exists()
    verify_dataset(killed / "out")
