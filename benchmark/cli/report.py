"""``bench table`` and ``bench report``: commands that read run folders into tables and pages."""

from __future__ import annotations

from pathlib import Path

import click

from toreid.cli import user_errors
from toreid.errors import ToreidError


@click.command("table")
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
    from benchmark.records import results
    from benchmark.reporting import leaderboard
    from toreid.io import atomic_write_bytes

    found = results.find_results(runs)
    if not found and not with_paper:
        raise ToreidError(f"{runs}: no finished run (no metrics.json) found")
    text = leaderboard.render(leaderboard.build_table(found, with_paper=with_paper), fmt)
    if with_paper:  # the note stays out of CSV/LaTeX bodies, so they remain machine-readable
        from benchmark.records.protocol import COMPARE_NOTE

        if fmt == "md":
            text += "\n" + COMPARE_NOTE + "\n"
        else:
            click.echo(COMPARE_NOTE, err=True)
    from benchmark.evaluation import crossings

    if fmt == "md" and crossings.has_crossings(found):
        text += "\n" + crossings.to_markdown(crossings.crossing_matrix(found))
    if out:
        atomic_write_bytes(out, text.encode("utf-8"))
    else:
        click.echo(text, nl=False)


@click.command("report")
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
    from benchmark.reporting.report import build_report

    if queries < 0 or topk < 1:
        raise ToreidError(f"--queries must be >= 0 and --topk >= 1 (got {queries}, {topk})")
    path = build_report(runs, out, robustness=robustness, queries=queries, topk=topk,
                        device=device)
    click.echo(f"wrote {path}")
