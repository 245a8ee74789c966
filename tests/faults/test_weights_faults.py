"""Weight files read as data: TorchScript without torch.jit, detector pickles without code,
and operating-system failures (unwritable paths) as one line naming the path."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from models.encoders.clip import Backbone
from models.encoders.weights_file import read_weights
from models.errors import ModelError
from tests.faults.conftest import MOUNT_PROBLEM, assert_one_line_failure
from tests.faults.test_checkpoint_faults import CreatesFileWhenUnpickled, craft


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning", "ignore::FutureWarning")
def test_torchscript_archive_is_read_without_torch_jit(tmp_path: Path, monkeypatch) -> None:
    """OpenAI's release format: the tensors equal ``torch.jit.load(...).state_dict()``, and
    loading works with ``torch.jit.load`` disabled (it is never called)."""
    torch.manual_seed(5)
    square = Backbone("tiny", image_size=(64, 64)).eval()
    traced = torch.jit.trace_module(
        square.clip, {"encode_image": (torch.ones(1, 3, 64, 64),),
                      "encode_text": (torch.zeros(1, 77, dtype=torch.long),)}, check_trace=False)
    path = tmp_path / "openai-like.pt"
    traced.save(str(path))
    reference = torch.jit.load(str(path)).state_dict()

    def no_jit(*_args, **_kwargs):
        raise AssertionError("torch.jit.load must not be used to read weights")

    monkeypatch.setattr(torch.jit, "load", no_jit)
    state, torchscript = read_weights(path)
    assert torchscript and set(state) == set(reference)
    assert all(torch.equal(state[k], reference[k]) for k in reference)
    loaded = Backbone("tiny", pretrained=str(path), image_size=(64, 64), quick_gelu=False)
    torch.testing.assert_close(loaded.clip.token_embedding.weight.detach(),
                               square.clip.token_embedding.weight.detach())


def test_crafted_backbone_weights_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    with pytest.raises(ModelError, match="refused") as caught:
        Backbone("tiny", pretrained=str(craft(tmp_path / "evil.pt", marker)))
    assert "\n" not in str(caught.value) and "evil.pt" in str(caught.value)
    assert not marker.exists()


def test_safetensors_weights_load(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    torch.manual_seed(6)
    source = Backbone("tiny")
    path = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in source.clip.state_dict().items()}, str(path))
    loaded = Backbone("tiny", pretrained=str(path))
    torch.testing.assert_close(loaded.clip.visual.proj.detach(), source.clip.visual.proj.detach())


def test_detector_pickles_hold_arrays_only(tmp_path: Path) -> None:
    from ogor.extract.base import ExtractionError
    from ogor.extract.safe_weights import read_detector_weights

    good = tmp_path / "model_final.pkl"
    weights = {"conv1.weight": np.ones((2, 3), np.float32), "conv1.weight_momentum": np.ones(2)}
    good.write_bytes(pickle.dumps({"blobs": weights}, protocol=2))
    loaded = read_detector_weights(good)
    assert loaded["__author__"] == "Caffe2" and list(loaded["model"]) == ["conv1.weight"]
    assert np.array_equal(loaded["model"]["conv1.weight"], weights["conv1.weight"])
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"model": CreatesFileWhenUnpickled(marker), "__author__": 1}))
    with pytest.raises(ExtractionError, match="refused"):
        read_detector_weights(evil)
    with pytest.raises(ExtractionError, match="refused"):
        read_detector_weights(craft(tmp_path / "evil.pth", marker))
    assert not marker.exists()


def test_unwritable_output_is_one_line_naming_the_path(tmp_path: Path) -> None:
    from ogor.cli import main as ogor_main

    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    result = CliRunner().invoke(ogor_main, ["synth", "--out", str(blocker / "demo"), "--ids",
                                            "2", "--views", "1"])
    line = assert_one_line_failure(result.output, result.exit_code)
    assert str(blocker) in line and result.exit_code in (1, 2)


@pytest.mark.skipif(MOUNT_PROBLEM is not None, reason=str(MOUNT_PROBLEM))
def test_read_only_file_system_is_one_line(finished_run, tmpfs_factory) -> None:
    import subprocess

    from benchmark.cli import main as bench_main

    runs, _root = finished_run
    fs = tmpfs_factory("64k")
    subprocess.run(["mount", "-o", "remount,ro", str(fs.path)], check=True, timeout=30)
    result = CliRunner().invoke(bench_main, ["table", str(runs), "--out", str(fs.path / "t.md")])
    line = assert_one_line_failure(result.output, result.exit_code,
                                   contains="Read-only file system")
    assert str(fs.path) in line and result.exit_code == 1
