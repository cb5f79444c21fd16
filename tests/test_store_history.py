"""Metric history from a real store: Store.metric_series / history_for, the forecasts' input."""

from __future__ import annotations

import itertools
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from itops.store import Store

NAMES = ("fs.used_pct:/", "fs.used_pct:/var", "fs.inodes_pct:/", "mem.used_pct")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "store")
    with closing(s._connect()) as db, db:
        for r in range(4):
            db.execute(
                "INSERT INTO runs (id, kind, started, state) VALUES (?,?,?,?)",
                (f"r{r}", "backup" if r == 2 else "audit", float(r), "complete"),
            )
        db.executemany(
            "INSERT INTO metrics (run_id, ts, kind, target, check_id, name, value) VALUES (?,?,?,?,?,?,?)",
            [
                (f"r{r}", float(r), "backup" if r == 2 else "audit", f"h{h}", "c", name, r * 10.0 + h)
                for r, h, name in itertools.product(range(5), range(3), NAMES)  # r4: no run row, never read
            ],
        )
    return s


def _series_as_before(
    store: Store, target: str | None, prefix: str, kind: str | None, before: float | None
) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """What metric_series answered with its one query for every filter (before the history was an index search)."""
    sql = (
        "SELECT m.target, m.name, m.ts, m.value FROM metrics m JOIN runs r ON r.id = m.run_id"
        " WHERE (? IS NULL OR m.target = ?) AND m.name >= ? AND m.name < ? AND (? IS NULL OR m.kind = ?)"
        " AND (? IS NULL OR m.ts < ?) ORDER BY m.target, m.name, m.ts"
    )
    out: dict[tuple[str, str], list[tuple[float, float]]] = {}
    with closing(sqlite3.connect(store.db_path)) as db:
        for t, name, ts, value in db.execute(
            sql, (target, target, prefix, prefix + "\uffff", kind, kind, before, before)
        ):
            out.setdefault((t, name), []).append((ts, value))
    return out


def test_every_filter_combination_gives_the_same_series(store: Store) -> None:
    for target, prefix, kind, before in itertools.product(
        (None, "h1", "h9"), ("", "fs.", "fs.used_pct:", "mem"), (None, "audit"), (None, 2.0)
    ):
        got = store.metric_series(target, prefix, kind=kind, before=before)
        want = _series_as_before(store, target, prefix, kind, before)
        assert got == want and list(got) == list(want), (target, prefix, kind, before)
    assert store.history_for("h1", ["fs.used_pct:"], 2.0) == {
        "fs.used_pct:/": [(0.0, 1.0), (1.0, 11.0)],
        "fs.used_pct:/var": [(0.0, 1.0), (1.0, 11.0)],
    }


def test_a_targets_history_is_an_index_search_not_a_scan(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every host of an audit asks for its history: a scan of the whole metrics index per host made that
    cost (reads, and the page cache of each worker's connection) grow with the history stored."""
    statements: list[str] = []
    connect = Store._connect

    def traced(self: Store) -> sqlite3.Connection:
        db = connect(self)
        db.set_trace_callback(statements.append)
        return db

    monkeypatch.setattr(Store, "_connect", traced)
    store.history_for("h1", ["fs.used_pct:"], 2.0)
    (query,) = [s for s in statements if "FROM metrics" in s]
    with closing(sqlite3.connect(store.db_path)) as db:
        plan = " / ".join(row[3] for row in db.execute("EXPLAIN QUERY PLAN " + query))
    assert "SEARCH m USING INDEX metrics_series (target=?" in plan, plan
