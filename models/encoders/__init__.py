"""Encoders: one module per family, each giving global + token features (+ attention).

``clip``: the open_clip CLIP backbone (image and text towers together).
``resnet``: torchvision ResNets (pooled feature + last feature map as tokens).
``lstm``: a Bi-LSTM over word embeddings, with ``vocabulary`` (words fitted on training captions).
``clip_image``: CLIP's image tower alone (for CLIP + another text encoder).
``bert``: Hugging Face BERT with its own WordPiece tokenizer (the vocabulary travels in the
checkpoint).
``textcnn``: Dual-Path's deep residual text CNN over word embeddings (word2vec files readable).
``vit``: timm ViT / DeiT (CLS + patch tokens + the last block's CLS attention; position
embeddings resized to the person grid).
"""
