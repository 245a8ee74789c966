"""Run folders: configs, environment, history, metrics, checkpoints, the rebuilt model.

Shared by training, evaluation and reporting alike.

The map of the rooms: ``docs/architecture.md``.
"""
