"""Runs for the report tests, written through the real Store (no mocks)."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import pytest
from report_helpers import (  # noqa: F401  (fixtures below use them)
    DATA,
    FW_NET,
    FW_SSH,
    HOSTILE_EXCERPT,
    HOSTILE_TARGET,
    INVENTORY,
    SECRET,
    WAIVER,
    many_results,
    result,
    sample_results,
    store_run,
)

from itops.inventory import load_inventory, target_lines
from itops.model import Run, Status
from itops.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "store")


@pytest.fixture
def inventory_file(tmp_path: Path) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(textwrap.dedent(INVENTORY), encoding="utf-8")
    return path


@pytest.fixture
def sample_run(store: Store, inventory_file: Path) -> Run:
    """Two older runs (for the trend) and the sample run, which is `latest`."""
    now = time.time()
    store_run(store, [result("web1", "a.b_c", Status.PASS), result("web1", "a.b_d", Status.FAIL)], started=now - 7200)
    store_run(store, [result("web1", "a.b_c", Status.PASS)], started=now - 3600)
    # as `itops audit` does: the inventory's lines are recorded when the run starts
    lines = target_lines(load_inventory(inventory_file))
    return store_run(store, sample_results(), inventory=str(inventory_file), started=now, inventory_lines=lines)


@pytest.fixture(scope="session")
def big_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, Run]:
    """A store holding one 10,000-result run (built once per session)."""
    store = Store(tmp_path_factory.mktemp("big") / "store")
    return store, store_run(store, many_results(10_000))
