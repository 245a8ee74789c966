"""``bench robustness``: how retrieval degrades as occlusion grows, and which occluders hurt most.

For trained runs and a clean source dataset, this evaluates every run on a family of occluded
versions of the source's test split, made on the fly by :func:`ogor.generation.generate_dataset`:

* **ratio sweep**: the share of occluded test images goes 0, 0.25, 0.5, 0.75, 1.0 (default),
  each over several generation seeds; every point is the mean ± sample std over the seeds.
* **breakdowns** of one occluded version: the test queries are grouped by the occluder pasted
  on the query's *own* image (the gallery image its caption describes, one of its positives):
  by position set (``up`` / ``middle`` / ``bottom``), by class, and by the manifest's measured
  occluded fraction of that image (bins). Queries whose image was left clean form the group
  ``clean``.

"The whole", precisely: for one run, one ratio ``r`` and the seeds ``S``, the whole is the
pooled set of every test query of every occluded version ``(r, s), s in S`` (``len(S) x Q``
queries). The groups of a breakdown partition that pool, and R@K, AP and INP are means of
per-query values, so ``sum_g n_g * M_g / sum_g n_g == M_whole`` (exactly, up to float rounding)
for R@K, mAP, mINP and Rsum. ``M_whole`` itself equals the sweep's mean over seeds at ``r``,
because every seed has the same ``Q`` queries. Each group also carries the std over seeds of
its per-seed value (over the seeds where the group is not empty).

Caching: the test split is copied once into
``<cache>/robustness/<format>-<split>-<content fingerprint>/source``, named by what it is derived
from (the annotation's sha256 and every image's sha256: a clean dataset and its occluded version
share an annotation file, never a cache entry) and re-checked against it before each use; each
occluded version goes into a sibling folder named by the fingerprint of its recipe (that
content, split, protocol, ratio, seed, occlusion library fingerprint, toolkit version). The cache is
``$TOREID_CACHE`` or ``~/.cache/toreid``; nothing is ever written inside the source.
At ratio 0 no image is occluded and the copy holds the source's bytes in the source's order,
so the ratio-0 point equals ``bench eval`` on the clean test split exactly (tested).

With ``corruptions`` (``--corruptions``), each base version is also evaluated under surveillance
image corruptions and witness-text perturbations: :mod:`benchmark.evaluation.corruptions.sweep`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.evaluation.metrics import QueryStats, mean_std_over_seeds, summarize
from benchmark.records.results import toolkit_version
from toreid.errors import ToreidError
from toreid.io import build_lock, sha256_file

#: The record of what a cached split copy was derived from (checked before each use).
CONTENT_NAME = "toreid-content.json"

ROBUSTNESS_FORMAT = "toreid-robustness"
ROBUSTNESS_VERSION = 1
SETS: tuple[str, ...] = ("up", "middle", "bottom")
CLEAN = "clean"
DEFAULT_RATIOS: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
DEFAULT_SEEDS: tuple[int, ...] = (0, 1, 2)
#: Edges of the occluded-fraction bins: ``0`` exactly (clean), then ``(e_i, e_i+1]``, last to 1.
DEFAULT_FRACTION_EDGES: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.6, 1.0)


@dataclass(frozen=True)
class SweepConfig:
    """What to generate and how to evaluate.

    Attributes:
        ratios: occlusion ratios of the sweep, each in [0, 1].
        seeds: generation seeds; each (ratio, seed) is one occluded version.
        protocol: the ``ogor generate`` protocol (``paper`` uses the ratio).
        oil: occlusion library folder (default: the embedded library).
        split: the split evaluated (queries and gallery), ``test``.
        fraction_edges: bin edges of the measured occluded fraction (see the module doc).
        batch_size, query_chunk: as ``bench eval`` (defaults equal, so ratio 0 matches it).
    """

    ratios: tuple[float, ...] = DEFAULT_RATIOS
    seeds: tuple[int, ...] = DEFAULT_SEEDS
    protocol: str = "paper"
    oil: Path | None = None
    split: str = "test"
    fraction_edges: tuple[float, ...] = DEFAULT_FRACTION_EDGES
    batch_size: int = 128
    query_chunk: int = 512
    corruptions: tuple[str, ...] = ()
    severities: tuple[int, ...] = (1, 2, 3, 4, 5)

    def validate(self) -> None:
        if not self.ratios:
            raise ToreidError("--ratios: no ratio given")
        bad = [r for r in self.ratios if not 0.0 <= r <= 1.0]
        if bad:
            raise ToreidError(f"--ratios: ratio {bad[0]} is outside [0, 1]")
        if not self.seeds:
            raise ToreidError("--seeds: no seed given")
        edges = list(self.fraction_edges)
        if len(edges) < 2 or edges[0] != 0.0 or edges != sorted(set(edges)):
            raise ToreidError(f"--fraction-bins: edges must rise from 0, got {edges}")


# --------------------------------------------------------------------------------------------
# The cached datasets
# --------------------------------------------------------------------------------------------


def _fingerprint(recipe: dict[str, Any]) -> str:
    text = json.dumps(recipe, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def split_content(dataset: Any, records: Sequence[Any]) -> dict[str, Any]:
    """What a split copy is derived from: the annotation's sha256 and every image's sha256 in
    record order. Two datasets with the same annotation and other pixels (a clean dataset and
    its occluded version) differ here, so they can never share a cache entry."""
    from ogor.datasets import annotation_sha256

    images: dict[str, str] = {}
    for record in records:
        if record.image_path not in images:
            images[record.image_path] = sha256_file(dataset.image_file(record))
    return {"annotation_sha256": annotation_sha256(dataset.annotation_path),
            "images": images}


def refuse_generated_source(source: Path) -> None:
    """An ``ogor``-generated dataset as ``--source`` would be occluded a second time."""
    from ogor.generation import MANIFEST_NAME

    manifest = Path(source) / MANIFEST_NAME
    if manifest.is_file():
        raise ToreidError(f"{manifest}: --source is an ogor-generated (occluded) dataset; "
                          "the sweep would occlude it again. Give the clean source, or pass "
                          "--allow-generated-source to sweep it anyway")


def _cached_content_matches(done: Path, image_dir: str, content: dict[str, Any]) -> bool:
    """Re-check a cached copy before use: its recorded content and its images' bytes."""
    record = done / CONTENT_NAME
    try:
        recorded = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if recorded != content:
        return False
    try:
        return all(sha256_file(done / image_dir / rel) == sha
                   for rel, sha in content["images"].items())
    except OSError:
        return False


