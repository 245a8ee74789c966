"""``bench run`` as a library: presets, dataset arguments, the embedded demo and the run loop.

The embedded default (``bench run --models mgcc,irra`` with no ``--datasets``) builds and caches
the synthetic demo dataset (:func:`ogor.synth.synthesize`) and its occluded version
(:func:`ogor.generation.generate_dataset` with the default library, ratio 0.3, seed 0), trains tiny
random-init models on the CPU and prints the leaderboard. The cache is ``$TOREID_CACHE`` or
``~/.cache/toreid``; a cached dataset is complete or absent (both builders write atomically).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.records import results
from benchmark.records.spec import RunSpec, TrainConfig
from benchmark.reporting import leaderboard
from benchmark.runtime.cache import cache_root
from benchmark.training.loop import run_training
from toreid.errors import ToreidError
from toreid.io import build_lock
from toreid.paths import check_name

PRESETS_FILE = Path(__file__).resolve().parents[1] / "presets.json"

#: The demo dataset: enough test ids that chance R@1 (about 1/ids) is small.
DEMO_VERSION = 1
DEMO_LABEL = "demo-occluded"


@dataclass(frozen=True)
class DemoSpec:
    """Size of the synthetic demo dataset (see :func:`ogor.synth.synthesize`)."""

    ids: int = 260
    views: int = 4
    seed: int = 0
    ratio: float = 0.3


def load_presets() -> dict[str, Any]:
    return json.loads(PRESETS_FILE.read_text(encoding="utf-8"))["presets"]


def list_presets() -> dict[str, str]:
    """Preset name -> one-line help."""
    return {name: p["help"] for name, p in load_presets().items()}


def preset_for(preset: str, model: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(train fields, model options) of ``preset`` for ``model``."""
    presets = load_presets()
    if preset not in presets:
        raise ToreidError(f"unknown preset {preset!r} (valid: {', '.join(presets)})")
    entry = presets[preset]
    train = dict(entry.get("train", {}))
    options = dict(entry.get("model", {}))
    override = entry.get("per_model", {}).get(model, {})
    train.update(override.get("train", {}))
    options.update(override.get("model", {}))
    return train, options


def make_train_config(preset: str, model: str, seed: int, overrides: dict[str, Any]) -> tuple[
        TrainConfig, dict[str, Any]]:
    """Resolve preset < command line into a :class:`TrainConfig` and model options.

    ``overrides`` keys that are TrainConfig fields go to the config; the rest are model build
    options (``backbone``, ``pretrained``, ``rho_image``...). ``None`` values are ignored.
    ``lr_scale`` (``linear`` or ``sqrt``) scales the preset's lr by the ratio of the global
    batch to the preset's batch (or its square root) and records that batch as
    ``lr_reference_batch``; with ``none`` the lr is the preset's at any batch.
    """
    train, options = preset_for(preset, model)
    reference = int(train.get("batch_size", TrainConfig.batch_size))
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    for key, value in overrides.items():
        if value is None:
            continue
        (train if key in fields else options)[key] = value
    train["seed"] = seed
    rule = train.get("lr_scale", "none")
    if rule != "none":
        if overrides.get("lr") is not None:
            raise ToreidError("--lr-scale scales the preset's lr: give --lr (the lr at this "
                              "batch) or --lr-scale, not both")
        train["lr_reference_batch"] = reference
        train["lr"] = float(train.get("lr", TrainConfig.lr)) * lr_scale_factor(
            rule, int(train.get("batch_size", reference)), reference)
    return TrainConfig(**train), options


def lr_scale_factor(rule: str, batch: int, reference: int) -> float:
    """What ``--lr-scale`` multiplies the preset's lr by: ``batch / reference`` (linear), its
    square root (sqrt) or 1 (none); unknown rules are left to :meth:`TrainConfig.validate`."""
    ratio = batch / reference
    return {"linear": ratio, "sqrt": ratio ** 0.5}.get(rule, 1.0)


def parse_datasets(text: str, option: str = "--datasets") -> list[tuple[str, Path]]:
    """``NAME=ROOT[,NAME=ROOT...]`` -> [(label, root)]; a bare ROOT is labelled by its name.

    ``option`` is the command-line option the text came from, named in every error."""
    pairs = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, sep, root = item.partition("=")
        if not sep:
            name, root = Path(item).name, item
        if not name or not root:
            raise ToreidError(f"{option}: cannot parse {item!r} (expected NAME=ROOT)")
        check_name(option, name)
        path = Path(root).expanduser()
        if not path.is_dir():
            raise ToreidError(f"{option}: dataset root {str(path)!r} of {name!r} is not a "
                              "folder")
        pairs.append((name, path))
    labels = [p[0] for p in pairs]
    duplicates = sorted({n for n in labels if labels.count(n) > 1})
    if duplicates:
        raise ToreidError(f"{option}: label {duplicates[0]!r} given twice")
    if not pairs:
        raise ToreidError(f"{option}: no dataset given")
    return pairs


