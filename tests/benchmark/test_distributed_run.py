"""A real ``torchrun`` job (2 processes, gloo, CPU) from a cold cache: it finishes, records the
global batch and what the model gathers (clip, cmpm); stopped after an epoch and
resumed from ``last.pt`` it ends where the uninterrupted job ends; two runs started together on
one empty cache both finish."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.data.sets import per_process_batch
from tests.benchmark.distributed_resume_worker import BATCH, DEMO_IDS, EPOCHS
from toreid.errors import ToreidError

REPO = Path(__file__).resolve().parents[2]
DEMO = ["--demo-ids", "24", "--epochs", "1", "--device", "cpu", "--quiet"]
#: The shared job: 2 epochs so that it can be cut after the first (see the resume test).
JOB = ["--demo-ids", str(DEMO_IDS), "--epochs", str(EPOCHS), "--batch-size", str(BATCH),
       "--device", "cpu", "--quiet"]


def _env(cache: Path) -> dict[str, str]:
    return {**os.environ, "TOREID_CACHE": str(cache), "OMP_NUM_THREADS": "1",
            "PYTHONPATH": str(REPO)}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _torchrun(*args: str, cache: Path,
              module: tuple[str, ...] = ("benchmark.cli", "run")) -> subprocess.CompletedProcess:
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
                "-m", *module, *args]
    return subprocess.run(torchrun, capture_output=True, text=True, env=_env(cache),
                          cwd=REPO, timeout=900, check=False)


@pytest.fixture(scope="module")
def cold_job(tmp_path_factory) -> dict[str, Path]:
    """The 2-process ``clip`` demo job, started on an empty cache (shared by the tests below:
    the demo is built once): its ``cache`` and its run folder ``run``."""
    base = tmp_path_factory.mktemp("torchrun")
    cache, out = base / "cache", base / "runs"
    done = _torchrun("--models", "clip", "--out", str(out), *JOB, cache=cache)
    assert done.returncode == 0, done.stderr[-3000:]
    return {"cache": cache, "out": out, "run": next(out.rglob("config.json")).parent}


def test_an_indivisible_global_batch_is_refused():
    assert per_process_batch(8, 2) == 4
    with pytest.raises(ToreidError, match="--batch-size 7: the global batch must divide by"):
        per_process_batch(7, 2)


def test_torchrun_from_a_cold_cache_records_the_global_batch(cold_job):
    config = json.loads((cold_job["run"] / "config.json").read_text())
    assert config["batch"] == {"global": 8, "world_size": 2, "per_process": 4,
                               "gathered": ["image features", "text features"]}
    assert config["train"]["batch_size"] == 8
    # CMPM gathers too (every trainable model declares what it gathers, and one that declared
    # nothing would be refused: tests/models/test_distributed.py): it trains as one experiment
    done = _torchrun("--models", "cmpm", "--out", str(cold_job["out"] / "cmpm"), *DEMO,
                     "--batch-size", "8", cache=cold_job["cache"])
    assert done.returncode == 0, done.stderr[-3000:]
    config = json.loads(next((cold_job["out"] / "cmpm").rglob("config.json")).read_text())
    assert config["batch"]["gathered"] == ["image global", "text global", "person ids"]


def test_a_distributed_run_stopped_after_an_epoch_resumes_to_the_same_metrics(cold_job,
                                                                             tmp_path):
    out, worker = tmp_path / "runs", ("tests.benchmark.distributed_resume_worker",)
    stopped = _torchrun(str(out), "--stop-after", "1", cache=cold_job["cache"], module=worker)
    assert stopped.returncode == 0, stopped.stderr[-3000:]
    run = out / cold_job["run"].relative_to(cold_job["out"])
    assert (run / "checkpoints" / "last.pt").is_file() and not (run / "metrics.json").exists()
    resumed = _torchrun(str(out), "--resume", cache=cold_job["cache"], module=worker)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    # same configuration (the uninterrupted job came through `bench run`, this one through the
    # library as `bench run` resolves it), same per-epoch losses and val metrics, same test
    history = (run / "history.csv").read_text().splitlines()
    whole = (cold_job["run"] / "history.csv").read_text().splitlines()
    assert [_without_seconds(r, history[0]) for r in history] == [
        _without_seconds(r, whole[0]) for r in whole]
    assert len(history) == 1 + EPOCHS
    metrics = json.loads((run / "metrics.json").read_text())
    expected = json.loads((cold_job["run"] / "metrics.json").read_text())
    for key in ("test", "selection", "occlusion"):
        assert metrics.get(key) == expected.get(key), key
    assert json.loads((run / "config.json").read_text()) == json.loads(
        (cold_job["run"] / "config.json").read_text())


def _without_seconds(row: str, header: str) -> list[str]:
    """A history.csv row without its wall-clock column."""
    names = header.split(",")
    return [v for n, v in zip(names, row.split(","), strict=True) if n != "seconds"]


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
