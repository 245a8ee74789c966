"""The paper preset and the published protocol: dry run, IRRA's optimiser groups and schedule,
IRRA's augmentation, selection on test in metrics.json and every table, the MGCC ICFG split."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from benchmark.cli import main
from benchmark.data.sets import ERASE_VALUE, Augment, augment
from benchmark.pipeline.runner import load_presets, make_train_config
from benchmark.records.protocol import MGCC_CODE_ICFG_TEST, SELECTED_ON_TEST, apply_icfg_split
from benchmark.records.results import find_results
from benchmark.records.spec import RunSpec, TrainConfig
from benchmark.reporting.leaderboard import build_table, read_csv, render
from benchmark.training.loop import run_training
from benchmark.training.optim import build_optimizer, lr_lambda
from models import build_model, list_models
from ogor.datasets import Dataset, Record, get_format
from tests.benchmark.helpers import make_color_dataset


def _dry_run(models: str, *extra: str) -> dict[str, dict]:
    result = CliRunner().invoke(main, ["run", "--preset", "paper", "--dry-run", "--models",
                                       models, *extra])
    assert result.exit_code == 0, result.output
    return {r["model"]: r for r in json.loads(result.output)}


def test_dry_run_of_the_paper_preset_shows_the_papers_settings() -> None:
    runs = _dry_run("mgcc,irra")
    published = _dry_run("clip", "--select-on", "test", "--icfg-split", "mgcc-code")["clip"]
    assert (published["train"]["select_on"], published["train"]["icfg_split"]) == (
        "test", "mgcc-code")
    assert published["model_config"]["temperature"] == 0.02
    mgcc = runs["mgcc"]
    arch, cfg, opt = mgcc["architecture"], mgcc["train"], mgcc["optimizer"]
    assert arch["open_clip"] == "ViT-B-32" and arch["image_size"] == [224, 224]
    assert arch["num_patches"] == 49 and arch["feature_dim"] == 768
    assert arch["max_words"] is not None and arch["max_words"] <= 25
    assert mgcc["model_config"]["pretrained"] == "openai"
    assert (cfg["optimizer"], cfg["batch_size"], cfg["epochs"]) == ("adam", 128, 60)
    assert opt["lr_encoder"] == 1e-5 and opt["lr_new"] == pytest.approx(1e-4)
    assert cfg["warmup_epochs"] == 0 and cfg["hflip"] == 0.5
    assert cfg["pad_crop"] == 0 and cfg["random_erasing"] == 0
    assert "cosine" in opt["schedule"]
    assert (mgcc["model_config"]["rho_image"], mgcc["model_config"]["rho_text"]) == (0.3, 0.4)

    irra = runs["irra"]
    arch, cfg, model = irra["architecture"], irra["train"], irra["model_config"]
    assert arch["open_clip"] == "ViT-B-16" and arch["image_size"] == [384, 128]
    assert arch["num_patches"] == 192 and arch["feature_dim"] == 512
    assert model["image_interpolation"] == "bilinear"
    assert model["pos_embed_resize"] == "bilinear" and model["sdm_tau"] == 0.02
    assert (cfg["batch_size"], cfg["epochs"], cfg["lr"], cfg["adam_eps"]) == (64, 60, 1e-5, 1e-3)
    assert (cfg["lr_new_mult"], cfg["bias_lr_mult"]) == (5.0, 2.0)
    assert (cfg["weight_decay"], cfg["bias_weight_decay"]) == (4e-5, 0.0)
    assert (cfg["warmup_epochs"], cfg["warmup_factor"]) == (5, 0.1)
    assert (cfg["optimizer_rules"], cfg["schedule_unit"]) == ("irra", "epoch")
    assert (cfg["pad_crop"], cfg["random_erasing"]) == (10, 0.5)
    assert cfg["select_on"] == "val"


def test_irra_optimizer_groups_are_irras_parameter_by_parameter() -> None:
    cfg, _ = make_train_config("paper", "irra", 1, {})
    model = build_model("irra", backbone="tiny", num_classes=3)
    optimizer = build_optimizer(model, cfg)
    got = {}
    for group in optimizer.param_groups:
        assert len(group["members"]) == len(group["params"])
        for name in group["members"]:
            got[name] = (group["lr"], group["weight_decay"])
    # every trainable parameter once; CLIP's logit scale is frozen (IRRA has none)
    assert len(got) == sum(p.requires_grad for p in model.parameters())
    assert "base_model.logit_scale" not in got
    lr, wd = 1e-5, 4e-5

    def expected(name: str) -> tuple[float, float]:
        """IRRA's rules written out per kind of parameter, not by its algorithm."""
        head = name.startswith(("classifier.", "mlm_head."))
        bias = name.endswith("bias")  # .bias and in_proj_bias
        cross = name.startswith(("cross_attn.", "cross_modal_transformer."))
        if head:
            return (5 * lr, 0.0 if bias else wd)
        if bias:
            return (2 * lr, 0.0)  # x2 replaces x5 for cross-modal biases
        return (5 * lr, wd) if cross else (lr, wd)

    for name, values in got.items():
        assert values == pytest.approx(expected(name)), name
    # spot checks of the rules that are easy to get wrong
    assert got["base_model.visual.ln_pre.weight"] == (lr, wd)  # LayerNorm weight: not a bias
    assert got["base_model.positional_embedding"] == (lr, wd)
    assert got["ln_pre_t.weight"] == (lr, wd)  # IRRA's LNs lack "cross" in their names
    assert got["ln_post.bias"] == pytest.approx((2 * lr, 0.0))
    assert got["cross_attn.in_proj_weight"] == pytest.approx((5 * lr, wd))
    assert got["cross_attn.in_proj_bias"] == pytest.approx((2 * lr, 0.0))
    assert got["mlm_head.fc.bias"] == pytest.approx((5 * lr, 0.0))
    assert got["classifier.weight"] == pytest.approx((5 * lr, wd))
    groups = {(round(g["lr"] / lr, 6), g["weight_decay"]): g["members"]
              for g in optimizer.param_groups}
    assert set(groups) == {(1.0, wd), (2.0, 0.0), (5.0, wd), (5.0, 0.0)}
    assert groups[(5.0, 0.0)] == ["mlm_head.dense.bias", "mlm_head.ln.bias", "mlm_head.fc.bias",
                                  "classifier.bias"]
    assert [n for n in groups[(1.0, wd)] if not n.startswith("base_model.")] == [
        "ln_pre_t.weight", "ln_pre_i.weight", "ln_post.weight"]
    block = [f"cross_modal_transformer.resblocks.{i}.{p}" for i in range(4)
             for p in ("ln_1.weight", "attn.in_proj_weight", "attn.out_proj.weight",
                       "ln_2.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")]
    assert groups[(5.0, wd)] == ["cross_attn.in_proj_weight", "cross_attn.out_proj.weight",
                                 *block, "mlm_head.dense.weight", "mlm_head.ln.weight",
                                 "mlm_head.fc.weight", "classifier.weight"]
    assert optimizer.defaults["eps"] == 1e-3


