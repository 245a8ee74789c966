"""One rule for every writing command of both command lines (``toreid.paths``): never write
inside a folder the command reads, never outside ``--out`` (labels are plain names).

Every command of ``ogor`` and ``bench`` is classified here: a new command fails
:func:`test_every_command_is_classified` until it is, so the rule cannot be forgotten."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from benchmark.cli import main as bench_main
from ogor.cli import main as ogor_main
from tests.benchmark.helpers import make_color_dataset

#: Commands that only read (print, check).
READ_ONLY = {"bench ls", "bench serve", "ogor check", "ogor stats", "ogor verify", "ogor taxonomy"}

#: Commands that write but read no dataset or photo folder (their output is their --out only).
WRITE_ONLY = {"bench table", "bench report", "bench export", "ogor synth", "ogor fetch-oil",
              "ogor render-default-oil"}

#: Commands that read a folder and write: their arguments with the output inside it
#: (``DS`` is the dataset read, ``RUN`` a run folder).
INSIDE_CASES = {
    "bench run": ["run", "--models", "clip", "--datasets", "ds=DS", "--out", "DS/runs"],
    "bench eval": ["eval", "--run", "RUN", "--dataset", "DS", "--json-out", "DS/eval.json"],
    "bench query": ["query", "a man", "--run", "RUN", "--dataset", "DS", "--out", "DS/q.png"],
    "bench index": ["index", "--run", "RUN", "--dataset", "ds=DS", "--out", "DS/index"],
    "bench search": ["search", "DS", "a man", "--out", "DS/strip.png"],
    "bench robustness": ["robustness", "--run", "RUN", "--source", "DS", "--out", "DS/rob"],
    "bench import": ["import", "--format", "irra", "RUN/none.pth", "--dataset", "ds=DS",
                     "--out", "DS/runs/imported"],
    "ogor generate": ["generate", "DS", "--out", "DS/occluded"],
    "ogor preview": ["preview", "DS", "--out", "DS/grid.png"],
    "ogor convert": ["convert", "DS", "--out", "DS/copy", "--to", "cuhk-pedes"],
    "ogor synth-parsing": ["synth-parsing", "DS", "DS/parsing"],
    "ogor extract-oil": ["extract-oil", "DS", "--out", "DS/oil"],
    "ogor import-oil": ["import-oil", "DS", "--out", "DS/oil"],
    "ogor oil-sheet": ["oil-sheet", "DS", "--out", "DS/sheet.png"],
}

#: Commands that turn a label into a folder under --out.
LABEL_CASES = {
    "bench run --datasets": ["run", "--models", "clip", "--datasets", "../up=DS",
                             "--out", "OUT/runs"],
    "bench run --eval-datasets": ["run", "--models", "clip", "--train-dataset", "t=DS",
                                  "--eval-datasets", "a/b=DS", "--out", "OUT/runs"],
    "bench import --dataset": ["import", "--format", "irra", "RUN/none.pth", "--dataset",
                               "x/../y=DS", "--out", "OUT/runs/imported"],
}


def _commands(program: str, group: click.Group) -> set[str]:
    ctx = click.Context(group)
    return {f"{program} {name}" for name in group.list_commands(ctx)}


def test_every_command_is_classified():
    every = _commands("bench", bench_main) | _commands("ogor", ogor_main)
    classified = READ_ONLY | WRITE_ONLY | set(INSIDE_CASES)
    assert every == classified, (f"unclassified: {sorted(every - classified)}; "
                                 f"gone: {sorted(classified - every)}")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    base = tmp_path_factory.mktemp("writing-rule")
    dataset = make_color_dataset(base / "ds", ids=8)
    run = base / "run"
    run.mkdir()
    return {"DS": dataset, "RUN": run, "OUT": base / "out"}


def _snapshot(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _invoke(args, folders, tmp_path):
    def fill(arg: str) -> str:
        for key, path in folders.items():
            arg = arg.replace(key, str(path))
        return arg

    program = bench_main if args[0] in {c.split()[1] for c in INSIDE_CASES
                                        if c.startswith("bench")} else ogor_main
    return CliRunner().invoke(program, [fill(a) for a in args],
                              env={"TOREID_CACHE": str(tmp_path / "cache")})


@pytest.mark.parametrize("name", sorted(INSIDE_CASES))
def test_no_command_writes_inside_a_folder_it_reads(name, folders, tmp_path):
    before = _snapshot(folders["DS"])
    result = _invoke(INSIDE_CASES[name], folders, tmp_path)
    assert result.exit_code != 0, result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    assert "inside" in lines[0] and "Traceback" not in result.output
    assert _snapshot(folders["DS"]) == before
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("name", sorted(LABEL_CASES))
def test_no_label_escapes_out(name, folders, tmp_path):
    result = _invoke(LABEL_CASES[name], folders, tmp_path)
    assert result.exit_code != 0, result.output
    assert "plain name" in result.output and "Traceback" not in result.output
    assert not folders["OUT"].exists()
    assert not (folders["OUT"].parent / "up").exists()


@pytest.mark.parametrize("text", ["", "   "])
def test_an_empty_query_is_refused(text, folders, tmp_path):
    result = _invoke(["query", text, "--run", "RUN", "--dataset", "DS", "--out", "OUT/q.png"],
                     folders, tmp_path)
    assert result.exit_code != 0
    assert result.output.strip() == ("error: TEXT: the query is empty; give a description to "
                                     "rank the gallery by")
    assert not folders["OUT"].exists()
