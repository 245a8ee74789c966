"""``bench run --log tensorboard``: live epoch scalars where tensorboard is installed, a one-line
error before any training where it is not."""

from __future__ import annotations

import importlib.util

from click.testing import CliRunner

from benchmark.cli import main

HAS_TENSORBOARD = importlib.util.find_spec("tensorboard") is not None


def test_log_tensorboard(color_dataset, tmp_path):
    result = CliRunner().invoke(main, [
        "run", "--models", "clip", "--preset", "tiny", "--epochs", "2", "--quiet",
        "--datasets", f"colors={color_dataset}", "--out", str(tmp_path), "--log", "tensorboard",
    ])
    run = tmp_path / "colors" / "clip" / "seed1"
    if not HAS_TENSORBOARD:
        assert result.exit_code == 2, result.output
        assert "tensorboard package is not installed" in result.output
        assert len(result.output.strip().splitlines()) == 1
        assert not run.exists()  # refused before training
        return
    assert result.exit_code == 0, result.output
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    tags = events.Tags()["scalars"]
    assert "loss/total" in tags and "val/R@1" in tags
    assert [e.step for e in events.Scalars("loss/total")] == [1, 2]


def test_without_tensorboard_the_option_is_refused_before_training(color_dataset, tmp_path,
                                                                   monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails as if absent
    result = CliRunner().invoke(main, [
        "run", "--models", "clip", "--preset", "tiny", "--quiet", "--datasets",
        f"colors={color_dataset}", "--out", str(tmp_path), "--log", "tensorboard",
    ])
    assert result.exit_code == 2, result.output
    assert "pip install 'toreid[tensorboard]'" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not any(tmp_path.iterdir())
