"""``bench index``, ``bench search``, ``bench serve``: a trained run searching any gallery."""

from __future__ import annotations

import json
from pathlib import Path

import click

from toreid.cli import user_errors
from toreid.errors import ToreidError
from toreid.paths import check_writes


@click.command("index")
@click.option("--run", "run_path", type=click.Path(path_type=Path, exists=True, file_okay=False),
              required=True, help="A run folder (trained or imported) whose model encodes.")
@click.option("--dataset", "datasets", multiple=True, metavar="NAME=ROOT",
              help="A dataset whose --split is (part of) the gallery (repeatable).")
@click.option("--split", default="test", show_default=True,
              help="The dataset split to index: test, val or train.")
@click.option("--images", "folders", multiple=True,
              type=click.Path(path_type=Path, exists=True, file_okay=False),
              help="A folder of images (searched recursively; no annotations needed).")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="The index folder: created, or appended to when it holds an index of the "
              "same run.")
@click.option("--faiss", "faiss_kind", type=click.Choice(["flat", "ivf", "hnsw"]),
              default="flat", show_default=True,
              help="First-stage index: flat is exact; ivf and hnsw are approximate, for "
              "large galleries.")
@click.option("--faiss-params", default=None,
              help="e.g. nlist=1024,nprobe=32 (ivf) or M=32,efConstruction=80,efSearch=128 "
              "(hnsw); recorded in the index.")
@click.option("--token-dtype", type=click.Choice(["float16", "float32"]), default="float16",
              show_default=True, help="Storage of the token features the second stage reads.")
