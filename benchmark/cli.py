"""The ``bench`` command line: run, eval, table, query, ls.

Each command parses its options and calls one library function (:mod:`benchmark.runner`,
:mod:`benchmark.evaluate`, :mod:`benchmark.leaderboard`, :mod:`benchmark.query`). User errors
(``ogor.errors.ToreidError``, which ``models.ModelError`` subclasses) print one line and exit 2.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from toreid.cli import debug_option, user_errors
from toreid.errors import ToreidError
from toreid.paths import check_writes


def _number_list(text: str, option: str, kind: type = int) -> list:
    """Comma-separated numbers of ``kind`` (int or float); a one-line error names ``option``."""
    what = "integers" if kind is int else "numbers"
    try:
        values = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ToreidError(f"{option}: expected comma-separated {what}, got {text!r}") from None
    if not values:
        raise ToreidError(f"{option}: no value given")
    return values


def _int_list(text: str, option: str) -> list[int]:
    return _number_list(text, option, int)


def _float_list(text: str, option: str) -> list[float]:
    return _number_list(text, option, float)


def _parse_model_opts(items: tuple[str, ...]) -> dict:
    """``KEY=VALUE`` pairs; values parsed as JSON when they parse (numbers, null, lists)."""
    import json

    options = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ToreidError(f"--model-opt: expected KEY=VALUE, got {item!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@debug_option
def main() -> None:
    """bench: train, evaluate and rank text-based (occluded) person re-id models.

    \b
    Example:
      bench run --models mgcc,irra          # the embedded synthetic demo, CPU, minutes
      bench table runs/ --format md --with-paper
    """


@main.command("run")
@click.option("--models", "models_", default="mgcc,irra", show_default=True,
              help="Comma-separated model names (see `bench ls`); 'all' is every model, "
                   "'table2' the paper's Table 2 rows in order.")
@click.option("--datasets", default=None,
              help="NAME=ROOT[,NAME=ROOT...]; NAME labels the leaderboard column (e.g. "
                   "Occluded-CUHK-PEDES), the format is detected. Default: the synthetic demo.")
@click.option("--seeds", default="1", show_default=True, help="Comma-separated seeds.")
@click.option("--preset", default=None, help="paper or tiny (default: tiny for the demo, "
              "paper otherwise).")
@click.option("--epochs", type=int, default=None)
@click.option("--batch-size", type=int, default=None)
@click.option("--lr", type=float, default=None)
@click.option("--optimizer", type=click.Choice(["adam", "adamw", "sgd"]), default=None)
@click.option("--warmup-epochs", type=int, default=None)
@click.option("--grad-clip", type=float, default=None)
@click.option("--select-metric", type=click.Choice(["R@1", "Rsum", "mAP"]), default=None,
              help="Val metric that picks the checkpoint (default R@1).")
@click.option("--eval-every", type=int, default=None)
@click.option("--select-on", type=click.Choice(["val", "test"]), default=None,
              help="Split that picks the checkpoint: val (default; never test) or test (the "
                   "published releases' protocol; recorded and marked in every table).")
@click.option("--icfg-split", type=click.Choice(["irra", "mgcc-code"]), default=None,
              help="ICFG-PEDES test split: irra (all 19,848 test images, default) or mgcc-code "
                   "(the MGCC release: first 10,000 test entries; the rest become val).")
@click.option("--dry-run", is_flag=True,
              help="Resolve and print the configuration of every (model, dataset, seed) as "
                   "JSON; train nothing.")
@click.option("--device", type=str, default=None, help="auto, cpu, cuda or cuda:N.")
@click.option("--amp", "amp", flag_value="bf16", default=None,
              help="Mixed precision (bf16) on CUDA; see --amp-dtype.")
@click.option("--amp-dtype", type=click.Choice(["off", "bf16", "fp16"]), default=None)
@click.option("--workers", type=int, default=None, help="DataLoader worker processes.")
@click.option("--backbone", default=None, help="Backbone preset (ViT-B-16, ViT-B-32-224, tiny).")
@click.option("--pretrained", default=None,
              help="Weights: an open_clip tag (needs a network) or a local file.")
@click.option("--model-opt", multiple=True, metavar="KEY=VALUE",
              help="Extra model option, e.g. rho_image=0.3 (repeatable).")
@click.option("--i2t", is_flag=True, default=None, help="Also report image-to-text metrics.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("runs"), show_default=True)
@click.option("--resume", is_flag=True, help="Continue unfinished runs from checkpoints/last.pt"
              " (a finished run of the same configuration is always reused, never retrained).")
@click.option("--demo-ids", type=int, default=None,
              help="Identities of the synthetic demo dataset (default 260: 52 test ids).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--train-dataset", default=None,
              help="Crossings: NAME=ROOT to train on (instead of --datasets) ...")
@click.option("--eval-datasets", default=None,
              help="... and NAME=ROOT[,...] to evaluate the trained runs on as well (the "
                   "train -> test matrix of `bench table`).")
@click.option("--log", "log_to", type=click.Choice(["tensorboard"]), default=None,
              help="Also log each epoch live (needs the optional extra: pip install "
                   "'toreid[tensorboard]').")
@user_errors
def run_cmd(models_, datasets, seeds, preset, epochs, batch_size, lr, optimizer, warmup_epochs,
            grad_clip, select_metric, eval_every, select_on, icfg_split, dry_run, device, amp,
            amp_dtype, workers, backbone, pretrained, model_opt, i2t, out, resume, demo_ids,
            quiet, train_dataset=None, eval_datasets=None, log_to=None) -> None:
    """Train every (model, dataset, seed), evaluate it and print the leaderboard.

    Writes runs/<dataset>/<model>/seed<k>/ (config.json, env.json, history.csv, metrics.json,
    checkpoints/). The checkpoint is selected on val (never test); without val (ICFG-PEDES), the
    last epoch. --select-on test selects on test as the published releases do (recorded, and
    marked "selected on test, as published" in every table). Multi-GPU: launch with torchrun
    (one process per GPU).

    \b
    Example:
      bench run --models mgcc,irra
      bench run --models mgcc,irra --preset paper --dry-run
      bench run --models mgcc,irra,clip --preset paper --seeds 1,2,3 \\
          --datasets Occluded-CUHK-PEDES=data/occ-cuhk,Occluded-RSTPReid=data/occ-rstp
      torchrun --nproc_per_node 4 -m benchmark.cli run --models mgcc --preset paper \\
          --datasets Occluded-CUHK-PEDES=data/occ-cuhk --amp
    """
    from benchmark import runner
    from benchmark.table2 import expand_model_names
    from models import list_models

    names = expand_model_names([m.strip() for m in models_.split(",") if m.strip()],
                               list_models())
    runner.check_models(names)
    model_opts = _parse_model_opts(model_opt)
    crossings = _crossing_pairs(datasets, train_dataset, eval_datasets)
    if crossings:
        datasets = train_dataset
    hook = None
    if log_to == "tensorboard":
        from benchmark.live_log import tensorboard_hook

        hook = tensorboard_hook()
    demo = datasets is None
    overrides = {
        "epochs": epochs, "batch_size": batch_size, "lr": lr, "optimizer": optimizer,
        "warmup_epochs": warmup_epochs, "grad_clip": grad_clip, "select_metric": select_metric,
        "eval_every": eval_every, "device": device, "amp": amp_dtype or amp, "workers": workers,
        "i2t": i2t, "backbone": backbone, "pretrained": pretrained, "select_on": select_on,
        "icfg_split": icfg_split, **model_opts,
    }
    runner.validate_runs(names, preset or ("tiny" if datasets is None else "paper"), overrides,
                         model_opts)
    reads = {f"--datasets {label}": root
             for label, root in (runner.parse_datasets(datasets) if datasets else [])}
    reads.update({f"--eval-datasets {label}": root for label, root in crossings})
    check_writes("--out", out, reads)
    if dry_run:
        import json

        from benchmark.dry_run import describe_runs

        targets = ([(runner.DEMO_LABEL, None)] if demo else runner.parse_datasets(datasets))
        records = describe_runs(names, targets, _int_list(seeds, "--seeds"),
                                preset=preset or ("tiny" if demo else "paper"),
                                overrides=overrides)
        click.echo(json.dumps(records, indent=2))
        return
    if demo:
        preset = preset or "tiny"
        click.echo("No --datasets: the embedded demo (synthetic data, tiny random-init models; "
                   "numbers are NOT comparable to the paper).")
        spec = runner.DemoSpec() if demo_ids is None else runner.DemoSpec(ids=demo_ids)
        pairs = [(runner.DEMO_LABEL, runner.demo_dataset(spec, log=click.echo))]
    else:
        preset = preset or "paper"
        pairs = runner.parse_datasets(datasets)
    finished = runner.run_benchmark(
        names, pairs, _int_list(seeds, "--seeds"), preset=preset, overrides=overrides,
        out=out, resume=resume, progress=not quiet, log=click.echo,
        **({"epoch_hook": hook} if hook else {}))
    from benchmark import dist

    if crossings:  # every rank takes part (features are gathered); rank 0 writes
        from benchmark.crossings import evaluate_crossings

        for run in finished:
            evaluate_crossings(run.path, crossings, device=overrides["device"] or "auto",
                               progress=not quiet)
    if not dist.current().is_main:
        return
    click.echo("")
    click.echo(runner.leaderboard_text(finished, "md"), nl=False)
    if crossings:
        from benchmark.crossings import crossing_matrix, to_markdown

        click.echo("")
        click.echo(to_markdown(crossing_matrix(finished)), nl=False)
    chance = runner.chance_line(finished)
    if chance:
        click.echo(f"Chance level: {chance}.")
    if demo:
        click.echo("These numbers come from SYNTHETIC data and TINY RANDOM-INIT models trained "
                   "for minutes: they show that the pipeline learns, not how the paper's models "
                   "perform.")


def _crossing_pairs(datasets: str | None, train: str | None,
                    evals: str | None) -> list[tuple[str, Path]]:
    """The ``--eval-datasets`` pairs; refuses options that do not go together."""
    from benchmark import runner

    if train is None and evals is None:
        return []
    if datasets is not None:
        raise ToreidError("--train-dataset replaces --datasets: give one or the other")
    if train is None or evals is None:
        raise ToreidError("--train-dataset and --eval-datasets go together")
    if len(runner.parse_datasets(train, "--train-dataset")) != 1:
        raise ToreidError("--train-dataset: give exactly one NAME=ROOT")
    return runner.parse_datasets(evals, "--eval-datasets")


@main.command("eval")
@click.option("--run", "run_path", type=click.Path(path_type=Path, exists=True, file_okay=False),
              required=True, help="A run folder (runs/<dataset>/<model>/seed<k>).")
@click.option("--dataset", "dataset_root", type=click.Path(path_type=Path), default=None,
              help="Dataset root to evaluate on (default: the run's own dataset).")
@click.option("--split", default="test", show_default=True, help="test or val.")
@click.option("--device", default="auto", show_default=True)
@click.option("--amp", type=click.Choice(["off", "bf16", "fp16"]), default="off",
              show_default=True)
@click.option("--batch-size", type=int, default=128, show_default=True)
@click.option("--query-chunk", type=int, default=512, show_default=True,
              help="Queries per similarity block (bounds memory).")
@click.option("--i2t", is_flag=True, help="Also report image-to-text metrics.")
@click.option("--compile", "compile_", is_flag=True,
              help="torch.compile the similarity (CUDA; much faster for MGCC).")
@click.option("--json-out", type=click.Path(path_type=Path), default=None,
              help="Write the metrics here as JSON.")
@click.option("--quiet", is_flag=True)
@user_errors
def eval_cmd(run_path, dataset_root, split, device, amp, batch_size, query_chunk, i2t, compile_,
             json_out, quiet) -> None:
    """Re-evaluate a run's selected checkpoint (best.pt) on a dataset.

    Prints t2i R@1/5/10, mAP, mINP, Rsum, and the occluded/clean split when the dataset has an
    ogor manifest. The run's own metrics.json is not changed.

    \b
    Example:
      bench eval --run runs/demo-occluded/mgcc/seed1 --dataset data/CUHK-PEDES --i2t
    """
    from benchmark.data import eval_set
    from benchmark.evaluate import evaluate
    from benchmark.train import (
        _occlusion_flags,
        rebuild_from_run,
        recorded_dataset_root,
        resolve_device,
    )
    from ogor.datasets import read_dataset
    from toreid.io import atomic_write_json

    check_writes("--json-out", json_out, {"--dataset": dataset_root})
    model, config = rebuild_from_run(run_path)
    dataset_root = dataset_root or recorded_dataset_root(run_path, config)
    check_writes("--json-out", json_out, {"the run's dataset": dataset_root})
    dev = resolve_device(device)
    model.to(dev)
    problem = eval_set(read_dataset(dataset_root), split, _occlusion_flags(dataset_root))
    result = evaluate(model, problem, device=dev, amp=amp, batch_size=batch_size,
                      query_chunk=query_chunk, i2t=i2t, progress=not quiet,
                      compile_similarity=compile_)
    rows = [("all", result.t2i)] + list((result.occlusion or {}).items())
    if result.i2t:
        rows.append(("i2t", result.i2t))
    _print_metric_table(rows)
    if json_out:
        atomic_write_json(json_out, {"run": str(run_path), "dataset": str(dataset_root),
                                     "split": split, **result.record()})


@main.command("table")
@click.argument("runs", type=click.Path(path_type=Path), default=Path("runs"))
@click.option("--format", "fmt", type=click.Choice(["md", "csv", "latex"]), default="md",
              show_default=True)
@click.option("--with-paper", is_flag=True,
              help="Append the published rows of the MGCC paper's Table 2 (marked published).")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Write to this file instead of stdout.")
@user_errors
def table_cmd(runs, fmt, with_paper, out) -> None:
    """The leaderboard of a runs folder: models x datasets x (R@1, R@5, R@10, mAP, Rsum),
    mean ± std over seeds.

    \b
    Example:
      bench table runs/ --format md --with-paper
      bench table runs/ --format csv --out table2.csv

    With --with-paper: compare with the published rows only runs on datasets occluded by
    `ogor generate --protocol mgcc-code` (Table 2 was measured on the MGCC release's
    occlusions) and trained with `bench run --select-on test` (the releases select on test).
    """
    from benchmark import leaderboard, results
    from toreid.io import atomic_write_bytes

    found = results.find_results(runs)
    if not found and not with_paper:
        raise ToreidError(f"{runs}: no finished run (no metrics.json) found")
    text = leaderboard.render(leaderboard.build_table(found, with_paper=with_paper), fmt)
    if with_paper:  # the note stays out of CSV/LaTeX bodies, so they remain machine-readable
        from benchmark.protocol import COMPARE_NOTE

        if fmt == "md":
            text += "\n" + COMPARE_NOTE + "\n"
        else:
            click.echo(COMPARE_NOTE, err=True)
    from benchmark import crossings

    if fmt == "md" and crossings.has_crossings(found):
        text += "\n" + crossings.to_markdown(crossings.crossing_matrix(found))
    if out:
        atomic_write_bytes(out, text.encode("utf-8"))
    else:
        click.echo(text, nl=False)


@main.command("query")
@click.argument("text")
@click.option("--run", "run_path", type=click.Path(path_type=Path, exists=True, file_okay=False),
              required=True)
@click.option("--dataset", "dataset_root", type=click.Path(path_type=Path), default=None,
              help="Dataset root whose split is the gallery (default: the run's own dataset).")
@click.option("--split", default="test", show_default=True)
@click.option("--topk", type=int, default=10, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=Path("ranking.png"),
              show_default=True)
@click.option("--device", default="auto", show_default=True)
@user_errors
def query_cmd(text, run_path, dataset_root, split, topk, out, device) -> None:
    """Rank the gallery for any text and draw the ranked strip (paper Figure 4).

    When TEXT is one of the split's captions, true matches are framed green, others red.

    \b
    Example:
      bench query "a woman in a red coat carrying a black bag" \\
          --run runs/demo-occluded/mgcc/seed1 --topk 10 --out ranking.png
    """
    from benchmark.data import eval_set
    from benchmark.query import draw_strip, rank_text
    from benchmark.train import rebuild_from_run, recorded_dataset_root, resolve_device
    from ogor.datasets import read_dataset

    if topk < 1:
        raise ToreidError(f"--topk must be >= 1, got {topk}")
    if not text.strip():
        raise ToreidError("TEXT: the query is empty; give a description to rank the gallery by")
    check_writes("--out", out, {"--dataset": dataset_root})
    model, config = rebuild_from_run(run_path)
    dataset_root = dataset_root or recorded_dataset_root(run_path, config)
    check_writes("--out", out, {"the run's dataset": dataset_root})
    dev = resolve_device(device)
    model.to(dev)
    problem = eval_set(read_dataset(dataset_root), split)
    ranking = rank_text(model, problem, text, topk=topk, device=dev)
    draw_strip(problem, ranking, out)
    for k, (index, score, pid, match) in enumerate(zip(ranking.gallery_index, ranking.scores,
                                                       ranking.person_ids, ranking.is_match,
                                                       strict=True), start=1):
        mark = "" if match is None else ("  [true match]" if match else "  [other id]")
        click.echo(f"#{k:<3} {score:8.4f}  id {pid:<6} {problem.gallery[index].image_path}{mark}")
    if ranking.query_pid is None:
        click.echo("(free text: not a caption of the split, so no true matches are marked)")
    click.echo(f"wrote {out}")


@main.command("robustness")
@click.option("--run", "runs", type=click.Path(path_type=Path, exists=True, file_okay=False),
              multiple=True, required=True, help="A run folder (repeatable: one line per run).")
@click.option("--source", type=click.Path(path_type=Path, exists=True, file_okay=False),
              required=True, help="The CLEAN dataset root whose split is occluded on the fly.")
@click.option("--ratios", default=None,
              help="Occlusion ratios of the sweep [default: 0,0.25,0.5,0.75,1.0; with "
              "--corruptions: 0, i.e. corruptions of the clean split alone].")
@click.option("--seeds", default="0,1,2", show_default=True, help="Generation seeds.")
@click.option("--protocol", default="paper", show_default=True, help="ogor generate protocol.")
@click.option("--oil", type=click.Path(path_type=Path), default=None,
              help="Occlusion library (default: the embedded one).")
@click.option("--split", default="test", show_default=True)
@click.option("--fraction-bins", default="0,0.1,0.2,0.3,0.4,0.6,1.0", show_default=True,
              help="Bin edges of the measured occluded fraction of the query's own image.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Output folder (default: <first run>/robustness).")
@click.option("--device", default="auto", show_default=True)
@click.option("--batch-size", type=int, default=128, show_default=True)
@click.option("--query-chunk", type=int, default=512, show_default=True)
@click.option("--corruptions", default=None,
              help="Gallery image corruptions and query text perturbations, e.g. "
              "image:motion_blur,text:typos; 'image', 'text' or 'all' for every one "
              "(table: benchmark/corruptions/severities.json).")
@click.option("--severities", default="all", show_default=True,
              help="Corruption severities in 1-5 (0, the clean set, is always evaluated).")
@click.option("--allow-generated-source", is_flag=True,
              help="Accept an ogor-generated (already occluded) --source and occlude it again.")
@click.option("--quiet", is_flag=True)
@user_errors
def robustness_cmd(runs, source, ratios, seeds, protocol, oil, split, fraction_bins, out, device,
                   batch_size, query_chunk, corruptions, severities, allow_generated_source,
                   quiet) -> None:
    """Evaluate runs on occluded versions of a clean split: a ratio sweep over generation
    seeds (mean ± std), and per position set, class and occluded-fraction bin.

    Occluded versions are made with ogor and cached under $TOREID_CACHE (never in the source).
    With --corruptions, each version is also evaluated under surveillance image corruptions of
    the gallery and witness-text perturbations of the queries at each severity; the summary
    mRR@1 is the mean over (corruption, severity) of 100 x R@1 / clean R@1.
    Writes robustness.json, robustness.csv and PNG + SVG plots.

    \b
    Example:
      bench robustness --run runs/demo-occluded/mgcc/seed1 --run runs/demo-occluded/irra/seed1 \\
          --source ~/.cache/toreid/demo-v1-ids260-views4-seed0/clean --seeds 0,1,2
      bench robustness --run runs/demo-occluded/mgcc/seed1 --source ... \\
          --corruptions all --severities 1,3,5
    """
    from benchmark.corruptions.table import parse_corruptions, parse_severities
    from benchmark.robustness import SweepConfig, evaluate_robustness, write_outputs

    out = out or Path(runs[0]) / "robustness"
    check_writes("--out", out, {"--source": source, "--oil": oil})
    chosen = parse_corruptions(corruptions) if corruptions is not None else ()
    levels = parse_severities(severities)
    if ratios is None:
        ratios = "0" if chosen else "0,0.25,0.5,0.75,1.0"
    config = SweepConfig(
        ratios=tuple(_float_list(ratios, "--ratios")), seeds=tuple(_int_list(seeds, "--seeds")),
        protocol=protocol, oil=oil, split=split,
        fraction_edges=tuple(_float_list(fraction_bins, "--fraction-bins")),
        batch_size=batch_size, query_chunk=query_chunk, corruptions=chosen, severities=levels)
    record = evaluate_robustness(list(runs), source, config, device=device, progress=not quiet,
                                 allow_generated_source=allow_generated_source, log=click.echo)
    for path in write_outputs(record, out):
        click.echo(f"wrote {path}")


@main.command("report")
@click.argument("runs", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Folder of the report (index.html, images embedded).")
@click.option("--robustness", "robustness", type=click.Path(path_type=Path, exists=True),
              multiple=True, help="Extra robustness.json (or its folder); those under RUNS are "
              "found anyway.")
@click.option("--queries", type=int, default=3, show_default=True,
              help="Sample test captions per run shown as ranked strips.")
@click.option("--topk", type=int, default=8, show_default=True)
@click.option("--device", default="auto", show_default=True)
@user_errors
def report_cmd(runs, out, robustness, queries, topk, device) -> None:
    """One static HTML page (no server, no network): leaderboard with the paper's rows,
    train -> test matrix, robustness plots, training curves, ranked strips, occlusion previews.

    \b
    Example:
      bench report runs/ --out report/     # then open report/index.html in any browser
    """
    from benchmark.report import build_report

    if queries < 0 or topk < 1:
        raise ToreidError(f"--queries must be >= 0 and --topk >= 1 (got {queries}, {topk})")
    path = build_report(runs, out, robustness=robustness, queries=queries, topk=topk,
                        device=device)
    click.echo(f"wrote {path}")


@main.command("import")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option("--format", "fmt",
              type=click.Choice(["irra", "rde", "tbps-clip", "openai", "rasa", "aptm", "toreid"]),
              default=None, help="The release the file comes from; toreid: a file of bench "
                                 "export (detected when omitted).")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="The run folder to create (e.g. runs/Occluded-CUHK-PEDES/irra-released).")
@click.option("--dataset", default=None, metavar="NAME=ROOT",
              help="Evaluate on this dataset's test split (writes metrics.json for bench table).")
@click.option("--backbone", default=None,
              help="Backbone preset the checkpoint was trained with (default: the release's: "
                   "ViT-B-16; APTM swin-base).")
@click.option("--image-size", default=None, metavar="HxW",
              help="Input size (default: the release's: 384x128; TBPS-CLIP 224x224; RaSa "
                   "384x384).")
@click.option("--bert", default=None, metavar="FOLDER",
              help="rasa/aptm: where bert-base-uncased's vocab.txt is (a folder or Hub name; "
                   "default bert-base-uncased, tiny for --backbone tiny).")
@click.option("--device", default="auto", show_default=True)
@click.option("--batch-size", type=int, default=128, show_default=True)
@click.option("--quiet", is_flag=True)
@user_errors
def import_cmd(checkpoint, fmt, out, dataset, backbone, image_size, bert, device, batch_size,
               quiet) -> None:
    """Import a released checkpoint (IRRA, RDE, TBPS-CLIP, RaSa, APTM, OpenAI CLIP) as a run
    folder.

    The file is read weights-only (a file that needs arbitrary unpickling is refused), its keys
    are mapped onto our model (a key or shape that does not fit is refused, naming it), and the
    run folder records the file's sha256 and format. bench eval / query / table take it.

    \b
    Example:
      bench import --format irra CUHK-PEDES/best.pth --out runs/Occluded-CUHK-PEDES/irra-released \\
          --dataset Occluded-CUHK-PEDES=data/Occluded-CUHK-PEDES
    """
    from benchmark.importers import detect_format, import_checkpoint
    from benchmark.runner import parse_datasets

    size = None
    if image_size:
        try:
            height, width = (int(v) for v in image_size.lower().split("x"))
        except ValueError:
            raise ToreidError(f"--image-size: expected HxW such as 384x128, got "
                              f"{image_size!r}") from None
        size = (height, width)
    pairs = parse_datasets(dataset, "--dataset") if dataset else [None]
    if len(pairs) != 1:
        raise ToreidError("--dataset: give one NAME=ROOT")
    check_writes("--out", out, {"--dataset": pairs[0][1] if pairs[0] else None})
    fmt = fmt or detect_format(checkpoint)
    record = import_checkpoint(fmt, checkpoint, out, dataset=pairs[0], backbone=backbone,
                               image_size=size, device=device, batch_size=batch_size,
                               progress=not quiet, bert=bert)
    click.echo(f"imported {checkpoint} ({fmt}) into {out}")
    if record is None:
        click.echo("no --dataset: evaluate with bench eval --run OUT --dataset ROOT")
        return
    _print_metrics_rows(record)


def _print_metrics_rows(record: dict) -> None:
    """The same rows bench eval prints: all queries, then occluded / clean."""
    _print_metric_table([("all", record["test"])] + list((record.get("occlusion") or {}).items()))


def _print_metric_table(rows: list[tuple[str, dict]]) -> None:
    """One line per query group: count, R@1/5/10, mAP, mINP, Rsum."""
    click.echo(f"{'queries':<10} {'n':>6} {'R@1':>7} {'R@5':>7} {'R@10':>7} {'mAP':>7} "
               f"{'mINP':>7} {'Rsum':>7}")
    for name, m in rows:
        if not m.get("num_queries"):
            click.echo(f"{name:<10} {0:>6}")
            continue
        click.echo(f"{name:<10} {m['num_queries']:>6} {m['R@1']:7.2f} {m['R@5']:7.2f} "
                   f"{m['R@10']:7.2f} {m['mAP']:7.2f} {m['mINP']:7.2f} {m['Rsum']:7.2f}")


@main.command("export")
@click.option("--run", "run_path", type=click.Path(path_type=Path, exists=True, file_okay=False),
              required=True, help="A finished run folder.")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="The .safetensors file to write.")
@user_errors
def export_cmd(run_path, out) -> None:
    """Write a run's selected weights (best.pt) as .safetensors, with the model config inside.

    A .safetensors file holds only tensors and a text header: the format to share trained
    models in (a .pt file is a pickle, and unpickling can run code).

    \b
    Example:
      bench export --run runs/demo-occluded/mgcc/seed1 --out mgcc-demo.safetensors
    """
    from benchmark.export import export_safetensors

    if out.suffix != ".safetensors":
        raise ToreidError(f"--out {out}: the file name must end in .safetensors")
    click.echo(f"wrote {export_safetensors(run_path, out)}")


@main.command("ls")
@user_errors
def ls_cmd() -> None:
    """List the models, presets and dataset formats `bench run` accepts.

    \b
    Example:
      bench ls
    """
    from benchmark.runner import list_presets
    from models import describe_models
    from ogor.datasets import list_formats

    click.echo("models:")
    for name, text in describe_models().items():
        click.echo(f"  {name:<18} {text}")
    from benchmark.table2 import missing_table2_models, table2_models

    missing = missing_table2_models(describe_models())
    click.echo("model lists: all (every model above); table2 (Table 2's rows in order: "
               + ", ".join(table2_models()) + ")"
               + (f"; not registered here: {', '.join(missing)}" if missing else ""))
    click.echo("presets:")
    for name, text in list_presets().items():
        click.echo(f"  {name:<18} {text}")
    click.echo("dataset formats (auto-detected): " + ", ".join(list_formats()))


if __name__ == "__main__":  # `python -m benchmark.cli` (torchrun -m benchmark.cli run ...)
    sys.exit(main())
