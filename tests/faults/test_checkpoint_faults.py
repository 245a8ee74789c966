"""Checkpoints are data: crafted, truncated, foreign and incomplete run files, one line each."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from benchmark.cli import main
from benchmark.records.checkpoints import (
    CheckpointError,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from tests.faults.conftest import RUN_SUBDIR, assert_one_line_failure, run_args
from toreid.errors import ToreidError


class CreatesFileWhenUnpickled:
    """A pickle payload: unpickling it calls ``open(marker, "w")``, creating the file."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def craft(path: Path, marker: Path) -> Path:
    """A checkpoint-looking file whose unpickling would create ``marker``."""
    torch.save({"model": CreatesFileWhenUnpickled(marker), "epoch": 1}, path)
    return path


def test_the_crafted_checkpoint_really_runs_code_when_unpickled(tmp_path: Path) -> None:
    """The payload is live (so the refusals below mean something): a full unpickle runs it."""
    marker = tmp_path / "pwned"
    path = craft(tmp_path / "evil.pt", marker)
    torch.load(path, weights_only=False)
    assert marker.exists()


def _copy_run(finished_run, tmp_path: Path) -> tuple[Path, Path]:
    runs, root = finished_run
    out = tmp_path / "runs"
    shutil.copytree(runs, out)
    return out, root


def test_every_command_that_loads_checkpoints_refuses_a_crafted_one(finished_run,
                                                                    tmp_path: Path) -> None:
    out, root = _copy_run(finished_run, tmp_path)
    run = out / RUN_SUBDIR
    marker = tmp_path / "pwned"
    evil = craft(tmp_path / "evil.pt", marker)
    shutil.copyfile(evil, run / "checkpoints" / "best.pt")
    shutil.copyfile(evil, run / "checkpoints" / "last.pt")

    commands = {
        "eval": ["eval", "--run", str(run), "--quiet"],
        "query": ["query", "a person in a red shirt", "--run", str(run), "--out",
                  str(tmp_path / "q.png")],
    }
    # an unfinished run (no metrics.json) whose last.pt is the crafted file
    (run / "metrics.json").unlink()
    commands["run --resume"] = run_args(root, out, "--resume")
    # the backbone's weights file
    commands["run --pretrained"] = run_args(root, tmp_path / "fresh", "--pretrained", str(evil))
    for name, args in commands.items():
        # in-process (a real process costs ~20 s of imports on a shared CPU; the generate
        # fault tests run the CLIs as real processes)
        result = CliRunner().invoke(main, args)
        line = assert_one_line_failure(result.output, result.exit_code)
        assert "refused" in line, (name, line)
        assert any(f in line for f in ("evil.pt", "best.pt", "last.pt")), (name, line)
        assert not marker.exists(), name
    assert not (tmp_path / "q.png").exists()


