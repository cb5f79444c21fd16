"""Run host work on Dask distributed: a LocalCluster here, or an existing scheduler's workers.

Hosts are sent in batches (:mod:`itops.executors.work`); results come back per batch and are
yielded in this process as each batch finishes, so the caller streams them into its store. A batch
whose worker died (``KilledWorker``) is submitted once more, to whichever worker the scheduler
picks; if that fails too, its hosts are UNREACHABLE with the reason. A batch the worker could not
run (another itops version, a check it lacks) is ERROR for its hosts. ``interrupt()`` (Ctrl-C)
cancels every task still on the cluster. Cloud accounts, cloud backups and backups without a host
run in this process, in threads, as with ``--executor threads``: AWS credentials never leave it.

Only the LocalCluster is given ``allowed-failures: 0`` (so the single retry is this module's); an
existing scheduler reschedules a dead worker's tasks itself up to its own ``allowed-failures``
(Dask's default: 3) before this module's retry.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future as LocalFuture
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from itops.errors import ExecutorError, UsageError
from itops.executors import ExecutorSpec
from itops.executors.work import AuditBatch, BackupBatch, History, audit_batch, verify_backup_batch
from itops.model import Status

if TYPE_CHECKING:
    from distributed import Client

    from itops.backup.verify import BackupOutcome, BackupVerifier
    from itops.inventory import Host
    from itops.planner import HostPlan
    from itops.runner import ExtraJob, HistoryProvider, HostOutcome

log = logging.getLogger(__name__)

T = TypeVar("T")

#: hosts per batch at most: a dead worker loses at most this many hosts' work
MAX_BATCH = 16
#: how long a run may go on with no worker at all before its remaining hosts are given up
NO_WORKER_GRACE = 60.0
CONNECT_TIMEOUT = 15.0
#: fetching a finished batch's results from its worker
GATHER_TIMEOUT = 60.0


class DaskCluster:
    """A Dask client: to a LocalCluster of worker processes started here (closed with it), or to the
    scheduler at ``spec.address``. Use as a context manager."""

    def __init__(self, spec: ExecutorSpec) -> None:
        try:
            import dask
            from distributed import Client, LocalCluster
        except ImportError as exc:
            raise UsageError(
                f"--executor {spec} needs Dask distributed ({exc})", hint="pip install 'itops[dask]'"
            ) from None
        self.spec = spec
        self._cluster: Any = None
        # the in-process scheduler and client log every worker and connection at INFO: the run's own
        # output says what matters (a worker lost, a batch retried)
        logging.getLogger("distributed").setLevel(logging.WARNING)
        try:
            if spec.address is None:
                workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
                with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
                    self._cluster = LocalCluster(
                        n_workers=max(1, workers),
                        threads_per_worker=2,
                        processes=True,
                        host="127.0.0.1",  # a scheduler runs whatever it is sent: never on an open interface
                        dashboard_address="127.0.0.1:0",
                        silence_logs=logging.ERROR,
                    )
                self.client: Client = Client(self._cluster, timeout=CONNECT_TIMEOUT)
            else:
                self.client = Client(spec.address, timeout=CONNECT_TIMEOUT)
                self.client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError) as exc:
            self.close()
            where = spec.address or "a local cluster"
            raise ExecutorError(
                f"cannot use the Dask scheduler at {where}: {exc or type(exc).__name__}",
                hint="start `dask scheduler` and at least one `dask worker` (README: 'Dask'), "
                "or use --executor threads",
            ) from None

    def slots(self) -> int:
        """Worker threads in the cluster now (at least 1)."""
        return max(1, int(sum(self.client.nthreads().values())))

    def workers(self) -> int:
        return len(self.client.nthreads())

    def close(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            try:
                client.close(timeout=10)
            except Exception:  # closing a client whose scheduler is gone may raise anything
                log.debug("error closing the Dask client", exc_info=True)
        if self._cluster is not None:
            try:
                self._cluster.close(timeout=20)
            except Exception:
                log.debug("error closing the local Dask cluster", exc_info=True)
            self._cluster = None

    def __enter__(self) -> DaskCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class Batch(Generic[T]):
    """One task: ``fn(payload)`` on a worker; ``lost(status, reason)`` accounts for its hosts when it fails."""

    label: str
    fn: Callable[[Any], list[T]]
    payload: Any
    lost: Callable[[Status, str], list[T]]
    attempts: int = 0


def stream(
    cluster: DaskCluster,
    batches: Sequence[Batch[T]],
    local: Sequence[Callable[[], list[T]]],
    stop: threading.Event,
    local_threads: int = 8,
) -> Iterator[T]:
    """Run ``batches`` on the cluster and ``local`` jobs in threads here; yield every item as its
    task ends. A batch is resubmitted once after its worker died; stopping cancels what is left."""
    from distributed import KilledWorker

    client = cluster.client
    done: queue.Queue[tuple[str, Any]] = queue.Queue()
    pending: dict[Any, Batch[T]] = {}

    def submit(batch: Batch[T]) -> None:
        batch.attempts += 1
        fut = client.submit(batch.fn, batch.payload, pure=False)
        pending[fut] = batch
        fut.add_done_callback(lambda f: done.put(("dask", f)))

    pool = ThreadPoolExecutor(max_workers=max(1, min(local_threads, len(local))), thread_name_prefix="itops-local")

    def local_done(f: LocalFuture[list[T]]) -> None:
        done.put(("local", f))

    remaining = len(batches) + len(local)
    try:
        for job in local:  # first: cloud accounts are long, mostly waiting on the network
            pool.submit(job).add_done_callback(local_done)
        for batch in batches:
            submit(batch)
        no_worker_since: float | None = None
        next_look = time.monotonic() + 5
        while remaining and not stop.is_set():
            try:
                kind, fut = done.get(timeout=0.2)
            except queue.Empty:
                if pending and time.monotonic() >= next_look:
                    next_look = time.monotonic() + 5
                    no_worker_since = _watch_workers(cluster, no_worker_since)
                    if no_worker_since is not None and time.monotonic() - no_worker_since > NO_WORKER_GRACE:
                        for f, batch in list(pending.items()):
                            pending.pop(f)
                            f.cancel()
                            remaining -= 1
                            yield from batch.lost(
                                Status.UNREACHABLE,
                                f"unreachable: no Dask worker for {NO_WORKER_GRACE:.0f} s (all workers gone)",
                            )
                continue
            if kind == "local":
                remaining -= 1
                if fut.cancelled():
                    continue
                if fut.exception() is not None:  # the local jobs guard themselves; this is a bug
                    log.error("internal error in a local job", exc_info=fut.exception())
                    continue
                yield from fut.result()
                continue
            found = pending.pop(fut, None)
            if found is None:  # cancelled by us
                continue
            batch = found
            exc: BaseException | None = None
            died = fut.status in ("lost", "cancelled")
            if fut.status == "finished":
                try:  # the result is fetched from the worker, which may have died since
                    items = fut.result(timeout=GATHER_TIMEOUT)
                except Exception as gather_exc:
                    exc, died = gather_exc, True
                else:
                    remaining -= 1
                    yield from items
                    continue
            elif fut.status == "error":
                exc = fut.exception()
                died = isinstance(exc, KilledWorker)
            if died:
                why = f"the Dask worker running it died ({type(exc).__name__ if exc else fut.status})"
                if batch.attempts < 2 and not stop.is_set():
                    log.warning("%s: %s; retrying once on another worker", batch.label, why)
                    submit(batch)
                    continue
                remaining -= 1
                yield from batch.lost(Status.UNREACHABLE, f"unreachable: {why}, twice")
                continue
            remaining -= 1
            hint = getattr(exc, "hint", "")
            message = f"could not assess: the Dask worker could not run it: {type(exc).__name__}: {exc}"
            yield from batch.lost(Status.ERROR, message + (f" ({hint})" if hint else ""))
    finally:
        stop.set()
        if pending:
            try:
                client.cancel(list(pending), force=True)
            except Exception:  # the scheduler may be gone already
                log.debug("error cancelling Dask tasks", exc_info=True)
        pool.shutdown(wait=True, cancel_futures=True)


def _watch_workers(cluster: DaskCluster, since: float | None) -> float | None:
    try:
        count = cluster.workers()
    except Exception:  # a scheduler that stopped answering counts as no workers
        count = 0
    if count:
        return None
    return since if since is not None else time.monotonic()


def batch_size(hosts: int, slots: int) -> int:
    """Hosts per batch: about two batches per worker thread, at most MAX_BATCH hosts each."""
    return max(1, min(MAX_BATCH, math.ceil(hosts / max(1, 2 * slots))))


def chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _history_of(provider: HistoryProvider | None, targets: Mapping[str, Sequence[str]]) -> History:
    """Earlier runs' metrics the workers' forecast checks need (read here: the store is here)."""
    out: History = {}
    if provider is None:
        return out
    now = time.time()
    for target, prefixes in targets.items():
        if prefixes:
            try:
                out[target] = provider(target, prefixes, now)
            except Exception:  # the forecast checks then say "not enough history"
                log.warning("could not read metric history for %s", target, exc_info=True)
    return out


class DaskAuditRunner:
    """``AuditRunner``'s interface (``run``, ``interrupt``, ``stop``) with the hosts audited on Dask."""

    def __init__(
        self,
        run_id: str,
        hosts: Mapping[str, Host],
        cluster: DaskCluster,
        checks_dirs: Sequence[Path],
        concurrency: int,
        history: HistoryProvider | None = None,
    ) -> None:
        self.run_id = run_id
        self.hosts = hosts
        self.cluster = cluster
        self.checks_dirs = tuple(str(Path(d).resolve()) for d in checks_dirs)
        self.concurrency = concurrency
        self.history = history
        self.stop = threading.Event()

    def interrupt(self) -> None:
        """Stop: the run loop cancels every task still on the cluster and returns what it has."""
        self.stop.set()

    def run(self, plans: Sequence[HostPlan], extra: Sequence[ExtraJob] = ()) -> Iterator[HostOutcome]:
        from itops.runner import failed_outcome

        size = batch_size(len(plans), self.cluster.slots())
        batches: list[Batch[HostOutcome]] = []
        for part in chunks(plans, size):
            names = tuple(p.name for p in part)
            ids = tuple(
                sorted(
                    {pc.check.id for p in part for pc in p.planned} | {c.id for p in part for c, _ in p.param_errors}
                )
            )
            payload = AuditBatch(
                run_id=self.run_id,
                names=names,
                hosts=self._with_jumps(names),
                check_ids=ids,
                checks_dirs=self.checks_dirs,
                concurrency=min(self.concurrency, len(names)),
                history=_history_of(
                    self.history, {p.name: sorted({x for pc in p.planned for x in pc.check.meta.history}) for p in part}
                ),
            )

            def lost(status: Status, reason: str, part: Sequence[HostPlan] = part) -> list[HostOutcome]:
                return [failed_outcome(self.run_id, p, status, reason) for p in part]

            batches.append(Batch(f"hosts {_names(names)}", audit_batch, payload, lost))
        local = [_guard_extra(name, job) for name, job in extra]
        yield from stream(self.cluster, batches, local, self.stop, local_threads=self.concurrency)

    def _with_jumps(self, names: Sequence[str]) -> dict[str, Host]:
        """The batch's hosts and every jump host they go through (the workers tunnel as we would)."""
        out: dict[str, Host] = {}
        for name in names:
            depth = 0
            host: Host | None = self.hosts[name]
            while host is not None and host.name not in out and depth < 9:
                out[host.name] = host
                host = self.hosts.get(host.jump) if host.jump else None
                depth += 1
        return out


