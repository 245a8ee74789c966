"""Shared fixtures of the benchmark tests (the dataset helpers are in ``helpers.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.benchmark.helpers import make_color_dataset


@pytest.fixture(scope="session")
def color_dataset(tmp_path_factory) -> Path:
    return make_color_dataset(tmp_path_factory.mktemp("colors") / "root")
