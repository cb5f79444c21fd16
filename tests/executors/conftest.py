"""Fixtures of the executor tests: a real Dask scheduler and workers (see dask_lab.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from dask_lab import DaskLab, start_dask_lab


@pytest.fixture
def dask_lab(tmp_path: Path) -> Iterator[DaskLab]:
    """A scheduler and two worker processes on 127.0.0.1 for one test."""
    lab = start_dask_lab(tmp_path / "dask")
    try:
        yield lab
    finally:
        lab.stop()
