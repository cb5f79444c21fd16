"""The run store, reports, metrics and scheduler state are private, whatever the umask (issue #12).

Real runs as a user would start them (the installed ``itops`` under ``umask 022``), then
``find ... -perm /077`` must print nothing. Foreign-owned and world-writable folders are
refused with exit 4; symlinks planted at a report path or a temp-file name are never written through.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from itops.backup.metrics import write_prom_file
from itops.fsutil import UnsafePathError, write_private_atomic
from itops.model import Run
from itops.report import atomic_write
from itops.store import Store

ITOPS = str(Path(sys.executable).with_name("itops"))
NOBODY = 65534


def itops(*args: str, umask: str = "022", cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The installed console script under ``umask``, as a user would run it."""
    script = f'umask {umask}; exec "$@"'
    return subprocess.run(
        ["sh", "-c", script, "sh", ITOPS, *args], capture_output=True, text=True, timeout=300, cwd=cwd
    )


def loose(*paths: Path) -> str:
    """What ``find PATHS -perm /077`` prints: anything group or others may touch."""
    return subprocess.run(
        ["find", *map(str, paths), "-perm", "/077"], capture_output=True, text=True, check=True
    ).stdout


def local_inventory(folder: Path) -> Path:
    path = folder / "inv.yaml"
    path.write_text("version: 1\nhosts:\n  here: {address: 127.0.0.1}\n")
    return path


@pytest.mark.parametrize("umask", ["022", "000"])
def test_audit_reports_and_scheduler_state_are_private_whatever_the_umask(tmp_path, umask):
    store, reports, state = tmp_path / "store", tmp_path / "reports", tmp_path / "sched-state"
    inv = local_inventory(tmp_path)
    audit = itops(
        "audit",
        "-i",
        str(inv),
        "--local",
        "--checks",
        "ssh.*",
        "--store",
        str(store),
        "--report",
        f"html:{reports}/html/report.html",
        "--report",
        f"json:{reports}/report.json",
        umask=umask,
    )
    assert audit.returncode in (0, 1, 3), audit.stderr
    md = itops("report", "latest", "--store", str(store), "-f", "md", "-o", str(reports / "report.md"), umask=umask)
    assert md.returncode == 0, md.stderr
    (tmp_path / "tick.yaml").write_text(
        textwrap.dedent("""\
        name: tick
        description: a local step
        systems: [none]
        rto: 1m
        rpo: 1h
        owner: tests
        steps:
          - {name: work, local: "true"}
    """)
    )
    (tmp_path / "schedule.yaml").write_text(
        textwrap.dedent(f"""\
        version: 1
        store: {store}
        state_dir: {state}
        jobs:
          tick: {{cron: "0 3 * * *", command: dr-drill, playbook: tick.yaml}}
    """)
    )
    job = itops("schedule", "run-job", "-c", str(tmp_path / "schedule.yaml"), "tick", umask=umask)
    assert job.returncode == 0, job.stderr
    old = os.umask(int(umask, 8))
    try:
        write_prom_file(reports / "itops.prom", {"b": {"kind": "file", "status": "pass"}}, time.time(), only=["b"])
    finally:
        os.umask(old)
    # every kind of file was written: run store, reports, drill record, scheduler db, locks, job report
    names = {p.name for p in (*store.rglob("*"), *reports.rglob("*"), *state.rglob("*"))}
    assert {
        "history.db",
        "results.jsonl",
        "run.json",
        "drill.json",
        "report.html",
        "report.json",
        "report.md",
        "itops.prom",
        "jobs.db",
        "tick.lock",
    } <= names, names
    assert any(n.endswith(".html") and n.startswith("tick-") for n in names)
    assert loose(store, reports, state) == ""


def test_existing_store_of_ours_is_tightened(tmp_path):
    root = tmp_path / "store"
    root.mkdir(mode=0o755)
    os.chmod(root, 0o755)
    Store(root)
    assert root.stat().st_mode & 0o777 == 0o700
    assert loose(root) == ""


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_store_owned_by_another_user_is_refused_with_exit_4(tmp_path):
    inv = local_inventory(tmp_path)
    store = tmp_path / "store"
    store.mkdir(mode=0o700)
    os.chown(store, NOBODY, NOBODY)
    res = itops("audit", "-i", str(inv), "--local", "--checks", "ssh.*", "--store", str(store))
    assert res.returncode == 4, res.stderr
    assert str(store) in res.stderr and "owned by uid 65534" in res.stderr
    assert not (store / "history.db").exists()


