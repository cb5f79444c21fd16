"""Verify backups: gather each backup's facts once, evaluate the backup checks, yield results.

Host-side backups (file, postgres_dump, restic with a ``host``) are grouped by host: one
SSH connection and ONE batched script per host carries every probe of every backup there
(listing, integrity, restore test), exactly like an audit; the connections come from the run's
:class:`~itops.transport.pool.ConnectionPool` (a jump host is logged in to once and tried once
for all the hosts behind it). Backups without a host run the
same batch locally. Cloud backups use one boto3 session per cloud account. Jobs run in a
bounded thread pool and each backup's results are handed back as soon as its job ends.

A host that cannot be reached makes its backups' checks UNREACHABLE; an aspect that could
not be gathered (a failed command, a missing permission) makes the checks needing it ERROR.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from itops import plugins
from itops.backup.cloud import ClientGetter, cloud_facts
from itops.backup.facts import BackupFacts, Observation
from itops.backup.hostkinds import BackupContext, HostKind
from itops.backup.options import BackupOptions, PostgresRestoreSpec, RestoreSpec
from itops.backup.restic import load_state, next_slice, save_state
from itops.backup.shell import with_secrets
from itops.checkapi import BACKUP_ASPECTS, Check
from itops.errors import ItopsError, SecretFileError, TransportError, UsageError
from itops.inventory import Backup, Cloud, Inventory, PostgresDumpBackup, ResticBackup
from itops.model import Finding, Result, Status
from itops.redact import register_secret
from itops.runner import HistoryProvider
from itops.secretfile import read_secret_file
from itops.transport.aws import ClientPool, open_account
from itops.transport.batch import build_script
from itops.transport.pool import ConnectionPool, unreachable_reason

log = logging.getLogger(__name__)


def host_kinds() -> Mapping[str, HostKind]:
    """Backup kinds verified on a host -> their verifier: the plugins' backup kinds that have one
    (:func:`itops.plugins.backup_kinds`; itops's own are file, postgres_dump and restic)."""
    return {name: spec.host_kind for name, spec in plugins.backup_kinds().items() if spec.host_kind is not None}


LOCAL = "local"
EXCERPT_CHARS = 2000


@dataclass
class VerifyOptions:
    """How a verification run behaves."""

    restore: bool | None = None  # True: every restorable backup; None: those with restore_test; False: none
    concurrency: int = 16
    state_dir: Path | None = None  # <store>/state: restic slice rotation
    tofu_file: str | None = None
    now: float | None = None  # the clock for ages (tests); default time.time() per job
    cloud_clients: Callable[[Cloud], ClientGetter] | None = None  # tests: stubbed clients per account
    #: earlier runs' metrics of a backup, for checks that declare ``history`` (forecasts); see RunOptions
    history: HistoryProvider | None = None
    #: the run's connections (a drill's restore step passes its own, sharing its jump hosts); None: the
    #: verifier makes one and closes it when :meth:`BackupVerifier.run` ends
    pool: ConnectionPool | None = None


@dataclass
class BackupOutcome:
    """One backup's facts and results."""

    backup: str
    facts: BackupFacts
    results: list[Result]
    host: str = ""  # inventory host the probes ran on ("" local or cloud)
    host_key: str = ""


def select_backups(inv: Inventory, limits: Sequence[str] | None) -> list[Backup]:
    """Backups chosen by ``--limit`` terms (name glob, ``kind:K``, ``host:H``, ``cloud:C``; ``!`` excludes)."""
    include: set[str] | None = None
    exclude: set[str] = set()
    for term in (t.strip() for item in limits or () for t in item.split(",")):
        if not term:
            continue
        negate = term.startswith("!")
        body = term[1:].strip() if negate else term
        key, sep, pattern = body.partition(":")
        if not sep:
            key, pattern = "name", body
        if key not in ("name", "kind", "host", "cloud") or not pattern:
            raise UsageError(
                f"bad --limit term {term!r}", hint="use NAME-GLOB, kind:KIND, host:HOST or cloud:CLOUD; ! excludes"
            )
        found = {
            name
            for name, b in inv.backups.items()
            if fnmatch.fnmatchcase(str({"name": name, "kind": b.kind}.get(key, getattr(b, key, None) or "")), pattern)
        }
        if not found:
            raise UsageError(f"--limit {term!r} matches no backup", hint=f"backups: {', '.join(inv.backups) or 'none'}")
        if negate:
            exclude |= found
        else:
            include = (include or set()) | found
    chosen = set(inv.backups) if include is None else include
    return [b for name, b in inv.backups.items() if name in chosen and name not in exclude]


def applicable_checks(checks: Sequence[Check], kind: str, restoring: bool) -> list[Check]:
    return [
        c
        for c in checks
        if (not c.meta.backup_kinds or kind in c.meta.backup_kinds) and (restoring or "restore" not in c.collections)
    ]


def unreachable_facts(b: Backup, where: str, now: float, reason: str, *, unreachable: bool = True) -> BackupFacts:
    obs = {a: Observation(error=reason, unreachable=unreachable) for a in BACKUP_ASPECTS}
    return BackupFacts(name=b.name, kind=b.kind, where=where, now=now, rpo=float(b.rpo), observations=obs)


class BackupVerifier:
    """Runs the verification of ``backups`` and yields each backup's outcome as it completes."""

    def __init__(
        self,
        run_id: str,
        inventory: Inventory,
        backups: Sequence[Backup],
        checks: Sequence[Check],
        options: Mapping[str, BackupOptions],
        opts: VerifyOptions,
    ) -> None:
        self.run_id = run_id
        self.inv = inventory
        self.backups = list(backups)
        self.checks = [c for c in checks if c.meta.target == "backup"]
        self.options = options
        self.opts = opts
        self.stop = threading.Event()
        self._lock = threading.Lock()
        self._owns_pool = opts.pool is None
        self.pool = opts.pool or ConnectionPool(inventory.hosts, tofu_file=opts.tofu_file)
        self._accounts: dict[str, ClientGetter | ItopsError] = {}
        self._account_locks: dict[str, threading.Lock] = {}

    # -- planning -------------------------------------------------------------------------------
    def restore_plan(self, b: Backup) -> tuple[RestoreSpec | None, str]:
        """(the restore settings when this run restores ``b``, else None; why restore checks are SKIPPED)."""
        opts = self.options[b.name]
        if self.opts.restore is False or (self.opts.restore is None and opts.restore is None):
            return None, ""
        spec = opts.restore_spec(b.kind)
        if spec is None:
            return None, ""
        if isinstance(spec, PostgresRestoreSpec) and spec.server is None:
            return None, "no restore test: restore_test.server (where to create the scratch database) is not set"
        return spec, ""

    def planned(self) -> dict[str, int]:
        """Backup name -> the number of checks this run will evaluate on it (recorded with the run
        before it starts, so an interrupted run names the backups it never verified)."""
        out = {}
        for b in self.backups:
            spec, skip = self.restore_plan(b)
            out[b.name] = len(applicable_checks(self.checks, b.kind, spec is not None or bool(skip)))
        return out

    def run(self) -> Iterator[BackupOutcome]:
        by_host: dict[str, list[Backup]] = {}
        cloud: list[Backup] = []
        for b in self.backups:
            if b.kind in host_kinds():
                by_host.setdefault(getattr(b, "host", None) or LOCAL, []).append(b)
            else:
                cloud.append(b)
        jobs: list[Callable[[], list[BackupOutcome]]] = [
            functools.partial(self._host_job, h, bs) for h, bs in by_host.items()
        ]
        jobs += [functools.partial(self._cloud_job, b) for b in cloud]
        if not jobs:
            if self._owns_pool:
                self.pool.close()
            return
        pool = ThreadPoolExecutor(
            max_workers=max(1, min(self.opts.concurrency, len(jobs))), thread_name_prefix="itops-bk"
        )
        futures: dict[Future[list[BackupOutcome]], Callable[[], list[BackupOutcome]]] = {
            pool.submit(self._guarded, job): job for job in jobs
        }
        try:
            for fut in as_completed(futures):
                yield from fut.result()
        finally:
            self.stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            if self._owns_pool:
                self.pool.close()

    def _guarded(self, job: Callable[[], list[BackupOutcome]]) -> list[BackupOutcome]:
        if self.stop.is_set():
            return []
        return job()

    def interrupt(self) -> None:
        """Stop: no new jobs start and open SSH connections are closed so their batches end now."""
        self.stop.set()
        self.pool.interrupt()

    # -- host-side ------------------------------------------------------------------------------

    def _host_job(self, host: str, backups: Sequence[Backup]) -> list[BackupOutcome]:
        now = self.opts.now if self.opts.now is not None else time.time()
        started = time.time()
        timeout = float(self.inv.hosts[host].ssh.command_timeout) if host != LOCAL else 60.0
        variables = self.inv.hosts[host].vars if host != LOCAL else self.inv.default_vars
        contexts: list[BackupContext] = []
        secrets: dict[str, str] = {}
        early: list[BackupOutcome] = []
        skips: dict[str, str] = {}
        for b in backups:
            spec, skips[b.name] = self.restore_plan(b)
            ctx = BackupContext(b, self.options[b.name], host, now, timeout, restore=spec, vars=variables)
            problem = self._secrets(ctx, secrets)
            if problem:
                facts = unreachable_facts(
                    b,
                    f"{host}:{getattr(b, 'path', '') or getattr(b, 'repository', '')}",
                    now,
                    problem,
                    unreachable=False,
                )
                early.append(self._outcome(facts, started, restoring=spec is not None, skip=skips[b.name]))
                continue
            if isinstance(b, ResticBackup) and ctx.options.restic_slices:
                record = load_state(self.opts.state_dir, b.name, ctx.options.restic_slices)
                ctx.state.update(record=record, slice=next_slice(record), run_id=self.run_id)
            contexts.append(ctx)
        if not contexts:
            return early
        index: dict[tuple[str, str], int] = {}
        commands: list[str] = []
        timeouts: list[float] = []
        for ctx in contexts:
            for probe in host_kinds()[ctx.backup.kind].probes(ctx):
                index[(ctx.name, probe.name)] = len(commands)
                commands.append(probe.command)
                timeouts.append(probe.timeout)
        batch = with_secrets(build_script(commands, timeouts), secrets)
        results_by_index: dict[int, Any] | None = None
        host_key = ""
        failure: tuple[str, bool] | None = None  # (reason, unreachable)
        try:
            conn = self.pool.connect(None if host == LOCAL else host)
        except ItopsError as exc:
            failure = (unreachable_reason(exc), True)
        else:
            try:
                if self.stop.is_set():
                    raise TransportError("run interrupted before this host's probes ran")
                outcome = conn.run_batch(batch, idle_timeout=max(timeouts) + 10, total_timeout=sum(timeouts) + 60)
                results_by_index = outcome.results
                host_key = conn.host_key_fingerprint
            except TransportError as exc:
                failure = (f"could not assess: {exc}", False)
            finally:
                self.pool.release(conn)
        out = list(early)
        for ctx in contexts:
            kind = host_kinds()[ctx.backup.kind]
            where = f"{host}:{getattr(ctx.backup, 'path', '') or getattr(ctx.backup, 'repository', '')}"
            if failure is not None or results_by_index is None:
                reason, unreachable = failure or ("could not assess: no result", False)
                facts = unreachable_facts(ctx.backup, where, now, reason, unreachable=unreachable)
            else:
                mine = {name: results_by_index[i] for (bname, name), i in index.items() if bname == ctx.name}
                try:
                    facts = kind.facts(ctx, mine)
                except Exception as exc:  # a parser bug must not lose the other backups of this host
                    log.exception("internal error reading the results of backup %s", ctx.name)
                    facts = unreachable_facts(ctx.backup, where, now, f"internal error: {exc}", unreachable=False)
                if ctx.state.get("save") and self.opts.state_dir is not None:
                    save_state(self.opts.state_dir, ctx.name, ctx.state["record"])
            result = self._outcome(facts, started, restoring=ctx.restore is not None, skip=skips[ctx.name])
            result.host, result.host_key = ("" if host == LOCAL else host), host_key
            out.append(result)
        return out

    def _secrets(self, ctx: BackupContext, secrets: dict[str, str]) -> str:
        """Put the backup's passwords into ``secrets`` (ITOPS_SECRET_n); return a problem, if any."""
        b = ctx.backup
        if isinstance(b, ResticBackup) and b.password_env:
            value = os.environ.get(b.password_env)
            if not value:
                return f"could not assess: environment variable {b.password_env} (password_env) is not set"
            ctx.secret_var = self._add_secret(secrets, value)
        spec = ctx.restore
        if isinstance(b, PostgresDumpBackup) and isinstance(spec, PostgresRestoreSpec) and spec.server is not None:
            srv = spec.server
            value = None
            if srv.password_env:
                value = os.environ.get(srv.password_env)
                if not value:
                    var = srv.password_env
                    return f"could not assess: environment variable {var} (restore_test.server.password_env) is not set"
            elif srv.password_file:
                path = Path(os.path.expanduser(srv.password_file))
                path = path if path.is_absolute() else self.inv.path.resolve().parent / path
                try:
                    value = read_secret_file(path, "restore_test.server.password_file")
                except SecretFileError as exc:
                    return f"could not assess: {exc}" + (f" (fix: {exc.hint})" if exc.hint else "")
            if value:
                ctx.restore_secret_var = self._add_secret(secrets, value)
        return ""

    @staticmethod
    def _add_secret(secrets: dict[str, str], value: str) -> str:
        register_secret(value)
        name = f"ITOPS_SECRET_{len(secrets) + 1}"
        secrets[name] = value
        return name

    # -- cloud ----------------------------------------------------------------------------------
    def _cloud_of(self, b: Backup) -> Cloud:
        name = getattr(b, "cloud", None)
        if name:
            return self.inv.clouds[name]
        if len(self.inv.clouds) == 1:
            return next(iter(self.inv.clouds.values()))
        return Cloud(name="default")

    def _clients(self, cloud: Cloud) -> ClientGetter:
        if self.opts.cloud_clients is not None:
            return self.opts.cloud_clients(cloud)
        with self._lock:
            lock = self._account_locks.setdefault(cloud.name, threading.Lock())
        with lock:
            if cloud.name not in self._accounts:
                try:
                    session, _identity = open_account(cloud)
                    self._accounts[cloud.name] = ClientPool(session, cloud).get
                except ItopsError as exc:
                    self._accounts[cloud.name] = exc
            got = self._accounts[cloud.name]
        if isinstance(got, ItopsError):
            raise got
        return got

    def _cloud_job(self, b: Backup) -> list[BackupOutcome]:
        now = self.opts.now if self.opts.now is not None else time.time()
        started = time.time()
        cloud = self._cloud_of(b)
        where = f"{b.kind} {b.name} (cloud {cloud.name})"
        try:
            clients = self._clients(cloud)
        except ItopsError as exc:
            facts = unreachable_facts(b, where, now, f"unreachable: {exc}")
        else:
            try:
                facts = cloud_facts(b, cloud, clients, now, self.inv.default_vars)
            except Exception as exc:  # one broken backup must not stop the others
                log.exception("internal error verifying backup %s", b.name)
                facts = unreachable_facts(b, where, now, f"internal error: {exc}", unreachable=False)
        return [self._outcome(facts, started, restoring=False, skip="")]

    # -- evaluation -----------------------------------------------------------------------------
    def failed_outcome(self, b: Backup, reason: str, *, unreachable: bool = True) -> BackupOutcome:
        """Every check of ``b`` with one reason: its work was lost (a Dask worker died twice, or
        could not run it)."""
        now = time.time()
        spec, skip = self.restore_plan(b)
        where = f"{getattr(b, 'host', None) or LOCAL}:{getattr(b, 'path', '') or getattr(b, 'repository', '')}"
        facts = unreachable_facts(b, where, now, reason, unreachable=unreachable)
        return self._outcome(facts, now, restoring=spec is not None, skip=skip)

    def _outcome(self, facts: BackupFacts, started: float, *, restoring: bool, skip: str) -> BackupOutcome:
        checks = applicable_checks(self.checks, facts.kind, restoring or bool(skip))
        prefixes = sorted({p for c in checks for p in c.meta.history})
        if prefixes and self.opts.history is not None:
            try:
                facts = dataclasses.replace(facts, history=self.opts.history(facts.name, prefixes, started))
            except Exception:  # the forecast checks then say "not enough history"
                log.warning("could not read metric history for backup %s", facts.name, exc_info=True)
        return BackupOutcome(facts.name, facts, evaluate_backup(self.run_id, facts, checks, started, skip))


def evaluate_backup(
    run_id: str, facts: BackupFacts, checks: Sequence[Check], started: float, restore_skip: str = ""
) -> list[Result]:
    """Evaluate every check on one backup's facts (pure apart from the clock)."""
    results: list[Result] = []
    for check in checks:
        t0 = time.monotonic()
        params: dict[str, Any] | None = None  # the defaults, unless resolved below
        needed = [facts.observations.get(a, Observation()) for a in check.collections]
        broken = next((o for o in needed if o.error), None)
        if restore_skip and "restore" in check.collections:
            findings = [Finding.skipped(restore_skip)]
        elif broken is not None:
            findings = [Finding(Status.UNREACHABLE if broken.unreachable else Status.ERROR, broken.error)]
        else:
            try:
                params = check.resolve_params(facts.vars)
                findings = check.evaluate(facts, params)
            except Exception as exc:  # a check's bug is an ERROR for that check, not a crash
                log.debug("check %s raised on %s", check.id, facts.name, exc_info=True)
                findings = [Finding.error(f"check raised {type(exc).__name__}: {exc}")]
        elapsed = time.monotonic() - t0
        source = "; ".join(dict.fromkeys(o.source for o in needed if o.source))
        excerpt = "\n".join(o.excerpt for o in needed if o.excerpt)[:EXCERPT_CHARS]
        for f in findings:
            results.append(
                check.result(
                    f,
                    run_id=run_id,
                    target=facts.name,
                    started=started,
                    source=source,
                    excerpt=excerpt,
                    duration=elapsed,
                    params=params,
                )
            )
    return results


__all__ = [
    "BackupOutcome",
    "BackupVerifier",
    "VerifyOptions",
    "applicable_checks",
    "evaluate_backup",
    "select_backups",
    "unreachable_facts",
]