def test_irra_schedule_changes_once_per_epoch() -> None:
    cfg = TrainConfig(epochs=60, warmup_epochs=5, warmup_factor=0.1, schedule_unit="epoch")
    factor = lr_lambda(cfg, steps_per_epoch=7)
    by_epoch = [factor((e - 1) * 7) for e in range(1, 61)]
    assert by_epoch[:6] == pytest.approx([0.1, 0.28, 0.46, 0.64, 0.82, 1.0])
    assert by_epoch[59] == pytest.approx(0.5 * (1 + math.cos(math.pi * 54 / 55)))
    assert all(factor((e - 1) * 7 + s) == by_epoch[e - 1] for e in (1, 3, 30) for s in range(7))


def test_pad_is_black_and_erasing_fills_irras_value() -> None:
    mean, std = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
    pixels = torch.full((3, 24, 8), 0.5)
    black = torch.tensor([-m / s for m, s in zip(mean, std, strict=True)])
    seen_black = False
    for seed in range(20):
        out = augment(pixels, Augment(hflip=0.0, pad_crop=10), np.random.default_rng(seed),
                      mean, std)
        is_image = (out == 0.5).all(dim=0)
        is_black = torch.isclose(out, black[:, None, None]).all(dim=0)
        assert (is_image | is_black).all()
        seen_black |= bool(is_black.any())
    assert seen_black
    erased = augment(pixels, Augment(hflip=0.0, erase=1.0), np.random.default_rng(0), mean, std)
    filled = ~(erased == 0.5).all(dim=0)
    assert filled.any()
    torch.testing.assert_close(erased[:, filled], torch.tensor(ERASE_VALUE)[:, None].expand(
        3, int(filled.sum())))


