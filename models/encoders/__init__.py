"""Encoders: one module per family, each giving global + token features (+ attention).

``clip``: the open_clip CLIP backbone (image and text towers together).
"""
