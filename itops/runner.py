"""Run checks on hosts: bounded concurrency, one connection and one batch per host.

Workers connect, send the host's batch, evaluate its checks and hand the results
to the calling thread, which streams them to the run store as each host finishes.
A host that cannot be reached gives UNREACHABLE results naming why; a check that
raises gives ERROR; a stop request (SIGINT/SIGTERM) cancels hosts not started,
closes open connections and keeps everything already gathered.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from itops.checkapi import Check, Facts, ProbeResult, os_family, parse_os_release
from itops.errors import AuthFailed, HostKeyRejected, ItopsError, TransportError
from itops.exitcodes import exit_code_for as exit_code_for  # re-exported: older imports name the runner
from itops.inventory import Host
from itops.model import Finding, Result, Status
from itops.planner import HostPlan, checks_for_host, plan_host
from itops.redact import register_secret
from itops.transport.base import BatchOutcome, HostConnection
from itops.transport.local import LocalConnection
from itops.transport.ssh import KnownHosts, SSHConnection, SSHTarget, read_password_file

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


def target_for(host: Host, hosts: Mapping[str, Host], _depth: int = 0) -> SSHTarget:
    """The SSH target of an inventory host, with its jump chain resolved."""
    s = host.ssh
    jump = None
    if host.jump and _depth < 8:
        jump = target_for(hosts[host.jump], hosts, _depth + 1)
    elif host.via is not None and _depth < 8:  # a ProxyJump hop of the ssh config that is not an inventory host
        jump = target_for(host.via, hosts, _depth + 1)
    return SSHTarget(
        name=host.name,
        address=host.address,
        port=int(s.port),
        user=s.user,
        identity_file=s.identity_file,
        known_hosts=tuple(s.known_hosts),
        connect_timeout=float(s.connect_timeout),
        banner_timeout=float(s.banner_timeout),
        auth_timeout=float(s.auth_timeout),
        password=_read_secret(s.password_env, s.password_file),
        sudo=bool(s.sudo),
        jump=jump,
    )


def _read_secret(env: str | None, file: str | None) -> str | None:
    """The SSH password from ``password_env`` or ``password_file`` (registered for redaction).

    An unset variable is warned about (a key may still get in); a password file that other users
    may read is refused with AuthFailed, as OpenSSH refuses such a private key.
    """
    value: str | None = None
    if env:
        value = os.environ.get(env)
        if not value:
            _warn_once(f"password_env {env} is not set (or empty) in itops' environment: no password will be tried")
    elif file:
        value = read_password_file(file)
    if value:
        register_secret(value)
    return value


_warned: set[str] = set()
_warned_lock = threading.Lock()


def _warn_once(message: str) -> None:
    with _warned_lock:
        if message in _warned:
            return
        _warned.add(message)
    log.warning("%s", message)


class AuditRunner:
    """Executes host plans with a bounded thread pool and yields per-host outcomes."""

    def __init__(
        self,
        run_id: str,
        hosts: Mapping[str, Host],
        options: RunOptions,
        stop: threading.Event | None = None,
    ) -> None:
        self.run_id = run_id
        self.hosts = hosts
        self.options = options
        self.stop = stop or threading.Event()
        self._known: dict[tuple[str, ...], KnownHosts] = {}
        self._lock = threading.Lock()
        self._open: dict[str, HostConnection] = {}
        self._jumps: dict[str, SSHConnection] = {}
        self._jump_locks: dict[str, threading.Lock] = {}
        self._jump_failures: dict[str, ItopsError] = {}

    # -- connections -----------------------------------------------------------------
    def _known_hosts(self, files: Sequence[str]) -> KnownHosts:
        key = tuple(files)
        with self._lock:
            if key not in self._known:
                self._known[key] = KnownHosts(files, self.options.tofu_file)
            return self._known[key]

    def _connect(self, host: Host) -> HostConnection:
        if self.options.local:
            return LocalConnection(sudo=host.ssh.sudo)
        target = target_for(host, self.hosts)
        via = self._jump_connection(host.jump) if host.jump else None
        return SSHConnection(target, self._known_hosts(target.known_hosts), via=via)

    def _jump_connection(self, name: str) -> SSHConnection:
        """One shared connection per jump host for the whole run (every host behind it tunnels
        through it); a jump host that failed is not retried for each host behind it."""
        with self._lock:
            lock = self._jump_locks.setdefault(name, threading.Lock())
        with lock:
            failed = self._jump_failures.get(name)
            if failed is not None:
                raise failed
            conn = self._jumps.get(name)
            if conn is not None and conn.transport.is_active():
                return conn
            host = self.hosts[name]
            target = target_for(host, self.hosts)
            try:
                via = self._jump_connection(host.jump) if host.jump else None
                conn = SSHConnection(target, self._known_hosts(target.known_hosts), via=via)
            except ItopsError as exc:
                failure = type(exc)(f"jump host {name}: {exc}", exc.hint)
                self._jump_failures[name] = failure
                raise failure from exc
            self._jumps[name] = conn
            return conn

    def _close_jumps(self) -> None:
        with self._lock:
            jumps, self._jumps = list(self._jumps.values()), {}
        for conn in jumps:
            conn.close()

    def interrupt(self) -> None:
        """Stop: no new hosts start, and open connections are closed so their batches end now."""
        self.stop.set()
        with self._lock:
            conns = [*self._open.values(), *self._jumps.values()]
        for conn in conns:
            try:
                conn.close()
            except Exception:  # closing a half-dead transport may raise anything
                log.debug("error closing connection", exc_info=True)

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
                put(self._internal_error(plan))

        def work_extra(name: str, job: Callable[[], HostOutcome]) -> None:
            try:
                put(None if self.stop.is_set() else job())
            except BaseException:
                log.exception("internal error on %s", name)
                put(HostOutcome(name, []))

        for name, job in extra:  # first: cloud accounts are long, mostly waiting on the network
            pool.submit(work_extra, name, job)
        for plan in plans:
            pool.submit(work, plan)
        try:
            for _ in range(len(plans) + len(extra)):
                while True:
                    try:
                        item = done.get(timeout=0.2)
                        break
                    except queue.Empty:
                        continue
                if item is not None:
                    yield item
        finally:
            self.stop.set()
            closed.set()
            pool.shutdown(wait=True, cancel_futures=True)
            self._close_jumps()

    def _internal_error(self, plan: HostPlan) -> HostOutcome:
        now = time.time()
        results = [
            _result(self.run_id, plan.name, pc.check, Finding.error("internal error while running this check"), now)
            for pc in plan.planned
        ]
        return HostOutcome(plan.name, results)

    def _run_host(self, plan: HostPlan) -> HostOutcome:
        host = self.hosts[plan.name]
        started = time.time()
        t0 = time.monotonic()
        results: list[Result] = [
            _result(self.run_id, plan.name, check, Finding.error(f"bad parameter: {msg}"), started)
            for check, msg in plan.param_errors
        ]
        try:
            conn = self._connect(host)
        except ItopsError as exc:
            reason = unreachable_reason(exc)
            results += [
                _result(self.run_id, plan.name, pc.check, Finding(Status.UNREACHABLE, reason), started)
                for pc in plan.planned
            ]
            return HostOutcome(plan.name, results, elapsed=time.monotonic() - t0)
        with self._lock:
            self._open[plan.name] = conn
        try:
            if self.stop.is_set():
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
                _result(self.run_id, plan.name, pc.check, Finding.error(f"could not assess: {exc}"), started)
                for pc in plan.planned
            ]
            return HostOutcome(plan.name, results, conn.host_key_fingerprint, time.monotonic() - t0)
        finally:
            with self._lock:
                self._open.pop(plan.name, None)
            conn.close()
        history = self._history(plan, started)
        results += evaluate_host(self.run_id, plan, outcome, host.vars, started, history)
        return HostOutcome(plan.name, results, conn.host_key_fingerprint, time.monotonic() - t0)

    def _history(self, plan: HostPlan, before: float) -> Mapping[str, Sequence[tuple[float, float]]]:
        """Earlier runs' metrics for the checks of ``plan`` that forecast (none without a store)."""
        prefixes = sorted({p for pc in plan.planned for p in pc.check.meta.history})
        if not prefixes or self.options.history is None:
            return {}
        try:
            return self.options.history(plan.name, prefixes, before)
        except Exception:  # history is an input of a few checks; they say "not enough history"
            log.warning("could not read metric history for %s", plan.name, exc_info=True)
            return {}


