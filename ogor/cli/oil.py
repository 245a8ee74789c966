"""Commands about occluders: taxonomy, import-oil, fetch-oil, oil-sheet, render-default-oil."""

from __future__ import annotations

import json
from pathlib import Path

import click

from toreid.cli import user_errors


@click.command("taxonomy")
@click.option("--json", "as_json", is_flag=True, help="Print the taxonomy as JSON.")
@user_errors
def taxonomy(as_json: bool) -> None:
    """Print the 15 occluder classes: position set, COCO labels and LVIS v1 labels.

    \b
    Example:
      ogor taxonomy
      ogor taxonomy --json > taxonomy.json
    """
    from ogor.library.taxonomy import load_taxonomy

    tax = load_taxonomy()
    if as_json:
        click.echo(json.dumps(tax.to_json(), indent=2))
        return
    rows = [("class", "set", "COCO labels", "LVIS v1 labels", "MGCC area/corner")]
    for cls in tax.classes.values():
        rows.append(
            (
                cls.name,
                cls.position_set,
                ", ".join(cls.coco) or "-",
                ", ".join(cls.lvis) or "-",
                f"{cls.mgcc_area:.2f} {cls.mgcc_corner}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    click.echo(f"taxonomy version {tax.version} ({len(tax.classes)} classes)")
    for number, row in enumerate(rows):
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
        if number == 0:
            click.echo("  ".join("-" * width for width in widths))


@click.command("import-oil")
@click.argument("src", type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Library folder.")
@click.option(
    "--sha256sums",
    type=click.Path(dir_okay=False, path_type=Path),
    help="'HASH  name' file; every PNG must be listed and match.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing library at --out.")
@user_errors
def import_oil(src: Path, out: Path, sha256sums: Path | None, overwrite: bool) -> None:
    """Build an occlusion library from a folder of RGBA PNGs.

    SRC is laid out either as {class}{k}.png (the MGCC layout: bag1.png, firehydrant2.png,
    roadsign3.png) or as one subfolder per class (umbrella/a.png). Class names are resolved
    through the taxonomy's aliases.

    \b
    Example:
      ogor import-oil ~/occlusion_img --out oil/mgcc --sha256sums oil_assets/mgcc-oil.sha256
      ogor oil-sheet oil/mgcc --out mgcc-sheet.png
    """
    from ogor.library import OcclusionLibrary
    from ogor.library.importer import import_folder
    from toreid.paths import check_writes

    check_writes("--out", out, {"SRC": src})
    import_folder(src, out, sha256sums=sha256sums, overwrite=overwrite)
    library = OcclusionLibrary.load(out)
    click.echo(f"wrote {out}: {len(library)} instances, fingerprint {library.fingerprint}")


@click.command("fetch-oil")
@click.argument("name", type=click.Choice(["mgcc"]))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Library folder.")
@click.option(
    "--base-url",
    default=None,
    help="Repository root to download dataset/occlusion_img/<name>.png from "
    "(default: the pinned MGCC commit on raw.githubusercontent.com).",
)
@click.option(
    "--sha256sums",
    type=click.Path(dir_okay=False, path_type=Path),
    hidden=True,
    help="Verify against this 'HASH  name' file instead of the pinned one (mirrors, tests).",
)
@click.option("--timeout", default=30.0, show_default=True, help="Seconds per request.")
@click.option("--overwrite", is_flag=True, help="Replace an existing library at --out.")
@user_errors
def fetch_oil(
    name: str,
    out: Path,
    base_url: str | None,
    sha256sums: Path | None,
    timeout: float,
    overwrite: bool,
) -> None:
    """Download the MGCC paper's 60 occluders, verify their checksums and import them.

    The files come from the MGCC repository at commit 1f981d3f57f4 and are checked against
    oil_assets/mgcc-oil.sha256; on any failure nothing is left at --out. They are not shipped
    with this project (the repository has no licence), so each user fetches their own copy.

    \b
    Example:
      ogor fetch-oil mgcc --out oil/mgcc
      ogor generate data/CUHK-PEDES --out data/Occluded-CUHK --oil oil/mgcc
    """
    from ogor.library import OcclusionLibrary
    from ogor.library.importer import MGCC_BASE_URL, fetch_mgcc

    fetch_mgcc(
        out,
        base_url=base_url or MGCC_BASE_URL,
        sha256sums=sha256sums,
        overwrite=overwrite,
        timeout=timeout,
        progress=lambda line: click.echo(line, err=True),
    )
    library = OcclusionLibrary.load(out)
    click.echo(f"wrote {out}: {len(library)} instances, fingerprint {library.fingerprint}")


@click.command("oil-sheet")
@click.argument("oil", type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--columns", default=8, show_default=True, help="Cells per row before wrapping.")
@user_errors
def oil_sheet(oil: Path, out: Path, columns: int) -> None:
    """Draw a contact sheet of a library, grouped by position set and class (paper Fig. 5).

    OIL may be a library folder or "default" for the embedded library.

    \b
    Example:
      ogor oil-sheet default --out default-sheet.png
      ogor oil-sheet oil/mgcc --out mgcc-sheet.png --columns 4
    """
    from ogor.library import OcclusionLibrary, default_library_path
    from ogor.library.sheet import write_sheet
    from toreid.paths import check_writes

    check_writes("--out", out, {"OIL": oil if oil.is_dir() else None})

    root = default_library_path() if str(oil) == "default" else oil
    library = OcclusionLibrary.load(root)
    write_sheet(library, out, columns)
    click.echo(f"wrote {out} ({len(library)} instances)")


@click.command("render-default-oil")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder to write (default: oil_assets/default of this checkout).",
)
@user_errors
def render_default_oil(out: Path | None) -> None:
    """Re-render the embedded procedural occluder library, byte-identically.

    The default library is drawn by code (ogor/library/render/) from a fixed seed; this command
    regenerates it, and rendering into another folder lets you compare the bytes.

    \b
    Example:
      ogor render-default-oil --out /tmp/default-oil
      cmp /tmp/default-oil/index.json oil_assets/default/index.json
    """
    from ogor.library import OcclusionLibrary, default_library_path
    from ogor.library.render import render_default_library

    target = out or default_library_path()
    render_default_library(target, overwrite=True)
    library = OcclusionLibrary.load(target)
    size = sum(path.stat().st_size for path in Path(target).iterdir())
    click.echo(
        f"wrote {target}: {len(library)} instances, {size / 1e6:.2f} MB, "
        f"fingerprint {library.fingerprint}"
    )
