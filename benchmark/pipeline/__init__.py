"""Whole benchmark runs: presets, the demo dataset, every (model, dataset, seed), the dry run.

The map of the rooms: ``docs/architecture.md``.
"""
