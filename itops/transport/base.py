"""What every host transport offers the runner: run one batch script, report frames."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from itops.errors import TransportError
from itops.facts import ProbeResult
from itops.transport.batch import DEFAULT_MAX_PROBE_OUTPUT, PRELUDE_EXITS, BatchScript, FrameParser

#: pump_frames' reason when the output stream ended (EOF) before the END frame
STREAM_ENDED = "connection closed before the batch finished"
#: the command a transport runs the batch with, by the host's ``sudo`` setting
BATCH_COMMAND = {False: "sh -s", True: "sudo -n sh -s"}
# sudo's own stderr lines that say nothing about why it refused (the host's name not resolving)
_SUDO_NOISE = re.compile(r"^sudo: unable to resolve host ")
_QUOTED_CHARS = 400
#: what a transport keeps of the batch script's own stderr (the probes' stderr is in their frames)
STDERR_KEEP = 64 * 1024


class StderrTail:
    """The last :data:`STDERR_KEEP` bytes of a stream that may be endless."""

    def __init__(self) -> None:
        self._data = bytearray()

    def add(self, data: bytes) -> None:
        self._data += data
        if len(self._data) > 2 * STDERR_KEEP:
            del self._data[:-STDERR_KEEP]

    def bytes(self) -> bytes:
        return bytes(self._data[-STDERR_KEEP:])


@dataclass
class BatchOutcome:
    """The probes' results by frame index, plus what the script itself said."""

    results: dict[int, ProbeResult]
    exit_status: int | None = None
    stderr: bytes = b""
    complete: bool = True
    problem: str = ""  # why not complete
    timings: dict[str, float] = field(default_factory=dict)


class HostConnection(Protocol):
    """An open connection to one host, reused for the whole run."""

    host_key_fingerprint: str

    def run_batch(
        self,
        batch: BatchScript,
        *,
        idle_timeout: float,
        total_timeout: float,
        max_output: int = DEFAULT_MAX_PROBE_OUTPUT,
    ) -> BatchOutcome: ...

    def is_active(self) -> bool:
        """Whether the connection can still run a batch (a shared one is reopened when not)."""
        ...

    def close(self) -> None: ...


def pump_frames(
    batch: BatchScript,
    read: Callable[[float], bytes | None],
    *,
    idle_timeout: float,
    total_timeout: float,
    max_output: int = DEFAULT_MAX_PROBE_OUTPUT,
) -> tuple[FrameParser, str]:
    """Read the batch's stdout until the END frame, EOF, or a deadline.

    ``read(wait)`` returns bytes, ``b""`` at EOF, or ``None`` when nothing came
    within ``wait`` seconds. The idle deadline restarts with each finished probe,
    so a long pack on a slow host is fine while one hung probe is not.
    Each probe may send ``max_output`` bytes (stdout and stderr together); the rest of an
    over-size probe's output is read and dropped (see :class:`FrameParser`), so memory stays
    bounded while the batch's other probes still report.
    Returns the parser and, when it stopped early, why.
    """
    parser = FrameParser(batch, max_output)
    start = time.monotonic()
    last_progress = start
    seen = 0
    while not parser.finished:
        now = time.monotonic()
        if now - last_progress > idle_timeout:
            return parser, f"timed out after {idle_timeout:.0f}s without output"
        if now - start > total_timeout:
            return parser, f"timed out: batch ran over {total_timeout:.0f}s"
        chunk = read(min(0.5, max(0.01, idle_timeout - (now - last_progress))))
        if chunk is None:
            continue
        if chunk == b"":
            return parser, STREAM_ENDED
        parser.feed(chunk)
        if len(parser.results) != seen:
            seen = len(parser.results)
            last_progress = time.monotonic()
    return parser, ""


def stream_end_problem(parser: FrameParser, exit_status: int | None, stderr: bytes, *, user: str, sudo: bool) -> str:
    """What to report when the batch's output ended before its END frame.

    When not one probe reported, the script never ran (sudo refused, no sudo, a login shell that
    does not run commands): raise TransportError with a message built from the exit status and
    what the shell or sudo wrote to stderr, so every check gets that reason, not "connection lost".
    Otherwise return the problem for the probes that never reported, naming the exit status.
    """
    if not parser.results:
        raise TransportError(explain_unstarted_batch(exit_status, stderr, parser.preamble, user=user, sudo=sudo))
    said = _quote(stderr)
    status = "no exit status" if exit_status is None else f"exit {exit_status}"
    return f"{STREAM_ENDED} ({status}{': ' + said if said else ''})"


def explain_unstarted_batch(
    exit_status: int | None, stderr: bytes, stdout: bytes = b"", *, user: str, sudo: bool
) -> str:
    """A message a user can act on for a batch script that ended before its first probe reported."""
    text = stderr.decode("utf-8", "replace")
    said = _quote(stderr) or _quote(stdout)
    quoted = f" ({said})" if said else ""
    if sudo and (exit_status == 127 or re.search(r"\bsudo: (command )?not found", text)):
        return (
            f"sudo not found: sudo is not installed (or not on {user}'s login PATH) on this host{quoted}; "
            f"`sudo: true` runs the probes with `sudo -n sh -s`: install sudo, or set `sudo: false` "
            f"(checks that need root then report ERROR)"
        )
    if sudo and re.search(r"\bsudo: (a password is required|a terminal is required)", text):
        return (
            # no "password:" in the text: the store's redaction would take the next word for a secret
            f"sudo wants a password for {user}{quoted}, so {user} may not run sudo without one: it has no "
            f"sudoers entry, or one without NOPASSWD (sudo does not say which). itops runs the probes with "
            f"`sudo -n` and never types a password, so give {user} passwordless sudo "
            f"(`{user} ALL=(ALL) NOPASSWD: ALL` in /etc/sudoers.d) or set `sudo: false`"
        )
    if sudo and re.search(r"\b(requiretty|must have a tty)\b", text):
        return (
            f"sudo requires a terminal (Defaults requiretty){quoted}; itops runs the probes with `sudo -n` "
            f"without a terminal: add `Defaults:{user} !requiretty` to sudoers"
        )
    if sudo and re.search(r"^sudo: ", text, re.M):
        return f"sudo refused to run the probe script as root for {user} (exit {exit_status}){quoted}"
    status = "without an exit status" if exit_status is None else f"with exit {exit_status}"
    why = PRELUDE_EXITS.get(exit_status or 0, "")
    return (
        f"the probe script ended {status} before any probe ran"
        + (f": {why}" if why else "")
        + (quoted or " (no output)")
        + f"; command `{BATCH_COMMAND[sudo]}` as {user}"
    )


def _quote(output: bytes) -> str:
    """Output lines joined into one short line, sudo's irrelevant warnings left out when others remain."""
    lines = [ln.strip() for ln in output.decode("utf-8", "replace").splitlines() if ln.strip()]
    useful = [ln for ln in lines if not _SUDO_NOISE.match(ln)] or lines
    text = "; ".join(useful)
    return text if len(text) <= _QUOTED_CHARS else "..." + text[-_QUOTED_CHARS:]
