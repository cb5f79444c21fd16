"""Run checks on hosts: bounded concurrency, one connection and one batch per host.

Workers connect (through the run's :class:`~itops.transport.pool.ConnectionPool`), send the
host's batch, evaluate its checks (:func:`run_host_plan`, one host) and hand the results to
the calling thread, which streams them to the run store as each host finishes.
A host that cannot be reached gives UNREACHABLE results naming why; a check that
raises gives ERROR; a stop request (SIGINT/SIGTERM) cancels hosts not started,
closes open connections and keeps everything already gathered.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from itops.checkapi import Check, Facts, HostMemo, ProbeResult, os_family, parse_os_release
from itops.errors import ItopsError, TransportError
from itops.exitcodes import exit_code_for as exit_code_for  # re-exported: older imports name the runner
from itops.hostmemo import SharedParses
from itops.inventory import Host
from itops.model import Finding, Result, Status
from itops.planner import HostPlan, plan_hosts
from itops.transport.base import BatchOutcome
from itops.transport.pool import ConnectionPool, target_for, unreachable_reason

__all__ = [
    "AuditRunner",
    "ExtraJob",
    "HistoryProvider",
    "HostOutcome",
    "RunOptions",
    "evaluate_host",
    "exit_code_for",
    "failed_outcome",
    "internal_error_outcome",
    "plan_hosts",  # defined in itops.planner; kept importable from here
    "probe_source",
    "run_host_plan",
    "target_for",  # defined in itops.transport.pool; kept importable from here
    "unreachable_reason",
]

log = logging.getLogger(__name__)


@dataclass
class RunOptions:
    concurrency: int = 32
    tofu_file: str | None = None
    local: bool = False  # run probes on this machine instead of over SSH
    #: earlier runs' metrics of a target, for checks that declare ``history`` (forecasts):
    #: ``history(target, name_prefixes, before) -> {name: [(run start, value), ...]}``
    history: HistoryProvider | None = None


HistoryProvider = Callable[[str, Sequence[str], float], Mapping[str, Sequence[tuple[float, float]]]]


@dataclass
class HostOutcome:
    """One target's results (a host, or a cloud account run as an extra job)."""

    host: str
    results: list[Result]
    host_key: str = ""
    elapsed: float = 0.0
    account: str = ""  # for cloud targets: account id and caller ARN seen


#: Work other than a host plan run in the same pool (cloud accounts): name, and the job itself.
ExtraJob = tuple[str, Callable[[], HostOutcome]]


