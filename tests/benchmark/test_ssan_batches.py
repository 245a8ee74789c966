"""SSAN trains its compound ranking loss on the batches the data pipeline gives it: a weak
caption per sample (``weak_caption``), the adaptive margin after 5 full epochs, and its text
preprocessing (no LSTM biases, rare words deleted)."""

from __future__ import annotations

import pytest
import torch

from benchmark.data.sets import Augment, EpochSampler, TrainPairs, collate_pairs
from benchmark.records.rebuild import build_for_run
from models import tiny_options
from models.encoders.vocabulary import PAD_ID
from ogor.synth import synthesize


@pytest.fixture(scope="module")
def demo_batch(tmp_path_factory):
    """A tiny SSAN and a random batch of 24 from a synthetic demo (12 persons x 3 images)."""
    dataset = synthesize(tmp_path_factory.mktemp("demo") / "root", ids=12, views=3,
                         size=(96, 32))
    torch.manual_seed(0)
    captions = [c for r in dataset.split("train") for c in r.captions]
    persons = len({r.person_id for r in dataset.split("train")})
    model = build_for_run("ssan", persons, tiny_options("ssan"), captions)
    pairs = TrainPairs(dataset, model.image_size, model.image_mean, model.image_std,
                       aug=Augment.none(), seed=1, weak_caption=True)
    order = EpochSampler(len(pairs), seed=1, epoch=1).order()[:24]
    batch = collate_pairs([pairs[int(i)] for i in order])
    inputs = {"images": batch["images"], "tokens": model.tokenize(batch["captions"]),
              "pids": batch["pids"], "weak_tokens": model.tokenize(batch["weak_captions"])}
    return model, inputs


def test_the_weak_ranking_term_is_non_zero_on_a_demo_batch(demo_batch) -> None:
    model, inputs = demo_batch
    model.train()
    model.set_epoch(1)
    torch.manual_seed(0)
    losses = model(inputs)
    assert set(losses) == {"ranking", "ranking_weak", "id"}
    assert float(losses["ranking_weak"].detach()) > 0
    losses["ranking_weak"].backward()  # it trains the text branch through the weak captions
    assert model.text_encoder.embedding.weight.grad.abs().sum() > 0


def test_a_sample_given_its_own_caption_back_has_no_weak_term(demo_batch) -> None:
    """A person with one image gets its own caption as the weak one: strong term only."""
    model, inputs = demo_batch
    model.set_epoch(1)
    with torch.no_grad():
        losses = model({**inputs, "weak_tokens": inputs["tokens"]})
    assert float(losses["ranking_weak"]) == 0 and float(losses["ranking"]) > 0


def test_the_adaptive_margin_starts_after_five_full_epochs(demo_batch, monkeypatch) -> None:
    """SSAN's code: ``epoch >= 5`` with 0-based epochs, i.e. from the trainer's (1-based) 6th."""
    import models.methods.ssan as ssan

    model, inputs = demo_batch
    seen = []
    real = ssan.compound_ranking_terms
    monkeypatch.setattr(ssan, "compound_ranking_terms",
                        lambda *a, **k: seen.append(a[7]) or real(*a, **k))
    with torch.no_grad():
        for epoch in (5, 6):
            model.set_epoch(epoch)
            model(inputs)
    assert seen == [False] * 3 + [True] * 3  # three levels per call


def test_ssan_lstm_has_no_biases_and_rare_words_are_deleted(demo_batch) -> None:
    model, _ = demo_batch
    assert not [n for n, _ in model.text_encoder.lstm.named_parameters() if "bias" in n]
    assert model.config.min_word_count == 2
    known = model.text_encoder.vocabulary.words[0]
    tokens = model.tokenize([f"{known} zyxwv {known}", "zyxwv"])
    expected = model.text_encoder.vocabulary.encode([f"{known} {known}"], 10)[0, :2]
    assert tokens[0].tolist() == expected.tolist()
    assert tokens.shape[1] == 2 and tokens[1].eq(PAD_ID).all()
