"""Datasets as the harness reads them: image/caption pairs, transforms, samplers, parsing maps.

The map of the rooms: ``docs/architecture.md``.
"""
