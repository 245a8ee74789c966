"""``bench run`` checks every option before the first training step: a bad ``--model-opt``
or dataset label is one line naming the option and the value, and nothing is written."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from benchmark.cli import main


@pytest.mark.parametrize(("args", "expected"), [
    (["--model-opt", "rho_image=abc"], "rho_image='abc' is not a number"),
    (["--model-opt", "lr=abc"], "lr='abc' is not a number"),
    (["--model-opt", "rho_image=2"], "rho_image=2 is out of range"),
    (["--model-opt", "tau=-0.1"], "tau must be positive"),  # the model config's own check
    (["--model-opt", "max_words=2.5"], "max_words=2.5 is not an integer"),
    (["--model-opt", "num_classes=0"], "num_classes is set by the command itself"),
    (["--model-opt", "seed=3"], "seed is set by the command itself"),
    (["--model-opt", "no_such_option=1"], "unknown key 'no_such_option' for model 'mgcc'"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_bad_model_options_are_refused_before_training(tmp_path, args, expected):
    out = tmp_path / "runs"
    result = CliRunner().invoke(main, ["run", "--models", "mgcc", "--epochs", "1",
                                       "--out", str(out), *args],
                                env={"TOREID_CACHE": str(tmp_path / "cache")})
    assert result.exit_code != 0
    line = result.output.strip()
    assert line.startswith("error: --model-opt:") and "\n" not in line, line
    assert expected in line
    # Checked before the demo data or any run was made.
    assert not out.exists() and not (tmp_path / "cache").exists()


@pytest.mark.parametrize("label", ["a/b", "..", "../escaped", "x..y"])
def test_eval_dataset_labels_are_names_and_are_checked_before_training(tmp_path, label):
    source = tmp_path / "src"
    source.mkdir()
    out = tmp_path / "runs"
    result = CliRunner().invoke(main, [
        "run", "--models", "clip", "--train-dataset", f"train={source}",
        "--eval-datasets", f"{label}={source}", "--out", str(out)])
    assert result.exit_code != 0
    line = result.output.strip()
    assert line.startswith("error: --eval-datasets:") and "plain name" in line, line
    assert not out.exists()


def test_a_missing_eval_dataset_names_its_own_option(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    result = CliRunner().invoke(main, [
        "run", "--models", "clip", "--train-dataset", f"train={source}",
        "--eval-datasets", f"other={tmp_path / 'missing'}", "--out", str(tmp_path / "runs")])
    assert result.exit_code != 0
    assert result.output.strip().startswith("error: --eval-datasets: dataset root")


def test_a_run_label_cannot_escape_out(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    result = CliRunner().invoke(main, ["run", "--models", "clip",
                                       "--datasets", f"../escaped={source}",
                                       "--out", str(tmp_path / "x" / "runs")])
    assert result.exit_code != 0 and "plain name" in result.output
    assert not (tmp_path / "x").exists() and not (tmp_path / "escaped").exists()