@click.option("--batch-size", type=int, default=128, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--quiet", is_flag=True)
@user_errors
def index_cmd(run_path, datasets, split, folders, out, faiss_kind, faiss_params, token_dtype,
              batch_size, device, quiet) -> None:
    """Encode a gallery with a run's model into an index for bench search and bench serve.

    Resumable: the same command after an interruption continues; with new images it appends.
    An index built by another run is refused.

    \b
    Example:
      bench index --run runs/demo-occluded/mgcc/seed1 --dataset demo=DEMO_ROOT --out gallery
      bench index --run runs/demo-occluded/mgcc/seed1 --images ~/footage --out gallery
    """
    from benchmark.pipeline.runner import parse_datasets
    from benchmark.records import results
    from benchmark.records.rebuild import rebuild_from_run
    from benchmark.runtime.device import resolve_device
    from benchmark.search import first_stage
    from benchmark.search.build import (
        dataset_items,
        decode,
        encode_into,
        folder_items,
        open_or_create,
    )
    from benchmark.search.store import sha256_file

    if not datasets and not folders:
        raise ToreidError("give the gallery: --dataset NAME=ROOT and/or --images FOLDER")
    if batch_size < 1:
        raise ToreidError(f"--batch-size must be >= 1, got {batch_size}")
    named = [pair for text in datasets for pair in parse_datasets(text, "--dataset")]
    reads = {f"--dataset {name}": root for name, root in named}
    reads.update({f"--images {folder}": folder for folder in folders})
    check_writes("--out", out, reads)
    params = first_stage.parse_params(faiss_kind, faiss_params)
    items, sources = [], []
    for name, root in named:
        items += dataset_items(name, root, split)
        sources.append({"kind": "dataset", "where": str(Path(root).resolve()), "name": name,
                        "split": split})
    for folder in folders:
        items += folder_items(folder)
        sources.append({"kind": "folder", "where": str(Path(folder).resolve())})
    keys = [item.key for item in items]
    if len(set(keys)) != len(keys):
        raise ToreidError("the gallery names one image twice (the same dataset or folder "
                          "given twice)")
    best = results.checkpoint_dir(run_path) / "best.pt"
    weights = sha256_file(best) if best.is_file() else ""
    model, config = rebuild_from_run(run_path)
    dev = resolve_device(device)
    model = model.to(dev).eval()
    if faiss_kind == "ivf" and not faiss_params:
        params = first_stage.default_params("ivf", len(items))
    # a new index takes its array shapes from one encoded image; an existing one has them
    sample = None if (out / "index.json").is_file() else _sample_features(model, items,
                                                                          decode, dev)
    index = open_or_create(out, run=run_path, model_name=config["model"].get("name", "?"),
                           model=model, weights_sha256=weights, sample=sample,
                           faiss_kind=faiss_kind, faiss_params=params, token_dtype=token_dtype,
                           sources=sources, toolkit=results.toolkit_version())
    report = encode_into(index, model, items, device=dev, batch_size=batch_size,
                         progress=not quiet, log=click.echo)
    click.echo(f"{out}: {report.count} images ({report.added} added, {report.already} "
               f"already indexed, {len(report.skipped)} unreadable skipped) in "
               f"{report.seconds:.1f} s; first stage: {index.record['faiss']['kind']}"
               f"{'' if index.record['second_stage'] else ' (the model has no second stage)'}")


def _sample_features(model, items, decode, device):
    """The features of the first decodable image (the index's shapes are read from them)."""
    import torch

    from ogor.errors import DatasetError

    for item in items:
        try:
            pixels, _, _ = decode(item, model)
        except DatasetError:
            if not item.exif:
                raise
            continue
        with torch.no_grad():
            return model.encode_images(pixels[None].to(device)).to("cpu", torch.float32)
    raise ToreidError("no readable image in the gallery")


@click.command("search")
@click.argument("index_folder", metavar="INDEX",
                type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.argument("text")
@click.option("--topk", type=int, default=10, show_default=True)
@click.option("--rerank", type=int, default=100, show_default=True,
              help="Stage-1 candidates re-scored by the model's full similarity (0: none).")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Write the ranked strip (PNG) here.")
@click.option("--json", "as_json", is_flag=True, help="Print the ranking as JSON.")
@click.option("--nprobe", type=int, default=None, help="IVF lists visited (default: recorded).")
@click.option("--ef-search", type=int, default=None, help="HNSW efSearch (default: recorded).")
@click.option("--device", default="auto", show_default=True)
@user_errors
def search_cmd(index_folder, text, topk, rerank, out, as_json, nprobe, ef_search,
               device) -> None:
    """Rank an index's gallery for a description: the global first stage through faiss, the
    full similarity on the top --rerank.

    \b
    Example:
      bench search gallery "a woman in a red coat carrying a black bag" --topk 10 \\
          --rerank 100 --out ranking.png
    """
    from benchmark.evaluation.query import GREY, draw_ranked_images
    from benchmark.search.search import Searcher

    if topk < 1:
        raise ToreidError(f"--topk must be >= 1, got {topk}")
    if rerank < 0:
        raise ToreidError(f"--rerank must be >= 0, got {rerank}")
    for option, value in (("--nprobe", nprobe), ("--ef-search", ef_search)):
        if value is not None and value < 1:
            raise ToreidError(f"{option} must be >= 1, got {value}")
    if not text.strip():
        raise ToreidError("TEXT: the query is empty; give a description to search for")
    check_writes("--out", out, {"INDEX": index_folder})
    searcher = Searcher.from_index(index_folder, device=device, nprobe=nprobe,
                                   ef_search=ef_search)
    result = searcher.search(text, topk=topk, rerank=rerank)
    if out is not None:
        draw_ranked_images(text, [Path(h.path) for h in result.hits],
                           [h.score for h in result.hits], [GREY] * len(result.hits), out)
    if as_json:
        click.echo(json.dumps(result.record(), indent=1))
        return
    for hit in result.hits:
        stage = "" if hit.stage == 2 else "  (stage 1)"
        click.echo(f"#{hit.rank:<3} {hit.score:8.4f}  {hit.path}{stage}")
    click.echo("seconds: " + ", ".join(f"{k} {v:.4f}" for k, v in result.seconds.items()))
    if out is not None:
        click.echo(f"wrote {out}")


@click.command("serve")
@click.argument("index_folder", metavar="INDEX",
                type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind (127.0.0.1: this machine only).")
@click.option("--port", type=int, default=8765, show_default=True)
@click.option("--topk", type=int, default=20, show_default=True)
@click.option("--rerank", type=int, default=100, show_default=True)
@click.option("--device", default="auto", show_default=True)
@user_errors
def serve_cmd(index_folder, host, port, topk, rerank, device) -> None:
    """A local search page over an index: type a description, see the ranked gallery.

    \b
    Example:
      bench serve gallery --port 8765     # then open http://127.0.0.1:8765
    """
    from benchmark.search.search import Searcher
    from benchmark.search.serve import make_app

    if not 0 < port < 65536:
        raise ToreidError(f"--port must be in 1-65535, got {port}")
    if topk < 1 or rerank < 0:
        raise ToreidError(f"--topk must be >= 1 and --rerank >= 0, got {topk}, {rerank}")
    searcher = Searcher.from_index(index_folder, device=device)
    app = make_app(searcher, topk=topk, rerank=rerank)
    click.echo(f"serving {index_folder} ({searcher.index.count} images) on "
               f"http://{host}:{port}")
    app.run(host=host, port=port, debug=False, use_reloader=False)
