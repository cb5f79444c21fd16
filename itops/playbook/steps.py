"""Executing one playbook step: commands over SSH or here, conditions with retries, prompts, restores.

A failed command is data (a :class:`StepResult` with FAIL), never an exception. Remote
commands go through the host's one reused SSH connection (strict host keys, as audits) as a
one-command batch, so they run like probes: ``sh -c`` under ``timeout``, cwd ``/``,
``LC_ALL=C``, stdin from /dev/null. Local commands run with ``/bin/sh -c`` in the current
folder, in their own process group (killed as a group on timeout or stop).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shlex
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from itops.backup.shell import with_secrets
from itops.errors import AuthFailed, HostKeyRejected, HostUnreachable, ItopsError, TransportError
from itops.facts import ProbeResult
from itops.inventory import Inventory
from itops.model import Status
from itops.playbook.schema import Condition, Step
from itops.playbook.shellvars import show_command
from itops.transport.base import HostConnection
from itops.transport.batch import BatchScript, build_script
from itops.transport.pool import ConnectionPool

EXCERPT = 2000
_NO = {"no", "n", "false", "abort", "stop"}
_YES = {"yes", "y", "true", "ok", "done", "confirmed"}


@dataclass
class StepResult:
    """The outcome of one step (or one rollback step)."""

    status: Status
    message: str
    source: str = ""  # where and what ran
    output: str = ""  # excerpt of the output
    observed: str = ""
    expected: str = ""
    started: float = 0.0
    seconds: float = 0.0
    attempts: int = 1


def _excerpt(res: ProbeResult) -> str:
    text = res.text
    if res.stderr:
        text += ("\n" if text and not text.endswith("\n") else "") + res.err_text
    return text[-EXCERPT:]


class StepRunner:
    """Runs steps of one drill; holds one SSH connection per host for the whole drill.

    Connections come from :attr:`pool` (one per drill: jump hosts shared by every host behind them,
    a dead jump host tried once, one known_hosts cache); a restore step's verifier uses it too.
    """

    def __init__(
        self,
        inventory: Inventory | None,
        *,
        answers: Mapping[str, str] | None = None,
        yes: bool = False,
        prompt: Callable[[str], str | None] | None = None,
        tofu_file: str | None = None,
        restore: Callable[[Step, StepRunner], StepResult] | None = None,
        pool: ConnectionPool | None = None,
    ) -> None:
        self.inv = inventory
        self.answers = dict(answers or {})
        self.yes = yes
        self.prompt = prompt
        self.tofu_file = tofu_file
        self.restore_fn = restore
        self.stop = threading.Event()
        self.pool = pool or ConnectionPool(inventory.hosts if inventory is not None else {}, tofu_file=tofu_file)
        self._local: subprocess.Popen[bytes] | None = None

    # -- connections -------------------------------------------------------------------------
    @property
    def host_keys(self) -> dict[str, str]:
        """Host name -> host key fingerprint of every host a step connected to."""
        return self.pool.host_keys

    def connection(self, host: str) -> HostConnection:
        """The drill's connection to ``host`` (kept open for the following steps)."""
        if self.inv is None or host not in self.inv.hosts:
            raise ItopsError(f"host {host!r} is not in the inventory")
        return self.pool.connect(host, keep=True)

    def describe(self, host: str) -> str:
        if self.inv is None or host not in self.inv.hosts:
            return host
        h = self.inv.hosts[host]
        return f"{host} ({h.ssh.user}@{h.address}:{h.ssh.port})"

    def address(self, host: str) -> str:
        if self.inv is not None and host in self.inv.hosts:
            return self.inv.hosts[host].address
        return host

    def interrupt(self) -> None:
        """Stop now: the running command is killed (local) or its connection closed (SSH)."""
        self.stop.set()
        proc = self._local
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        self.close()

    def close(self) -> None:
        """Close the drill's connections (new steps, such as rollbacks, open them again)."""
        self.pool.close()

    # -- commands -----------------------------------------------------------------------------
    def remote(self, host: str, command: str, timeout: float, env: Mapping[str, str] | None = None) -> ProbeResult:
        """Run ``command`` on ``host`` with ``env`` exported; TransportError when the host cannot be used."""
        conn = self.connection(host)
        batch = with_env(build_script([command], [timeout]), env or {})
        outcome = conn.run_batch(batch, idle_timeout=timeout + 10, total_timeout=timeout + 15)
        return outcome.results[0]

    def script(self, host: str | None, script: str, timeout: float, secrets: Mapping[str, str]) -> ProbeResult:
        """Run a whole sh script on ``host`` (None: here) as one batch, ``secrets`` exported on its stdin."""
        batch = with_secrets(build_script([script], [timeout]), secrets)
        if host is not None:
            conn = self.connection(host)
            return conn.run_batch(batch, idle_timeout=timeout + 10, total_timeout=timeout + 15).results[0]
        with self.pool.lease(None) as here:
            return here.run_batch(batch, idle_timeout=timeout + 10, total_timeout=timeout + 15).results[0]

    def local(self, command: str, timeout: float, env: Mapping[str, str] | None = None) -> ProbeResult:
        try:
            proc = subprocess.Popen(
                ["/bin/sh", "-c", command],
                env={**os.environ, **env} if env else None,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            return ProbeResult(command, None, error=f"cannot start /bin/sh: {exc}")
        self._local = proc
        try:
            out, err = proc.communicate(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate(timeout=10)
            timed_out = True
        finally:
            self._local = None
        rc = proc.returncode if not timed_out else 124
        return ProbeResult(command, rc, out, err, timed_out=timed_out)

    def command(
        self, host: str | None, command: str, timeout: float, env: Mapping[str, str] | None = None
    ) -> tuple[ProbeResult, str]:
        """Run a step's command here or on ``host``; ``env`` holds its template values (``ITOPS_VAR_*``)."""
        shown = show_command(command, env or {})
        if host is None:
            return self.local(command, timeout, env), f"here: {shown}"
        return self.remote(host, command, timeout, env), f"{self.describe(host)}: {shown}"

    # -- steps --------------------------------------------------------------------------------
    def run(self, step: Step) -> StepResult:
        started = time.time()
        t0 = time.monotonic()
        try:
            result = self._dispatch(step)
        except (HostUnreachable, AuthFailed, HostKeyRejected) as exc:
            result = StepResult(Status.UNREACHABLE, f"could not reach the host: {exc}")
        except TransportError as exc:
            result = StepResult(Status.ERROR, f"transport error: {exc}")
        except ItopsError as exc:
            result = StepResult(Status.ERROR, str(exc))
        result.started = started
        result.seconds = time.monotonic() - t0
        if self.stop.is_set() and result.status is not Status.PASS:
            result.message += " (the drill was interrupted)"
        return result

    def _dispatch(self, step: Step) -> StepResult:
        spec = step.spec
        if spec.run is not None or spec.local is not None:
            host = spec.host if spec.run is not None else None
            command = spec.run if spec.run is not None else spec.local
            assert command is not None
            res, source = self.command(host, command, step.timeout, dict(step.env))
            return _command_result(res, source, step.timeout, expect_rc=0, expect_output=None)
        if spec.check is not None:
            return self._poll(
                spec.check,
                attempts=step.retries + 1,
                interval=step.interval,
                per_try=step.timeout,
                total=None,
                env=dict(step.env),
            )
        if spec.wait_for is not None:
            return self._poll(
                spec.wait_for,
                attempts=max(1, step.retries + 1),
                interval=step.interval,
                per_try=min(step.timeout, 10.0),
                total=step.timeout,
                env=dict(step.env),
            )
        if spec.manual is not None:
            return self._manual(step)
        if spec.restore is not None:
            if self.restore_fn is None:
                return StepResult(Status.ERROR, "restore steps need an inventory (-i)")
            return self.restore_fn(step, self)
        raise AssertionError(step.action)

    def _poll(
        self,
        cond: Condition,
        *,
        attempts: int,
        interval: float,
        per_try: float,
        total: float | None,
        env: Mapping[str, str] | None = None,
    ) -> StepResult:
        deadline = time.monotonic() + total if total is not None else None
        last = StepResult(Status.FAIL, "not evaluated")
        for attempt in range(1, attempts + 1):
            budget = per_try if deadline is None else max(0.1, min(per_try, deadline - time.monotonic()))
            last = self.evaluate(cond, budget, env)
            last.attempts = attempt
            if last.status is Status.PASS or last.status is Status.UNREACHABLE or self.stop.is_set():
                break
            if deadline is not None and time.monotonic() + interval >= deadline:
                last.message += f" (gave up after {attempt} attempt(s) within {total:g}s)"
                break
            if attempt < attempts:
                self.stop.wait(interval)
        else:
            if attempts > 1:
                last.message += f" (after {attempts} attempts)"
        return last

    def evaluate(self, cond: Condition, timeout: float, env: Mapping[str, str] | None = None) -> StepResult:
        """One evaluation of a condition (``env``: the step's template values)."""
        if cond.command is not None:
            res, source = self.command(cond.host, cond.command, timeout, env)
            return _command_result(res, source, timeout, cond.expect_rc, cond.expect_output)
        if cond.tcp is not None:
            address, port, want = self.address(cond.tcp.host), int(cond.tcp.port), cond.tcp.state
            source = f"tcp connect {cond.tcp.host} ({address}:{port})"
            try:
                with socket.create_connection((address, port), timeout=min(timeout, 10.0)):
                    state, why = "open", ""
            except OSError as exc:
                state, why = "closed", f": {exc.strerror or exc}"
            status = Status.PASS if state == want else Status.FAIL
            return StepResult(
                status,
                f"port {address}:{port} is {state}{why if state != want else ''}"
                + ("" if state == want else f", expected {want}"),
                source,
                observed=state,
                expected=want,
            )
        assert cond.http is not None
        return _http(cond.http.url, cond.http.status, cond.http.contains, min(timeout, cond.http.timeout))

    def _manual(self, step: Step) -> StepResult:
        prompt = str(step.spec.manual)
        answer, who = self.answers.get(step.name), "--answer"
        if answer is None and step.spec.answer is not None:
            answer, who = step.spec.answer, "the playbook's recorded answer"
        if answer is None and self.yes:
            answer, who = "yes", "--yes"
        if answer is None and self.prompt is not None:
            answer, who = self.prompt(prompt), "the operator at the prompt"
        source = f"manual: {prompt}"
        if answer is None:
            return StepResult(
                Status.ERROR,
                f"no operator answer: run it at a terminal, or give --yes / --answer {step.name!r}=yes",
                source,
            )
        text = answer.strip()
        observed = f"{text!r} (from {who})"
        if text.lower() in _NO:
            return StepResult(
                Status.FAIL, f"operator answered {text!r}: stopped", source, observed=observed, expected="yes"
            )
        if not text:
            return StepResult(Status.FAIL, "empty operator answer", source, observed=observed, expected="yes")
        return StepResult(Status.PASS, f"confirmed: {text}", source, observed=observed, expected="yes")


_ENV_NAME = re.compile(r"^ITOPS_VAR_[A-Za-z0-9_]+$")


def with_env(batch: BatchScript, env: Mapping[str, str]) -> BatchScript:
    """The batch with a step's template values exported at its top, where we write every character.

    The values are quoted by :func:`shlex.quote` in plain assignments at the top of the script
    (a context itops controls, not the author's command); the command only refers to them as
    ``"${ITOPS_VAR_x}"``. The script goes over the SSH channel's stdin, never argv.
    """
    if not env:
        return batch
    lines = []
    for name, value in sorted(env.items()):
        if not _ENV_NAME.match(name):
            raise ValueError(f"bad template variable name {name!r}")
        lines.append(f"{name}={shlex.quote(value)}; export {name}\n")
    return dataclasses.replace(batch, script="".join(lines).encode() + batch.script)


def _command_result(
    res: ProbeResult, source: str, timeout: float, expect_rc: int, expect_output: str | None
) -> StepResult:
    output = _excerpt(res)
    if res.timed_out:
        return StepResult(
            Status.FAIL,
            f"timed out after {timeout:g}s",
            source,
            output,
            "timed out",
            f"rc {expect_rc} within {timeout:g}s",
        )
    if res.rc is None:
        return StepResult(Status.ERROR, f"did not run: {res.error or 'unknown error'}", source, output)
    expected = f"rc {expect_rc}" + (f", output matching /{expect_output}/" if expect_output else "")
    if res.rc != expect_rc:
        first = next((ln for ln in res.err_text.splitlines() if ln.strip()), "")
        tail = f": {first.strip()[:200]}" if first else ""
        return StepResult(
            Status.FAIL, f"exited {res.rc}, expected {expect_rc}{tail}", source, output, f"rc {res.rc}", expected
        )
    if expect_output is not None and not re.search(expect_output, res.text, re.M):
        return StepResult(
            Status.FAIL,
            f"output does not match /{expect_output}/",
            source,
            output,
            f"rc {res.rc}, output {res.text.strip()[:80]!r}",
            expected,
        )
    return StepResult(Status.PASS, f"ok (rc {res.rc})", source, output, f"rc {res.rc}", expected)


def _http(url: str, status: int | list[int], contains: str | None, timeout: float) -> StepResult:
    wanted = [status] if isinstance(status, int) else list(status)
    source = f"HTTP GET {url}"
    expected = f"status {'/'.join(map(str, wanted))}" + (f", body containing {contains!r}" if contains else "")
    if not url.startswith(("http://", "https://")):
        return StepResult(Status.ERROR, f"not an http(s) URL: {url}", source)
    request = urllib.request.Request(url, headers={"User-Agent": "itops-drill"})  # noqa: S310 - scheme checked
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            code, body = response.status, response.read(1 << 20)
    except urllib.error.HTTPError as exc:
        code, body = exc.code, exc.read(1 << 16) if exc.fp else b""
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return StepResult(
            Status.FAIL, f"no HTTP answer from {url}: {reason}", source, observed="no answer", expected=expected
        )
    text = body.decode("utf-8", "replace")
    if code not in wanted:
        return StepResult(Status.FAIL, f"HTTP {code} from {url}", source, text[:EXCERPT], f"status {code}", expected)
    if contains is not None and contains not in text:
        return StepResult(
            Status.FAIL,
            f"HTTP {code} but the body lacks {contains!r}",
            source,
            text[:EXCERPT],
            f"status {code}",
            expected,
        )
    return StepResult(Status.PASS, f"HTTP {code} from {url}", source, text[:EXCERPT], f"status {code}", expected)
