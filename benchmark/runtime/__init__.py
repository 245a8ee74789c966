"""Where code runs: devices, distributed processes, the cache folder.

The map of the rooms: ``docs/architecture.md``.
"""
