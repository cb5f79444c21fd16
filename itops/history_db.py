"""The run store's SQLite history database (``history.db``): its schema and upgrades, and the row
of each result (what ``runs list/diff``, trends and ``runs verify`` query).

The result itself is its line of the run's ``results.jsonl`` (the hash-chained record); the row
holds what queries filter on, a check's title and frameworks are kept once per run
(``run_checks``), a waiver only where there is one.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from json.encoder import encode_basestring
from typing import Any

from itops.model import Result, compact_json, frameworks_doc

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, started REAL NOT NULL, finished REAL,
    inventory TEXT, inventory_digest TEXT, version TEXT, host_keys TEXT, counts TEXT,
    state TEXT NOT NULL, exit_code INTEGER, pid INTEGER, accounts TEXT, planned TEXT
);
CREATE TABLE IF NOT EXISTS results (
    run_id TEXT NOT NULL REFERENCES runs(id), seq INTEGER NOT NULL, check_id TEXT NOT NULL,
    target TEXT NOT NULL, resource TEXT NOT NULL, status TEXT NOT NULL, severity TEXT NOT NULL,
    waiver TEXT, PRIMARY KEY (run_id, seq)
);
CREATE TABLE IF NOT EXISTS run_checks (
    run_id TEXT NOT NULL, check_id TEXT NOT NULL, title TEXT NOT NULL, frameworks TEXT NOT NULL,
    PRIMARY KEY (run_id, check_id)
);
CREATE TABLE IF NOT EXISTS metrics (
    run_id TEXT NOT NULL, ts REAL NOT NULL, kind TEXT NOT NULL, target TEXT NOT NULL, check_id TEXT NOT NULL,
    name TEXT NOT NULL, value REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS metrics_series ON metrics(target, name, ts);
"""


def create_or_upgrade(db: sqlite3.Connection) -> bool:
    """Create the tables, or bring an older store's up to date; True when the results table still has
    the ``data`` column of stores written before 2026-12-07 (new rows then give it an empty value)."""
    db.executescript(SCHEMA)
    columns = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
    if "accounts" not in columns:  # stores created before cloud accounts were recorded
        db.execute("ALTER TABLE runs ADD COLUMN accounts TEXT")
    if "planned" not in columns:  # stores created before planned targets were recorded
        db.execute("ALTER TABLE runs ADD COLUMN planned TEXT")
    for column in ("shard", "selection", "merged_from", "inventory_lines"):  # stores from before them
        if column not in columns:
            db.execute(f"ALTER TABLE runs ADD COLUMN {column} TEXT")
    # Stores from before 2026-12-07 kept each result's whole JSON line again in results.data
    # (results.jsonl is the record) and an index no query used: new rows leave data empty.
    result_columns = {row[1] for row in db.execute("PRAGMA table_info(results)")}
    if "waiver" not in result_columns:
        db.execute("ALTER TABLE results ADD COLUMN waiver TEXT")
    db.execute("DROP INDEX IF EXISTS results_check")
    return "data" in result_columns


# The history database's row of a result: what `runs list/diff`, trends and `runs verify` query. The
# result itself is its line in results.jsonl (the hash-chained record); a check's title and
# frameworks are stored once per run (run_checks), a waiver only where there is one.
KEY_COLUMNS = "check_id, target, resource, status, severity, waiver"
#: a run's rows as :func:`row_agrees` reads them, in stored order
SELECT_ROW_KEYS = f"SELECT {KEY_COLUMNS} FROM results WHERE run_id = ? ORDER BY seq"  # noqa: S608


def insert_results_sql(legacy_data: bool) -> str:
    columns = "run_id, seq, check_id, target, resource, status, severity, waiver" + (", data" if legacy_data else "")
    return f"INSERT INTO results ({columns}) VALUES ({', '.join('?' * (9 if legacy_data else 8))})"  # noqa: S608


def result_row(run_id: str, seq: int, r: Result, legacy_data: bool) -> tuple[Any, ...]:
    waiver = compact_json(r.waiver.to_dict()) if r.waiver is not None else None
    row = (run_id, seq, r.check_id, r.target, r.resource, r.status._value_, r.severity._value_, waiver)
    return (*row, "") if legacy_data else row


def check_row(r: Result) -> tuple[str, str]:
    return r.title, compact_json(frameworks_doc(r.frameworks))


def row_agrees(run_id: str) -> Callable[[tuple[Any, ...], str], bool]:
    """Whether a history.db row (:data:`KEY_COLUMNS`) says what its line of results.jsonl says.

    Fast and exact for the unwaived lines this itops writes: they start with these six keys in this
    order (:meth:`Result.to_dict`), and ``"waiver":null`` can only be the result's own waiver
    (framework refs are lists, metrics numbers, evidence strings). A row with a waiver, and any line
    of another writer's key order, is decided by parsing the line."""
    enc = encode_basestring
    head = '{"run_id":' + enc(run_id)

    def agrees(row: tuple[Any, ...], body: str) -> bool:
        check_id, target, resource, status, severity, waiver = row
        prefix = (
            f'{head},"check_id":{enc(check_id)},"target":{enc(target)},"resource":{enc(resource)},'
            f'"status":{enc(status)},"severity":{enc(severity)},'
        )
        if waiver is None and body.startswith(prefix) and '"waiver":null' in body:
            return True  # a waived row (rare) is compared parsed: a cut-down waiver must not pass
        d = json.loads(body)
        line_waiver = compact_json(d["waiver"]) if d.get("waiver") else None
        keys = ("check_id", "target", "resource", "status", "severity")
        return tuple(d.get(k, "") for k in keys) == tuple(row[:5]) and line_waiver == waiver

    return agrees
