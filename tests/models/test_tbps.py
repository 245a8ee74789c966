"""TBPS's cross-modal momentum contrast: key encoders, queues, and the losses that use them."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from models import build_model, tiny_options
from models.losses import global_align_loss, queue_info_nce
from models.methods.tbps import TBPS

CAPTIONS = ["a man in a red shirt", "a woman with long hair", "a child in a yellow coat",
            "an old man with a stick"]


@pytest.fixture
def tbps() -> TBPS:
    torch.manual_seed(0)
    model = build_model("tbps", num_classes=3, **{**tiny_options("tbps"), "queue_size": 6,
                                                   "momentum": 0.9})
    assert isinstance(model, TBPS)
    return model


def _batch(model: TBPS) -> dict[str, torch.Tensor]:
    return {"images": torch.randn(4, 3, *model.image_size), "tokens": model.tokenize(CAPTIONS),
            "pids": torch.tensor([0, 1, 0, 2])}


def test_key_encoders_move_by_the_momentum_rate_and_the_queue_fills(tbps: TBPS) -> None:
    batch = _batch(tbps)
    optimizer = torch.optim.SGD([p for p in tbps.parameters() if p.requires_grad], lr=0.5)
    tbps.train()
    sum(tbps(batch).values()).backward()
    optimizer.step()  # the query encoders now differ from the keys
    query = [p.detach().clone() for p in tbps.image_encoder.parameters()]
    key_before = [p.detach().clone() for p in tbps.image_key_encoder.parameters()]
    assert any(not torch.equal(q, k) for q, k in zip(query, key_before, strict=True))
    queue_before = tbps.text_queue.clone()
    assert int(tbps.queue_pointer) == 4 and tbps.queue_pids[:4].tolist() == [0, 1, 0, 2]

    tbps(batch)
    for q, k0, k1 in zip(query, key_before, tbps.image_key_encoder.parameters(), strict=True):
        torch.testing.assert_close(k1, 0.9 * k0 + 0.1 * q)
    assert not any(p.requires_grad for p in tbps.text_key_encoder.parameters())
    # ring buffer of 6: slots 4, 5 then 0, 1 take the second batch; 2, 3 keep the first
    assert int(tbps.queue_pointer) == 2
    assert tbps.queue_pids.tolist() == [0, 2, 0, 2, 0, 1]
    torch.testing.assert_close(tbps.text_queue[2:4], queue_before[2:4])
    assert not torch.allclose(tbps.text_queue[4:], queue_before[4:])
    assert not torch.allclose(tbps.text_queue[:2], queue_before[:2])
    torch.testing.assert_close(tbps.text_queue.norm(dim=1), torch.ones(6))


def test_evaluation_leaves_queue_and_keys_alone(tbps: TBPS) -> None:
    tbps.eval()
    queue = tbps.image_queue.clone()
    key = next(tbps.text_key_encoder.parameters()).clone()
    with torch.no_grad():
        tbps(_batch(tbps))
    assert torch.equal(queue, tbps.image_queue) and int(tbps.queue_pointer) == 0
    assert torch.equal(key, next(tbps.text_key_encoder.parameters()))


def test_queue_entries_of_the_same_person_are_not_negatives() -> None:
    query = F.normalize(torch.randn(2, 8), dim=1)
    key = F.normalize(torch.randn(2, 8), dim=1)
    queue = F.normalize(torch.randn(5, 8), dim=1)
    pids = torch.tensor([3, 4])
    queue_pids = torch.tensor([3, -1, 4, 3, 7])
    loss = queue_info_nce(query, key, queue, queue_pids, pids, temperature=0.1)
    expected = 0.0
    for i, pid in enumerate(pids.tolist()):
        negatives = queue[queue_pids != pid]
        logits = torch.cat([(query[i] @ key[i]).view(1), negatives @ query[i]]) / 0.1
        expected += -torch.log_softmax(logits, dim=0)[0] / 2
    torch.testing.assert_close(loss, expected)


def test_global_alignment_against_a_hand_computed_case() -> None:
    image = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    text = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    pids = torch.tensor([0, 1])
    # cosines: (0,0)=1 pos, (0,1)=1 neg, (1,0)=0 neg, (1,1)=0 pos
    pos = F.softplus(torch.tensor(-10 * (1 - 0.6))) + F.softplus(torch.tensor(-10 * (0 - 0.6)))
    neg = F.softplus(torch.tensor(40 * (1 - 0.4))) + F.softplus(torch.tensor(40 * (0 - 0.4)))
    torch.testing.assert_close(global_align_loss(image, text, pids), 2 * (pos + neg) / 2)
