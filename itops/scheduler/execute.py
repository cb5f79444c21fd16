"""One execution of a scheduled job, from start to notifications; shared by the daemon and ``schedule run-job``."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from itops.errors import ItopsError
from itops.fsutil import ensure_private_dir
from itops.model import Result, Run, Status
from itops.report import extension, normalize_format, write_report
from itops.report.diff import diff_results
from itops.scheduler.config import NO_RUN_COMMANDS, Job, ReportOptions, Schedule
from itops.scheduler.jobs import (
    ChildProcesses,
    JobHistory,
    JobOutcome,
    default_state_dir,
    itops_command,
    job_argv,
    job_lock,
    mark_interrupted,
    run_id_from_output,
)
from itops.scheduler.notify import JobEvent, deliver
from itops.store import Store

log = logging.getLogger(__name__)

SINCE_LOOKBACK = 20  # earlier runs of a job searched for when a failure began


@dataclass
class JobContext:
    """What executing any job of one schedule needs."""

    schedule: Schedule
    store: Store
    state_dir: Path
    history: JobHistory
    children: ChildProcesses = field(default_factory=ChildProcesses)
    command: list[str] = field(default_factory=itops_command)
    stopping: threading.Event = field(default_factory=threading.Event)
    sleep: Callable[[float], None] = time.sleep  # notification backoff (tests shorten it)
    _inflight: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def busy(self) -> bool:
        """True while any job execution (child process, report, notifications) is under way."""
        with self._lock:
            return bool(self._inflight)

    @classmethod
    def create(cls, schedule: Schedule, store_dir: Path | None = None) -> JobContext:
        store = Store(store_dir or schedule.store)
        state = ensure_private_dir(default_state_dir(schedule, store.root))
        return cls(schedule, store, state, JobHistory(state / "jobs.db"))

    @property
    def lock_dir(self) -> Path:
        return self.state_dir / "locks"

    def reports_dir(self) -> Path:
        d = self.schedule.reports.dir
        return self.schedule.resolve(d) if d else self.state_dir / "reports"


def execute_job(ctx: JobContext, name: str, scheduled: float | None = None) -> JobOutcome:
    """Run job ``name`` once: child process, run id, report, notifications, history. Never raises."""
    with ctx._lock:
        ctx._inflight.add(name)
    try:
        return _execute(ctx, name, scheduled)
    finally:
        with ctx._lock:
            ctx._inflight.discard(name)


def _execute(ctx: JobContext, name: str, scheduled: float | None) -> JobOutcome:
    job = ctx.schedule.jobs[name]
    outcome = JobOutcome(job=name, started=time.time(), scheduled=scheduled)
    with job_lock(ctx.lock_dir, name) as got:
        if not got:
            outcome.state, outcome.finished = "skipped", time.time()
            outcome.error = "the previous run of this job is still going (another process holds its lock)"
            log.warning("job %s: %s", name, outcome.error)
            return ctx.history.record(outcome)
        if ctx.stopping.is_set():
            outcome.state, outcome.finished, outcome.error = "skipped", time.time(), "the scheduler is stopping"
            return ctx.history.record(outcome)
        try:
            run_ref = _run_ref(ctx, job)
            outcome.argv = [*ctx.command, *job_argv(job, ctx.store.root, run_ref=run_ref)]
        except ItopsError as exc:
            outcome.state, outcome.finished, outcome.error = "error", time.time(), str(exc)
            return ctx.history.record(outcome)
        ctx.history.begin(outcome)
        log.info("job %s: starting %s", name, " ".join(outcome.argv[len(ctx.command) :]))
        child = ctx.children.run(name, outcome.argv, timeout=job.timeout, cwd=ctx.schedule.base)
        outcome.finished = time.time()
        outcome.pid, outcome.exit_code, outcome.stderr = child.pid, child.rc, child.stderr
        outcome.run_id = run_id_from_output(child.stdout) if job.command not in NO_RUN_COMMANDS else None
        if child.rc is None and child.pid is None:
            outcome.state, outcome.error = "error", child.stderr
        elif child.timed_out:
            outcome.state, outcome.error = "timeout", f"stopped after the job timeout of {job.timeout:g}s"
        elif child.stopped:
            outcome.state, outcome.error = "interrupted", "stopped because the scheduler was stopping"
        elif child.rc is not None and child.rc < 0:
            outcome.state, outcome.error = "interrupted", f"killed by signal {-child.rc}"
        else:
            outcome.state = "complete"
        if outcome.state != "complete" and child.pid is not None:
            mark_interrupted(ctx.store.db_path, child.pid)
        if outcome.run_id is None and job.command not in NO_RUN_COMMANDS and outcome.state == "complete":
            outcome.error = outcome.error or "the command stored no run (see its output)"
        ctx.history.update(outcome)
        try:
            _finish(ctx, job, outcome)
        except Exception as exc:  # reports/notifications must never lose the recorded outcome
            log.exception("job %s: after-run work failed", name)
            outcome.error = (outcome.error + "; " if outcome.error else "") + f"after-run error: {exc}"
        ctx.history.update(outcome)
        log.info("job %s: %s exit %s run %s", name, outcome.state, outcome.exit_code, outcome.run_id or "-")
        return outcome


def _run_ref(ctx: JobContext, job: Job) -> str | None:
    opts = job.options
    if not isinstance(opts, ReportOptions) or not opts.run.startswith("job:"):
        return None
    rid = ctx.history.last_run_id(opts.run[4:])
    if rid is None:
        raise ItopsError(f"job {opts.run[4:]} has no stored run yet to report on")
    return rid


def _finish(ctx: JobContext, job: Job, outcome: JobOutcome) -> None:
    run: Run | None = None
    results: list[Result] = []
    if outcome.run_id:
        run = ctx.store.get_run(outcome.run_id)
        results = ctx.store.results(run.id)
        fmt = normalize_format(ctx.schedule.reports.format)
        path = ctx.reports_dir() / f"{job.name}-{run.id}{extension(fmt)}"
        try:
            write_report(ctx.store, run.id, fmt, path)
            outcome.report = str(path)
        except (ItopsError, OSError) as exc:
            log.warning("job %s: could not write the report: %s", job.name, exc)
    elif isinstance(job.options, ReportOptions) and outcome.ok:
        outcome.report = str(ctx.schedule.resolve(job.options.output))
    if not job.notify:
        return
    event = build_event(ctx, job, outcome, run, results)
    outcome.notifications = [
        d.to_dict() for d in deliver(event, job.notify, ctx.schedule.notifiers, base=ctx.schedule.base, sleep=ctx.sleep)
    ]


def build_event(ctx: JobContext, job: Job, outcome: JobOutcome, run: Run | None, results: list[Result]) -> JobEvent:
    """The notification event: this outcome, compared with the job's previous run."""
    assert outcome.seq is not None
    earlier = ctx.history.earlier_runs(job.name, outcome.seq, SINCE_LOOKBACK)
    previous_exit = None
    for row in ctx.history.rows(job.name, 10):
        if row.seq is not None and row.seq < outcome.seq and row.state not in ("skipped", "missed"):
            previous_exit = row.exit_code if row.state == "complete" else -1
            break
    previous_run = diff = None
    since: dict[tuple[str, str, str], tuple[float, str]] = {}
    if run is not None:
        failing = {r.key for r in results if r.status is Status.FAIL}
        since = {k: (run.started, run.id) for k in failing}
        if earlier:
            try:
                previous_run = ctx.store.get_run(earlier[0])
                diff = diff_results(previous_run, ctx.store.results(previous_run.id), run, results)
            except ItopsError as exc:
                log.warning("job %s: previous run %s unreadable: %s", job.name, earlier[0], exc)
        open_keys = set(failing)
        for rid in earlier:  # walk back while each failure was already failing
            if not open_keys:
                break
            try:
                old_run = ctx.store.get_run(rid)
                old = {r.key for r in ctx.store.results(rid) if r.status is Status.FAIL}
            except ItopsError:
                break
            for key in list(open_keys):
                if key in old:
                    since[key] = (old_run.started, old_run.id)
                else:
                    open_keys.discard(key)
    where = str(job.inventory or job.playbook or ctx.store.root)
    url = None
    if outcome.report and ctx.schedule.reports.url:
        url = ctx.schedule.reports.url.rstrip("/") + "/" + Path(outcome.report).name
    return JobEvent(
        job=job.name,
        command=job.command,
        where=where,
        state=outcome.state,
        exit_code=outcome.exit_code,
        started=outcome.started,
        finished=outcome.finished or time.time(),
        run=run,
        results=results,
        previous_run=previous_run,
        previous_exit=previous_exit,
        diff=diff,
        since=since,
        report_path=Path(outcome.report) if outcome.report else None,
        report_url=url,
        error=outcome.error,
        stderr=outcome.stderr,
    )