def split_copy(source: Path, split: str, cache: Path) -> Path:
    """A dataset root holding only ``split`` of ``source`` (same records, same order, same
    bytes), built once in the cache and moved into place when complete.

    The folder is named by the content it was derived from (annotation and every image's
    sha256, :func:`split_content`), and the copy is re-checked against that content before each
    use; a copy that no longer matches is rebuilt. Images are copied, never hard-linked, so an
    edit of the source in place cannot change a cached copy behind its key."""
    from ogor.datasets import read_dataset

    source = Path(source)
    if Path(cache).resolve().is_relative_to(source.resolve()):
        raise ToreidError(f"{cache}: the cache is inside the source dataset {source}; set "
                          "TOREID_CACHE elsewhere (nothing is written inside a source)")
    dataset = read_dataset(source)
    records = dataset.split(split)
    if not records:
        present = ", ".join(dataset.splits_present()) or "none"
        raise ToreidError(f"{dataset.annotation_path}: dataset has no '{split}' split (splits "
                          f"present: {present})")
    content = split_content(dataset, records)
    base = (Path(cache) / "robustness" /
            f"{dataset.format.name}-{split}-{_fingerprint(content)[:16]}")
    with build_lock(base):  # processes started together: one builds, the others reuse
        return _build_split_copy(dataset, records, content, base)


def _build_split_copy(dataset: Any, records: Sequence[Any], content: dict[str, Any],
                      base: Path) -> Path:
    """The body of :func:`split_copy`, run under its lock."""
    from ogor.datasets import base_format_name, get_format

    done = base / "source"
    if _cached_content_matches(done, dataset.format.image_dir, content):
        return done
    # Every layout's subset is written as its dataset's base layout (a split-less or per-split
    # layout could not hold one split alone); a base layout keeps its own file name.
    out_format = get_format(base_format_name(dataset.format))
    name = (dataset.annotation_path.name if out_format is dataset.format
            else out_format.annotation_names[0])
    partial = base / f"source.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    for record in records:
        target = partial / dataset.format.image_dir / record.image_path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(dataset.image_file(record), target)
    out_format.write(records, partial, name)
    (partial / CONTENT_NAME).write_text(json.dumps(content, sort_keys=True), encoding="utf-8")
    shutil.rmtree(done, ignore_errors=True)
    try:
        os.replace(partial, done)
    except OSError:  # another process finished the same copy first
        shutil.rmtree(partial, ignore_errors=True)
    return done