def test_selection_on_test_is_recorded_and_marked_in_every_table(tmp_path: Path) -> None:
    root = make_color_dataset(tmp_path / "colors", ids=12, views=2,
                              splits={"train": 6, "val": 3, "test": 3})
    runs = tmp_path / "runs"
    for select_on in ("val", "test"):
        cfg = TrainConfig(epochs=1, batch_size=8, lr=1e-3, device="cpu", seed=1,
                          select_on=select_on)
        model = "mgcc-sit" if select_on == "val" else "clip"
        run_training(RunSpec(model=model, dataset="colors", dataset_root=root, train=cfg,
                             model_options={"backbone": "tiny"}), runs, progress=False)
    published = json.loads((runs / "colors" / "clip" / "seed1" / "metrics.json").read_text())
    assert published["selection"]["split"] == "test"
    assert SELECTED_ON_TEST in published["selection"]["rule"]
    assert published["protocol"] == {"select_on": "test", "icfg_split": "irra",
                                     "published": True}
    ours = json.loads((runs / "colors" / "mgcc-sit" / "seed1" / "metrics.json").read_text())
    assert ours["selection"]["split"] == "val" and not ours["protocol"]["published"]
    frame = build_table(find_results(runs))
    for fmt in ("md", "csv", "latex"):
        text = render(frame, fmt)
        marked = [line for line in text.splitlines() if SELECTED_ON_TEST in line]
        assert any("clip" in line for line in marked), fmt
        assert not any("mgcc-sit" in line for line in marked), fmt
    assert read_csv(render(frame, "csv")).shape == frame.shape
    result = CliRunner().invoke(main, ["table", str(runs), "--with-paper"])
    assert result.exit_code == 0 and "--protocol mgcc-code" in result.output


def test_mgcc_code_icfg_split_keeps_the_first_10000_test_entries() -> None:
    fmt = get_format("icfg-pedes")
    records = [Record(f"train/{i}.jpg", i, "train", ("a",)) for i in range(3)]
    records += [Record(f"test/{i}.jpg", i % 50, "test", ("a",)) for i in range(10_004)]
    dataset = Dataset(Path("/nonexistent"), fmt, Path("/nonexistent/ICFG-PEDES.json"),
                      tuple(records))
    assert apply_icfg_split(dataset, "irra") is dataset
    split = apply_icfg_split(dataset, "mgcc-code")
    assert len(split.split("test")) == MGCC_CODE_ICFG_TEST
    assert [r.image_path for r in split.split("val")] == [f"test/{i}.jpg" for i in
                                                         range(10_000, 10_004)]
    assert split.split("test")[-1].image_path == "test/9999.jpg"
    assert len(split.split("train")) == 3


# ------------------------------------------------------------------ every registered row
FIDELITY = Path(__file__).resolve().parents[2] / "docs" / "fidelity.md"
SHARED_HEADER = "| setting | paper | official code | ours | reason |"
#: a source key may name a group of settings that one sentence explains together
SOURCE_GROUPS = {"augmentation": {"hflip", "pad_crop", "random_erasing"}}


def _fidelity_sections() -> list[str]:
    text = FIDELITY.read_text(encoding="utf-8")
    return ["## " + part for part in text.split("\n## ")[1:]]


def _named(source: dict[str, str]) -> set[str]:
    names = {part.strip() for key in source for part in key.split(",")}
    for group, members in SOURCE_GROUPS.items():
        if group in names:
            names |= members
    return names


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_has_a_fidelity_section_in_the_shared_shape(name: str) -> None:
    """The section naming ``name`` (in backticks, before its table) has the shared table:
    setting | paper | official code | ours | reason, five cells in every row."""
    sections = [s for s in _fidelity_sections()
                if f"`{name}`" in s.split("\n|", 1)[0]]
    assert sections, f"docs/fidelity.md has no section naming `{name}`"
    lines = sections[0].splitlines()
    table = [line for line in lines if line.startswith("|")]
    assert table and table[0] == SHARED_HEADER, f"{name}: {table[:1]}"
    for row in table:
        cells = row.replace("\\|", "").strip().strip("|").split("|")
        assert len(cells) == 5, f"{name}: {row}"


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_has_a_paper_preset_with_a_source_per_value(name: str) -> None:
    """Every value of the resolved paper preset is named by the source beside it: the model's
    own entry for what it sets, the preset's shared source for what it inherits."""
    paper = load_presets()["paper"]
    entry = paper["per_model"].get(name, {})
    shared, own = _named(paper["source"]), _named(entry.get("source", {}))
    for group in ("model", "train"):
        for key in paper.get(group, {}):
            if key not in entry.get(group, {}):
                assert key in shared, f"paper preset: {group}.{key} has no source"
        for key in entry.get(group, {}):
            assert key in own, f"paper preset of {name}: {group}.{key} has no source"
