"""Planned targets in the run store, coverage and diff of incomplete runs (real Store, canned results)."""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from dataclasses import replace
from pathlib import Path

from report_helpers import result, store_run

from itops.model import Run, Status
from itops.report.data import coverage
from itops.report.diff import diff_runs, render_diff_table
from itops.store import Store

#: The runs table as itops created it before planned targets were recorded.
OLD_SCHEMA = """
CREATE TABLE runs (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, started REAL NOT NULL, finished REAL,
    inventory TEXT, inventory_digest TEXT, version TEXT, host_keys TEXT, counts TEXT,
    state TEXT NOT NULL, exit_code INTEGER, pid INTEGER, accounts TEXT
);
CREATE TABLE results (
    run_id TEXT NOT NULL REFERENCES runs(id), seq INTEGER NOT NULL, check_id TEXT NOT NULL,
    target TEXT NOT NULL, resource TEXT NOT NULL, status TEXT NOT NULL, severity TEXT NOT NULL,
    data TEXT NOT NULL, PRIMARY KEY (run_id, seq)
);
"""


def test_old_store_gains_the_planned_column_and_keeps_its_runs(tmp_path: Path) -> None:
    root = tmp_path / "store"
    (root / "runs").mkdir(parents=True)
    with closing(sqlite3.connect(root / "history.db")) as db, db:
        db.executescript(OLD_SCHEMA)
        db.execute(
            "INSERT INTO runs (id, kind, started, finished, counts, state, exit_code) VALUES (?,?,?,?,?,?,?)",
            ("20250101T000000Z-aaaaaa", "audit", 1.0, 2.0, "{}", "complete", 0),
        )
    store = Store(root)
    old = store.get_run("20250101T000000Z-aaaaaa")
    assert old.planned == {} and old.not_audited([]) == {}
    run = Run(id="20250102T000000Z-bbbbbb", kind="audit", started=time.time(), planned={"web1": 3, "web2": 3})
    writer = store.begin(run)
    writer.add(replace(result("web1", "ssh.a_b", Status.PASS), run_id=run.id))
    writer.finish("interrupted", 3)
    again = Store(root).get_run(run.id)
    assert again.planned == {"web1": 3, "web2": 3}
    assert again.not_audited(store.results(run.id)) == {"web2": 3}


def test_coverage_counts_the_checks_of_targets_never_audited() -> None:
    counts = {"PASS": 3, "FAIL": 1, "ERROR": 0, "UNREACHABLE": 0}
    assert coverage(counts) == 100.0
    assert coverage(counts, {"web2": 4}) == 50.0


def test_diff_against_a_legacy_interrupted_run_does_not_call_missing_targets_removed(store: Store) -> None:
    full = [result(t, c, Status.FAIL) for t in ("web1", "web2") for c in ("ssh.a_b", "ssh.c_d")]
    a = store_run(store, full)
    # stored without planned targets (as before they were recorded), interrupted after web1
    b = store_run(store, full[:2], state="interrupted")
    d = diff_runs(store, a.id, b.id)
    assert d.incomplete and d.not_audited_b == ["web2"] and d.not_audited_a == []
    assert not d.changes["removed"] and len(d.changes["not_audited"]) == 2
    table = render_diff_table(d)
    assert "is INCOMPLETE (state interrupted): 1 target(s) never audited: web2" in table
    # a complete B that no longer has a target: that is "removed", not an incomplete run
    c = store_run(store, full[:2])
    d2 = diff_runs(store, a.id, c.id)
    assert not d2.incomplete and len(d2.changes["removed"]) == 2 and "INCOMPLETE" not in render_diff_table(d2)
