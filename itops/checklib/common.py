"""Helpers every host check pack uses: probe failures as ERROR findings, modes, shells.

A probe that did not produce trustworthy output must end in ERROR
("could not assess: ..."), never in PASS or FAIL; :func:`probe_error` builds that
finding with a one-line reason a human can act on.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence

from itops.checkapi import Facts, Probe, ProbeResult
from itops.model import Finding, Status

__all__ = [
    "NOLOGIN_SHELLS",
    "ProbeOutputError",
    "first_stderr_line",
    "format_mode",
    "get_result",
    "is_login_shell",
    "mode_excess",
    "parse_mode",
    "probe_error",
    "summarize",
]


class ProbeOutputError(ValueError):
    """Probe output that cannot be trusted: truncated, malformed, or not what the probe prints."""


#: Shell basenames that refuse interactive logins.
NOLOGIN_SHELLS = frozenset({"nologin", "false"})

_MODE_RE = re.compile(r"^[0-7]{1,5}$")


def first_stderr_line(result: ProbeResult, limit: int = 200) -> str:
    """The first non-empty line of the probe's stderr, truncated, or ""."""
    for line in result.err_text.splitlines():
        if line.strip():
            return line.strip()[:limit]
    return ""


def probe_error(result: ProbeResult | None, label: str = "", *, resource: str = "") -> Finding:
    """An ERROR finding for a probe that did not run cleanly.

    ``label`` names what was being read (``/etc/shadow``, ``sshd -T``) and replaces the
    probe's full command in the message, which for multi-line probes is unreadable.
    """
    if result is None:
        reason = f"no probe result for {label or 'a required probe'} (runner did not collect it)"
    else:
        what = label or f"`{result.command}`"
        detail = first_stderr_line(result)
        if result.timed_out:
            reason = f"{what} timed out"
        elif result.rc is None:
            reason = f"{what} did not run: {result.error or 'unknown error'}"
        elif result.command_missing:
            reason = f"{what}: command not found" + (f" ({detail})" if detail else "")
        elif detail:
            reason = detail if label and label in detail else f"{what}: {detail}"
        else:
            reason = f"{what} exited {result.rc}"
    return Finding(Status.ERROR, f"could not assess: {reason}", observed=reason, resource=resource)


def get_result(facts: Facts, probe: Probe) -> ProbeResult | None:
    """The result of ``probe`` on this target, or None when the runner did not provide it."""
    return facts.get(probe.name)


def parse_mode(text: str) -> int:
    """An octal permission string (``"644"``, ``"0640"``, ``"4755"``) as an int; ValueError otherwise."""
    text = text.strip()
    if not _MODE_RE.match(text):
        raise ValueError(f"not an octal file mode: {text!r}")
    return int(text, 8)


def format_mode(mode: int) -> str:
    """A mode as four octal digits (``0644``, ``4755``)."""
    return f"{mode:04o}"


def mode_excess(mode: int, max_mode: int) -> int:
    """Permission bits set in ``mode`` that ``max_mode`` does not allow (0 when at least as strict).

    Special bits (setuid, setgid, sticky) count too: a 4755 file is not "0755 or stricter".
    """
    return mode & 0o7777 & ~max_mode


def is_login_shell(shell: str) -> bool:
    """True when ``shell`` would give an interactive login.

    An empty shell field means /bin/sh to login(1) and sshd, so it counts as a login shell.
    """
    shell = shell.strip()
    if not shell:
        return True
    return os.path.basename(shell) not in NOLOGIN_SHELLS


def summarize(items: Sequence[str] | Iterable[str], limit: int = 5) -> str:
    """``a, b, c`` or ``a, b, c, ... (12 in all)`` for one-line messages."""
    seq = list(items)
    if len(seq) <= limit:
        return ", ".join(seq)
    return ", ".join(seq[:limit]) + f", ... ({len(seq)} in all)"
