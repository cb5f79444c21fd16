"""The scheduler daemon: second-level cron jobs fire and record runs, a misfire within the grace runs once,
no overlapping runs, one daemon per job store, SIGTERM lets a running job finish (or interrupts it)."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import signal
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner
from sched_helpers import ThreadDaemon, local_playbook, wait_until, write_schedule

from itops.cli.main import cli
from itops.errors import UsageError
from itops.scheduler import load_schedule
from itops.scheduler.daemon import SchedulerDaemon, SQLiteJobStore
from itops.scheduler.execute import JobContext
from itops.scheduler.jobs import JobHistory
from itops.store import Store

pytestmark = pytest.mark.integration
ITOPS = [os.path.join(os.path.dirname(sys.executable), "itops")]


def schedule(tmp_path, cron: str, seconds: float = 0.0, grace: str = "30s", shutdown: str = "30s"):
    local_playbook(tmp_path, seconds)
    return write_schedule(
        tmp_path,
        f"""\
        version: 1
        store: store
        shutdown_grace: {shutdown}
        jobs:
          tick: {{cron: "{cron}", command: dr-drill, playbook: tick.yaml, misfire_grace: {grace}}}
    """,
    )


def test_second_level_cron_jobs_fire_and_record_ordinary_runs(tmp_path):
    path = schedule(tmp_path, "* * * * * *")
    with ThreadDaemon(path) as d:
        wait_until(lambda: len(d.rows("complete")) >= 2, timeout=120)
    rows = d.rows("complete")
    store = Store(tmp_path / "store")
    runs = {r.id: r for r in store.list_runs(kind="drill")}
    assert len(runs) >= 2
    for row in rows:
        assert row.exit_code == 0 and row.run_id in runs and runs[row.run_id].state == "complete"
        assert row.argv[1:4] == ["dr", "drill", str(tmp_path / "tick.yaml")]
    listed = CliRunner().invoke(cli, ["runs", "list", "--store", str(tmp_path / "store")])
    assert all(row.run_id in listed.stdout for row in rows)
    shown = CliRunner().invoke(cli, ["schedule", "list", "-c", str(path)])
    assert shown.exit_code == 0 and "tick" in shown.stdout and "complete exit 0 run" in shown.stdout


def test_no_overlapping_runs_of_one_job(tmp_path):
    path = schedule(tmp_path, "* * * * * *", seconds=2.5)
    with ThreadDaemon(path) as d:
        wait_until(lambda: len(d.rows("complete")) >= 2 and d.rows("skipped"), timeout=120)
    runs = sorted(Store(tmp_path / "store").list_runs(kind="drill"), key=lambda r: r.started)
    for a, b in itertools.pairwise(runs):
        assert a.finished is not None and a.finished <= b.started, "two runs of one job overlapped"
    skipped = d.rows("skipped")
    assert skipped and all("still running" in r.error for r in skipped)


def _persist_job(tmp_path, path):
    """Start and stop a daemon once, so the job store holds the job; return the store file."""
    with ThreadDaemon(path):
        pass
    return tmp_path / "store" / "scheduler" / "jobs.db"


def _set_next_run(db, when: dt.datetime) -> None:
    store = SQLiteJobStore(db)
    store._scheduler, store._alias = None, "default"
    job = store.lookup_job("tick")
    job.next_run_time = when
    store.update_job(job)


def _cron_at_second_ago(seconds_ago: int) -> tuple[str, dt.datetime]:
    """A cron firing once a minute, at the second that was ``seconds_ago`` seconds ago; and that fire time."""
    last = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=seconds_ago)).replace(microsecond=0)
    return f"{last.second} * * * * *", last


def test_a_run_missed_while_asleep_runs_once_within_the_grace(tmp_path):
    cron, last = _cron_at_second_ago(4)
    path = schedule(tmp_path, cron, grace="90s")
    db = _persist_job(tmp_path, path)
    _set_next_run(db, last - dt.timedelta(minutes=2))  # asleep over three fire times: -2m, -1m and `last`
    with ThreadDaemon(path) as d:
        wait_until(lambda: d.rows("complete"), timeout=120)
        time.sleep(1.0)
    assert len(d.rows("complete")) == 1, "the missed runs are coalesced into one"
    assert d.rows("missed") == []
    (row,) = d.rows("complete")
    assert abs(row.scheduled - time.time()) < 60


def test_a_run_missed_beyond_the_grace_is_recorded_not_run(tmp_path):
    cron, last = _cron_at_second_ago(6)
    path = schedule(tmp_path, cron, grace="2s")
    db = _persist_job(tmp_path, path)
    _set_next_run(db, last)
    with ThreadDaemon(path) as d:
        wait_until(lambda: d.rows("missed"), timeout=60)
        time.sleep(0.5)
    assert d.rows("complete") == [] and "misfire grace" in d.rows("missed")[0].error


def test_an_unchanged_job_keeps_its_stored_next_run_a_changed_one_is_replaced(tmp_path):
    path = schedule(tmp_path, "0 3 * * *")
    db = _persist_job(tmp_path, path)
    past = dt.datetime(2026, 1, 1, 3, 0, tzinfo=dt.UTC)
    _set_next_run(db, past)
    ctx = JobContext.create(load_schedule(path))
    d = SchedulerDaemon(ctx, install_signals=False)
    d.sync_jobs()
    assert d.store.lookup_job("tick").next_run_time == past  # kept: a missed run can still fire once
    path = schedule(tmp_path, "0 4 * * *")
    d = SchedulerDaemon(JobContext.create(load_schedule(path)), install_signals=False)
    d.sync_jobs()
    assert d.store.lookup_job("tick") is None  # replaced: re-added (pending) when the scheduler starts


def test_a_second_scheduler_on_the_same_store_is_refused(tmp_path):
    path = schedule(tmp_path, "0 3 * * *")
    with ThreadDaemon(path):
        second = SchedulerDaemon(JobContext.create(load_schedule(path)), install_signals=False)
        with pytest.raises(UsageError, match=r"another scheduler \(pid \d+\) already runs on"):
            second.run()
        proc = subprocess.run([*ITOPS, "schedule", "run", "-c", str(path)], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 2 and "another scheduler" in proc.stderr


def _daemon_process(path, tmp_path):
    log = (tmp_path / "daemon.log").open("wb")
    return subprocess.Popen(
        [*ITOPS, "schedule", "run", "-c", str(path)], stdout=log, stderr=log, start_new_session=True
    )


def _stop(proc) -> int:
    try:
        return proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def test_sigterm_lets_the_running_job_finish(tmp_path):
    path = schedule(tmp_path, "* * * * * *", seconds=3, shutdown="60s")
    proc = _daemon_process(path, tmp_path)
    db = tmp_path / "store" / "scheduler" / "jobs.db"
    wait_until(lambda: db.exists() and [r for r in JobHistory(db).rows() if r.state == "running"], timeout=120)
    proc.send_signal(signal.SIGTERM)
    assert _stop(proc) == 0, (tmp_path / "daemon.log").read_text()
    rows = JobHistory(db).rows()
    assert [r.state for r in rows if r.state not in ("skipped",)] == ["complete"]
    run = Store(tmp_path / "store").get_run(rows[0].run_id if rows[0].run_id else "latest")
    assert run.state == "complete" and run.exit_code == 0
    assert "finishing running jobs" in (tmp_path / "daemon.log").read_text()


def test_sigterm_past_the_grace_records_the_job_as_interrupted(tmp_path):
    path = schedule(tmp_path, "* * * * * *", seconds=20, shutdown="0.5s")
    proc = _daemon_process(path, tmp_path)
    db = tmp_path / "store" / "scheduler" / "jobs.db"
    wait_until(lambda: db.exists() and [r for r in JobHistory(db).rows() if r.state == "running"], timeout=120)
    wait_until(lambda: Store(tmp_path / "store").list_runs(kind="drill"), timeout=120)
    proc.send_signal(signal.SIGTERM)
    assert _stop(proc) == 0, (tmp_path / "daemon.log").read_text()
    (row,) = [r for r in JobHistory(db).rows() if r.state not in ("skipped",)]
    assert row.state == "interrupted" and "scheduler was stopping" in row.error
    (run,) = Store(tmp_path / "store").list_runs(kind="drill")
    assert run.state == "interrupted" and run.exit_code == 3


def test_run_job_runs_one_job_now(tmp_path):
    path = schedule(tmp_path, "0 3 * * *")
    result = CliRunner().invoke(cli, ["schedule", "run-job", "-c", str(path), "tick"])
    assert result.exit_code == 0, result.output
    assert "job tick: complete, exit 0, run " in result.stderr
    assert Store(tmp_path / "store").get_run("latest").kind == "drill"
    bad = CliRunner().invoke(cli, ["schedule", "run-job", "-c", str(path), "tock"])
    assert bad.exit_code == 2 and "no job 'tock'" in bad.stderr