def _guard_extra(name: str, job: Callable[[], HostOutcome]) -> Callable[[], list[HostOutcome]]:
    from itops.runner import HostOutcome

    def run() -> list[HostOutcome]:
        try:
            return [job()]
        except BaseException:
            log.exception("internal error on %s", name)
            return [HostOutcome(name, [])]

    return run


def _names(names: Sequence[str]) -> str:
    return ", ".join(names[:4]) + (f" (+{len(names) - 4} more)" if len(names) > 4 else "")


class DaskBackupVerifier:
    """``BackupVerifier``'s interface (``run``, ``interrupt``) with host-side backups verified on Dask,
    one task per backup host; cloud backups and backups without a host (this machine's files) are
    verified here, as with threads."""

    def __init__(
        self, local: BackupVerifier, cluster: DaskCluster, checks_dirs: Sequence[Path], concurrency: int
    ) -> None:
        self.local = local
        self.cluster = cluster
        self.checks_dirs = tuple(str(Path(d).resolve()) for d in checks_dirs)
        self.concurrency = concurrency
        self.stop = threading.Event()
        self._cloud: BackupVerifier | None = None

    def interrupt(self) -> None:
        self.stop.set()
        if self._cloud is not None:
            self._cloud.interrupt()

    def run(self) -> Iterator[BackupOutcome]:
        import dataclasses

        from itops.backup.verify import BackupVerifier, host_kinds

        v = self.local
        by_host: dict[str, list[str]] = {}
        here = []  # cloud backups and backups without a host: on this machine, as with threads
        for b in v.backups:
            host = getattr(b, "host", None)
            if b.kind in host_kinds() and host:
                by_host.setdefault(host, []).append(b.name)
            else:
                here.append(b)
        ids = tuple(c.id for c in v.checks)
        batches: list[Batch[BackupOutcome]] = []
        for host, names in by_host.items():
            hosts = {host: v.inv.hosts[host]}
            inv = dataclasses.replace(
                v.inv,
                hosts=hosts,
                groups={},
                backups={n: v.inv.backups[n] for n in names},
                waivers=(),
            )
            history = _history_of(
                v.opts.history,
                {n: sorted({p for c in v.checks for p in c.meta.history}) for n in names},
            )
            payload = BackupBatch(
                run_id=v.run_id,
                names=tuple(names),
                inventory=inv,
                options={n: v.options[n] for n in names},
                check_ids=ids,
                checks_dirs=self.checks_dirs,
                restore=v.opts.restore,
                state_dir=str(v.opts.state_dir) if v.opts.state_dir else None,
                concurrency=1,
                history=history,
            )

            def lost(status: Status, reason: str, names: Sequence[str] = names) -> list[BackupOutcome]:
                return [
                    v.failed_outcome(v.inv.backups[n], reason, unreachable=status is Status.UNREACHABLE) for n in names
                ]

            batches.append(Batch(f"backups on {host} ({_names(names)})", verify_backup_batch, payload, lost))
        local: list[Callable[[], list[BackupOutcome]]] = []
        if here:
            self._cloud = BackupVerifier(v.run_id, v.inv, here, v.checks, v.options, v.opts)
            local.append(lambda: list(self._cloud.run()) if self._cloud is not None else [])
        yield from stream(self.cluster, batches, local, self.stop, local_threads=1)