def failed_outcome(run_id: str, plan: HostPlan, status: Status, message: str) -> HostOutcome:
    """Every check of ``plan`` with one verdict and reason: a host whose work was lost (a Dask worker
    died twice, the worker could not run it) is still accounted for, check by check."""
    now = time.time()
    finding = Finding(status, message)
    results = [_result(run_id, plan.name, check, Finding.error(f"bad parameter: {msg}"), now)
               for check, msg in plan.param_errors]  # fmt: skip
    results += [_result(run_id, plan.name, pc.check, finding, now) for pc in plan.planned]
    return HostOutcome(plan.name, results)


def unreachable_reason(exc: ItopsError) -> str:
    """The UNREACHABLE message for a connection failure, naming the kind (host key, auth, network)."""
    if isinstance(exc, HostKeyRejected):
        return f"host key rejected: {exc}"
    if isinstance(exc, AuthFailed):
        return f"auth failed: {exc}"
    return f"unreachable: {exc}"


def evaluate_host(
    run_id: str,
    plan: HostPlan,
    outcome: BatchOutcome,
    variables: Mapping[str, Any],
    started: float,
    history: Mapping[str, Sequence[tuple[float, float]]] | None = None,
) -> list[Result]:
    """Evaluate every planned check on one host's probe results (pure apart from the clock)."""
    os_probe = outcome.results.get(plan.os_index)
    os_info = parse_os_release(os_probe.text) if os_probe is not None and os_probe.ok else {}
    family = os_family(os_info)
    results: list[Result] = []
    for pc in plan.planned:
        check = pc.check
        t0 = time.monotonic()
        probes = {name: outcome.results[i] for name, i in pc.probe_index.items()}
        applies = _applicability(check, family, os_info, os_probe)
        over = [p for p in probes.values() if p.over_limit]
        if over:
            # a check may treat a failed probe as data (grep's exit 1): output it never saw is not
            findings = [Finding.error(f"could not assess: {over[0].problem()}")]
        elif applies is not None:
            findings = [applies]
        else:
            facts = Facts(
                target=plan.name,
                probes=probes,
                os=os_info,
                family=family,
                vars=variables,
                history=history or {},
                time=started,
            )
            try:
                findings = check.evaluate(facts, pc.params)
            except Exception as exc:  # a check's bug is an ERROR for that check, not a crash
                log.debug("check %s raised on %s", check.id, plan.name, exc_info=True)
                findings = [Finding.error(f"check raised {type(exc).__name__}: {exc}")]
        elapsed = time.monotonic() - t0
        for f in findings:
            results.append(_result(run_id, plan.name, check, f, started, probes.values(), elapsed, pc.params))
    return results


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
    return check.result(finding, run_id=run_id, target=target, started=started,
                        source="; ".join(p.command for p in probes), duration=duration,
                        params=params)  # fmt: skip


def plan_hosts(
    hosts: Sequence[Host], checks: Sequence[Check], default_timeout: float = 60.0
) -> list[HostPlan]:
    """One plan per host: the selected checks narrowed by the host's groups, probes deduplicated."""
    plans = []
    for host in hosts:
        chosen = checks_for_host(checks, host.checks)
        timeout = float(host.ssh.command_timeout or default_timeout)
        plans.append(plan_host(host.name, chosen, host.vars, timeout))
    return plans

