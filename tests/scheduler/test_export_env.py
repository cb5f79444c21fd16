"""Exported jobs keep the environment their notifiers and hosts need; `schedule list` shows failed
notifications (issue #18, item 4)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sched_helpers import local_playbook, write_schedule

from itops.cli.main import cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "notify"))
from servers import start_hook


@pytest.fixture
def schedule(tmp_path, monkeypatch):
    monkeypatch.setenv("HOOK_URL", "https://hooks.example.com/SECRET-TOKEN")
    monkeypatch.setenv("SMTP_PASSWORD", "hunter2-secret")
    local_playbook(tmp_path)
    (tmp_path / "inv.yaml").write_text("version: 1\nhosts:\n  db2: {address: 127.0.0.1, password_env: DB2_PW}\n")
    return write_schedule(
        tmp_path,
        """\
        version: 1
        store: runs
        notifiers:
          mail:
            email: {host: smtp.example.com, from: itops@example.com, to: [ops@example.com],
                    username: itops, password_env: SMTP_PASSWORD}
          chat:
            webhook: {url_env: HOOK_URL}
        jobs:
          drill: {cron: "0 3 * * *", command: dr-drill, playbook: tick.yaml,
                  notify: [{to: mail, when: failure}, {to: chat, when: always}]}
          audit: {cron: "0 4 * * *", command: audit, inventory: inv.yaml}
          quiet: {cron: "0 5 * * *", command: dr-drill, playbook: tick.yaml}
    """,
    )


def test_cron_export_sources_the_env_file_and_names_the_variables(schedule, tmp_path):
    env_file = tmp_path / "secrets.env"
    res = CliRunner().invoke(cli, ["schedule", "export", "-c", str(schedule), "--cron", "--env-file", str(env_file)])
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert "SECRET-TOKEN" not in out and "hunter2" not in out
    assert "# needs in its environment: HOOK_URL SMTP_PASSWORD" in out
    assert "# needs in its environment: DB2_PW" in out
    entries = {
        shlex.split(ln.split(None, 5)[5])[-3]: ln
        for ln in out.splitlines()
        if ln and not ln.startswith("#") and "=" not in ln.split()[0]
    }
    assert f"set -a && . {env_file} && set +a && " in entries["drill"]
    assert ". " not in entries["quiet"]  # a job that needs nothing is left as it was
    # the line runs under /bin/sh: the variable reaches the job, as cron would run it
    env_file.write_text("HOOK_URL=https://hooks.example.com/from-file\n")
    prefix = entries["drill"].split(None, 5)[5].split(" && ")[:3]
    shown = subprocess.run(
        ["/bin/sh", "-c", " && ".join([*prefix, 'printf %s "$HOOK_URL"'])],
        capture_output=True,
        text=True,
        timeout=10,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert shown.stdout == "https://hooks.example.com/from-file"


def test_systemd_export_carries_the_environment(schedule, tmp_path):
    out = tmp_path / "units"
    res = CliRunner().invoke(cli, ["schedule", "export", "-c", str(schedule), "--systemd", "--dir", str(out)])
    assert res.exit_code == 0, res.output
    service = (out / "itops-drill.service").read_text()
    assert f"EnvironmentFile={schedule.parent / 'itops.env'}" in service
    assert "PassEnvironment=HOOK_URL SMTP_PASSWORD" in service
    assert "PassEnvironment=DB2_PW" in (out / "itops-audit.service").read_text()
    assert "EnvironmentFile" not in (out / "itops-quiet.service").read_text()
    everything = "".join(p.read_text() for p in out.iterdir())
    assert "SECRET-TOKEN" not in everything and "hunter2" not in everything
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    (schedule.parent / "itops.env").write_text("HOOK_URL=x\n")
    proc = subprocess.run(
        [analyze, "verify", *map(str, sorted(out.iterdir()))], capture_output=True, text=True, timeout=60, cwd=out
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout


def test_schedule_list_shows_failed_notifications(tmp_path):
    hook = start_hook([500])
    local_playbook(tmp_path)
    path = write_schedule(
        tmp_path,
        f"""\
        version: 1
        store: runs
        notifiers:
          chat: {{webhook: {{url: "{hook.url}"}}, retries: 0}}
        jobs:
          drill: {{cron: "0 3 * * *", command: dr-drill, playbook: tick.yaml, notify: [{{to: chat, when: always}}]}}
    """,
    )
    run = CliRunner().invoke(cli, ["schedule", "run-job", "-c", str(path), "drill"])
    assert run.exit_code == 0, run.output
    res = CliRunner().invoke(cli, ["schedule", "list", "-c", str(path)])
    assert res.exit_code == 0, res.output
    assert "1 notification(s) FAILED" in res.stdout
    assert "notification chat (webhook) FAILED after 1 attempt(s)" in res.stdout, res.stdout
