"""Backup storage growth in `itops forecast`, from real `backup verify` runs of a growing local file backup."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest
from backup_helpers import run_cli, write_inventory
from click.testing import CliRunner

from itops.cli.main import cli

DAY = 86400.0


def _backdate(store: Path, run_id: str, started: float) -> None:
    with sqlite3.connect(store / "history.db") as db:
        db.execute("UPDATE runs SET started = ?, finished = ? WHERE id = ?", (started, started + 5, run_id))
        db.execute("UPDATE metrics SET ts = ? WHERE run_id = ?", (started, run_id))


def test_backup_growth_per_month_from_real_backup_runs(tmp_path: Path) -> None:
    """A local file backup whose newest copy grows 2 MB a day: `itops forecast` reports about 0.06 GB a month
    for it, from five real `backup verify` runs back-dated a day apart."""

    folder = tmp_path / "backups"
    folder.mkdir()
    inv = write_inventory(
        tmp_path / "inv.yaml",
        None,
        {
            "nightly": {"kind": "file", "path": str(folder / "*.tar.gz"), "rpo": "26h", "min_copies": 1},
        },
    )
    store = tmp_path / "store"
    start = time.time() - 4 * DAY
    for day in range(5):
        (folder / f"db-{day}.tar.gz").write_bytes(b"\0" * (2_000_000 * (day + 1)))
        code, doc, _, err = run_cli("-i", str(inv), "--format", "json", "--store", str(store))
        assert code in (0, 1), err
        sizes = [r for r in doc["results"] if r["check_id"] == "backup.size_ok"]
        assert sizes and sizes[0]["metrics"] == {"backup.size_bytes:": float(2_000_000 * (day + 1))}
        if day < 4:
            _backdate(store, doc["run"]["id"], start + day * DAY)
    res = CliRunner().invoke(cli, ["forecast", "--store", str(store), "--format", "json"])
    assert res.exit_code == 0, res.output
    growth = json.loads(res.stdout)["backup_growth"]
    (nightly,) = [g for g in growth if g["backup"] == "nightly"]
    assert nightly["size_gb"] == pytest.approx(0.010)
    assert nightly["gb_per_month"] == pytest.approx(2_000_000 * 30.44 / 1e9, rel=0.02)