def occluded_version(subset: Path, ratio: float, seed: int, config: SweepConfig,
                     library_fingerprint: str) -> Path:
    """The occluded version ``(ratio, seed)`` of ``subset``, generated once per recipe."""
    from ogor.generation import MANIFEST_NAME, generate_dataset

    recipe = {
        # the subset's folder name is its content fingerprint (annotation + every image)
        "source_content": subset.parent.name,
        "split": config.split, "protocol": config.protocol, "ratio": float(ratio),
        "seed": int(seed), "library": library_fingerprint, "toreid": toolkit_version(),
    }
    out = subset.parent / f"occluded-r{ratio:g}-s{seed}-{_fingerprint(recipe)[:12]}"
    with build_lock(out):
        if not (out / MANIFEST_NAME).is_file():
            generate_dataset(subset, out, oil=config.oil, ratio=ratio, protocol=config.protocol,
                             seed=seed, overwrite=True)
    return out


# --------------------------------------------------------------------------------------------
# Grouping queries by the occluder on their own image
# --------------------------------------------------------------------------------------------


def fraction_bin_labels(edges: Sequence[float]) -> list[str]:
    """``0 (clean)`` then ``(a, b]`` for each pair of edges."""
    return ["0 (clean)"] + [f"({a:g}, {b:g}]" for a, b in zip(edges[:-1], edges[1:],
                                                                strict=True)]


def image_groups(manifest: dict[str, Any], paths: Sequence[str],
                 edges: Sequence[float]) -> dict[str, list[str]]:
    """Per gallery image (``paths`` in gallery order): its set, class and fraction-bin label,
    read from the manifest's image records (``manifests/`` holds their schema)."""
    items = {item["path"]: item for item in manifest["images"]}
    labels = fraction_bin_labels(edges)
    sets, classes, bins = [], [], []
    for path in paths:
        item = items[path]
        placement = item["placement"] if item["occluded"] else None
        sets.append(placement["set"] if placement else CLEAN)
        classes.append(placement["class"] if placement else CLEAN)
        fraction = float(item["occluded_fraction"] or 0.0)
        if fraction <= 0.0:
            bins.append(labels[0])
        else:
            index = int(np.searchsorted(np.asarray(edges[1:]), fraction, side="left"))
            bins.append(labels[1 + min(index, len(labels) - 2)])
    return {"set": sets, "class": classes, "fraction": bins}


@dataclass
class _Pool:
    """Per-query statistics of one (run, ratio) over the seeds, with each query's groups."""

    stats: list[QueryStats] = field(default_factory=list)
    groups: dict[str, list[np.ndarray]] = field(default_factory=dict)
    seed_of: list[np.ndarray] = field(default_factory=list)

    def add(self, seed: int, stats: QueryStats, groups: dict[str, np.ndarray]) -> None:
        self.stats.append(stats)
        self.seed_of.append(np.full(len(stats), seed))
        for kind, values in groups.items():
            self.groups.setdefault(kind, []).append(values)


def breakdown(pool: _Pool, order: dict[str, Sequence[str]]) -> dict[str, Any]:
    """The pooled whole and each group's pooled metrics (+ std over seeds, query counts)."""
    stats = QueryStats.cat(pool.stats)
    seeds = np.concatenate(pool.seed_of)
    out: dict[str, Any] = {"whole": summarize(stats)}
    for kind, parts in pool.groups.items():
        labels = np.concatenate(parts)
        present = set(labels.tolist())
        names = [g for g in order.get(kind, ()) if g in present]
        names += sorted(present - set(names))
        table = {}
        for name in names:
            mask = labels == name
            group = summarize(stats.subset(mask))
            per_seed = [summarize(stats.subset(mask & (seeds == s)))
                        for s in dict.fromkeys(seeds.tolist()) if (mask & (seeds == s)).any()]
            _, std = mean_std_over_seeds(per_seed)
            table[name] = {**group, "std": std, "seeds_present": len(per_seed)}
        out[f"by_{kind}"] = table
    return out


# --------------------------------------------------------------------------------------------
# The sweep
# --------------------------------------------------------------------------------------------


def run_label(run: Path, config: dict[str, Any], taken: set[str]) -> str:
    """The model name, made unique with dataset and seed when two runs share it."""
    name = config["model"]["name"]
    if name in taken:
        name = f"{name} ({config['dataset']['name']}, seed {config['train']['seed']})"
    if name in taken:
        name = f"{name} [{run}]"
    return name


