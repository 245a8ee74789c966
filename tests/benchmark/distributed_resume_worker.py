"""One process of a ``torchrun`` job that trains the demo ``clip`` run of
``test_distributed_run.py`` as ``bench run`` resolves it, stopped after some epochs or resumed:
``python -m torch.distributed.run ... -m tests.benchmark.distributed_resume_worker OUT
(--stop-after N | --resume)``. A module, not a ``bench`` option, because stopping a run halfway
is something only a test needs (``run_training(stop_after=...)``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmark.pipeline import runner
from benchmark.records.spec import RunSpec
from benchmark.training.loop import run_training

#: What the module fixture's uninterrupted ``bench run`` is given (besides --out, --quiet).
DEMO_IDS, EPOCHS, BATCH = 24, 2, 8


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--stop-after", type=int, default=None)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    root = runner.demo_dataset(runner.DemoSpec(ids=DEMO_IDS), log=lambda _: None)
    cfg, options = runner.make_train_config(
        "tiny", "clip", 1, {"epochs": EPOCHS, "batch_size": BATCH, "device": "cpu"})
    spec = RunSpec(model="clip", dataset=runner.DEMO_LABEL, dataset_root=root, train=cfg,
                   model_options=options, preset="tiny")
    run_training(spec, args.out, resume=args.resume, progress=False,
                 stop_after=args.stop_after)


if __name__ == "__main__":
    main()
