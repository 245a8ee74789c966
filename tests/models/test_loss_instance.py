"""Dual-Path's instance loss (shared classifier) against a naive loop and a hand-computed case."""

from __future__ import annotations

import math

import pytest
import torch

from models.losses import instance_loss


def naive_cross_entropy(features: torch.Tensor, labels: list[int], weight: torch.Tensor,
                        bias: torch.Tensor | None) -> float:
    total = 0.0
    for row, label in enumerate(labels):
        logits = []
        for cls in range(weight.shape[0]):
            value = sum(float(features[row, d]) * float(weight[cls, d])
                        for d in range(weight.shape[1]))
            logits.append(value + (0.0 if bias is None else float(bias[cls])))
        top = max(logits)
        log_sum = top + math.log(sum(math.exp(v - top) for v in logits))
        total += log_sum - logits[label]
    return total / len(labels)


def test_hand_computed_case() -> None:
    # W = identity (2 classes, 2-d), no bias; the pair's label is 0.
    # image (2, 0): logits (2, 0), CE = log(1 + e^-2) = 0.126928
    # text  (0, 1): logits (0, 1), CE = log(1 + e^1)  = 1.313262
    weight = torch.eye(2)
    image_loss, text_loss = instance_loss(torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 1.0]]),
                                          torch.tensor([0]), weight)
    assert image_loss.item() == pytest.approx(math.log(1 + math.exp(-2)), abs=1e-6)
    assert text_loss.item() == pytest.approx(math.log(1 + math.e), abs=1e-6)


@pytest.mark.parametrize("with_bias", [True, False])
def test_equals_the_naive_loop(with_bias: bool) -> None:
    gen = torch.Generator().manual_seed(3)
    image, text = torch.randn(6, 4, generator=gen), torch.randn(6, 4, generator=gen)
    weight = torch.randn(5, 4, generator=gen)
    bias = torch.randn(5, generator=gen) if with_bias else None
    labels = [0, 4, 2, 2, 1, 3]
    image_loss, text_loss = instance_loss(image, text, torch.tensor(labels), weight, bias)
    assert math.isclose(image_loss.item(), naive_cross_entropy(image, labels, weight, bias),
                        abs_tol=1e-5)
    assert math.isclose(text_loss.item(), naive_cross_entropy(text, labels, weight, bias),
                        abs_tol=1e-5)


def test_one_classifier_gets_gradients_from_both_modalities() -> None:
    weight = torch.zeros(3, 2, requires_grad=True)
    image_loss, _ = instance_loss(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]]),
                                  torch.tensor([2]), weight)
    image_loss.backward()
    from_image = weight.grad.clone()
    weight.grad = None
    _, text_loss = instance_loss(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]]),
                                 torch.tensor([2]), weight)
    text_loss.backward()
    # the image moves the first input column of W, the text the second: one W, two modalities
    assert from_image[:, 0].abs().sum() > 0 and from_image[:, 1].abs().sum() == 0
    assert weight.grad[:, 1].abs().sum() > 0 and weight.grad[:, 0].abs().sum() == 0
