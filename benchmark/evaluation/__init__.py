"""Encode, rank and score: metrics, crossings, the robustness sweep, text queries.

The map of the rooms: ``docs/architecture.md``.
"""
