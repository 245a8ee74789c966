"""``bench eval``, ``bench query``, ``bench robustness``: a finished run evaluated."""

from __future__ import annotations

from pathlib import Path

import click

from benchmark.cli.common import float_list, int_list, print_metric_table
from toreid.cli import user_errors
from toreid.errors import ToreidError
from toreid.paths import check_writes


@click.command("eval")
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
@click.option("--rerank-k", type=int, default=None,
              help="Also rank in two stages: the global first stage, then the full similarity "
              "on each query's top K; prints both stages and their difference to exact.")
@click.option("--no-exact", is_flag=True,
              help="With --rerank-k: skip the exact ranking (for galleries where it is too "
              "costly).")
@click.option("--quiet", is_flag=True)
@user_errors
def eval_cmd(run_path, dataset_root, split, device, amp, batch_size, query_chunk, i2t, compile_,
             json_out, rerank_k, no_exact, quiet) -> None:
    """Re-evaluate a run's selected checkpoint (best.pt) on a dataset.

    Prints t2i R@1/5/10, mAP, mINP, Rsum, and the occluded/clean split when the dataset has an
    ogor manifest. The run's own metrics.json is not changed.

    With --rerank-k K: the first stage (global features), the two stages (the full similarity
    on each query's top K; every other image below them in first-stage order, so mAP and
    mINP are computed on a complete ranking), the exact ranking and the difference.

    \b
    Example:
      bench eval --run runs/demo-occluded/mgcc/seed1 --dataset data/CUHK-PEDES --i2t
      bench eval --run runs/demo-occluded/mgcc/seed1 --rerank-k 100
    """
    from benchmark.data.sets import eval_set
    from benchmark.evaluation.evaluate import evaluate
    from benchmark.records.rebuild import (
        dataset_occlusion_flags,
    )
    from ogor.datasets import read_dataset
    from toreid.io import atomic_write_json

    if rerank_k is not None and rerank_k < 1:
        raise ToreidError(f"--rerank-k must be >= 1 (the candidates re-scored), got {rerank_k}")
    if rerank_k is not None and (i2t or compile_):
        raise ToreidError("--rerank-k ranks text-to-image without torch.compile: drop --i2t "
                          "and --compile, or evaluate them in a separate bench eval")
    if no_exact and rerank_k is None:
        raise ToreidError("--no-exact applies to a two-stage evaluation: give --rerank-k K")
    model, dataset_root, dev = _run_on_device(run_path, dataset_root, device,
                                              "--json-out", json_out)
    problem = eval_set(read_dataset(dataset_root), split, dataset_occlusion_flags(dataset_root))
    if rerank_k is not None:
        _two_stage(model, problem, rerank_k, not no_exact, dev, amp, batch_size, query_chunk,
                   quiet, json_out, {"run": str(run_path), "dataset": str(dataset_root),
                                     "split": split})
        return
    result = evaluate(model, problem, device=dev, amp=amp, batch_size=batch_size,
                      query_chunk=query_chunk, i2t=i2t, progress=not quiet,
                      compile_similarity=compile_)
    rows = [("all", result.t2i)] + list((result.occlusion or {}).items())
    if result.i2t:
        rows.append(("i2t", result.i2t))
    print_metric_table(rows)
    if json_out:
        atomic_write_json(json_out, {"run": str(run_path), "dataset": str(dataset_root),
                                     "split": split, **result.record()})


@click.command("query")
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
    from benchmark.data.sets import eval_set
    from benchmark.evaluation.query import draw_strip, rank_text
    from ogor.datasets import read_dataset

    if topk < 1:
        raise ToreidError(f"--topk must be >= 1, got {topk}")
    if not text.strip():
        raise ToreidError("TEXT: the query is empty; give a description to rank the gallery by")
    model, dataset_root, dev = _run_on_device(run_path, dataset_root, device, "--out", out)
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


@click.command("robustness")
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
    from benchmark.evaluation.corruptions.table import parse_corruptions, parse_severities
    from benchmark.evaluation.robustness import SweepConfig, evaluate_robustness
    from benchmark.reporting.robustness_files import write_outputs

    out = out or Path(runs[0]) / "robustness"
    check_writes("--out", out, {"--source": source, "--oil": oil})
    chosen = parse_corruptions(corruptions) if corruptions is not None else ()
    levels = parse_severities(severities)
    if ratios is None:
        ratios = "0" if chosen else "0,0.25,0.5,0.75,1.0"
    config = SweepConfig(
        ratios=tuple(float_list(ratios, "--ratios")), seeds=tuple(int_list(seeds, "--seeds")),
        protocol=protocol, oil=oil, split=split,
        fraction_edges=tuple(float_list(fraction_bins, "--fraction-bins")),
        batch_size=batch_size, query_chunk=query_chunk, corruptions=chosen, severities=levels)
    record = evaluate_robustness(list(runs), source, config, device=device, progress=not quiet,
                                 allow_generated_source=allow_generated_source, log=click.echo)
    for path in write_outputs(record, out):
        click.echo(f"wrote {path}")


def _two_stage(model, problem, k: int, exact: bool, device, amp: str, batch_size: int,
               query_chunk: int, quiet: bool, json_out: Path | None, about: dict) -> None:
    """``bench eval --rerank-k``: print and record the two-stage evaluation."""
    from benchmark.evaluation.two_stage import evaluate_two_stage
    from toreid.io import atomic_write_json

    result = evaluate_two_stage(model, problem, k=k, exact=exact, device=device, amp=amp,
                                batch_size=batch_size, query_chunk=query_chunk,
                                progress=not quiet)
    rows = [("stage 1", result.stage1), (f"K={k}", result.two_stage)]
    if result.exact is not None:
        rows.append(("exact", result.exact))
    print_metric_table(rows)
    record = result.record()
    if record["two_stage_minus_exact"] is not None:
        diff = record["two_stage_minus_exact"]
        click.echo("two-stage minus exact: " + ", ".join(
            f"{name} {diff[name]:+.2f}" for name in ("R@1", "R@5", "R@10", "mAP", "mINP")))
    if not result.second_stage:
        click.echo("(this model compares global features only: its first stage is exact)")
    seconds = record["seconds"]
    click.echo("seconds: " + ", ".join(f"{name} {value:.2f}" for name, value in seconds.items()))
    click.echo(f"ranking below K: {record['rule']}")
    if json_out:
        atomic_write_json(json_out, {**about, "two_stage": record})


def _run_on_device(run_path: Path, dataset_root: Path | None, device: str, out_option: str,
                   out: Path | None):
    """A run's model on its device and the dataset it is evaluated on (``--dataset`` or the
    run's own), with the output checked against that dataset before and after resolving it."""
    from benchmark.records.rebuild import rebuild_from_run, recorded_dataset_root
    from benchmark.runtime.device import resolve_device

    check_writes(out_option, out, {"--dataset": dataset_root})
    model, config = rebuild_from_run(run_path)
    dataset_root = dataset_root or recorded_dataset_root(run_path, config)
    check_writes(out_option, out, {"the run's dataset": dataset_root})
    dev = resolve_device(device)
    return model.to(dev), dataset_root, dev
