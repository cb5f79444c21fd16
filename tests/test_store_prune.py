"""Run retention on a real store: `itops runs prune` removes old runs from history.db and their folders."""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing
from pathlib import Path

from click.testing import CliRunner

from itops.cli.main import cli
from itops.model import Result, Run, Severity, Status
from itops.store import Store, new_run_id

DAY = 86400.0


def _stored_run(store: Store, age_days: float, *, state: str = "complete") -> str:
    started = time.time() - age_days * DAY
    run = Run(id=new_run_id(started), kind="audit", started=started)
    writer = store.begin(run)
    writer.add(Result(run.id, "ssh.root_login_disabled", "web1", Status.FAIL, Severity.HIGH, "PermitRootLogin yes"))
    if state != "running":
        writer.finish(state, 1)
    else:
        writer._jsonl.close()
        writer._db.commit()
        writer._db.close()
    return run.id


def _db_ids(store: Store) -> tuple[set[str], set[str]]:
    with closing(sqlite3.connect(store.db_path)) as db:
        runs = {r[0] for r in db.execute("SELECT id FROM runs")}
        results = {r[0] for r in db.execute("SELECT DISTINCT run_id FROM results")}
    return runs, results


def _prune(store: Path, *args: str) -> tuple[int, str, str]:
    out = CliRunner().invoke(cli, ["runs", "prune", "--store", str(store), *args])
    return out.exit_code, out.stdout, out.stderr


def test_prune_removes_old_runs_and_their_files_and_keeps_the_newest(tmp_path):
    store = Store(tmp_path / "store")
    old = [_stored_run(store, d) for d in (200, 150, 120)]
    recent = [_stored_run(store, d) for d in (30, 1)]

    # dry run: prints what it would remove, removes nothing
    code, stdout, stderr = _prune(store.root, "--older-than", "90d", "--dry-run")
    assert code == 0 and "would remove 3 runs" in stderr
    assert all(rid in stdout for rid in old) and not any(rid in stdout for rid in recent)
    assert _db_ids(store)[0] == set(old + recent)

    # --keep-last 4 protects the newest four, whatever their age: only the oldest goes
    code, stdout, stderr = _prune(store.root, "--older-than", "90d", "--keep-last", "4")
    assert code == 0 and old[0] in stdout and "removed 1 run " in stderr, stderr
    assert _db_ids(store) == (set(old[1:] + recent), set(old[1:] + recent))
    assert not store.run_dir(old[0]).exists() and store.run_dir(old[1]).is_dir()

    with closing(sqlite3.connect(store.db_path)) as db, db:  # a metric of a run to prune (forecast history)
        db.execute(
            "INSERT INTO metrics (run_id, ts, kind, target, check_id, name, value) VALUES (?,?,?,?,?,?,?)",
            (old[1], 0.0, "audit", "web1", "storage.x", "fs.used_pct:/", 50.0),
        )
    code, stdout, _ = _prune(store.root, "--older-than", "90d", "--format", "json")
    doc = json.loads(stdout)
    assert code == 0 and doc["dry_run"] is False and {r["id"] for r in doc["removed"]} == set(old[1:])
    assert _db_ids(store) == (set(recent), set(recent))
    with closing(sqlite3.connect(store.db_path)) as db:
        assert db.execute("SELECT count(*) FROM metrics WHERE run_id = ?", (old[1],)).fetchone()[0] == 0
    assert sorted(p.name for p in (store.root / "runs").iterdir()) == sorted(recent)
    assert [r.id for r in store.list_runs()] == recent[::-1]
    assert store.results(recent[0])[0].check_id == "ssh.root_login_disabled"


def test_a_run_still_in_progress_is_never_pruned(tmp_path):
    store = Store(tmp_path / "store")
    live = _stored_run(store, 100, state="running")  # recorded with this (living) process's pid
    assert [r.id for r in store.prune(90 * DAY, dry_run=True)] == []
    with closing(sqlite3.connect(store.db_path)) as db, db:
        db.execute("UPDATE runs SET pid = ? WHERE id = ?", (2**22 + 12345, live))  # no such process
    assert [r.id for r in store.prune(90 * DAY)] == [live]


def test_bad_duration_is_a_usage_error(tmp_path):
    code, _, stderr = _prune(tmp_path, "--older-than", "ninety days")
    assert code == 2 and "--older-than" in stderr


def test_prune_as_a_scheduled_job(tmp_path):
    """A `runs-prune` job runs `itops runs prune` as a child process, records no run of its own."""
    from itops.scheduler import load_schedule
    from itops.scheduler.execute import JobContext, execute_job

    store = Store(tmp_path / "store")
    old, recent = _stored_run(store, 100), _stored_run(store, 2)
    path = tmp_path / "schedule.yaml"
    path.write_text(
        "version: 1\nstore: store\njobs:\n"
        "  retention: {cron: '15 4 * * 0', command: runs-prune, options: {older_than: 90d, keep_last: 1}}\n"
    )
    outcome = execute_job(JobContext.create(load_schedule(path)), "retention")
    assert outcome.state == "complete" and outcome.exit_code == 0 and outcome.error == "", outcome
    assert outcome.argv[-7:] == ["prune", "--store", str(store.root), "--older-than", "7776000s", "--keep-last", "1"]
    assert _db_ids(store)[0] == {recent} and not store.run_dir(old).exists()
    path.write_text(
        "version: 1\nstore: store\njobs:\n"
        "  retention: {cron: '15 4 * * 0', command: runs-prune, inventory: x.yaml, options: {keep_last: -1}}\n"
    )
    from itops.errors import ConfigError

    try:
        load_schedule(path)
    except ConfigError as exc:
        text = str(exc)
    assert "older_than" in text and "keep_last" in text and "takes no inventory" in text
