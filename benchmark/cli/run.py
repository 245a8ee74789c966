"""``bench run`` (train, evaluate, rank) and ``bench ls`` (what can run)."""

from __future__ import annotations

from pathlib import Path

import click

from benchmark.cli.common import int_list, parse_model_opts
from toreid.cli import user_errors
from toreid.errors import ToreidError
from toreid.paths import check_writes


@click.command("run")
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
@click.option("--lr-scale", type=click.Choice(["none", "linear", "sqrt"]), default=None,
              help="How the preset's lr follows a --batch-size other than the preset's: none "
                   "(default: the preset's lr, unscaled), linear (x global batch / preset "
                   "batch) or sqrt (x its square root). Recorded in config.json.")
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
@click.option("--rerank-k", type=int, default=None,
              help="After training, also evaluate each run in two stages (global first stage, "
              "full similarity on the top K): two_stage.json beside metrics.json.")
@user_errors
def run_cmd(models_, datasets, seeds, preset, epochs, batch_size, lr, lr_scale, optimizer,
            warmup_epochs, grad_clip, select_metric, eval_every, select_on, icfg_split, dry_run,
            device, amp, amp_dtype, workers, backbone, pretrained, model_opt, i2t, out, resume,
            demo_ids, quiet, train_dataset=None, eval_datasets=None, log_to=None,
            rerank_k=None) -> None:
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
    from benchmark.pipeline import runner
    from benchmark.reporting.table2 import expand_model_names
    from models import list_models

    names = expand_model_names([m.strip() for m in models_.split(",") if m.strip()],
                               list_models())
    runner.check_models(names)
    model_opts = parse_model_opts(model_opt)
    crossings = crossing_pairs(datasets, train_dataset, eval_datasets)
    if crossings:
        datasets = train_dataset
    hook = None
    if log_to == "tensorboard":
        from benchmark.training.live_log import tensorboard_hook

        hook = tensorboard_hook()
    demo = datasets is None
    overrides = {
        "epochs": epochs, "batch_size": batch_size, "lr": lr, "lr_scale": lr_scale,
        "optimizer": optimizer,
        "warmup_epochs": warmup_epochs, "grad_clip": grad_clip, "select_metric": select_metric,
        "eval_every": eval_every, "device": device, "amp": amp_dtype or amp, "workers": workers,
        "i2t": i2t, "backbone": backbone, "pretrained": pretrained, "select_on": select_on,
        "icfg_split": icfg_split, **model_opts,
    }
    if rerank_k is not None and rerank_k < 1:
        raise ToreidError(f"--rerank-k must be >= 1 (the candidates re-scored), got {rerank_k}")
    runner.validate_runs(names, preset or ("tiny" if datasets is None else "paper"), overrides,
                         model_opts)
    reads = {f"--datasets {label}": root
             for label, root in (runner.parse_datasets(datasets) if datasets else [])}
    reads.update({f"--eval-datasets {label}": root for label, root in crossings})
    check_writes("--out", out, reads)
    if dry_run:
        import json

        from benchmark.pipeline.dry_run import describe_runs

        targets = ([(runner.DEMO_LABEL, None)] if demo else runner.parse_datasets(datasets))
        records = describe_runs(names, targets, int_list(seeds, "--seeds"),
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
        names, pairs, int_list(seeds, "--seeds"), preset=preset, overrides=overrides,
        out=out, resume=resume, progress=not quiet, log=click.echo,
        **({"epoch_hook": hook} if hook else {}))
    from benchmark.runtime import dist

    if crossings:  # every rank takes part (features are gathered); rank 0 writes
        from benchmark.evaluation.crossings import evaluate_crossings

        for run in finished:
            evaluate_crossings(run.path, crossings, device=overrides["device"] or "auto",
                               progress=not quiet)
    if rerank_k is not None:  # every rank takes part (features are gathered); rank 0 writes
        _two_stage_after(finished, rerank_k, overrides["device"] or "auto", quiet)
    if not dist.current().is_main:
        return
    click.echo("")
    click.echo(runner.leaderboard_text(finished, "md"), nl=False)
    if crossings:
        from benchmark.evaluation.crossings import crossing_matrix, to_markdown

        click.echo("")
        click.echo(to_markdown(crossing_matrix(finished)), nl=False)
    chance = runner.chance_line(finished)
    if chance:
        click.echo(f"Chance level: {chance}.")
    if demo:
        click.echo("These numbers come from SYNTHETIC data and TINY RANDOM-INIT models trained "
                   "for minutes: they show that the pipeline learns, not how the paper's models "
                   "perform.")


def _two_stage_after(finished, k: int, device: str, quiet: bool) -> None:
    """``--rerank-k``: each finished run evaluated in two stages, one line each."""
    from benchmark.evaluation.two_stage import two_stage_for_run
    from benchmark.runtime import dist

    for run in finished:
        record = two_stage_for_run(run.path, k, device=device, progress=not quiet)
        if dist.current().is_main:
            both, first, exact = record["two_stage"], record["stage1"], record["exact"] or {}
            click.echo(f"   {run.model}: two-stage K={k} R@1 {both['R@1']:.2f} mAP "
                       f"{both['mAP']:.2f} (stage 1 R@1 {first['R@1']:.2f}; exact R@1 "
                       f"{exact.get('R@1', float('nan')):.2f}) -> {run.path / 'two_stage.json'}")


def crossing_pairs(datasets: str | None, train: str | None,
                    evals: str | None) -> list[tuple[str, Path]]:
    """The ``--eval-datasets`` pairs; refuses options that do not go together."""
    from benchmark.pipeline import runner

    if train is None and evals is None:
        return []
    if datasets is not None:
        raise ToreidError("--train-dataset replaces --datasets: give one or the other")
    if train is None or evals is None:
        raise ToreidError("--train-dataset and --eval-datasets go together")
    if len(runner.parse_datasets(train, "--train-dataset")) != 1:
        raise ToreidError("--train-dataset: give exactly one NAME=ROOT")
    return runner.parse_datasets(evals, "--eval-datasets")


@click.command("ls")
@user_errors
def ls_cmd() -> None:
    """List the models, presets and dataset formats `bench run` accepts.

    \b
    Example:
      bench ls
    """
    from benchmark.pipeline.runner import list_presets
    from models import describe_models
    from ogor.datasets import list_formats

    click.echo("models:")
    for name, text in describe_models().items():
        click.echo(f"  {name:<18} {text}")
    from benchmark.reporting.table2 import missing_table2_models, table2_models

    missing = missing_table2_models(describe_models())
    click.echo("model lists: all (every model above); table2 (Table 2's rows in order: "
               + ", ".join(table2_models()) + ")"
               + (f"; not registered here: {', '.join(missing)}" if missing else ""))
    click.echo("presets:")
    for name, text in list_presets().items():
        click.echo(f"  {name:<18} {text}")
    click.echo("dataset formats (auto-detected): " + ", ".join(list_formats()))
