"""``itops schedule run``: apscheduler's BlockingScheduler in the foreground, owning a SQLite job store.

Settings chosen on purpose:

- ``coalesce=True`` and ``misfire_grace_time`` per job (default 1h): when the machine slept
  through one or more fire times, the job runs ONCE when the scheduler wakes, if the latest
  missed time is within the grace; otherwise the miss is recorded and the job waits for its
  next time. Because the job store persists each job's next fire time, the same holds for
  fire times missed while the daemon was not running at all.
- ``max_instances=1``: a job still running when it is due again is not started twice (the
  skip is logged); a per-job lock file extends this to ``schedule run-job`` from cron.
- One daemon per state folder: ``scheduler.lock`` is held with ``fcntl.flock`` for the
  daemon's life, so a second daemon on the same job store refuses to start (the kernel
  drops the lock when the process dies, so a crash leaves nothing stale).
- SIGTERM/SIGINT: no new job starts; running jobs get ``shutdown_grace`` seconds to finish,
  then SIGTERM (the commands record their runs as interrupted) and SIGKILL after 30s more.
  A second signal skips the grace.

Jobs are stored as references to :func:`run_scheduled_job` plus the job's name and a digest
of its settings: a job whose settings did not change keeps its stored next fire time across
restarts (that is what lets a missed run fire once on start); a changed job is replaced.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import pickle
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from types import FrameType
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent, JobSubmissionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.job import Job as APJob
from apscheduler.jobstores.base import BaseJobStore, ConflictingIdError, JobLookupError
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.base import STATE_RUNNING, STATE_STOPPED
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.util import datetime_to_utc_timestamp, utc_timestamp_to_datetime

from itops.errors import UsageError
from itops.fsutil import ensure_private_dir, private_sqlite_file
from itops.scheduler.config import Job
from itops.scheduler.execute import JobContext, execute_job
from itops.scheduler.jobs import JobOutcome

log = logging.getLogger(__name__)

JOB_FUNC = "itops.scheduler.daemon:run_scheduled_job"
_ACTIVE: dict[str, JobContext] = {}  # state folder -> context of the daemon running there


class SQLiteJobStore(BaseJobStore):  # type: ignore[misc]
    """apscheduler's SQLAlchemyJobStore table and semantics on the standard library's sqlite3.

    Job state is pickled as apscheduler does, and unpickling runs code: the file must be as
    trusted as the schedule file itself. So its folder is a private one of ours (0700) and the
    file (with its -wal/-shm) is 0600 and ours; a foreign-owned or group/world-writable folder
    or file is refused (:class:`itops.fsutil.UnsafePathError`, exit 4) before anything is read.
    """

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        ensure_private_dir(path.parent)
        private_sqlite_file(path)
        with closing(self._db()) as db, db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS apscheduler_jobs (id TEXT PRIMARY KEY, next_run_time REAL,"
                " job_state BLOB NOT NULL)"
            )
            db.execute("CREATE INDEX IF NOT EXISTS apscheduler_next ON apscheduler_jobs(next_run_time)")

    def _db(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def _job(self, state: bytes) -> APJob:
        data = pickle.loads(state)  # noqa: S301 - the daemon's own 0600 file, see the class docstring
        data["jobstore"] = self
        job: APJob = APJob.__new__(APJob)
        job.__setstate__(data)
        job._scheduler = self._scheduler
        job._jobstore_alias = self._alias
        return job

    def _jobs(self, where: str = "", args: tuple[Any, ...] = ()) -> list[APJob]:
        with closing(self._db()) as db:
            sql = "SELECT id, job_state FROM apscheduler_jobs " + where + " ORDER BY next_run_time"  # noqa: S608 - fixed text
            rows = db.execute(sql, args).fetchall()
        jobs, broken = [], []
        for job_id, state in rows:
            try:
                jobs.append(self._job(state))
            except Exception:
                self._logger.exception("cannot restore job %s: removing it", job_id)
                broken.append(job_id)
        for job_id in broken:
            self.remove_job(job_id)
        return jobs

    def lookup_job(self, job_id: str) -> APJob | None:
        with closing(self._db()) as db:
            row = db.execute("SELECT job_state FROM apscheduler_jobs WHERE id = ?", (job_id,)).fetchone()
        return self._job(row[0]) if row else None

    def get_due_jobs(self, now: dt.datetime) -> list[APJob]:
        return self._jobs("WHERE next_run_time <= ?", (datetime_to_utc_timestamp(now),))

    def get_next_run_time(self) -> dt.datetime | None:
        with closing(self._db()) as db:
            row = db.execute(
                "SELECT next_run_time FROM apscheduler_jobs WHERE next_run_time IS NOT NULL"
                " ORDER BY next_run_time LIMIT 1"
            ).fetchone()
        return utc_timestamp_to_datetime(row[0]) if row else None

    def get_all_jobs(self) -> list[APJob]:
        jobs = self._jobs()
        self._fix_paused_jobs_sorting(jobs)
        return jobs

    def _state(self, job: APJob) -> tuple[float | None, bytes]:
        return datetime_to_utc_timestamp(job.next_run_time), pickle.dumps(job.__getstate__(), pickle.HIGHEST_PROTOCOL)

    def add_job(self, job: APJob) -> None:
        try:
            with closing(self._db()) as db, db:
                db.execute(
                    "INSERT INTO apscheduler_jobs (id, next_run_time, job_state) VALUES (?,?,?)",
                    (job.id, *self._state(job)),
                )
        except sqlite3.IntegrityError:
            raise ConflictingIdError(job.id) from None

    def update_job(self, job: APJob) -> None:
        with closing(self._db()) as db, db:
            cur = db.execute(
                "UPDATE apscheduler_jobs SET next_run_time=?, job_state=? WHERE id=?", (*self._state(job), job.id)
            )
            if cur.rowcount == 0:
                raise JobLookupError(job.id)

    def remove_job(self, job_id: str) -> None:
        with closing(self._db()) as db, db:
            if db.execute("DELETE FROM apscheduler_jobs WHERE id = ?", (job_id,)).rowcount == 0:
                raise JobLookupError(job_id)

    def remove_all_jobs(self) -> None:
        with closing(self._db()) as db, db:
            db.execute("DELETE FROM apscheduler_jobs")

    def shutdown(self) -> None:
        return None


def stored_next_runs(path: Path) -> dict[str, float | None]:
    """Next fire time per job id as the daemon's job store has it (read-only; {} without a store)."""
    if not path.exists():
        return {}
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
            return dict(db.execute("SELECT id, next_run_time FROM apscheduler_jobs").fetchall())
    except sqlite3.Error:
        return {}


