"""The ``bench`` command line: run, eval, table, query, ls.

Each command parses its options and calls one library function (:mod:`benchmark.runner`,
:mod:`benchmark.evaluate`, :mod:`benchmark.leaderboard`, :mod:`benchmark.query`). User errors
(``ogor.errors.ToreidError``, which ``models.ModelError`` subclasses) print one line and exit 2.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from toreid.cli import user_errors
from toreid.errors import ToreidError


def _int_list(text: str, option: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ToreidError(f"{option}: expected comma-separated integers, got {text!r}") from None
    if not values:
        raise ToreidError(f"{option}: no value given")
    return values


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
def main() -> None:
    """bench: train, evaluate and rank text-based (occluded) person re-id models.

    \b
    Example:
      bench run --models mgcc,irra          # the embedded synthetic demo, CPU, minutes
      bench table runs/ --format md --with-paper
    """


@main.command("run")
@click.option("--models", "models_", default="mgcc,irra", show_default=True,
              help="Comma-separated model names (see `bench ls`).")
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
@user_errors
def run_cmd(models_, datasets, seeds, preset, epochs, batch_size, lr, optimizer, warmup_epochs,
            grad_clip, select_metric, eval_every, select_on, icfg_split, dry_run, device, amp,
            amp_dtype, workers, backbone, pretrained, model_opt, i2t, out, resume, demo_ids,
            quiet) -> None:
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

    names = [m.strip() for m in models_.split(",") if m.strip()]
    runner.check_models(names)
    demo = datasets is None
    overrides = {
        "epochs": epochs, "batch_size": batch_size, "lr": lr, "optimizer": optimizer,
        "warmup_epochs": warmup_epochs, "grad_clip": grad_clip, "select_metric": select_metric,
        "eval_every": eval_every, "device": device, "amp": amp_dtype or amp, "workers": workers,
        "i2t": i2t, "backbone": backbone, "pretrained": pretrained, "select_on": select_on,
        "icfg_split": icfg_split, **_parse_model_opts(model_opt),
    }
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
        out=out, resume=resume, progress=not quiet, log=click.echo)
    from benchmark import dist

    if not dist.current().is_main:
        return
    click.echo("")
    click.echo(runner.leaderboard_text(finished, "md"), nl=False)
    chance = runner.chance_line(finished)
    if chance:
        click.echo(f"Chance level: {chance}.")
    if demo:
        click.echo("These numbers come from SYNTHETIC data and TINY RANDOM-INIT models trained "
                   "for minutes: they show that the pipeline learns, not how the paper's models "
                   "perform.")


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
    from benchmark.train import _occlusion_flags, rebuild_from_run, resolve_device
    from ogor.datasets import read_dataset
    from toreid.io import atomic_write_json

    model, config = rebuild_from_run(run_path)
    dataset_root = dataset_root or Path(config["dataset"]["root"])
    dev = resolve_device(device)
    model.to(dev)
    problem = eval_set(read_dataset(dataset_root), split, _occlusion_flags(dataset_root))
    result = evaluate(model, problem, device=dev, amp=amp, batch_size=batch_size,
                      query_chunk=query_chunk, i2t=i2t, progress=not quiet,
                      compile_similarity=compile_)
    rows = [("all", result.t2i)]
    if result.occlusion:
        rows += [(k, v) for k, v in result.occlusion.items()]
    if result.i2t:
        rows.append(("i2t", result.i2t))
    click.echo(f"{'queries':<10} {'n':>6} {'R@1':>7} {'R@5':>7} {'R@10':>7} {'mAP':>7} "
               f"{'mINP':>7} {'Rsum':>7}")
    for name, m in rows:
        if not m.get("num_queries"):
            click.echo(f"{name:<10} {0:>6}")
            continue
        click.echo(f"{name:<10} {m['num_queries']:>6} {m['R@1']:7.2f} {m['R@5']:7.2f} "
                   f"{m['R@10']:7.2f} {m['mAP']:7.2f} {m['mINP']:7.2f} {m['Rsum']:7.2f}")
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
    from benchmark.train import rebuild_from_run, resolve_device
    from ogor.datasets import read_dataset

    if topk < 1:
        raise ToreidError(f"--topk must be >= 1, got {topk}")
    model, config = rebuild_from_run(run_path)
    dataset_root = dataset_root or Path(config["dataset"]["root"])
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
    click.echo("presets:")
    for name, text in list_presets().items():
        click.echo(f"  {name:<18} {text}")
    click.echo("dataset formats (auto-detected): " + ", ".join(list_formats()))


if __name__ == "__main__":  # `python -m benchmark.cli` (torchrun -m benchmark.cli run ...)
    sys.exit(main())