def test_world_writable_store_is_refused_with_exit_4(tmp_path):
    inv = local_inventory(tmp_path)
    store = tmp_path / "store"
    store.mkdir()
    os.chmod(store, 0o777)
    res = itops("audit", "-i", str(inv), "--local", "--checks", "ssh.*", "--store", str(store))
    assert res.returncode == 4, res.stderr
    assert str(store) in res.stderr and "writable by group or others" in res.stderr
    assert not (store / "history.db").exists()


def _schedule(tmp_path: Path, state: Path) -> Path:
    path = tmp_path / "schedule.yaml"
    path.write_text(
        f"version: 1\nstore: {tmp_path / 'store'}\nstate_dir: {state}\n"
        "jobs:\n  t: {cron: '0 3 * * *', command: dr-check}\n"
    )
    return path


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_scheduler_state_dir_owned_by_another_user_is_refused(tmp_path):
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    os.chown(state, NOBODY, NOBODY)
    res = itops("schedule", "run-job", "-c", str(_schedule(tmp_path, state)), "t")
    assert res.returncode == 4, res.stderr
    assert str(state) in res.stderr and "owned by uid 65534" in res.stderr
    assert not (state / "jobs.db").exists()


def test_group_writable_scheduler_state_dir_is_refused(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    os.chmod(state, 0o770)
    res = itops("schedule", "run-job", "-c", str(_schedule(tmp_path, state)), "t")
    assert res.returncode == 4, res.stderr
    assert "writable by group or others" in res.stderr
    assert not (state / "jobs.db").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_job_store_file_owned_by_another_user_is_never_unpickled(tmp_path):
    from itops.scheduler.daemon import SQLiteJobStore

    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    db = state / "jobs.db"
    db.touch(mode=0o600)
    os.chown(db, NOBODY, NOBODY)
    with pytest.raises(UnsafePathError, match="owned by uid 65534"):
        SQLiteJobStore(db)


def test_world_readable_job_store_file_is_tightened(tmp_path):
    from itops.scheduler.daemon import SQLiteJobStore

    state = tmp_path / "state"
    state.mkdir(mode=0o755)
    db = state / "jobs.db"
    db.touch()
    os.chmod(db, 0o644)
    SQLiteJobStore(db).get_all_jobs()
    assert loose(state) == ""


# --- symlinks planted where itops writes ------------------------------------------------------------


def test_symlink_planted_at_report_path_is_replaced_not_written_through(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    report = tmp_path / "out" / "report.html"
    report.parent.mkdir()
    report.symlink_to(victim)
    atomic_write(report, b"<html>report</html>")
    assert victim.read_text() == "keep me"
    assert not report.is_symlink() and report.read_bytes() == b"<html>report</html>"
    assert report.stat().st_mode & 0o777 == 0o600


def test_prom_file_temp_name_is_unpredictable_and_never_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    prom = tmp_path / "metrics" / "itops.prom"
    prom.parent.mkdir()
    # the temp names prometheus_client's write_to_textfile uses (PATH.<pid>.<thread id>)
    prom.with_name(f"itops.prom.{os.getpid()}.{threading.current_thread().ident}").symlink_to(victim)
    write_prom_file(prom, {"b": {"kind": "file", "status": "fail"}}, time.time(), only=["b"])
    assert victim.read_text() == "keep me"
    assert 'itops_backup_status{backup="b",itops_backup_status="fail",kind="file"} 1.0' in prom.read_text()
    assert prom.stat().st_mode & 0o777 == 0o600


def test_run_record_temp_file_is_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    store = Store(tmp_path / "store")
    run = Run(id="20260101T000000Z-abcdef", kind="audit", started=time.time())
    writer = store.begin(run)
    (store.run_dir(run.id) / "run.tmp").symlink_to(victim)  # the old, predictable temp name
    writer.finish("complete", 0)
    assert victim.read_text() == "keep me"
    assert json.loads((store.run_dir(run.id) / "run.json").read_text())["id"] == run.id


def test_private_write_failure_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "r.json"
    write_private_atomic(target, "old")

    with pytest.raises(TypeError):
        write_private_atomic(target, 42)  # type: ignore[arg-type]
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_group_writable_job_store_file_is_refused_before_reading(tmp_path):
    from itops.scheduler.daemon import SQLiteJobStore

    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    db = state / "jobs.db"
    db.touch()
    os.chmod(db, 0o664)
    with pytest.raises(UnsafePathError, match="writable by group or others"):
        SQLiteJobStore(db)


def test_symlinked_job_store_file_is_refused(tmp_path):
    from itops.scheduler.daemon import SQLiteJobStore

    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (tmp_path / "elsewhere.db").touch(mode=0o600)
    (state / "jobs.db").symlink_to(tmp_path / "elsewhere.db")
    with pytest.raises(UnsafePathError, match="symlink"):
        SQLiteJobStore(state / "jobs.db")