class AuditRunner:
    """Executes host plans with a bounded thread pool and yields per-host outcomes.

    Connections come from ``pool`` (one :class:`~itops.transport.pool.ConnectionPool` per run:
    shared jump hosts, remembered jump failures, known_hosts); without one the runner makes its
    own from ``options`` and closes it when :meth:`run` ends. A pool given is the caller's to close.
    """

    def __init__(
        self,
        run_id: str,
        hosts: Mapping[str, Host],
        options: RunOptions,
        stop: threading.Event | None = None,
        pool: ConnectionPool | None = None,
    ) -> None:
        self.run_id = run_id
        self.hosts = hosts
        self.options = options
        self.stop = stop or threading.Event()
        self._owns_pool = pool is None
        self.pool = pool or ConnectionPool(
            hosts, transport="local" if options.local else "ssh", tofu_file=options.tofu_file
        )
        #: parses of probe outputs that several hosts sent alike, for this run only
        self.shared_parses = SharedParses()

    def interrupt(self) -> None:
        """Stop: no new hosts start, and open connections are closed so their batches end now."""
        self.stop.set()
        self.pool.interrupt()

    # -- execution -------------------------------------------------------------------
    def run(self, plans: Sequence[HostPlan], extra: Sequence[ExtraJob] = ()) -> Iterable[HostOutcome]:
        """Run every plan (and extra job); yields each outcome in the calling thread as it completes."""
        workers = max(1, min(self.options.concurrency, len(plans) + len(extra) or 1))
        # Bounded: a worker with a finished host waits while the consumer (store, stdout) catches up, so
        # memory holds the in-flight hosts' results, never a backlog growing with the fleet.
        done: queue.Queue[HostOutcome | None] = queue.Queue(maxsize=workers)
        closed = threading.Event()  # the consumer has gone: nobody will take what is left
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="itops-host")

        def put(item: HostOutcome | None) -> None:
            while not closed.is_set():
                try:
                    done.put(item, timeout=0.2)
                    return
                except queue.Full:
                    continue

        def work(plan: HostPlan) -> None:
            try:
                if self.stop.is_set():
                    put(None)
                    return
                put(self._run_host(plan))
            except BaseException:  # never lose the slot: the consumer counts puts
                log.exception("internal error on host %s", plan.name)
                put(internal_error_outcome(self.run_id, plan))

        def work_extra(name: str, job: Callable[[], HostOutcome]) -> None:
            try:
                put(None if self.stop.is_set() else job())
            except BaseException:
                log.exception("internal error on %s", name)
                put(HostOutcome(name, []))

        for name, job in extra:  # first: cloud accounts are long, mostly waiting on the network
            pool.submit(work_extra, name, job)
        # Hosts are submitted as slots free up (twice the workers in flight), not all at once: a
        # queued task holds its host's plan, and ``plans`` may make each plan only when it is read
        # (planner.HostPlans), so a 10,000-host run holds the plans of the hosts in flight only.
        pending = iter(plans)
        outstanding = len(extra)

        def submit(count: int) -> int:
            submitted = 0
            while submitted < count and not self.stop.is_set():
                plan = next(pending, None)
                if plan is None:
                    break
                pool.submit(work, plan)
                submitted += 1
            return submitted

        outstanding += submit(2 * workers)
        try:
            while outstanding:
                while True:
                    try:
                        item = done.get(timeout=0.2)
                        break
                    except queue.Empty:
                        continue
                outstanding -= 1
                outstanding += submit(1)
                if item is not None:
                    yield item
        finally:
            self.stop.set()
            closed.set()
            pool.shutdown(wait=True, cancel_futures=True)
            if self._owns_pool:
                self.pool.close()

    def _run_host(self, plan: HostPlan) -> HostOutcome:
        return run_host_plan(
            self.run_id, plan, self.pool, stop=self.stop, history=self.options.history, shared=self.shared_parses
        )


def internal_error_outcome(run_id: str, plan: HostPlan) -> HostOutcome:
    """The outcome of a host whose run hit a bug in itops: every planned check ERROR."""
    now = time.time()
    results = [
        _result(run_id, plan.name, pc.check, Finding.error("internal error while running this check"), now)
        for pc in plan.planned
    ]
    return HostOutcome(plan.name, results)


