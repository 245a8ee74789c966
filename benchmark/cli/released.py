"""``bench import`` and ``bench export``: released checkpoints in and out."""

from __future__ import annotations

from pathlib import Path

import click

from benchmark.cli.common import print_metrics_rows
from toreid.cli import user_errors
from toreid.errors import ToreidError
from toreid.paths import check_writes


@click.command("import")
@click.argument("checkpoint", type=click.Path(path_type=Path))
@click.option("--format", "fmt",
              type=click.Choice(["irra", "rde", "tbps-clip", "openai", "rasa", "aptm", "toreid"]),
              default=None, help="The release the file comes from; toreid: a file of bench "
                                 "export (detected when omitted).")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="The run folder to create (e.g. runs/Occluded-CUHK-PEDES/irra-released).")
@click.option("--dataset", default=None, metavar="NAME=ROOT",
              help="Evaluate on this dataset's test split (writes metrics.json for bench table).")
@click.option("--backbone", default=None,
              help="Backbone preset the checkpoint was trained with (default: the release's: "
                   "ViT-B-16; APTM swin-base).")
@click.option("--image-size", default=None, metavar="HxW",
              help="Input size (default: the release's: 384x128; TBPS-CLIP 224x224; RaSa "
                   "384x384).")
@click.option("--bert", default=None, metavar="FOLDER",
              help="rasa/aptm: where bert-base-uncased's vocab.txt is (a folder or Hub name; "
                   "default bert-base-uncased, tiny for --backbone tiny).")
@click.option("--device", default="auto", show_default=True)
@click.option("--batch-size", type=int, default=128, show_default=True)
@click.option("--quiet", is_flag=True)
@user_errors
def import_cmd(checkpoint, fmt, out, dataset, backbone, image_size, bert, device, batch_size,
               quiet) -> None:
    """Import a released checkpoint (IRRA, RDE, TBPS-CLIP, RaSa, APTM, OpenAI CLIP) as a run
    folder.

    The file is read weights-only (a file that needs arbitrary unpickling is refused), its keys
    are mapped onto our model (a key or shape that does not fit is refused, naming it), and the
    run folder records the file's sha256 and format. bench eval / query / table take it.

    \b
    Example:
      bench import --format irra CUHK-PEDES/best.pth --out runs/Occluded-CUHK-PEDES/irra-released \\
          --dataset Occluded-CUHK-PEDES=data/Occluded-CUHK-PEDES
    """
    from benchmark.pipeline.runner import parse_datasets
    from benchmark.released.importers import detect_format, import_checkpoint

    size = None
    if image_size:
        try:
            height, width = (int(v) for v in image_size.lower().split("x"))
        except ValueError:
            raise ToreidError(f"--image-size: expected HxW such as 384x128, got "
                              f"{image_size!r}") from None
        size = (height, width)
    pairs = parse_datasets(dataset, "--dataset") if dataset else [None]
    if len(pairs) != 1:
        raise ToreidError("--dataset: give one NAME=ROOT")
    check_writes("--out", out, {"--dataset": pairs[0][1] if pairs[0] else None})
    fmt = fmt or detect_format(checkpoint)
    record = import_checkpoint(fmt, checkpoint, out, dataset=pairs[0], backbone=backbone,
                               image_size=size, device=device, batch_size=batch_size,
                               progress=not quiet, bert=bert)
    click.echo(f"imported {checkpoint} ({fmt}) into {out}")
    if record is None:
        click.echo("no --dataset: evaluate with bench eval --run OUT --dataset ROOT")
        return
    print_metrics_rows(record)


@click.command("export")
@click.option("--run", "run_path", type=click.Path(path_type=Path, exists=True, file_okay=False),
              required=True, help="A finished run folder.")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="The .safetensors file to write.")
@user_errors
def export_cmd(run_path, out) -> None:
    """Write a run's selected weights (best.pt) as .safetensors, with the model config inside.

    A .safetensors file holds only tensors and a text header: the format to share trained
    models in (a .pt file is a pickle, and unpickling can run code).

    \b
    Example:
      bench export --run runs/demo-occluded/mgcc/seed1 --out mgcc-demo.safetensors
    """
    from benchmark.released.export import export_safetensors

    if out.suffix != ".safetensors":
        raise ToreidError(f"--out {out}: the file name must end in .safetensors")
    click.echo(f"wrote {export_safetensors(run_path, out)}")
