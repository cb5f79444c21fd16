"""Reading running kernel parameters from /proc/sys and judging them against expected values.

The kernel checks read the *running* values (what the kernel enforces now), not the
files under /etc/sysctl.d that only apply at the next boot or ``sysctl --system``.
One probe prints ``path=value`` for every parameter the kernel pack audits, so all
kernel checks of a host share a single execution.

Each parameter ends up in one of four states:

* ``ok``: read; its value is compared with the allowed values,
* ``absent``: the file does not exist (feature not built in, or IPv6 disabled),
* ``unreadable``: the file exists but could not be read,
* not reported at all: the probe output is truncated or garbage.

Only ``ok`` values can PASS; the others become ERROR (or SKIPPED for IPv6
parameters on a host without IPv6), never PASS.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from itops.checkapi import Facts, Probe, quote
from itops.model import Finding, Status

__all__ = [
    "ABSENT",
    "AUDITED_KEYS",
    "IPV6_DISABLE_KEY",
    "LIMITS_GLOBS",
    "UNREADABLE",
    "Expect",
    "SysctlReading",
    "evaluate_expectations",
    "hard_core_limit",
    "ipv6_disabled",
    "judge_proc_sys",
    "key_from_path",
    "parse_proc_sys",
    "proc_sys_path",
    "proc_sys_probe",
    "proc_sys_readings",
    "read_proc_sys_command",
]

UNREADABLE = "<unreadable>"
ABSENT = "<absent>"
IPV6_DISABLE_KEY = "net.ipv6.conf.all.disable_ipv6"

_KEY_RE = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_-]+)+$")
_LINE_RE = re.compile(r"^/proc/sys/(?P<path>[A-Za-z0-9_./-]+)=(?P<value>.*)$")

#: Every parameter the built-in kernel pack reads; one probe reads them all.
AUDITED_KEYS: tuple[str, ...] = (
    "kernel.randomize_va_space",
    "kernel.yama.ptrace_scope",
    "kernel.dmesg_restrict",
    "fs.suid_dumpable",
    "net.ipv4.ip_forward",
    "net.ipv4.conf.all.send_redirects",
    "net.ipv4.conf.default.send_redirects",
    "net.ipv4.icmp_ignore_bogus_error_responses",
    "net.ipv4.icmp_echo_ignore_broadcasts",
    "net.ipv4.conf.all.accept_redirects",
    "net.ipv4.conf.default.accept_redirects",
    "net.ipv4.conf.all.secure_redirects",
    "net.ipv4.conf.default.secure_redirects",
    "net.ipv4.conf.all.rp_filter",
    "net.ipv4.conf.default.rp_filter",
    "net.ipv4.conf.all.accept_source_route",
    "net.ipv4.conf.default.accept_source_route",
    "net.ipv4.conf.all.log_martians",
    "net.ipv4.conf.default.log_martians",
    "net.ipv4.tcp_syncookies",
    IPV6_DISABLE_KEY,
    "net.ipv6.conf.all.forwarding",
    "net.ipv6.conf.all.accept_redirects",
    "net.ipv6.conf.default.accept_redirects",
    "net.ipv6.conf.all.accept_source_route",
    "net.ipv6.conf.default.accept_source_route",
    "net.ipv6.conf.all.accept_ra",
    "net.ipv6.conf.default.accept_ra",
)


def proc_sys_path(key: str) -> str:
    """``net.ipv4.ip_forward`` -> ``/proc/sys/net/ipv4/ip_forward``."""
    if not _KEY_RE.match(key):
        raise ValueError(f"not a sysctl key: {key!r}")
    return "/proc/sys/" + key.replace(".", "/")


def key_from_path(path: str) -> str:
    """``/proc/sys/net/ipv4/ip_forward`` (or ``net/ipv4/ip_forward``) -> ``net.ipv4.ip_forward``."""
    return path.removeprefix("/proc/sys/").replace("/", ".")


def read_proc_sys_command(keys: Iterable[str]) -> str:
    """A POSIX sh command printing ``/proc/sys/...=value`` for each key (or the absent/unreadable marker).

    The value is captured with ``$(...)`` so an empty or newline-less file still
    ends its own line and cannot glue onto the next key's output.
    """
    paths = " ".join(quote(proc_sys_path(k)) for k in keys)
    return (
        f"for f in {paths}; do "
        f'if [ ! -e "$f" ]; then printf \'%s={ABSENT}\\n\' "$f"; '
        f'elif v=$(cat "$f" 2>/dev/null); then printf \'%s=%s\\n\' "$f" "$v"; '
        f"else printf '%s={UNREADABLE}\\n' \"$f\"; fi; done"
    )


def proc_sys_probe() -> Probe:
    """The shared probe reading every parameter in :data:`AUDITED_KEYS`."""
    return _PROC_SYS


_PROC_SYS = Probe("proc_sys", read_proc_sys_command(AUDITED_KEYS))


@dataclass(frozen=True)
class SysctlReading:
    """One kernel parameter as the probe reported it."""

    key: str
    state: Literal["ok", "absent", "unreadable"]
    value: str = ""


def parse_proc_sys(text: str) -> dict[str, SysctlReading]:
    """Parse the probe output into readings by key; lines that do not look like ``path=value`` are ignored."""
    out: dict[str, SysctlReading] = {}
    for raw in text.splitlines():
        m = _LINE_RE.match(raw.strip())
        if not m:
            continue
        key = key_from_path(m["path"])
        value = m["value"].strip()
        if value == ABSENT:
            out[key] = SysctlReading(key, "absent")
        elif value == UNREADABLE:
            out[key] = SysctlReading(key, "unreadable")
        else:
            out[key] = SysctlReading(key, "ok", " ".join(value.split()))
    return out


def proc_sys_readings(text: str) -> Mapping[str, SysctlReading]:
    """:func:`parse_proc_sys` as a read-only mapping (the form ``facts.parsed`` shares between checks)."""
    return MappingProxyType(parse_proc_sys(text))


def ipv6_disabled(readings: Mapping[str, SysctlReading]) -> bool | None:
    """True when the host has no IPv6 (stack absent or disabled), False when enabled, None when unknown."""
    r = readings.get(IPV6_DISABLE_KEY)
    if r is None or r.state == "unreadable":
        return None
    if r.state == "absent":
        return True
    return r.value == "1"


@dataclass(frozen=True)
class Expect:
    """A kernel parameter and the values that satisfy the check."""

    key: str
    allowed: tuple[str, ...]
    ipv6: bool = False  # an IPv6 parameter: not applicable when the host has no IPv6

    def describe(self) -> str:
        return f"{self.key}={'|'.join(self.allowed)}"


def evaluate_expectations(text: str, expects: Sequence[Expect]) -> Finding:
    """Judge the probe output against ``expects``: PASS only when every applicable value was read and allowed.

    FAIL when at least one value read is wrong (even if others could not be read: the
    wrong one is proof enough); ERROR when nothing is wrong but something could not be
    read; SKIPPED when every expectation is an IPv6 one and the host has no IPv6.
    """
    return _judge_readings(parse_proc_sys(text), expects)


def _judge_readings(readings: Mapping[str, SysctlReading], expects: Sequence[Expect]) -> Finding:
    no_ipv6 = ipv6_disabled(readings)
    wrong: list[str] = []
    unknown: list[str] = []
    good: list[str] = []
    skipped: list[str] = []
    for e in expects:
        if e.ipv6 and no_ipv6:
            skipped.append(e.key)
            continue
        r = readings.get(e.key)
        if r is None:
            unknown.append(f"{e.key} not reported by the probe")
        elif r.state == "absent":
            unknown.append(f"{e.key} does not exist in /proc/sys (kernel feature missing?)")
        elif r.state == "unreadable":
            unknown.append(f"{e.key} could not be read")
        elif r.value in e.allowed:
            good.append(f"{e.key}={r.value}")
        else:
            wrong.append(f"{e.key}={r.value}")
    expected = ", ".join(e.describe() for e in expects if e.key not in skipped)
    observed = ", ".join(wrong + good)
    note = f" (IPv6 disabled: {len(skipped)} IPv6 parameter(s) not applicable)" if skipped else ""
    if wrong:
        extra = f"; also could not assess: {'; '.join(unknown)}" if unknown else ""
        return Finding(Status.FAIL, f"{', '.join(wrong)} (expected {expected}){extra}", observed, expected)
    if unknown:
        return Finding(Status.ERROR, f"could not assess: {'; '.join(unknown)}", observed, expected)
    if not good:
        return Finding(Status.SKIPPED, "IPv6 is disabled on this host; these IPv6 parameters do not apply")
    return Finding(Status.PASS, f"{', '.join(good)}{note}", observed, expected)


# --- core dump limits (pam_limits) ------------------------------------------------------------

#: limits.conf first, then the drop-ins in name order: the order pam_limits reads them.
LIMITS_GLOBS: tuple[str, ...] = ("/etc/security/limits.conf", "/etc/security/limits.d/*.conf")


def hard_core_limit(files: Sequence[tuple[str, str]]) -> tuple[str, str] | None:
    """The last ``* hard core N`` (or ``* - core N``) entry across limits files: ``(value, "path: line")``.

    ``files`` are ``(path, text)`` in the order pam_limits reads them; None when no
    such entry exists (the kernel default, unlimited or the soft limit, then applies).
    """
    found: tuple[str, str] | None = None
    for path, text in files:
        for raw in text.splitlines():
            line = raw.split("#", 1)[0].strip()
            parts = line.split()
            if len(parts) == 4 and parts[0] == "*" and parts[1] in ("hard", "-") and parts[2] == "core":
                found = (parts[3], f"{path}: {line}")
    return found


def judge_proc_sys(facts: Facts, expects: Sequence[Expect]) -> Finding:
    """The verdict on running kernel parameters from the shared /proc/sys probe (ERROR when it did not run)."""
    r = facts.get(_PROC_SYS.name)
    if r is None:
        return Finding.error("could not assess: the /proc/sys probe did not run")
    if not r.ok:
        return Finding.error(f"could not assess: {r.problem()}")
    # parsed once per host: every kernel parameter check reads the same probe
    return _judge_readings(facts.parsed(_PROC_SYS, proc_sys_readings), expects)
