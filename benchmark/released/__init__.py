"""Models not trained here: imported checkpoints, untrained/zero-shot models, export.

The map of the rooms: ``docs/architecture.md``.
"""
