"""Acceptance: `itops schedule run` verifies the lab's backups every few seconds; a planted stale backup
produces one alert mail per change (broken, then fixed), and every run is an ordinary run in the history."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from sched_helpers import wait_until, write_schedule

from itops.cli.main import cli
from itops.scheduler.jobs import JobHistory
from itops.store import Store

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "notify"))
from servers import start_hook, start_smtp

pytestmark = pytest.mark.integration
ITOPS = os.path.join(os.path.dirname(sys.executable), "itops")


def _archive(path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = b"listen = 0.0.0.0:8080\n"
        info = tarfile.TarInfo("etc/app.conf")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    path.write_bytes(buf.getvalue())


@pytest.mark.timeout(900)  # four scheduled runs; minutes only on a machine busy with other work
def test_scheduled_backup_verification_alerts_once_per_change(fleet_factory, tmp_path):
    lab = fleet_factory(1)
    backups = tmp_path / "backups"
    backups.mkdir()
    newest = backups / "app-20260101.tar.gz"
    _archive(newest)
    inv = lab.write_inventory(
        extra={
            "backups": {
                "app": {"kind": "file", "host": "lab1", "rpo": "1h", "min_copies": 1, "path": f"{backups}/app-*.tar.gz"}
            }
        }
    )
    controller, smtp = start_smtp()
    hook = start_hook([500])  # a broken chat webhook: retried, recorded, never changes the job's result
    path = write_schedule(
        tmp_path,
        f"""\
        version: 1
        store: store
        shutdown_grace: 30s
        reports: {{url: "https://itops.example.com/reports"}}
        notifiers:
          ops-mail:
            email: {{host: 127.0.0.1, port: {smtp.port}, starttls: false, from: itops@example.com,
                    to: [ops@example.com]}}
          chat:
            webhook: {{url: "{hook.url}"}}
            retries: 1
            backoff: 0.1s
        jobs:
          backups:
            cron: "*/3 * * * * *"
            command: backup-verify
            inventory: {inv}
            options: {{restore_test: false}}
            notify: [{{to: ops-mail, when: change}}, {{to: chat, when: failure}}]
    """,
    )
    log = (tmp_path / "daemon.log").open("wb")
    proc = subprocess.Popen([ITOPS, "schedule", "run", "-c", str(path)], stdout=log, stderr=log, start_new_session=True)
    db = tmp_path / "store" / "scheduler" / "jobs.db"

    def done() -> list:
        return [r for r in JobHistory(db).rows(limit=500) if r.state == "complete"] if db.exists() else []

    try:
        first = wait_until(lambda: done(), timeout=150)
        assert first[0].exit_code == 0 and smtp.messages == []  # healthy: nothing to say
        old = time.time() - 3 * 3600
        os.utime(newest, (old, old))  # plant a stale backup
        wait_until(lambda: any(r.exit_code == 1 for r in done()), timeout=150)
        (alert,) = smtp.wait_for(1)
        n_failed = len([r for r in done() if r.exit_code == 1])
        wait_until(lambda: len([r for r in done() if r.exit_code == 1]) >= n_failed + 1, timeout=150)
        assert len(smtp.messages) == 1  # still stale: no new mail
        os.utime(newest, None)  # a fresh backup again
        wait_until(lambda: done()[0].exit_code == 0, timeout=150)
        fixed = smtp.wait_for(2)[1]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=90)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            controller.stop()
            assert hook.server is not None
            hook.server.shutdown()
    assert code == 0, (tmp_path / "daemon.log").read_text()
    assert alert["Subject"].startswith("[itops] FAILED: job backups (backup-verify) - 1 failure, 1 new")
    body = alert.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert "NEW FAILURES (1)" in body and "app  backup.within_rpo: newest backup is 3h old, RPO 1h" in body
    assert "[failing since" in body and "Report: https://itops.example.com/reports/backups-" in body
    assert next(a.get_filename() for a in alert.iter_attachments()).startswith("backups-")
    assert fixed["Subject"].startswith("[itops] FIXED: job backups (backup-verify) - 0 failures, 1 fixed")
    assert len(smtp.messages) == 2
    rows = JobHistory(db).rows(limit=500)
    failing = [r for r in rows if r.state == "complete" and r.exit_code == 1]
    for row in failing:  # the webhook failed every time, was retried, and the job's result stayed exit 1
        (chat,) = [n for n in row.notifications if n["notifier"] == "chat"]
        assert not chat["ok"] and chat["attempts"] == 2 and "HTTP 500" in chat["error"]
    assert len(hook.posts) == 2 * len(failing)
    store = Store(tmp_path / "store")
    runs = {r.id for r in store.list_runs(kind="backup", limit=500)}
    assert {r.run_id for r in rows if r.run_id} <= runs
    listed = CliRunner().invoke(
        cli, ["runs", "list", "--store", str(tmp_path / "store"), "--kind", "backup", "--limit", "500"]
    )
    assert all(r.run_id in listed.stdout for r in rows if r.run_id)
    report = Path(failing[0].report)
    assert report.is_file() and report.suffix == ".html"
