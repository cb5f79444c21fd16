"""`itops schedule export`: crontab lines that parse back, systemd units that systemd-analyze accepts."""

from __future__ import annotations

import shlex
import shutil
import subprocess

import pytest
from click.testing import CliRunner
from sched_helpers import local_playbook, write_schedule

from itops.cli.main import cli
from itops.scheduler import parse_cron


@pytest.fixture
def schedule(tmp_path):
    local_playbook(tmp_path)
    return write_schedule(
        tmp_path,
        """\
        version: 1
        timezone: Europe/Berlin
        store: runs
        jobs:
          nightly: {cron: "30 2 * * mon-fri", command: dr-drill, playbook: tick.yaml}
          weekly: {cron: "0 6 * * 0", timezone: UTC, command: dr-check}
          often: {cron: "*/15 8-18 * * *", timezone: UTC, command: dr-check}
          fast: {cron: "*/5 * * * * *", command: dr-check}
          paused: {cron: "0 1 1 * *", command: dr-check, enabled: false}
    """,
    )


def test_cron_export_parses_back(schedule, tmp_path):
    result = CliRunner().invoke(cli, ["schedule", "export", "-c", str(schedule), "--cron"])
    assert result.exit_code == 0, result.output
    lines = [ln for ln in result.stdout.splitlines() if ln and not ln.startswith("#")]
    entries = [ln for ln in lines if "=" not in ln.split()[0]]
    assert len(entries) == 3  # fast: seconds cannot be expressed; paused: disabled
    assert "CRON_TZ=Europe/Berlin" in lines and "SHELL=/bin/sh" in lines
    by_job = {}
    for line in entries:
        fields = line.split(None, 5)
        parse_cron(" ".join(fields[:5]))  # five valid crontab fields
        argv = shlex.split(fields[5])
        assert argv[1:5] == ["schedule", "run-job", "-c", str(schedule.resolve())]
        assert argv[6:] == ["--store", str(tmp_path / "runs")]
        by_job[argv[5]] = fields[:5]
    assert by_job == {
        "nightly": ["30", "2", "*", "*", "1-5"],
        "weekly": ["0", "6", "*", "*", "0"],
        "often": ["*/15", "8-18", "*", "*", "*"],
    }
    assert "# skipped: it fires at a seconds resolution" in result.stdout


def test_systemd_export_writes_units_that_verify(schedule, tmp_path):
    out = tmp_path / "units"
    result = CliRunner().invoke(cli, ["schedule", "export", "-c", str(schedule), "--systemd", "--dir", str(out)])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    jobs = ("nightly", "weekly", "often", "fast")
    assert names == sorted(f"itops-{j}.{k}" for j in jobs for k in ("service", "timer"))
    timer = (out / "itops-nightly.timer").read_text()
    assert "OnCalendar=Mon..Fri *-*-* 02:30:00 Europe/Berlin" in timer and "Persistent=true" in timer
    assert "OnCalendar=*-*-* *:*:00/5 Europe/Berlin" in (out / "itops-fast.timer").read_text()
    service = (out / "itops-nightly.service").read_text()
    assert "Type=oneshot" in service and "schedule run-job -c" in service
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    for unit in ("nightly", "weekly", "often", "fast"):
        timer = (out / f"itops-{unit}.timer").read_text().splitlines()
        calendar = next(ln.split("=", 1)[1] for ln in timer if ln.startswith("OnCalendar="))
        proc = subprocess.run([analyze, "calendar", calendar], capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0, proc.stderr
    proc = subprocess.run(
        [analyze, "verify", *map(str, sorted(out.iterdir()))], capture_output=True, text=True, timeout=60, cwd=out
    )
    assert proc.returncode == 0, proc.stderr + proc.stdout


def test_export_needs_a_kind(schedule):
    result = CliRunner().invoke(cli, ["schedule", "export", "-c", str(schedule)])
    assert result.exit_code == 2 and "--cron or --systemd" in result.output
