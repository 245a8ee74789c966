"""A real ``torchrun`` job (2 processes, gloo, CPU) from a cold cache: it finishes, records the
global batch, and refuses what it cannot train as one experiment; two runs started together on
one empty cache both finish."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.data.sets import per_process_batch
from toreid.errors import ToreidError

REPO = Path(__file__).resolve().parents[2]
DEMO = ["--demo-ids", "24", "--epochs", "1", "--device", "cpu", "--quiet"]


def _env(cache: Path) -> dict[str, str]:
    return {**os.environ, "TOREID_CACHE": str(cache), "OMP_NUM_THREADS": "1",
            "PYTHONPATH": str(REPO)}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _torchrun(*args: str, cache: Path) -> subprocess.CompletedProcess:
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
                "-m", "benchmark.cli", "run", *args]
    return subprocess.run(torchrun, capture_output=True, text=True, env=_env(cache),
                          cwd=REPO, timeout=900, check=False)


def test_an_indivisible_global_batch_is_refused():
    assert per_process_batch(8, 2) == 4
    with pytest.raises(ToreidError, match="--batch-size 7: the global batch must divide by"):
        per_process_batch(7, 2)


@pytest.mark.skipif(shutil.which("true") is None, reason="needs a POSIX system")
def test_torchrun_from_a_cold_cache_records_the_global_batch(tmp_path):
    cache, out = tmp_path / "cache", tmp_path / "runs"
    done = _torchrun("--models", "clip", "--batch-size", "8", "--out", str(out), *DEMO,
                     cache=cache)
    assert done.returncode == 0, done.stderr[-3000:]
    config = json.loads(next(out.rglob("config.json")).read_text())
    assert config["batch"] == {"global": 8, "world_size": 2, "per_process": 4,
                               "gathered": ["image features", "text features"]}
    assert config["train"]["batch_size"] == 8
    # A model whose losses do not gather its batch is refused, not silently trained apart.
    refused = _torchrun("--models", "cmpm", "--batch-size", "8", "--out", str(out), *DEMO,
                        cache=cache)
    assert refused.returncode != 0
    # each worker's one line (torchrun then adds its own report of the failed workers)
    assert "error: model 'cmpm': its losses do not gather the batch across processes" in (
        refused.stderr)


def test_two_runs_started_together_on_an_empty_cache_both_finish(tmp_path):
    cache = tmp_path / "cache"
    command = [sys.executable, "-m", "benchmark.cli", "run", "--models", "clip",
               "--batch-size", "8", *DEMO]
    runs = [subprocess.Popen([*command, "--out", str(tmp_path / f"runs{i}")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=_env(cache), cwd=REPO) for i in range(2)]
    results = [(p.wait(timeout=900), p.stderr.read()) for p in runs]
    for code, stderr in results:
        assert code == 0, stderr[-3000:]
