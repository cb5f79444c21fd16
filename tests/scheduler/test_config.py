"""schedule.yaml validation (file:line problems, exit 4), cron parsing, and the command line of each job."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sched_helpers import local_playbook, write_schedule

from itops.cli.main import cli
from itops.errors import ConfigError
from itops.scheduler import load_schedule, parse_cron
from itops.scheduler.daemon import trigger_for
from itops.scheduler.jobs import job_argv


def test_every_problem_with_file_and_line(tmp_path):
    path = write_schedule(
        tmp_path,
        """\
        version: 1
        timezone: Mars/Olympus
        notifiers:
          mail:
            email: {host: smtp.example.com, from: a@example.com, to: [], password: hunter2}
          hook:
            webhook: {url: "ftp://x"}
        jobs:
          nightly:
            cron: "61 2 * * *"
            command: backup-verify
            options: {restor_test: true}
            notify: [{to: mial, when: change}]
          drill:
            cron: "0 3 1 * mon"
            command: dr-drill
          report:
            cron: "0 4 * * *"
            command: report
            inventory: missing.yaml
            options: {output: out.html, format: docx}
    """,
    )
    with pytest.raises(ConfigError) as exc:
        load_schedule(path)
    got = [str(p) for p in exc.value.problems]
    f = str(path)
    assert any(p.startswith(f"{f}:2: timezone: unknown time zone 'Mars/Olympus'") for p in got)
    assert any(p.startswith(f"{f}:5: notifiers.mail.email.password: secrets are never written inline") for p in got)
    assert any(p.startswith(f"{f}:5: notifiers.mail.email.to: list at least one recipient") for p in got)
    assert any(p.startswith(f"{f}:7: notifiers.hook.webhook: url must start with http:// or https://") for p in got)
    assert any(p.startswith(f"{f}:10: jobs.nightly.cron: minute field: 61 is outside 0-59") for p in got)
    assert f"{f}:9: jobs.nightly: missing required key 'inventory' (a backup-verify job needs one)" in got
    assert f"{f}:12: jobs.nightly.options.restor_test: unknown key 'restor_test' (did you mean 'restore_test'?)" in got
    assert any(
        p.startswith(f"{f}:13: jobs.nightly.notify[0].to: unknown notifier 'mial' (did you mean 'mail'?)") for p in got
    )
    assert any(p.startswith(f"{f}:15: jobs.drill.cron: restrict day-of-month or day-of-week, not both") for p in got)
    assert f"{f}:14: jobs.drill: missing required key 'playbook' (a dr-drill job needs one)" in got
    assert any(p.startswith(f"{f}:20: jobs.report.inventory: a report job takes no inventory") for p in got)
    assert any(p.startswith(f"{f}:21: jobs.report.options.format: unknown report format 'docx'") for p in got)
    result = CliRunner().invoke(cli, ["schedule", "list", "-c", str(path)])
    assert result.exit_code == 4 and f"{f}:10: jobs.nightly.cron" in result.stderr


def test_a_valid_schedule_resolves_paths_defaults_and_rules(tmp_path):
    pb = local_playbook(tmp_path)
    (tmp_path / "inv.yaml").write_text("version: 1\nhosts: {}\n")
    path = write_schedule(
        tmp_path,
        f"""\
        version: 1
        timezone: Europe/Berlin
        store: runs
        defaults: {{misfire_grace: 10m, notify: [ops]}}
        notifiers:
          ops: {{webhook: {{url_env: HOOK_URL}}, retries: 5, backoff: 1s}}
        jobs:
          drill: {{cron: "*/10 * * * * *", command: dr-drill, playbook: {pb.name}, options: {{unattended: true}}}}
          verify:
            cron: "15 1 * * *"
            timezone: UTC
            command: backup-verify
            inventory: inv.yaml
            options: {{restore_test: false, limit: [files-*], fail_on: high}}
            notify: [{{to: ops, when: always}}]
            misfire_grace: 30s
    """,
    )
    s = load_schedule(path)
    assert s.store == tmp_path / "runs"
    drill, verify = s.jobs["drill"], s.jobs["verify"]
    assert drill.timezone == "Europe/Berlin" and drill.misfire_grace == 600 and drill.notify[0].when == "failure"
    assert drill.playbook == pb and verify.inventory == tmp_path / "inv.yaml"
    assert verify.timezone == "UTC" and verify.misfire_grace == 30 and verify.notify[0].when == "always"
    assert job_argv(verify, Path("/s")) == [
        "backup",
        "verify",
        "-i",
        str(tmp_path / "inv.yaml"),
        "--store",
        "/s",
        "--format",
        "json",
        "--fail-on",
        "high",
        "--limit",
        "files-*",
        "--no-restore-test",
    ]
    assert job_argv(drill, Path("/s")) == ["dr", "drill", str(pb), "--store", "/s", "--format", "json", "--yes"]


@pytest.mark.parametrize(
    ("expr", "start", "expected"),
    [
        ("0 0 * * 0", "2026-11-26 12:00", "2026-11-29 00:00"),  # crontab: 0 is Sunday (apscheduler's 0 is Monday)
        ("0 0 * * 7", "2026-11-26 12:00", "2026-11-29 00:00"),
        ("30 2 * * mon-fri", "2026-11-27 03:00", "2026-11-30 02:30"),
        ("0 */6 * * *", "2026-11-26 13:00", "2026-11-26 18:00"),
        ("0 9 1,15 * *", "2026-11-26 13:00", "2026-12-01 09:00"),
        ("*/20 * * * * *", "2026-11-26 13:00:05", "2026-11-26 13:00:20"),
    ],
)
def test_cron_fire_times_follow_crontab(expr, start, expected):
    from itops.scheduler.config import Job

    cron = parse_cron(expr)
    job = Job("j", 1, cron, "UTC", "dr-check", None, None, None, (), 60, 60, True)
    tz = ZoneInfo("UTC")
    fmt = "%Y-%m-%d %H:%M:%S" if start.count(":") == 2 else "%Y-%m-%d %H:%M"
    now = dt.datetime.strptime(start, fmt).replace(tzinfo=tz)
    nxt = trigger_for(job).get_next_fire_time(None, now)
    assert nxt.strftime(fmt) == dt.datetime.strptime(expected, fmt).strftime(fmt)


def test_time_zone_of_a_job_is_honoured():
    from itops.scheduler.config import Job

    job = Job("j", 1, parse_cron("0 2 * * *"), "Europe/Berlin", "dr-check", None, None, None, (), 60, 60, True)
    nxt = trigger_for(job).get_next_fire_time(None, dt.datetime(2026, 7, 1, tzinfo=ZoneInfo("UTC")))
    assert nxt.astimezone(ZoneInfo("UTC")).hour == 0  # 02:00 CEST is 00:00 UTC


@pytest.mark.parametrize("bad", ["* * * *", "0 0 31 2 * * *", "*/0 * * * *", "5-1 * * * *", "0 0 * * funday"])
def test_bad_cron_expressions(bad):
    with pytest.raises(ValueError):
        parse_cron(bad)
