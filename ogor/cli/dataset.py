"""``ogor check``, ``ogor stats`` and ``ogor convert``: check, count and re-lay a dataset copy."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import click

from ogor.datasets import list_formats, read_dataset
from toreid.cli import user_errors

#: Error lines printed before "... and N more" unless --all.
_SHOWN_ERRORS = 20
_SPLIT_FILE_HELP = (
    "File defining the train/val/test split of a copy without one (caption_all.json): the "
    "authors' reid_raw.json."
)


@click.command()
@click.argument("root", type=click.Path(path_type=str))
@click.option(
    "--format", "format_name", type=click.Choice(list_formats()), default=None,
    help="Dataset layout; detected from the annotation file names when omitted.",
)
@click.option("--split-file", type=click.Path(path_type=str), default=None, help=_SPLIT_FILE_HELP)
@click.option("--no-images", is_flag=True, help="Check the annotation file only.")
@click.option(
    "--all", "all_errors", is_flag=True,
    help=f"Print every bad image (one line each), not only the first {_SHOWN_ERRORS}.",
)
@click.option("--strict", is_flag=True,
              help="Exit with status 1 when the counts differ from the published statistics.")
@click.option("--workers", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Threads decoding images.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
@user_errors
def check(
    root: str, format_name: str | None, split_file: str | None, no_images: bool,
    all_errors: bool, strict: bool, workers: int, no_progress: bool,
) -> None:
    """Check a copy of a T-ReID dataset: annotation, images, and the published statistics.

    Reads every layout in use (see `ogor convert --help`), validates every record (keys, types,
    captions, split, relative image paths, one id per image), then opens, decodes and hashes
    every image under imgs/ in one pass, and compares ids, images and captions per split with
    the dataset's published statistics: each split "matches" or says what differs, and a known
    old version (the RSTPReid split before its correction) is named with its fix. Duplicate
    images, captions that refer to no image and image files in no record are noted.

    Exit status: 2 with one line per missing or unreadable image (or the annotation error);
    0 otherwise, also when the counts differ from the published ones (a subset, a synthetic
    copy) unless --strict makes that status 1.

    \b
    Example:
      ogor check data/CUHK-PEDES
      ogor check data/RSTPReid --strict --workers 8
      ogor check data/CUHK-PEDES --split-file reid_raw.json   # a caption_all.json copy
    """
    from ogor.datasets.validate import check_dataset

    report = check_dataset(
        root, format=format_name, images=not no_images, stop_at_first=False, workers=workers,
        split_file=split_file, progress=not no_progress,
    )
    if report.ok:
        click.echo(report.summary())
    for line in report.comparison.lines() if report.comparison is not None else []:
        click.echo(line)
    for line in report.findings:
        click.echo(f"note: {line}")
    if not report.ok:
        shown = report.errors if all_errors else report.errors[:_SHOWN_ERRORS]
        for error in shown:
            click.echo(f"error: {error}", err=True)
        if len(shown) < len(report.errors):
            click.echo(
                f"error: ... and {len(report.errors) - len(shown)} more (--all prints every one)",
                err=True,
            )
        sys.exit(2)
    if strict and report.comparison is not None and not report.comparison.matches:
        click.echo(f"error: {root}: counts differ from the published statistics (--strict)",
                   err=True)
        sys.exit(1)


@click.command()
@click.argument("root", type=click.Path(path_type=str))
@click.option(
    "--format", "format_name", type=click.Choice(list_formats()), default=None,
    help="Dataset format; detected from the annotation file name when omitted.",
)
@click.option("--split-file", type=click.Path(path_type=str), default=None, help=_SPLIT_FILE_HELP)
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
@user_errors
def stats(root: str, format_name: str | None, split_file: str | None, as_json: bool) -> None:
    """Print ids, images and captions per split (and in total) of a dataset root.

    Reads and validates the annotation file only; run `ogor check` to also verify the images.

    \b
    Example:
      ogor stats data/CUHK-PEDES
      ogor stats demo/rstpreid --json
    """
    from ogor.datasets.validate import dataset_stats, format_stats_table

    dataset = read_dataset(root, format_name, split_file)
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


@click.command()
@click.argument("source_root", type=click.Path(path_type=str))
@click.option("--out", "out", required=True, type=click.Path(path_type=str),
              help="Folder to create (never inside SOURCE_ROOT).")
@click.option("--to", "to", required=True, type=click.Choice(list_formats()),
              help="Target layout (of the same dataset).")
@click.option("--annotation-name", default=None,
              help="Target file name where the layout has several (CUHK-PEDES.json, "
              "ICFG_PEDES.json, RSTPReid.json for the MGCC release).")
@click.option(
    "--format", "format_name", type=click.Choice(list_formats()), default=None,
    help="Source layout; detected from the annotation file names when omitted.",
)
@click.option("--split-file", type=click.Path(path_type=str), default=None, help=_SPLIT_FILE_HELP)
@click.option("--overwrite", is_flag=True, help="Replace an earlier `ogor convert` output.")
@user_errors
def convert(
    source_root: str, out: str, to: str, annotation_name: str | None, format_name: str | None,
    split_file: str | None, overwrite: bool,
) -> None:
    """Write a copy of a dataset in another layout, for code that expects that layout.

    \b
    Layouts read (detected from the file names, or named with --format):
      cuhk-pedes              reid_raw.json (IRRA, NAFS, SSAN) or CUHK-PEDES.json (MGCC)
      cuhk-pedes-textreid     annotations/{train,val,test}.json (TextReID)
      cuhk-pedes-caption-all  caption_all.json, split from --split-file (reid_raw.json)
      icfg-pedes              ICFG-PEDES.json or ICFG_PEDES.json
      rstpreid                data_captions.json or RSTPReid.json (MGCC)

    The source is only read. Images are hard-linked (else copied) under OUT/imgs; OUT gets the
    annotation in the target layout and ogor-convert.json, the record of what was read (every
    annotation file's and the split file's sha256) and written.

    \b
    Example:
      ogor convert data/cuhkpedes --out data/CUHK-PEDES --to cuhk-pedes
      ogor convert data/CUHK-PEDES --out data/CUHK-PEDES-irra --to cuhk-pedes \\
          --split-file reid_raw.json     # a caption_all.json copy
    """
    from ogor.datasets.convert import convert_dataset
    from toreid.paths import check_writes

    check_writes("--out", Path(out), {"SOURCE_ROOT": Path(source_root)})
    summary = convert_dataset(
        source_root, out, to, format=format_name, split_file=split_file,
        annotation_name=annotation_name, overwrite=overwrite,
    )
    click.echo(
        f"wrote {summary.out} ({summary.format}, {summary.annotation.name}): {summary.images} "
        f"images ({summary.linked} hard links), record in ogor-convert.json"
    )