def validate_runs(models: Sequence[str], preset: str, overrides: dict[str, Any],
                  model_opts: dict[str, Any]) -> None:
    """Resolve every (model, preset, overrides) as :func:`run_benchmark` will and check each
    ``--model-opt`` value (``model_opts``) against the field it sets, before the first
    training step: a bad value (unknown key, wrong type, out of range, a key the command sets
    itself) is one line naming the option and the value, not a traceback after a run was
    written."""
    from models.registry import check_model_options
    from toreid.options import check_fields

    check_models(models)
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    check_fields("--model-opt", TrainConfig,
                 {k: v for k, v in model_opts.items() if k in train_fields},
                 reserved={"seed": "from --seeds", "lr_scale": "from --lr-scale",
                           "lr_reference_batch": "the preset's batch_size"})
    user = {k: v for k, v in model_opts.items() if k not in train_fields}
    for model in models:
        _, options = make_train_config(preset, model, 0, overrides)
        check_model_options(model, options, user)


def check_models(names: Sequence[str]) -> None:
    """Refuse unknown model names before any training, listing the valid ones."""
    from models import list_models

    valid = list_models()
    unknown = [n for n in names if n not in valid]
    if unknown:
        raise ToreidError(f"unknown model {unknown[0]!r} (valid: {', '.join(valid)})")


def demo_dataset(spec: DemoSpec = DemoSpec(), cache: Path | None = None,
                 log=print) -> Path:
    """The occluded synthetic demo dataset, built on first use and cached.

    Returns the root of the occluded version; the clean source sits beside it.
    """
    from ogor.generation import generate_dataset
    from ogor.synth import synthesize

    base = (cache or cache_root()) / (
        f"demo-v{DEMO_VERSION}-ids{spec.ids}-views{spec.views}-seed{spec.seed}"
    )
    clean, occluded = base / "clean", base / f"occluded-r{spec.ratio:g}"
    with build_lock(base):  # ranks or runs started together: one builds, the others wait
        if not (clean / "reid_raw.json").is_file():
            if clean.exists():  # an interrupted build: start it again
                shutil.rmtree(clean)
            log(f"building the synthetic demo dataset in {clean} (once) ...")
            synthesize(clean, format="cuhk-pedes", ids=spec.ids, views=spec.views, seed=spec.seed)
        if not (occluded / "ogor-manifest.json").is_file():
            if occluded.exists():
                shutil.rmtree(occluded)
            log(f"occluding it (default library, ratio {spec.ratio}, seed 0) in {occluded} ...")
            generate_dataset(clean, occluded, ratio=spec.ratio, seed=0)
        parsing = base / "parsing"  # ViTAA's masks, from the renderer's regions (beside the data)
        if not (parsing / "ogor-parsing.json").is_file():
            from ogor.synth.parsing import write_parsing_maps

            log(f"writing its human-parsing maps (from the rendered regions) in {parsing} ...")
            write_parsing_maps(clean, parsing)
    return occluded


def run_benchmark(
    models: Sequence[str],
    datasets: Sequence[tuple[str, Path]],
    seeds: Sequence[int],
    *,
    preset: str,
    overrides: dict[str, Any],
    out: Path,
    resume: bool = False,
    progress: bool = True,
    log=print,
    epoch_hook=None,
) -> list[results.RunResult]:
    """Train and evaluate every (model, dataset, seed); return the finished results.

    Under torchrun only rank 0 logs (RANK is read from the environment because the process
    group is created later, by the first run).
    """
    from benchmark.released.untrained import evaluate_untrained
    from models.registry import needs_training

    check_models(models)
    if int(os.environ.get("RANK", "0")) != 0:
        def log(message: str) -> None:  # noqa: ARG001 - other ranks stay quiet
            return None

    finished = []
    for label, root in datasets:
        for model in models:
            for seed in seeds:
                cfg, options = make_train_config(preset, model, seed, overrides)
                spec = RunSpec(model=model, dataset=label, dataset_root=root, train=cfg,
                               model_options=options, preset=preset)
                log(f"== {model} on {label} (seed {seed}, preset {preset}) -> "
                    f"{results.run_dir(out, label, model, seed)}")
                if needs_training(model):
                    record = run_training(spec, out, resume=resume, progress=progress,
                                          epoch_hook=epoch_hook)
                else:  # zero-shot: evaluated straight from its weights
                    record = evaluate_untrained(spec, out, progress=progress)
                if record is not None:
                    test = record["test"]
                    log(f"   test R@1 {test['R@1']:.2f}  R@5 {test['R@5']:.2f}  "
                        f"R@10 {test['R@10']:.2f}  mAP {test['mAP']:.2f}  "
                        f"Rsum {test['Rsum']:.2f}")
                    if record.get("occlusion"):
                        parts = [f"{name}-image queries ({m['num_queries']}) R@1 {m['R@1']:.2f} "
                                 f"mAP {m['mAP']:.2f}"
                                 for name, m in record["occlusion"].items()]
                        log("   " + "  |  ".join(parts))
                finished.append(results.read_result(
                    results.run_dir(out, label, model, seed) / "metrics.json"))
    return finished


def chance_line(runs: Sequence[results.RunResult]) -> str:
    """"Chance R@1" per dataset: one random ranking finds a positive first with probability
    about (images of the query's id) / (gallery size), i.e. about 1 / #test ids."""
    parts = {}
    for run in runs:
        ids = run.record.get("num_test_ids")
        if ids:
            parts[run.dataset] = (ids, 100.0 / ids)
    return "; ".join(f"{d}: {ids} test ids, chance R@1 ~ {c:.2f}%" for d, (ids, c) in
                     parts.items())


def leaderboard_text(runs: Sequence[results.RunResult], fmt: str = "md") -> str:
    return leaderboard.render(leaderboard.build_table(runs), fmt)