def evaluate_robustness(
    runs: Sequence[Path],
    source: Path,
    config: SweepConfig = SweepConfig(),
    *,
    cache: Path | None = None,
    allow_generated_source: bool = False,
    device: str = "auto",
    progress: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Evaluate each run on every occluded version; return the ``robustness.json`` record."""
    from benchmark.data.sets import eval_set
    from benchmark.evaluation.evaluate import evaluate
    from benchmark.records.rebuild import rebuild_from_run
    from benchmark.runtime.cache import cache_root
    from benchmark.runtime.device import resolve_device
    from ogor.datasets import read_dataset
    from ogor.generation import read_manifest
    from ogor.library import OcclusionLibrary, default_library_path, load_taxonomy

    config.validate()
    if not allow_generated_source:
        refuse_generated_source(Path(source))
    cache = Path(cache) if cache is not None else cache_root()
    subset = split_copy(Path(source), config.split, cache)
    library = OcclusionLibrary.load(config.oil or default_library_path(), verify=False)
    versions = {(r, s): occluded_version(subset, r, s, config, library.fingerprint)
                for r in config.ratios for s in config.seeds}
    log(f"{len(versions)} occluded versions of {source} ({config.split}) under {subset.parent}")
    order = {"set": (CLEAN, *SETS), "class": (CLEAN, *load_taxonomy().classes),
             "fraction": fraction_bin_labels(config.fraction_edges)}
    dev = resolve_device(device)
    taken: set[str] = set()
    out_runs = []
    for run in runs:
        model, run_config = rebuild_from_run(Path(run))
        model.to(dev)
        label = run_label(Path(run), run_config, taken)
        taken.add(label)
        sweep, breakdowns = [], []
        for ratio in config.ratios:
            per_seed, pool = {}, _Pool()
            for seed in config.seeds:
                root = versions[(ratio, seed)]
                problem = eval_set(read_dataset(root), config.split)
                result = evaluate(model, problem, device=dev, batch_size=config.batch_size,
                                  query_chunk=config.query_chunk, progress=progress)
                per_seed[str(seed)] = result.t2i
                groups = image_groups(read_manifest(root, validate=False),
                                      [r.image_path for r in problem.gallery],
                                      config.fraction_edges)
                own = problem.query_image.numpy()
                pool.add(seed, result.stats,
                         {k: np.asarray(v, dtype=object)[own] for k, v in groups.items()})
            mean, std = mean_std_over_seeds(list(per_seed.values()))
            sweep.append({"ratio": ratio, "mean": mean, "std": std, "per_seed": per_seed,
                          "num_queries": len(problem.captions), "num_ids": problem.num_ids})
            breakdowns.append({"ratio": ratio, **breakdown(pool, order)})
            log(f"   {label}: ratio {ratio:g}  R@1 {mean['R@1']:.2f}  mAP {mean['mAP']:.2f}")
        out_runs.append({"label": label, "run": str(run), "model": run_config["model"]["name"],
                         "dataset": run_config["dataset"]["name"],
                         "seed": run_config["train"]["seed"], "sweep": sweep,
                         "breakdown": breakdowns})
        if config.corruptions:  # surveillance corruptions and witness text: the corruptions package
            from benchmark.evaluation.corruptions.sweep import corruption_sweep

            def run_eval(problem, model=model):
                return evaluate(model, problem, device=dev, batch_size=config.batch_size,
                                query_chunk=config.query_chunk, progress=progress).t2i

            out_runs[-1]["corruptions"] = corruption_sweep(
                model, label, versions, sweep, config.corruptions, config.severities,
                config.split, cache, run_eval, log=log)
    extra = {}
    if config.corruptions:
        from benchmark.evaluation.corruptions.sweep import corruption_header

        extra = corruption_header(config.corruptions, config.severities)
    return {
        "format": ROBUSTNESS_FORMAT, "version": ROBUSTNESS_VERSION,
        "source": str(source), "split": config.split, "protocol": config.protocol,
        "library": {"root": str(library.root), "fingerprint": library.fingerprint},
        "ratios": list(config.ratios), "seeds": list(config.seeds),
        "fraction_edges": list(config.fraction_edges),
        "cache": str(subset.parent),
        "whole": "per (run, ratio): every test query of every seed's occluded version, pooled; "
                 "groups partition it by the occluder on the query's own image; "
                 "sum(n_g * M_g) / sum(n_g) = M_whole",
        "runs": out_runs,
        **extra,
    }


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------

