"""Running one scheduled job: the itops command line it stands for, the child process, its history.

A job runs as a child process of the ``itops`` console script, not in the daemon's process:

- it is then exactly the command a user types (same option parsing, store, reports, exit
  codes), and the commands install SIGTERM/SIGINT handlers, which Python only allows in the
  main thread, while apscheduler runs jobs in worker threads;
- a job that leaks memory, threads or file descriptors, hangs in a C library, or crashes
  cannot take the daemon down, and can be stopped by PID (SIGTERM: the command records its
  run as interrupted; SIGKILL after a grace period);
- the cost, about a second of interpreter start-up per run, does not matter at cron rates.

Every execution is one row of ``job_runs`` in ``<state>/jobs.db`` (beside apscheduler's job
table): start, end, exit code, the run id it stored, and what each notification did.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from itops.fsutil import ensure_private_dir, private_sqlite_file
from itops.redact import redact
from itops.scheduler.config import (
    AuditOptions,
    BackupVerifyOptions,
    DrCheckOptions,
    DrillOptions,
    Job,
    PruneOptions,
    ReportOptions,
    Schedule,
)

log = logging.getLogger(__name__)

KILL_GRACE = 30.0  # seconds between SIGTERM and SIGKILL for a child that must stop
STDERR_TAIL = 4000

HISTORY_SCHEMA = """
CREATE TABLE IF NOT EXISTS job_runs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, job TEXT NOT NULL, scheduled REAL, started REAL NOT NULL,
    finished REAL, state TEXT NOT NULL, exit_code INTEGER, run_id TEXT, pid INTEGER, argv TEXT,
    stderr TEXT, error TEXT, notifications TEXT, report TEXT
);
CREATE INDEX IF NOT EXISTS job_runs_job ON job_runs(job, seq);
"""


def itops_command() -> list[str]:
    """How to start the itops CLI: the console script beside this interpreter, else on PATH."""
    beside = Path(sys.executable).with_name("itops")
    if beside.is_file() and os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which("itops")
    if found:
        return [found]
    return [sys.executable, "-c", "from itops.cli.main import main; main()"]


def job_argv(job: Job, store_root: Path, *, run_ref: str | None = None) -> list[str]:
    """The itops command line (after the executable) that runs ``job`` once, storing into ``store_root``.

    ``--format json`` makes the child print the stored run's document, which names the run id.
    ``run_ref`` is the run a report job renders, already resolved (``job:NAME`` -> an id).
    """
    o = job.options
    store = ["--store", str(store_root)]
    if isinstance(o, AuditOptions):
        argv = ["audit", "-i", str(job.inventory), *store, "--format", "json", "--fail-on", o.fail_on]
        argv += [a for lim in o.limit for a in ("--limit", lim)]
        argv += [a for c in o.checks for a in ("--checks", c)]
        argv += ["--local"] if o.local else []
        argv += ["--concurrency", str(o.concurrency)] if o.concurrency else []
        argv += ["--waivers", o.waivers] if o.waivers else []
        argv += ["--prom-file", o.prom_file] if o.prom_file else []
        return argv
    if isinstance(o, BackupVerifyOptions):
        argv = ["backup", "verify", "-i", str(job.inventory), *store, "--format", "json", "--fail-on", o.fail_on]
        argv += [a for lim in o.limit for a in ("--limit", lim)]
        argv += [a for c in o.checks for a in ("--checks", c)]
        if o.restore_test is not None:
            argv.append("--restore-test" if o.restore_test else "--no-restore-test")
        argv += ["--concurrency", str(o.concurrency)] if o.concurrency else []
        argv += ["--prom-file", o.prom_file] if o.prom_file else []
        return argv
    if isinstance(o, DrillOptions):
        argv = ["dr", "drill", str(job.playbook), *store, "--format", "json"]
        argv += ["-i", str(job.inventory)] if job.inventory else []
        argv += ["--yes"] if o.unattended else []
        argv += [a for k, v in o.answers.items() for a in ("--answer", f"{k}={v}")]
        argv += [a for k, v in o.vars.items() for a in ("--var", f"{k}={v}")]
        argv += ["--prom-file", o.prom_file] if o.prom_file else []
        return argv
    if isinstance(o, DrCheckOptions):
        argv = ["dr", "check", *store, "--format", "json"]
        argv += ["--playbooks", o.playbooks] if o.playbooks else []
        argv += ["--max-age", _seconds(o.max_age)] if o.max_age else []
        return argv
    if isinstance(o, PruneOptions):
        argv = ["runs", "prune", *store, "--older-than", _seconds(o.older_than), "--keep-last", str(o.keep_last)]
        return argv + (["--dry-run"] if o.dry_run else [])
    if isinstance(o, ReportOptions):
        return ["report", run_ref or o.run, "--format", o.format, "--output", o.output, *store]
    raise TypeError(f"no command line for job options {type(o).__name__}")


def _seconds(value: float) -> str:
    """A duration for a command-line option: ``7776000s`` (``:g`` would give ``7.776e+06s``)."""
    return f"{int(value)}s" if value == int(value) else f"{value!r}s"


# --- history -----------------------------------------------------------------------------------------


@dataclass
class JobOutcome:
    """What one execution of a job did (a row of ``job_runs``)."""

    job: str
    started: float
    finished: float | None = None
    state: str = "running"  # running, complete, failed, interrupted, timeout, error, skipped, missed
    exit_code: int | None = None
    run_id: str | None = None
    pid: int | None = None
    argv: list[str] = field(default_factory=list)
    stderr: str = ""
    error: str = ""
    scheduled: float | None = None
    notifications: list[dict[str, Any]] = field(default_factory=list)
    report: str | None = None
    seq: int | None = None

    @property
    def ok(self) -> bool:
        return self.state == "complete" and self.exit_code == 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class JobHistory:
    """The ``job_runs`` table in ``<state>/jobs.db`` (SQLite, WAL: ``schedule list`` reads while the daemon writes)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        ensure_private_dir(path.parent)
        private_sqlite_file(path)
        with closing(self._connect()) as db, db:
            db.executescript(HISTORY_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.row_factory = sqlite3.Row
        return db

    def begin(self, outcome: JobOutcome) -> JobOutcome:
        with closing(self._connect()) as db, db:
            cur = db.execute(
                "INSERT INTO job_runs (job, scheduled, started, state, argv) VALUES (?,?,?,?,?)",
                (outcome.job, outcome.scheduled, outcome.started, outcome.state, json.dumps(outcome.argv)),
            )
            outcome.seq = cur.lastrowid
        return outcome

    def update(self, outcome: JobOutcome) -> None:
        if outcome.seq is None:
            self.begin(outcome)
        with closing(self._connect()) as db, db:
            db.execute(
                "UPDATE job_runs SET finished=?, state=?, exit_code=?, run_id=?, pid=?, argv=?, stderr=?, error=?,"
                " notifications=?, report=? WHERE seq=?",
                (
                    outcome.finished,
                    outcome.state,
                    outcome.exit_code,
                    outcome.run_id,
                    outcome.pid,
                    json.dumps(outcome.argv),
                    redact(outcome.stderr[-STDERR_TAIL:]),
                    redact(outcome.error),
                    json.dumps(outcome.notifications),
                    outcome.report,
                    outcome.seq,
                ),
            )

    def record(self, outcome: JobOutcome) -> JobOutcome:
        """Insert a finished outcome (a missed or skipped run) in one step."""
        self.begin(outcome)
        self.update(outcome)
        return outcome

    def rows(self, job: str | None = None, limit: int = 50, *, with_run: bool = False) -> list[JobOutcome]:
        """Newest first."""
        sql = "SELECT * FROM job_runs WHERE (? IS NULL OR job = ?)"
        sql += " AND run_id IS NOT NULL" if with_run else ""
        with closing(self._connect()) as db:
            rows = db.execute(sql + " ORDER BY seq DESC LIMIT ?", (job, job, limit)).fetchall()
        return [_outcome(r) for r in rows]

    def last(self, job: str) -> JobOutcome | None:
        rows = self.rows(job, 1)
        return rows[0] if rows else None

    def last_run_id(self, job: str) -> str | None:
        rows = self.rows(job, 1, with_run=True)
        return rows[0].run_id if rows else None

    def earlier_runs(self, job: str, before_seq: int, limit: int = 20) -> list[str]:
        """Run ids the job stored before execution ``before_seq``, newest first."""
        with closing(self._connect()) as db:
            rows = db.execute(
                "SELECT run_id FROM job_runs WHERE job = ? AND seq < ? AND run_id IS NOT NULL"
                " ORDER BY seq DESC LIMIT ?",
                (job, before_seq, limit),
            ).fetchall()
        return [str(r["run_id"]) for r in rows]


def _outcome(row: sqlite3.Row) -> JobOutcome:
    return JobOutcome(
        job=row["job"],
        started=row["started"],
        finished=row["finished"],
        state=row["state"],
        exit_code=row["exit_code"],
        run_id=row["run_id"],
        pid=row["pid"],
        argv=json.loads(row["argv"] or "[]"),
        stderr=row["stderr"] or "",
        error=row["error"] or "",
        scheduled=row["scheduled"],
        notifications=json.loads(row["notifications"] or "[]"),
        report=row["report"],
        seq=row["seq"],
    )


# --- locks -------------------------------------------------------------------------------------------


@contextlib.contextmanager
def job_lock(lock_dir: Path, job: str) -> Iterator[bool]:
    """Hold ``<lock_dir>/<job>.lock`` for one execution; yields False when another process holds it.

    The daemon's max_instances=1 prevents overlap inside one daemon; this lock also covers a
    ``schedule run-job`` from cron or systemd running at the same time.
    """
    ensure_private_dir(lock_dir)
    fd = os.open(lock_dir / f"{job}.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    os.fchmod(fd, 0o600)  # a lock file left by an older itops may be 0644
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


# --- the child process -------------------------------------------------------------------------------


@dataclass
class ChildResult:
    rc: int | None
    stdout: str
    stderr: str
    pid: int | None
    timed_out: bool = False
    stopped: bool = False  # terminated because the daemon is stopping


class ChildProcesses:
    """Starts job processes and remembers them, so a stopping daemon can signal them by PID."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._stopping: set[str] = set()

    def running(self) -> list[str]:
        with self._lock:
            return [name for name, p in self._procs.items() if p.poll() is None]

    def run(self, job: str, argv: Sequence[str], *, timeout: float, cwd: Path | None = None) -> ChildResult:
        env = dict(os.environ, ITOPS_SCHEDULED_JOB=job, NO_COLOR="1")
        try:
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=cwd,
                env=env,
                start_new_session=True,  # a Ctrl-C at the daemon's terminal is the daemon's to forward
            )
        except OSError as exc:
            return ChildResult(None, "", f"could not start {argv[0]}: {exc}", None)
        with self._lock:
            self._procs[job] = proc
        timed_out = False
        try:
            try:
                out, err = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                out, err = self._stop(proc)
        finally:
            with self._lock:
                self._procs.pop(job, None)
                stopped = job in self._stopping
                self._stopping.discard(job)
        return ChildResult(
            proc.returncode,
            out.decode("utf-8", "replace"),
            err.decode("utf-8", "replace"),
            proc.pid,
            timed_out,
            stopped,
        )

    @staticmethod
    def _stop(proc: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            return proc.communicate(timeout=KILL_GRACE)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            return proc.communicate(timeout=10)

    def terminate_all(self) -> list[str]:
        """SIGTERM every running job's process group (the commands then record their runs as interrupted)."""
        with self._lock:
            procs = {n: p for n, p in self._procs.items() if p.poll() is None}
            self._stopping.update(procs)
        for name, proc in procs.items():
            log.warning("stopping job %s (pid %d)", name, proc.pid)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        return list(procs)

    def kill_all(self) -> None:
        with self._lock:
            procs = [p for p in self._procs.values() if p.poll() is None]
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


def run_id_from_output(stdout: str) -> str | None:
    """The run id in the ``itops.run/1`` document a command printed with ``--format json``."""
    text = stdout.strip()
    if not text:
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        start = text.find("{")
        try:
            doc = json.loads(text[start:]) if start >= 0 else None
        except ValueError:
            return None
    run = doc.get("run") if isinstance(doc, dict) else None
    rid = run.get("id") if isinstance(run, dict) else None
    return rid if isinstance(rid, str) else None


def mark_interrupted(store_db: Path, pid: int) -> None:
    """A child killed hard leaves its run 'running': record it as interrupted (exit 3).

    Written against the store's documented SQLite schema (runs.pid/state/exit_code), since the
    store has no API for closing another process's run.
    """
    try:
        with closing(sqlite3.connect(store_db, timeout=30)) as db, db:
            db.execute(
                "UPDATE runs SET state='interrupted', exit_code=3, finished=? WHERE pid=? AND state='running'",
                (time.time(), pid),
            )
    except sqlite3.Error as exc:
        log.warning("could not mark the run of pid %d as interrupted: %s", pid, exc)


def default_state_dir(schedule: Schedule, store_root: Path) -> Path:
    return schedule.state_dir or store_root / "scheduler"
