"""Run folders into tables, plots and pages: the leaderboard, Table 2, the HTML report.

The map of the rooms: ``docs/architecture.md``.
"""
