"""``ogor extract-oil``: build an occlusion instance library from photos with a detector."""

from __future__ import annotations

from pathlib import Path

import click

from toreid.cli import user_errors


@click.command("extract-oil")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Library folder.")
@click.option(
    "--backend",
    default="auto",
    show_default=True,
    help="auto, torchvision, detectron2 or coco-gt (auto: detectron2 if installed).",
)
@click.option(
    "--coco",
    type=click.Path(dir_okay=False, path_type=Path),
    help="COCO annotation file (INPUT is then its image folder).",
)
@click.option(
    "--images",
    type=click.Path(file_okay=False, path_type=Path),
    help="Image folder when INPUT is a COCO file (default: the file's folder).",
)
@click.option("--weights", type=click.Path(path_type=Path), help="Model weights file.")
@click.option("--config", help="detectron2 config: coco, lvis, a model-zoo name or a YAML file.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda or cuda:N.")
@click.option("--per-class", type=int, help="Keep at most N per class (4: the paper's 60).")
@click.option("--min-score", default=0.7, show_default=True, help="Lowest detector score.")
@click.option("--min-area", default=1024, show_default=True, help="Fewest mask pixels.")
@click.option("--min-side", default=24, show_default=True, help="Shortest box side (pixels).")
@click.option(
    "--min-component-share",
    default=0.9,
    show_default=True,
    help="Share of the mask its largest piece must hold (fragment test).",
)
@click.option(
    "--border-margin",
    default=1,
    show_default=True,
    help="Reject masks this close (pixels) to the image edge (truncated objects).",
)
@click.option(
    "--feather", default=0.0, show_default=True, help="Alpha edge softening sigma (inwards)."
)
@click.option(
    "--dedup-threshold",
    default=0.06,
    show_default=True,
    help="Near-duplicate distance within a class (0 disables).",
)
@click.option("--min-size", type=int, help="Model input shorter side (torchvision: 800).")
@click.option("--max-size", type=int, help="Model input longer side cap (torchvision: 1333).")
@click.option("--mask-threshold", type=float, help="torchvision mask probability cut (0.5).")
@click.option("--max-detections", type=int, help="Most instances per image (100).")
@click.option("--proposals", type=int, help="Region proposals per image (1000; fewer is faster).")
@click.option("--skip-bad-images", is_flag=True, help="Skip unreadable images (default: stop).")
@click.option("--overwrite", is_flag=True, help="Replace --out; discard stale resume state.")
@click.option("--keep-state", is_flag=True, help="Keep OUT.extract-state/ after success.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
@user_errors
def extract_oil(
    input_path: Path,
    out: Path,
    backend: str,
    coco: Path | None,
    images: Path | None,
    weights: Path | None,
    config: str | None,
    device: str,
    per_class: int | None,
    min_score: float,
    min_area: int,
    min_side: int,
    min_component_share: float,
    border_margin: int,
    feather: float,
    dedup_threshold: float,
    min_size: int | None,
    max_size: int | None,
    mask_threshold: float | None,
    max_detections: int | None,
    proposals: int | None,
    skip_bad_images: bool,
    overwrite: bool,
    keep_state: bool,
    no_progress: bool,
) -> None:
    """Cut occluder instances out of photos into an occlusion instance library.

    INPUT is a folder of images (searched recursively) or a COCO annotation file. Each
    detected instance of an occluder class is cut out (tight crop, mask as alpha); instances
    cut by the image border, too small, low-scoring or fragmented are rejected; the rest are
    ranked, near-duplicates dropped and each class capped. A rerun resumes: images already
    processed (recorded in OUT.extract-state/) are skipped. An unreadable image stops the run
    with one line naming it, unless --skip-bad-images (then it is counted in the summary).

    \b
    Backends:
      torchvision  maskrcnn_resnet50_fpn_v2 (COCO); weights from --weights, the torch hub
                   cache or a download
      detectron2   model-zoo Mask R-CNN (--config coco|lvis|NAME|FILE); install from source
      coco-gt      ground-truth masks of a COCO file (polygons and RLE); no model
      auto         detectron2 when installed, else torchvision

    \b
    Example:
      ogor extract-oil street_photos/ --out oil/mine --per-class 4 --device cuda
      ogor extract-oil photos/ --out oil/cpu --backend torchvision --min-size 480 --max-size 640
      ogor extract-oil annotations.json --images imgs/ --backend coco-gt --out oil/gt
    """
    from ogor.extract import coco_images, extract_library, scan_images
    from ogor.extract.base import ExtractionError
    from ogor.extract.cutout import CutoutFilter
    from ogor.extract.registry import build_backend, resolve_auto
    from toreid.paths import check_writes

    # INPUT is a photo folder, or a COCO file whose images are under --images
    check_writes("--out", out, {"INPUT": input_path if input_path.is_dir() else None,
                                "--images": images})
    name, why = resolve_auto(backend)
    if why is not None:
        click.echo(f"backend: auto -> {name} ({why})")
    if not input_path.exists():
        raise ExtractionError(f"{input_path}: input not found")
    coco_file = coco
    image_dir = images
    if input_path.is_file():
        if coco is not None:
            raise ExtractionError(f"{input_path}: INPUT is a file, so --coco is not allowed")
        coco_file = input_path
    elif coco is not None:
        if images is not None:
            raise ExtractionError("--images is only for a COCO file given as INPUT")
        image_dir = input_path

    if name == "coco-gt":
        if coco_file is None:
            raise ExtractionError(
                f"{input_path}: the coco-gt backend needs a COCO file (INPUT or --coco)"
            )
        options: dict[str, object] = {"coco": coco_file, "images": image_dir}
    else:
        options = {
            "weights": weights,
            "config": config,
            "device": device,
            "min_score": min_score,
            "min_size": min_size,
            "max_size": max_size,
            "mask_threshold": mask_threshold,
            "max_detections": max_detections,
            "proposals": proposals,
        }
    if name == "coco-gt" and (weights is not None or config is not None):
        raise ExtractionError("the coco-gt backend runs no model: drop --weights / --config")
    detector = build_backend(name, **options)
    refs = coco_images(coco_file, image_dir) if coco_file is not None else scan_images(input_path)
    rules = CutoutFilter(
        min_score=min_score,
        min_area=min_area,
        min_side=min_side,
        border_margin=border_margin,
        min_component_share=min_component_share,
    )
    summary = extract_library(
        refs,
        out,
        detector,
        per_class=per_class,
        rules=rules,
        feather=feather,
        dedup_threshold=dedup_threshold,
        skip_bad_images=skip_bad_images,
        overwrite=overwrite,
        keep_state=keep_state,
        progress=not no_progress,
        log=lambda message: click.echo(message, err=True),
    )
    for line in summary.report_lines():
        click.echo(line)
    if summary.library is None:
        raise ExtractionError(f"{out}: no instance passed the filters; nothing written")
