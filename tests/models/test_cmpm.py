"""CMPM's joint embedding and LSTM dropout, as its TensorFlow code builds them."""

from __future__ import annotations

import torch

from models import build_model, tiny_options
from models.registry import with_vocabulary

CAPTIONS = ["a man in a red shirt and blue jeans", "a woman with long hair and a bag"]


def _model():
    options = with_vocabulary("cmpm", dict(tiny_options("cmpm")), CAPTIONS)
    return build_model("cmpm", num_classes=3, **options)


def test_joint_embedding_is_a_bias_free_projection_then_batchnorm() -> None:
    torch.manual_seed(0)
    model = _model()
    for projection in (model.image_projection, model.text_projection):
        linear, norm = projection
        assert linear.bias is None and isinstance(norm, torch.nn.BatchNorm1d)
    model.train()
    texts = model.encode_texts(model.tokenize(CAPTIONS * 2)).pooled
    # BatchNorm in training: every joint dimension has zero mean over the batch (scale 1, shift 0)
    assert torch.allclose(texts.mean(dim=0), torch.zeros(texts.shape[1]), atol=1e-5)
    assert texts.shape[1] == model.config.embed_dim and model.encode_texts(
        model.tokenize(CAPTIONS)).tokens.shape[1] == 0


def test_lstm_keeps_0_7_of_its_inputs_and_outputs_in_training_only() -> None:
    torch.manual_seed(0)
    model = _model()
    encoder = model.text_encoder
    assert encoder.dropout.p == 0.3 and encoder.output_dropout.p == 0.3
    tokens = model.tokenize(CAPTIONS)
    model.train()
    with torch.no_grad():
        assert not torch.equal(encoder(tokens).pooled, encoder(tokens).pooled)
    model.eval()
    with torch.no_grad():
        assert torch.equal(encoder(tokens).pooled, encoder(tokens).pooled)
        # output dropout alone also changes the features (the code drops both)
        encoder.dropout.p = 0.0
        encoder.output_dropout.train()
        assert not torch.equal(encoder(tokens).pooled, encoder(tokens).pooled)
