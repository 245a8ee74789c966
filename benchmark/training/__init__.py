"""The training loop, its optimiser and schedule rules, live logging.

The map of the rooms: ``docs/architecture.md``.
"""