def run_host_plan(
    run_id: str,
    plan: HostPlan,
    pool: ConnectionPool,
    *,
    stop: threading.Event | None = None,
    history: HistoryProvider | None = None,
    shared: SharedParses | None = None,
) -> HostOutcome:
    """Run ONE host's plan: connect through ``pool``, send its one batch, evaluate its checks.

    The host must be in ``pool.hosts``. A host that cannot be reached gives UNREACHABLE results
    naming why, a batch that fails gives ERROR ("could not assess"); both are data, never raised.
    ``stop`` set before the batch starts makes the host ERROR (the run was interrupted).
    ``history`` feeds the checks that forecast (see :attr:`RunOptions.history`); ``shared`` is the
    run's :class:`SharedParses` (parsed values of equal probe outputs, reused across hosts).
    """
    host = pool.hosts[plan.name]
    started = time.time()
    t0 = time.monotonic()
    results: list[Result] = [
        _result(run_id, plan.name, check, Finding.error(f"bad parameter: {msg}"), started)
        for check, msg in plan.param_errors
    ]
    try:
        conn = pool.connect(plan.name)
    except ItopsError as exc:
        reason = unreachable_reason(exc)
        results += [
            _result(run_id, plan.name, pc.check, Finding(Status.UNREACHABLE, reason), started) for pc in plan.planned
        ]
        return HostOutcome(plan.name, results, elapsed=time.monotonic() - t0)
    try:
        if stop is not None and stop.is_set():
            raise TransportError("run interrupted before this host's probes ran")
        # the remote `timeout` stops each probe at its own limit; these client-side deadlines only
        # catch what it cannot (no `timeout` binary, a wedged connection): the idle one allows the
        # longest probe of the batch, the total one every probe running to its limit
        longest = max(plan.timeouts, default=float(host.ssh.command_timeout))
        outcome = conn.run_batch(
            plan.batch(),
            idle_timeout=longest + 10,
            total_timeout=sum(plan.timeouts) + 30,
            max_output=host.ssh.max_probe_output,
        )
    except TransportError as exc:
        results += [
            _result(run_id, plan.name, pc.check, Finding.error(f"could not assess: {exc}"), started)
            for pc in plan.planned
        ]
        return HostOutcome(plan.name, results, conn.host_key_fingerprint, time.monotonic() - t0)
    finally:
        pool.release(conn)
    past = _history(plan, started, history)
    results += evaluate_host(run_id, plan, outcome, host.vars, started, past, shared)
    return HostOutcome(plan.name, results, conn.host_key_fingerprint, time.monotonic() - t0)


def failed_outcome(run_id: str, plan: HostPlan, status: Status, message: str) -> HostOutcome:
    """Every check of ``plan`` with one verdict and reason: a host whose work was lost (a Dask worker
    died twice, the worker could not run it) is still accounted for, check by check."""
    now = time.time()
    finding = Finding(status, message)
    results = [
        _result(run_id, plan.name, check, Finding.error(f"bad parameter: {msg}"), now)
        for check, msg in plan.param_errors
    ]
    results += [_result(run_id, plan.name, pc.check, finding, now) for pc in plan.planned]
    return HostOutcome(plan.name, results)


def _history(
    plan: HostPlan, before: float, provider: HistoryProvider | None
) -> Mapping[str, Sequence[tuple[float, float]]]:
    """Earlier runs' metrics for the checks of ``plan`` that forecast (none without a store)."""
    prefixes = sorted({p for pc in plan.planned for p in pc.check.meta.history})
    if not prefixes or provider is None:
        return {}
    try:
        return provider(plan.name, prefixes, before)
    except Exception:  # history is an input of a few checks; they say "not enough history"
        log.warning("could not read metric history for %s", plan.name, exc_info=True)
        return {}


