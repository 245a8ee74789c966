"""Released files are data: numeric NumPy scalars (TBPS-CLIP's main.py) are read, anything
that could run code (a crafted TorchScript-like archive) is one line and never unpickled."""

from __future__ import annotations

import io
import pickle
import zipfile

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from benchmark.cli import main
from benchmark.released.importers import read_checkpoint


def test_tbps_clip_main_py_layout_with_numpy_learning_rates_is_read(tmp_path):
    """``{"model", "optimizer", "config"}`` as TBPS-CLIP's main.py saves it: the optimizer's
    learning rates are numpy.float64 (its numpy cosine schedule), the config plain data."""
    state = {"visual.proj": torch.randn(4, 3), "logit_scale": torch.tensor(4.6)}
    path = tmp_path / "checkpoint_best.pth"
    torch.save({"model": state,
                "optimizer": {"state": {}, "param_groups": [
                    {"lr": np.float64(1e-5), "initial_lr": np.float64(1e-4),
                     "step": np.int64(3), "weight_decay": np.float32(0.02)}]},
                "config": {"model": {"embed_dim": 512}, "schedule": {"lr": 1e-5}}}, path)
    read = read_checkpoint(path, "tbps-clip")
    assert read.keys() == state.keys()
    assert all(torch.equal(read[k], state[k]) for k in state)


def test_a_numpy_object_array_is_still_refused(tmp_path):
    path = tmp_path / "objects.pth"
    torch.save({"model": {"w": torch.zeros(1)}, "extra": np.array([{"a": 1}], dtype=object)},
               path)
    with pytest.raises(Exception, match="refused") as caught:
        read_checkpoint(path, "tbps-clip")
    assert "\n" not in str(caught.value)


class _Effect:
    """Unpickling this would create the marker file (the side effect of running code)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_crafted_torchscript_like_archive_is_one_line_and_never_runs(tmp_path):
    marker = tmp_path / "side-effect"
    data = pickle.dumps({"weights": _Effect(marker)}, protocol=2)
    path = tmp_path / "ViT-B-16.pt"
    with zipfile.ZipFile(path, "w") as archive:  # what torch.jit.save's layout looks like
        archive.writestr("model/data.pkl", data)
        archive.writestr("model/constants.pkl", pickle.dumps((), protocol=2))
        archive.writestr("model/version", "3\n")
    pickle.loads(io.BytesIO(data).read())  # the payload really runs code when unpickled ...
    assert marker.exists()
    marker.unlink()
    result = CliRunner().invoke(main, ["import", "--format", "openai", str(path),
                                       "--out", str(tmp_path / "run"), "--backbone", "tiny"])
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "refused" in lines[0], result.output
    assert not marker.exists() and not (tmp_path / "run").exists()  # ... but never here