def test_truncated_foreign_and_misshapen_checkpoints_are_one_line(finished_run,
                                                                  tmp_path: Path) -> None:
    out, _root = _copy_run(finished_run, tmp_path)
    run = out / RUN_SUBDIR
    best = run / "checkpoints" / "best.pt"
    good = best.read_bytes()
    runner = CliRunner()

    def eval_line(contains: str) -> None:
        result = runner.invoke(main, ["eval", "--run", str(run), "--quiet"])
        assert result.exit_code == 2, result.output
        assert_one_line_failure(result.output, result.exit_code, contains=contains)

    best.write_bytes(good[: len(good) // 2])
    eval_line("truncated or corrupt")
    state = torch.load(__import__("io").BytesIO(good), weights_only=True)
    weights = dict(state["model"])
    weights.pop(next(iter(weights)))
    torch.save({"model": weights, "epoch": 1}, best)
    eval_line("not a checkpoint of model 'clip'")
    weights = dict(state["model"])
    key = next(k for k, v in weights.items() if v.ndim == 2)
    weights[key] = torch.zeros(3, 3)
    torch.save({"model": weights, "epoch": 1}, best)
    eval_line(f"'{key}' is (3, 3) in the file")
    torch.save({"epoch": 1}, best)
    eval_line("field 'model' missing")
    torch.save([1, 2, 3], best)
    eval_line("holds a list")


def test_incomplete_run_records_are_one_line(finished_run, tmp_path: Path) -> None:
    out, _root = _copy_run(finished_run, tmp_path)
    run = out / RUN_SUBDIR
    runner = CliRunner()
    config = json.loads((run / "config.json").read_text())
    del config["model"]["config"]
    (run / "config.json").write_text(json.dumps(config))
    result = runner.invoke(main, ["eval", "--run", str(run), "--quiet"])
    assert_one_line_failure(result.output, result.exit_code, contains="field 'model.config'")
    (run / "config.json").write_text('{"model": {')
    result = runner.invoke(main, ["eval", "--run", str(run), "--quiet"])
    assert_one_line_failure(result.output, result.exit_code, contains="malformed JSON")
    (run / "config.json").unlink()
    result = runner.invoke(main, ["eval", "--run", str(run), "--quiet"])
    assert_one_line_failure(result.output, result.exit_code, contains="run config not found")

    metrics = json.loads((run / "metrics.json").read_text())
    del metrics["test"]
    (run / "metrics.json").write_text(json.dumps(metrics))
    result = runner.invoke(main, ["table", str(out)])
    assert_one_line_failure(result.output, result.exit_code, contains="metrics.json")
    (run / "metrics.json").write_text("{")
    result = runner.invoke(main, ["table", str(out)])
    assert_one_line_failure(result.output, result.exit_code, contains="malformed JSON")


def test_last_checkpoint_is_weights_only_and_rng_states_round_trip(finished_run,
                                                                   tmp_path: Path) -> None:
    runs, _root = finished_run
    last = torch.load(runs / RUN_SUBDIR / "checkpoints" / "last.pt", weights_only=True)
    assert {"model", "optimizer", "scheduler", "scaler", "rng", "epoch"} <= set(last)

    random.seed(11)
    np.random.seed(12)
    torch.manual_seed(13)
    np.random.standard_normal()  # a cached Gaussian is part of NumPy's state
    save_checkpoint(tmp_path / "rng.pt", {"rng": rng_state()})
    expected = (random.random(), np.random.standard_normal(3), torch.rand(3))
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    set_rng_state(load_checkpoint(tmp_path / "rng.pt")["rng"])
    assert random.random() == expected[0]
    assert np.array_equal(np.random.standard_normal(3), expected[1])
    assert torch.equal(torch.rand(3), expected[2])


def test_a_failed_checkpoint_write_keeps_the_good_one(tmp_path: Path, tmpfs_factory) -> None:
    """On a full file system the save fails naming the file; the old checkpoint stays whole."""
    fs = tmpfs_factory("256k")
    path = fs.path / "checkpoints" / "last.pt"
    save_checkpoint(path, {"model": {"w": torch.ones(8)}, "epoch": 1})
    with pytest.raises(OSError) as caught:
        save_checkpoint(path, {"model": {"w": torch.ones(200_000)}, "epoch": 2})
    assert caught.value.filename == str(path)
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temporary file left


def test_bench_run_on_a_full_disk_is_one_line(finished_run, tmpfs_factory) -> None:
    """A real ``bench run`` whose run folder cannot hold a checkpoint: one line, the path."""
    _runs, root = finished_run
    fs = tmpfs_factory("512k")
    result = CliRunner().invoke(main, run_args(root, fs.path / "runs"))
    line = assert_one_line_failure(result.output, result.exit_code, contains="No space left")
    assert str(fs.path) in line and result.exit_code == 1
    ckpts = fs.path / "runs" / RUN_SUBDIR / "checkpoints"
    assert not any(p.name.endswith(".tmp") for p in ckpts.iterdir())


def test_debug_shows_the_traceback(finished_run, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TOREID_DEBUG", "0")  # restored afterwards: --debug sets it to 1
    out, _root = _copy_run(finished_run, tmp_path)
    run = out / RUN_SUBDIR
    (run / "checkpoints" / "best.pt").write_bytes(b"garbage")
    result = CliRunner().invoke(main, ["--debug", "eval", "--run", str(run)])
    assert isinstance(result.exception, CheckpointError)
    monkeypatch.setenv("TOREID_DEBUG", "0")
    result = CliRunner().invoke(main, ["eval", "--run", str(run)])
    assert result.exit_code == 2 and result.exception is not None  # SystemExit: one line
    assert not isinstance(result.exception, CheckpointError)
    monkeypatch.setenv("TOREID_DEBUG", "1")
    result = CliRunner().invoke(main, ["eval", "--run", str(run)])
    assert isinstance(result.exception, CheckpointError)


def test_dataloader_worker_failure_is_one_line(tmp_path: Path) -> None:
    """A missing image met inside a DataLoader worker process (``--workers 2``): the worker's
    error, not the traceback the DataLoader wraps it in."""
    from tests.benchmark.helpers import make_color_dataset

    root = make_color_dataset(tmp_path / "data", ids=8, views=2,
                              splits={"train": 4, "val": 2, "test": 2})
    (root / "imgs" / "p001_0.png").unlink()  # a train image
    result = CliRunner().invoke(main, run_args(root, tmp_path / "runs", "--workers", "2"))
    line = assert_one_line_failure(result.output, result.exit_code, contains="p001_0.png")
    assert "image file not found" in line and result.exit_code == 2


def test_export_to_safetensors_and_load_back(finished_run, tmp_path: Path) -> None:
    from benchmark.records.rebuild import rebuild_from_run
    from benchmark.released.export import load_exported

    runs, _root = finished_run
    out = tmp_path / "clip.safetensors"
    result = CliRunner().invoke(main, ["export", "--run", str(runs / RUN_SUBDIR), "--out",
                                       str(out)])
    assert result.exit_code == 0, result.output
    model, _config = load_exported(out)
    reference, _ = rebuild_from_run(runs / RUN_SUBDIR)
    for name, tensor in reference.state_dict().items():
        assert torch.equal(tensor, model.state_dict()[name]), name
    out.write_bytes(out.read_bytes()[:100])
    with pytest.raises(ToreidError, match="not a readable"):
        load_exported(out)
