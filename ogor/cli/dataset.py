"""``ogor check`` and ``ogor stats``: validate a dataset root and count what it holds."""

from __future__ import annotations

import dataclasses
import json
import sys

import click

from ogor.cli._lazy import user_errors
from ogor.datasets import list_formats, read_dataset


@click.command()
@click.argument("root", type=click.Path(path_type=str))
@click.option(
    "--format", "format_name", type=click.Choice(list_formats()), default=None,
    help="Dataset format; detected from the annotation file name when omitted.",
)
@click.option("--no-images", is_flag=True, help="Check the annotation file only.")
@click.option(
    "--all", "all_errors", is_flag=True,
    help="Report every bad image (one line each) instead of stopping at the first.",
)
@click.option("--workers", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Threads decoding images.")
@user_errors
def check(
    root: str, format_name: str | None, no_images: bool, all_errors: bool, workers: int
) -> None:
    """Validate a T-ReID dataset root: annotation file, records and images.

    Detects the format (CUHK-PEDES reid_raw.json, ICFG-PEDES ICFG-PEDES.json or ICFG_PEDES.json,
    RSTPReid data_captions.json), validates every record (keys, types, captions, split, relative
    image paths, one id per image) and opens and decodes every image under imgs/. Prints one
    line per error naming the file, the record index and the field, and exits with status 2;
    prints a one-line OK summary otherwise.

    \b
    Example:
      ogor check data/CUHK-PEDES
      ogor check data/RSTPReid --all --workers 2
    """
    from ogor.datasets.validate import check_dataset

    report = check_dataset(
        root, format=format_name, images=not no_images, stop_at_first=not all_errors,
        workers=workers,
    )
    if report.ok:
        click.echo(report.summary())
        return
    for error in report.errors:
        click.echo(f"error: {error}", err=True)
    sys.exit(2)


@click.command()
@click.argument("root", type=click.Path(path_type=str))
@click.option(
    "--format", "format_name", type=click.Choice(list_formats()), default=None,
    help="Dataset format; detected from the annotation file name when omitted.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@user_errors
def stats(root: str, format_name: str | None, as_json: bool) -> None:
    """Print ids, images and captions per split (and in total) of a dataset root.

    Reads and validates the annotation file only; run `ogor check` to also verify the images.

    \b
    Example:
      ogor stats data/CUHK-PEDES
      ogor stats demo/rstpreid --json
    """
    from ogor.datasets.validate import dataset_stats, format_stats_table

    dataset = read_dataset(root, format_name)
    rows = dataset_stats(dataset)
    if as_json:
        payload = {
            "root": str(dataset.root),
            "format": dataset.format.name,
            "annotation": dataset.annotation_path.name,
            "splits": {row.split: dataclasses.asdict(row) for row in rows},
        }
        for row in payload["splits"].values():
            del row["split"]
        click.echo(json.dumps(payload, indent=2))
        return
    click.echo(f"{dataset.root} ({dataset.format.name}, {dataset.annotation_path.name})")
    click.echo(format_stats_table(rows))
