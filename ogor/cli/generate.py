"""``ogor generate``, ``ogor verify`` and ``ogor preview``: thin wrappers over the library."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ogor.datasets import list_formats
from ogor.occlude.protocols import list_protocols
from toreid.cli import user_errors

#: Options the manifest decides under --from-manifest.
_RECIPE_OPTIONS = ("ratio", "protocol", "seed", "mode", "quality", "feather")


def _given(ctx: click.Context, name: str) -> bool:
    source = ctx.get_parameter_source(name)
    return source is not None and source != click.core.ParameterSource.DEFAULT


@click.command()
@click.argument("source_root", type=click.Path(path_type=str))
@click.option("--out", "out", required=True, type=click.Path(path_type=str),
              help="Output dataset folder (never inside SOURCE_ROOT).")
@click.option("--oil", type=click.Path(path_type=str), default=None,
              help="Occlusion library folder [default: the embedded library].")
@click.option("--ratio", type=float, default=0.3, show_default=True,
              help="Share of each split's images to occlude, in [0, 1] (protocol paper only).")
@click.option("--protocol", type=click.Choice(list_protocols()), default="paper",
              show_default=True, help="paper: Algorithm 1 of the paper; mgcc-code: the "
              "released generator (first image per id run, fixed area and corner per class).")
@click.option("--seed", type=int, default=0, show_default=True, help="The only randomness.")
@click.option("--workers", type=click.IntRange(0, 256), default=0,
              help="Processes; 0 = all cores [default: 0]. The output does not depend on it.")
@click.option("--mode", type=click.Choice(["replace", "add"]), default="replace",
              show_default=True, help="replace: the occluded image replaces the original; "
              "add: originals kept, occluded copies added as new records (name_occ.jpg).")
@click.option("--quality", type=click.IntRange(0, 100), default=95, show_default=True,
              help="JPEG quality of occluded images (clean images are never re-encoded).")
@click.option("--feather", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Gaussian sigma in pixels softening the occluder's edges.")
@click.option("--resume", is_flag=True, help="Finish an interrupted run of the same command.")
@click.option("--overwrite", is_flag=True,
              help="Replace an earlier generated dataset (or unfinished run) at --out.")
@click.option("--dry-run", is_flag=True,
              help="Select and place only; print the summary, write nothing.")
@click.option("--from-manifest", type=click.Path(path_type=str), default=None,
              help="Rebuild, byte for byte, the dataset an ogor-manifest.json describes.")
@click.option("--no-space-check", is_flag=True,
              help="Start even when the free space looks too small for the output.")
@click.option("--format", "format_name", type=click.Choice(list_formats()), default=None,
              help="Source layout; detected from the annotation file names when omitted.")
@click.option("--split-file", type=click.Path(path_type=str), default=None,
              help="Split of a source without one (caption_all.json): the authors' "
              "reid_raw.json; the manifest records it for the output.")
@click.pass_context
@user_errors
def generate(
    ctx: click.Context,
    source_root: str,
    out: str,
    oil: str | None,
    ratio: float,
    protocol: str,
    seed: int,
    workers: int,
    mode: str,
    quality: int,
    feather: float,
    resume: bool,
    overwrite: bool,
    dry_run: bool,
    from_manifest: str | None,
    no_space_check: bool,
    format_name: str | None,
    split_file: str | None,
) -> None:
    """Make an Occluded-* dataset: paste library occluders onto a T-ReID dataset's images.

    The source layout (every layout `ogor convert --help` lists) is detected; OUT keeps it: the
    same relative image paths and the annotation files under their own names, so existing loaders
    read it unchanged, plus ogor-manifest.json (every paste and every hash). Output is built in
    OUT.ogor-partial and renamed when complete; the same command and seed give the same bytes
    for any --workers, and after a crash --resume finishes the job identically.

    \b
    Example:
      ogor generate data/CUHK-PEDES --out data/Occluded-CUHK-PEDES --ratio 0.3 --seed 0
      ogor generate data/RSTPReid --out occ-rstp --protocol mgcc-code --workers 2
      ogor generate data/CUHK-PEDES --from-manifest ogor-manifest.json --out rebuilt
    """
    from ogor.generation import generate_dataset
    from toreid.paths import check_writes

    check_writes("--out", Path(out), {"SOURCE_ROOT": Path(source_root),
                                      "--oil": Path(oil) if oil else None})
    if resume and overwrite:
        raise click.UsageError("--resume and --overwrite exclude each other")
    if from_manifest is not None:
        ignored = [f"--{name}" for name in _RECIPE_OPTIONS if _given(ctx, name)]
        if ignored:
            click.echo(f"warning: {', '.join(ignored)} ignored: the manifest decides", err=True)
    elif protocol == "mgcc-code" and _given(ctx, "ratio"):
        click.echo(
            "warning: --ratio does not apply to --protocol mgcc-code (it occludes the first "
            "image of each id run)", err=True,
        )
    summary = generate_dataset(
        source_root, out, oil=oil, ratio=ratio, protocol=protocol, seed=seed,
        workers=workers or os.cpu_count() or 1, mode=mode, quality=quality, feather=feather,
        resume=resume, overwrite=overwrite, dry_run=dry_run, from_manifest=from_manifest,
        space_check=not no_space_check, format=format_name, split_file=split_file,
    )
    click.echo(summary.table())
    if summary.dry_run:
        click.echo("dry run: nothing written")
        return
    kept = f", {summary.reused} kept from the interrupted run" if summary.reused else ""
    click.echo(
        f"wrote {summary.out_root}: {summary.occluded} occluded images, "
        f"{summary.processed} made in {summary.elapsed_s:.1f} s{kept}"
    )


@click.command()
@click.argument("out", type=click.Path(path_type=str))
@click.option("--source", type=click.Path(path_type=str), default=None,
              help="Source dataset root: also check its annotation and rebuild sampled images.")
@click.option("--sample", type=click.IntRange(0), default=16, show_default=True,
              help="Occluded images whose placement is re-derived from the seed.")
@click.option("--oil", type=click.Path(path_type=str), default=None,
              help="Occlusion library [default: the one the manifest names].")
@click.option("--pixels", is_flag=True,
              help="Accept images whose pixels match but whose bytes differ (another encoder "
              "build); needs --source. [default: bytes are strict]")
@user_errors
def verify(out: str, source: str | None, sample: int, oil: str | None, pixels: bool) -> None:
    """Check a generated dataset against its ogor-manifest.json.

    Every file's sha256, the annotation file, no unlisted file, the occluded set re-derived from
    the seed, and a sample of placements re-derived from the seed and the library. Exits with
    status 2 naming the first mismatch. With --source, an image whose bytes differ is rebuilt
    and decoded: "same pixels, different encoder bytes" (with the OpenCV versions of the
    manifest and of here) or "different pixels" (the first image, the largest difference).
    Bytes are strict by default; --pixels fails only on different pixels.

    \b
    Example:
      ogor verify data/Occluded-CUHK-PEDES
      ogor verify data/Occluded-CUHK-PEDES --source data/CUHK-PEDES --sample 64
    """
    from ogor.generation import verify_dataset

    if pixels and source is None:
        raise click.UsageError("--pixels needs --source (the images are rebuilt to compare)")
    report = verify_dataset(out, source=source, sample=sample, oil=oil, pixels=pixels)
    extra = f", {report.recomposed} rebuilt from the source" if source else ""
    click.echo(
        f"ok: {out}: {report.images} images match the manifest, occluded set and "
        f"{report.placements} placements re-derived from the seed{extra}"
    )
    if report.encoder_differences:
        click.echo(
            f"note: {len(report.encoder_differences)} images have the manifest's pixels in "
            f"other encoder bytes (first: {report.encoder_differences[0]}; {report.versions})"
        )


@click.command()
@click.argument("root", type=click.Path(path_type=str))
@click.option("--n", "n", type=click.IntRange(1), default=24, show_default=True,
              help="Number of source | occluded pairs.")
@click.option("--out", "out", required=True, type=click.Path(path_type=str),
              help="PNG file to write (outside the dataset).")
@click.option("--source", type=click.Path(path_type=str), default=None,
              help="Source dataset root [default: the one recorded in the manifest].")
@user_errors
def preview(root: str, n: int, out: str, source: str | None) -> None:
    """Write a grid of source | occluded pairs labelled with class and delta (paper Figure 2).

    \b
    Example:
      ogor preview data/Occluded-CUHK-PEDES --n 24 --out grid.png
    """
    from ogor.generation import make_preview
    from toreid.paths import check_writes

    check_writes("--out", Path(out), {"ROOT": Path(root), "--source": Path(source) if source
                                      else None})
    path = make_preview(root, out, n=n, source=source)
    click.echo(f"wrote {path}")
