"""``ogor synth``: write the SYNTHETIC demo dataset (rendered people, generated captions)."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ogor.datasets import BASE_FORMATS
from toreid.cli import user_errors


@click.command()
@click.option("--out", required=True, type=click.Path(path_type=str),
              help="Dataset root to create (absent or empty unless --overwrite).")
@click.option("--format", "format_name", type=click.Choice(BASE_FORMATS), default="cuhk-pedes",
              show_default=True, help="Annotation format (file name, keys, splits) to write.")
@click.option("--ids", type=click.IntRange(min=1), required=True, help="Number of identities.")
@click.option("--views", type=click.IntRange(min=1), default=4, show_default=True,
              help="Images per identity.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Random seed: the same arguments give identical bytes.")
@click.option("--size", default="128x64", show_default=True, help="Image size as HxW.")
@click.option("--overwrite", is_flag=True, help="Replace a non-empty --out.")
@user_errors
def synth(
    out: str, format_name: str, ids: int, views: int, seed: int, size: str, overwrite: bool
) -> None:
    """Write a SYNTHETIC demo dataset: rendered pedestrians, not real data.

    Each identity gets random visible attributes (gender and hair, upper and lower garment type
    and colour, shoes, hat, handbag, backpack) and is rendered in VIEWS views that differ in
    pose, scale, position, flip, lighting and background. Captions are generated from the
    attributes (two per image for cuhk-pedes and rstpreid, one for icfg-pedes); splits are
    assigned by identity as in the real format. The root also gets SYNTHETIC.md and
    synth-attributes.json (ground-truth attributes and region boxes per image).

    It is the toolkit's demo and test fixture; never report results on it as results on a
    real dataset.

    \b
    Example:
      ogor synth --out demo/cuhk --format cuhk-pedes --ids 40 --views 4 --seed 0
      ogor synth --out demo/icfg --format icfg-pedes --ids 100 --views 3 --size 384x128
    """
    from ogor.synth import parse_size, synthesize

    height, width = parse_size(size)
    start = time.perf_counter()
    dataset = synthesize(out, format=format_name, ids=ids, views=views, seed=seed,
                         size=(height, width), overwrite=overwrite)
    seconds = time.perf_counter() - start
    images = len(dataset.records)
    click.echo(
        f"wrote SYNTHETIC {format_name} demo data to {dataset.root}: {ids} ids, {images} images, "
        f"{sum(len(r.captions) for r in dataset.records)} captions "
        f"({seconds:.1f} s, {images / max(seconds, 1e-9):.0f} images/s)"
    )


@click.command("synth-parsing")
@click.argument("root", type=click.Path(path_type=str))
@click.argument("out", type=click.Path(path_type=str))
@user_errors
def synth_parsing(root: str, out: str) -> None:
    """Write human-parsing maps (one PNG per image, labels in docs/parsing.md) of the
    `ogor synth` dataset ROOT into OUT, from the region boxes it recorded: the masks ViTAA
    trains against (``bench run --models vitaa --model-opt parsing_dir=OUT``).

    \b
    Example:
      ogor synth-parsing demo/cuhk demo/cuhk-parsing
    """
    from ogor.synth.parsing import write_parsing_maps
    from toreid.paths import check_writes

    check_writes("OUT", Path(out), {"ROOT": Path(root)})
    folder = write_parsing_maps(root, out)
    click.echo(f"wrote parsing maps of {root} to {folder}")