@contextlib.contextmanager
def daemon_lock(state_dir: Path) -> Iterator[None]:
    """Hold ``scheduler.lock`` for the daemon's life; UsageError when another daemon has it."""
    ensure_private_dir(state_dir)
    path = state_dir / "scheduler.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    os.fchmod(fd, 0o600)  # a lock file left by an older itops may be 0644
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise UsageError(
                f"another scheduler (pid {holder}) already runs on {state_dir}",
                hint="stop it first, or give this schedule its own state_dir / store",
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def job_digest(job: Job) -> str:
    """What identifies a job's settings: a change replaces the stored job (and its next fire time)."""
    data = {"cron": job.cron.expression, "tz": job.timezone, "grace": job.misfire_grace}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def trigger_for(job: Job) -> CronTrigger:
    return CronTrigger(timezone=ZoneInfo(job.timezone), **job.cron.trigger_fields())


def run_scheduled_job(state_key: str, name: str, settings: str) -> None:
    """The function every stored job refers to (by name, so the job store can hold it)."""
    ctx = _ACTIVE.get(state_key)
    if ctx is None:
        log.error("job %s fired, but its schedule is not loaded in this process", name)
        return
    execute_job(ctx, name, scheduled=time.time())


class SchedulerDaemon:
    """The foreground scheduler of one schedule file."""

    def __init__(
        self,
        ctx: JobContext,
        *,
        install_signals: bool = True,
        on_ready: Callable[[SchedulerDaemon], None] | None = None,
    ) -> None:
        self.ctx = ctx
        self.key = str(ctx.state_dir.resolve())
        self.install_signals = install_signals
        self.on_ready = on_ready
        self.store = SQLiteJobStore(ctx.state_dir / "jobs.db")
        self.scheduler = BlockingScheduler(
            jobstores={"default": self.store},
            executors={"default": ThreadPoolExecutor(max_workers=max(1, min(16, len(ctx.schedule.jobs))))},
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone=ZoneInfo(ctx.schedule.timezone),
        )
        self.scheduler.add_listener(self._on_event, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
        self._signals = 0
        self._stop_requested = threading.Event()

    # -- jobs -----------------------------------------------------------------------------------
    def sync_jobs(self) -> None:
        """Before start: make the job store hold exactly the enabled jobs; unchanged ones keep their next fire time."""
        wanted = {name: job for name, job in self.ctx.schedule.jobs.items() if job.enabled}
        kept = set()
        for stored in self.store.get_all_jobs():
            job = wanted.get(stored.id)
            if job is not None and tuple(stored.args) == (self.key, job.name, job_digest(job)):
                kept.add(stored.id)
            else:
                self.store.remove_job(stored.id)
        for name, job in wanted.items():
            if name in kept:
                continue
            self.scheduler.add_job(
                JOB_FUNC,
                trigger=trigger_for(job),
                args=(self.key, name, job_digest(job)),
                id=name,
                name=name,
                misfire_grace_time=int(max(1, job.misfire_grace)),
                coalesce=True,
                max_instances=1,
                replace_existing=True,
            )

    def _on_event(self, event: JobEvent | JobSubmissionEvent) -> None:
        when = getattr(event, "scheduled_run_time", None) or (getattr(event, "scheduled_run_times", None) or [None])[0]
        ts = when.timestamp() if when is not None else time.time()
        if event.code == EVENT_JOB_MISSED:
            state, error = "missed", "missed its fire time by more than the misfire grace"
        else:
            state, error = "skipped", "still running from its previous fire time (no overlapping runs)"
        log.warning("job %s: %s", event.job_id, error)
        self.ctx.history.record(
            JobOutcome(
                job=event.job_id, started=time.time(), finished=time.time(), state=state, scheduled=ts, error=error
            )
        )

    # -- life cycle -------------------------------------------------------------------------------
    def _handle_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals == 1:
            log.warning(
                "received %s: finishing running jobs (up to %gs), starting no new ones",
                signal.Signals(signum).name,
                self.ctx.schedule.shutdown_grace,
            )
        else:
            log.warning("received %s again: stopping running jobs now", signal.Signals(signum).name)
            self.ctx.children.terminate_all()
        self.stop()

    def stop(self) -> None:
        """Ask the daemon to stop (from a signal handler, another thread or a job)."""
        self.ctx.stopping.set()
        self._stop_requested.set()
        if self.scheduler.state != STATE_STOPPED:
            with contextlib.suppress(SchedulerNotRunningError):
                self.scheduler.shutdown(wait=False)

    def run(self) -> int:
        """Run until stopped; returns the process exit status (0 after a clean stop)."""
        with daemon_lock(self.ctx.state_dir):
            _ACTIVE[self.key] = self.ctx
            old: dict[int, Any] = {}
            if self.install_signals:
                old = {s: signal.signal(s, self._handle_signal) for s in (signal.SIGTERM, signal.SIGINT)}
            try:
                self.sync_jobs()
                threading.Thread(target=self._announce, name="itops-scheduler-ready", daemon=True).start()
                if not self._stop_requested.is_set():
                    self.scheduler.start()  # blocks until stop()
            finally:
                self._drain()
                for s, h in old.items():
                    signal.signal(s, h)
                _ACTIVE.pop(self.key, None)
        return 0

    def _announce(self) -> None:
        deadline = time.monotonic() + 30
        while self.scheduler.state != STATE_RUNNING and time.monotonic() < deadline:
            if self._stop_requested.is_set():
                return
            time.sleep(0.01)
        for job in self.scheduler.get_jobs():
            log.info("job %s: next run %s", job.id, job.next_run_time)
        if self.on_ready is not None:
            self.on_ready(self)

    def _drain(self) -> None:
        """After the scheduler stopped: let running jobs finish within the grace, then stop them."""
        deadline = time.monotonic() + self.ctx.schedule.shutdown_grace
        while self.ctx.busy() and time.monotonic() < deadline and self._signals < 2:
            time.sleep(0.05)
        if self.ctx.children.running():
            self.ctx.children.terminate_all()
            kill_at = time.monotonic() + 35
            while self.ctx.children.running() and time.monotonic() < kill_at:
                time.sleep(0.1)
            self.ctx.children.kill_all()
        # the executor's threads end once their child did; give them time to write the history
        end = time.monotonic() + 10
        while self.ctx.busy() and time.monotonic() < end:
            time.sleep(0.05)
