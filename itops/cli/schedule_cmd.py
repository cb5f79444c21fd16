"""``itops schedule``: run the scheduler daemon, list jobs, run one job now, export to cron/systemd."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click

from itops.cli.runs_cmd import store_option
from itops.exitcodes import ExitStatus

config_option = click.option(
    "-c",
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The schedule file (schedule.yaml).",
)


@click.group()
def schedule() -> None:
    """Scheduled audits, backup verifications and DR drills, with notifications."""


@schedule.command("run")
@config_option
@store_option
def run_daemon(config_path: Path, store_dir: Path | None) -> ExitStatus:
    """Run the scheduler in the foreground (for systemd or a container) until SIGTERM/SIGINT."""
    from itops.scheduler import load_schedule
    from itops.scheduler.daemon import SchedulerDaemon
    from itops.scheduler.execute import JobContext

    sched = load_schedule(config_path)
    ctx = JobContext.create(sched, store_dir)
    # a daemon's log is its record: job starts, results and notification outcomes at INFO
    for name in ("itops.scheduler",):  # notify is itops.scheduler.notify
        if logging.getLogger(name).getEffectiveLevel() > logging.INFO:
            logging.getLogger(name).setLevel(logging.INFO)
    click.echo(
        f"itops scheduler: {len(sched.jobs)} job(s) from {config_path}, store {ctx.store.root}, state {ctx.state_dir}",
        err=True,
    )
    return ExitStatus(SchedulerDaemon(ctx).run())


@schedule.command("run-job")
@config_option
@click.argument("job")
@store_option
def run_job(config_path: Path, job: str, store_dir: Path | None) -> ExitStatus:
    """Run one JOB now, as the daemon would (this is what exported crontab lines and timers call)."""
    from itops.errors import UsageError
    from itops.scheduler import load_schedule
    from itops.scheduler.execute import JobContext, execute_job

    sched = load_schedule(config_path)
    if job not in sched.jobs:
        raise UsageError(f"no job {job!r} in {config_path}", hint=f"jobs: {', '.join(sched.jobs)}")
    outcome = execute_job(JobContext.create(sched, store_dir), job)
    for n in outcome.notifications:
        status = "sent" if n["ok"] else f"FAILED after {n['attempts']} attempt(s): {n['error']}"
        click.echo(f"notification {n['notifier']} ({n['channel']}): {status}", err=True)
    if outcome.error:
        click.echo(f"job {job}: {outcome.error}", err=True)
    click.echo(f"job {job}: {outcome.state}, exit {outcome.exit_code}, run {outcome.run_id or '-'}", err=True)
    if outcome.state == "skipped":
        return ExitStatus.OK
    code = outcome.exit_code  # the job's itops child exited with one of our statuses; killed or none: incomplete
    return ExitStatus(code) if code is not None and code in ExitStatus._value2member_map_ else ExitStatus.INCOMPLETE


def _fmt(ts: float | None, zone: str) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S %Z")


@schedule.command("list")
@config_option
@store_option
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def list_jobs(config_path: Path, store_dir: Path | None, fmt: str) -> None:
    """Jobs with their next fire time and the result of their last run."""
    from itops.scheduler import load_schedule
    from itops.scheduler.daemon import stored_next_runs, trigger_for
    from itops.scheduler.jobs import JobHistory, default_state_dir
    from itops.store import Store

    sched = load_schedule(config_path)
    store = Store(store_dir or sched.store)
    state = default_state_dir(sched, store.root)
    history = JobHistory(state / "jobs.db")
    stored = stored_next_runs(state / "jobs.db")
    now = dt.datetime.now(dt.UTC)
    rows: list[dict[str, Any]] = []
    for job in sched.jobs.values():
        computed = trigger_for(job).get_next_fire_time(None, now)
        nxt = stored.get(job.name) or (computed.timestamp() if computed else None)
        recent = history.rows(job.name, 50)
        previous = next((r for r in recent if r.state not in ("skipped", "missed")), recent[0] if recent else None)
        rows.append(
            {
                "job": job.name,
                "command": job.command,
                "cron": job.cron.expression,
                "timezone": job.timezone,
                "enabled": job.enabled,
                "next_run": nxt if job.enabled else None,
                "last": previous.to_dict() if previous else None,
            }
        )
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(f"{'JOB':<20} {'COMMAND':<13} {'CRON':<18} {'NEXT RUN':<28} LAST RESULT")
    for row in rows:
        last: dict[str, Any] | None = row["last"]
        if last is None:
            result = "never ran"
        else:
            age = time.time() - (last["finished"] or last["started"])
            result = (
                f"{last['state']} exit {last['exit_code'] if last['exit_code'] is not None else '-'} "
                f"run {last['run_id'] or '-'} ({age:.0f}s ago)"
            )
            if last["error"]:
                result += f": {last['error'][:80]}"
        failed = [n for n in (last or {}).get("notifications") or [] if not n.get("ok")]
        if failed:
            result += f"; {len(failed)} notification(s) FAILED"
        nxt = _fmt(row["next_run"], row["timezone"]) if row["enabled"] else "disabled"
        click.echo(f"{row['job']:<20} {row['command']:<13} {row['cron']:<18} {nxt:<28} {result}")
        for n in failed:  # a notification that never arrived is news nobody else will bring
            click.echo(
                f"{'':<20} notification {n.get('notifier')} ({n.get('channel')}) FAILED after "
                f"{n.get('attempts')} attempt(s): {str(n.get('error') or '')[:120]}"
            )


@schedule.command("export")
@config_option
@store_option
@click.option("--cron", "kind", flag_value="cron", help="Print crontab lines.")
@click.option("--systemd", "kind", flag_value="systemd", help="Print (or write with --dir) timer and service units.")
@click.option(
    "--dir",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="With --systemd: write the unit files into this folder.",
)
@click.option(
    "--env-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File (NAME=value lines) the jobs read their notifier and host secrets from "
    "(default: itops.env next to the schedule).",
)
def export(
    config_path: Path, store_dir: Path | None, kind: str | None, out_dir: Path | None, env_file: Path | None
) -> None:
    """The schedule as crontab lines or systemd timer units (each runs `itops schedule run-job`).

    A job whose notifiers or hosts take secrets from environment variables gets them from
    --env-file (the variable names are written in the export, never the values)."""
    from itops.scheduler import load_schedule
    from itops.scheduler.export import export_cron, export_systemd

    if kind is None:
        raise click.UsageError("choose --cron or --systemd")
    sched = load_schedule(config_path)
    chosen = store_dir or sched.store
    store = chosen.resolve() if chosen is not None else None
    env = env_file.resolve() if env_file is not None else None
    if kind == "cron":
        click.echo(export_cron(sched, store, env), nl=False)
        return
    units = export_systemd(sched, store, env)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, text in units.items():
            (out_dir / name).write_text(text, encoding="utf-8")
            click.echo(f"wrote {out_dir / name}", err=True)
        return
    for name, text in units.items():
        click.echo(f"# --- {name}\n{text}")