def evaluate_host(
    run_id: str,
    plan: HostPlan,
    outcome: BatchOutcome,
    variables: Mapping[str, Any],
    started: float,
    history: Mapping[str, Sequence[tuple[float, float]]] | None = None,
    shared: SharedParses | None = None,
) -> list[Result]:
    """Evaluate every planned check on one host's probe results (pure apart from the clock).

    The checks of the host share one :class:`~itops.checkapi.HostMemo`: a probe output the checks
    parse with the same parser (``facts.parsed``) is parsed once for the host; it is dropped with
    the host's evaluation. With ``shared``, a parse another host of the run made from byte-equal
    output is reused (see :class:`~itops.hostmemo.SharedParses`).
    """
    os_probe = outcome.results.get(plan.os_index)
    os_info: Mapping[str, str] = (
        MappingProxyType(parse_os_release(os_probe.text)) if os_probe is not None and os_probe.ok else _EMPTY
    )
    family = os_family(os_info)
    memo = HostMemo(shared)
    # read-only like os: the same objects go to every check of the host
    past = MappingProxyType({k: tuple(v) for k, v in history.items()}) if history else _EMPTY
    results: list[Result] = []
    probe_results = outcome.results
    for pc in plan.planned:
        check = pc.check
        t0 = time.monotonic()
        probes = {name: probe_results[i] for name, i in pc.probe_index.items()}
        applies = _applicability(check, family, os_info, os_probe) if check.meta.os_families else None
        over = next((p for p in probes.values() if p.over_limit), None)
        if over is not None:
            # a check may treat a failed probe as data (grep's exit 1): output it never saw is not
            findings = [Finding.error(f"could not assess: {over.problem()}")]
        elif applies is not None:
            findings = [applies]
        else:
            facts = Facts(
                target=plan.name,
                probes=probes,
                os=os_info,
                family=family,
                vars=variables,
                history=past,
                time=started,
                memo=memo,
            )
            try:
                findings = check.evaluate(facts, pc.params)
            except Exception as exc:  # a check's bug is an ERROR for that check, not a crash
                log.debug("check %s raised on %s", check.id, plan.name, exc_info=True)
                findings = [Finding.error(f"check raised {type(exc).__name__}: {exc}")]
        elapsed = time.monotonic() - t0
        # the commands and what the finding names (observed, its deciding lines): never the raw outputs
        source = "; ".join([probe_source(name, p.command) for name, p in probes.items()])
        remediation = check.remediation_for(pc.params)
        for f in findings:
            results.append(
                check.result(
                    f,
                    run_id=run_id,
                    target=plan.name,
                    started=started,
                    source=source,
                    duration=elapsed,
                    remediation=remediation,
                )
            )
    return results


_EMPTY: Mapping[str, Any] = MappingProxyType({})

#: a probe command longer than this (characters), or on several lines, is named in evidence, not repeated
SOURCE_INLINE_MAX = 200


def probe_digest(command: str) -> str:
    """The short SHA-256 that names a probe script in evidence (``itops checks show`` prints it too)."""
    return "sha256:" + hashlib.sha256(command.encode("utf-8", "surrogateescape")).hexdigest()[:16]


@functools.lru_cache(maxsize=2048)  # a fleet's checks share a few hundred probe commands
def probe_source(name: str, command: str) -> str:
    """How a result's evidence names the probe that produced what it judged.

    A short one-line command is kept as it is (``sshd -T``, ``cat /etc/passwd``). A multi-line or
    long script (itops' own probe code, up to a few KB) is named instead: its probe name, size
    and SHA-256 prefix. Repeated in full in every result of every host it made a result about 1.9 KB
    (most of the run's output, its store and its CPU), and the evidence cap cut it at 1 KB
    anyway, so the stored text matched no script; the digest pins the exact text, which
    ``itops checks show CHECK`` prints in full.
    """
    if len(command) <= SOURCE_INLINE_MAX and "\n" not in command:
        return command
    return f"[probe {name}: {len(command):,}-byte script, {probe_digest(command)}]"


def _applicability(
    check: Check, family: str, os_info: Mapping[str, str], os_probe: ProbeResult | None
) -> Finding | None:
    wanted = check.meta.os_families
    if not wanted:
        return None
    if not os_info:
        why = os_probe.problem() if os_probe is not None and not os_probe.ok else "empty /etc/os-release"
        return Finding.error(f"could not determine the OS family ({why}); check applies to {', '.join(wanted)}")
    if family not in wanted:
        name = os_info.get("PRETTY_NAME") or os_info.get("ID", "unknown OS")
        return Finding.skipped(f"not applicable on {name} (family {family or 'unknown'}; needs {', '.join(wanted)})")
    return None


def _result(
    run_id: str,
    target: str,
    check: Check,
    finding: Finding,
    started: float,
    probes: Iterable[ProbeResult] = (),
    duration: float = 0.0,
    params: Mapping[str, Any] | None = None,
) -> Result:
    # the commands and what the finding names (observed, its deciding lines): never the raw outputs
    return check.result(
        finding,
        run_id=run_id,
        target=target,
        started=started,
        source="; ".join(p.command for p in probes),
        duration=duration,
        params=params,
    )
