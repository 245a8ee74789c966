"""Gathered losses: two processes (gloo, CPU) over a global batch of 8 give the loss and the
parameter gradients of one process over the same 8 samples with the same weights.

One spawn runs every family, so the suite pays one process start-up; both sides build the
model from one saved file (the same weights)."""

from __future__ import annotations

import dataclasses
import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from models import build_model
from models.registry import build_model_from_config, list_models, tiny_options

#: One model per gathered loss family: InfoNCE (clip), SDM + ID (irra; IRR's masked-word
#: mean is per process, so it is weighted 0 here), MGCC's fused similarity (mgcc), the
#: multi-granularity baseline on two towers (baseline2), RDE's TAL with its consensus
#: division, TBPS-CLIP's N-ITC / R-ITC / C-ITC, CMPM (+ CMPC, per sample), CFine's CMPM
#: levels and CFR/FCD triplet, ViTAA's alignments, SSAN's compound ranking (its weak partner
#: drawn once for the global batch), Dual-Path's hardest-negative ranking, and two queue
#: models: TBPS (momentum keys) and RaSa (momentum features and momentum distillation).
FAMILIES = ("clip", "irra", "mgcc", "baseline2", "rde", "tbps-clip", "cmpm", "nafs",
            "cfine", "vitaa", "ssan", "dpath", "tbps", "rasa")
#: Gradients that are zero in exact arithmetic (a softmax does not change when every score of
#: a row moves by the same amount, so an attention key bias gets none): both sides hold only
#: float noise there, compared with nothing.
EXACTLY_ZERO = ("attention.self.key.bias",)
#: Per-sample random draws (IRR's masks, RDE's caption augmentation, TBPS-CLIP's views and
#: word deletion, Dual-Path's caption shift, RaSa's weak positives and masks) differ between
#: 4 and 8 samples: switched off for the comparison. RaSa's p-ITM draws hard negatives from
#: each process's own share, as its release does, so only its contrastive terms are compared.
OPTIONS = {"irra": {"irr_weight": 0.0}, "rde": {"text_aug_prob": 0.0},
           "tbps-clip": {"augment": False, "mvs": False, "deletion_prob": 0.0,
                         "ss_weight": 0.0},
           "dpath": {"position_shift": False},
           "rasa": {"pitm_weight": 0.0, "mlm_weight": 0.0, "prd_weight": 0.0,
                    "mrtd_weight": 0.0, "weak_pos_probability": 0.0}}
#: The second process's captions are longer: each process pads its own (a real loader does),
#: so the gathers must handle token counts that differ between processes.
CAPTIONS = ["a man in a red coat", "a woman with a black bag and blue jeans",
            "a child on a bike", "an old man with a cane and a grey hat",
            "a man in a red coat, black trousers and white shoes, carrying a large grey bag",
            "a woman with a black bag and blue jeans walking fast", "a tall boy",
            "a girl in a yellow dress with long brown hair holding an umbrella in her left hand"]


def _batch(model, seed: int) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {"images": torch.rand(8, 3, *model.image_size, generator=generator),
            "tokens": model.tokenize(CAPTIONS),
            "pids": torch.tensor([0, 1, 2, 3, 0, 1, 4, 5])}


def _loss_and_grads(model, batch):
    torch.manual_seed(0)
    model.train()
    for module in model.modules():  # dropout draws per sample: no parity to test through it
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
        # BatchNorm's batch statistics are per process on the CPU (the trainer makes them
        # global with SyncBatchNorm on CUDA): the comparison uses the running statistics
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()
    model.zero_grad()
    losses = model(batch)
    total = sum(losses.values())
    total.backward()
    total = total.detach()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()
             if p.grad is not None}
    # a queue model's queues after the step: every process must hold the one-process queue
    grads.update({f"buffer:{n}": b.detach().clone().float() for n, b in model.named_buffers()
                  if "queue" in n})
    return float(total), grads


def _worker(rank: int, world: int, port: int, folder: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        for name in FAMILIES:
            saved = torch.load(os.path.join(folder, f"{name}.pt"), weights_only=False)
            model = build_model_from_config(saved["config"], load_pretrained=False)
            model.load_state_dict(saved["state"])
            batch = _batch(model, 0)
            share = {k: v[rank * 4:(rank + 1) * 4] for k, v in batch.items()}
            # each process pads its own captions, as a real loader does
            share["tokens"] = model.tokenize(CAPTIONS[rank * 4:(rank + 1) * 4])
            loss, grads = _loss_and_grads(model, share)
            # DDP averages parameter gradients over the processes
            for key, grad in grads.items():
                if key.startswith("buffer:"):
                    continue  # a buffer is compared as this process holds it
                dist.all_reduce(grad)
                grad /= world
            mean_loss = torch.tensor([loss])
            dist.all_reduce(mean_loss)
            if rank == 0:
                torch.save({"loss": float(mean_loss) / world, "grads": grads},
                           os.path.join(folder, f"{name}.ddp.pt"))
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_every_trainable_model_declares_what_it_gathers():
    from models.registry import needs_training

    trainable = [n for n in list_models() if needs_training(n)]
    silent = [n for n in trainable
              if not build_model(n, num_classes=4, **tiny_options(n)).batch_gathers]
    assert not silent, f"models that would be refused under DDP: {silent}"
    assert set(FAMILIES) <= set(trainable)


def test_two_processes_give_the_one_process_loss_and_gradients(tmp_path):
    references = {}
    for name in FAMILIES:
        torch.manual_seed(3)
        model = build_model(name, num_classes=6, **tiny_options(name), **OPTIONS.get(name, {}))

        torch.save({"config": dataclasses.asdict(model.config), "state": model.state_dict()},
                   tmp_path / f"{name}.pt")
        references[name] = _loss_and_grads(model, _batch(model, 0))
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    for name in FAMILIES:
        ddp = torch.load(tmp_path / f"{name}.ddp.pt", weights_only=False)
        loss, grads = references[name]
        # 1e-5, relative to the loss where it is large (CFine's sums over levels reach 650)
        assert ddp["loss"] == pytest.approx(loss, abs=1e-5 * max(1.0, abs(loss))), name
        assert ddp["grads"].keys() == grads.keys(), name
        # relative to each gradient, floored at 1e-6 of the model's largest (a gradient that
        # is zero in exact arithmetic, e.g. an attention key bias, is float noise on both sides)
        floor = 1e-6 * max(float(g.abs().max()) for g in grads.values())
        worst = 0.0
        for key, grad in grads.items():
            if key.endswith(EXACTLY_ZERO):
                continue
            scale = max(float(grad.abs().max()), floor)
            worst = max(worst, float((ddp["grads"][key] - grad).abs().max()) / scale)
        assert worst < 1e-5, (name, worst)
        print(f"{name}: loss difference {abs(ddp['loss'] - loss):.1e}, "
              f"largest relative gradient difference {worst:.1e}")
