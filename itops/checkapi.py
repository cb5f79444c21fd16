"""The API check packs are written against: checks, probes and the facts they evaluate.

A host check declares metadata, the probes (remote shell commands) it needs and a
pure ``evaluate(facts, params)`` function. It never opens a connection, prints or
exits: the runner collects every probe a host needs in one batched exec and hands
the outputs to each check as :class:`Facts`.

How probes run: each probe is one POSIX sh command, run on the host as
``sh -c COMMAND`` with ``LC_ALL=C``, ``PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin``,
stdin from /dev/null, cwd ``/``, under ``timeout`` (rc 124 → ``timed_out``). All probes of
one host go in one batched script (itops.transport.batch); rc 127 means command not found.
A check whose probe failed must return ERROR ("could not assess: ..."), never PASS.

Writing a check::

    SSHD = Probe("sshd_effective", "sshd -T")

    @host_check(
        id="ssh.root_login_disabled",
        title="SSH root login is disabled",
        severity=Severity.HIGH,
        rationale="...", remediation="Set `PermitRootLogin no` in /etc/ssh/sshd_config",
        frameworks={"cis": ["5.2.7"], "nist-800-53": ["AC-6(2)"], "iso-27001": ["A.8.2"]},
        probes=[SSHD],
        params={"allowed": ["no"]},
    )
    def root_login_disabled(facts: Facts, params: Params) -> Finding: ...
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeGuard

from pydantic import BaseModel, ConfigDict, Field, field_validator

from itops.model import Finding, Severity, Status

__all__ = [
    "FRAMEWORKS",
    "Check",
    "CheckMeta",
    "Facts",
    "Finding",
    "Params",
    "Probe",
    "ProbeResult",
    "Severity",
    "Status",
    "host_check",
    "os_family",
    "parse_os_release",
    "quote",
]

quote = shlex.quote

#: Framework keys every check maps to (report sections use these names).
FRAMEWORKS = ("cis", "nist-800-53", "iso-27001")

CHECK_ID_RE = re.compile(r"^[a-z0-9]+(\.[a-z0-9_]+)+$")

Params = Mapping[str, Any]
TargetKind = Literal["host", "aws", "backup"]


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of one probe on one host: a failed command is data, not an exception."""

    command: str
    rc: int | None  # None when the probe never finished (timeout, connection lost)
    stdout: bytes = b""
    stderr: bytes = b""
    timed_out: bool = False
    error: str = ""  # why it did not finish, when rc is None

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    @property
    def err_text(self) -> str:
        return self.stderr.decode("utf-8", "replace")

    @property
    def ok(self) -> bool:
        return self.rc == 0

    @property
    def command_missing(self) -> bool:
        """True when the shell reported the command as not found (rc 127)."""
        return self.rc == 127

    def problem(self) -> str:
        """A one-line reason this probe's output cannot be trusted, for ERROR messages."""
        if self.timed_out:
            return f"`{self.command}` timed out"
        if self.rc is None:
            return f"`{self.command}` did not run: {self.error or 'unknown error'}"
        if self.command_missing:
            return f"`{self.command}`: command not found"
        first = self.err_text.strip().splitlines()
        return f"`{self.command}` exited {self.rc}" + (f": {first[0][:200]}" if first else "")


@dataclass(frozen=True)
class Probe:
    """A POSIX sh command a check needs run on the host.

    ``command`` is a string or a function of the check's resolved params returning
    one; any param that reaches the command must go through :func:`quote`. Checks
    whose probes render to the same command share one execution.
    """

    name: str
    command: str | Callable[[Params], str]
    timeout: float | None = None  # per-probe override of the host's command timeout

    def render(self, params: Params) -> str:
        return self.command(params) if callable(self.command) else self.command


@dataclass(frozen=True)
class Facts:
    """What a check's evaluate function sees: probe results by probe name, and the target."""

    target: str
    probes: Mapping[str, ProbeResult]
    os: Mapping[str, str] = field(default_factory=dict)  # parsed /etc/os-release
    family: str = ""  # os_family(os): debian, rhel, suse, alpine, arch or ""
    vars: Mapping[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> ProbeResult:
        return self.probes[name]

    def get(self, name: str) -> ProbeResult | None:
        return self.probes.get(name)


class CheckMeta(BaseModel):
    """Metadata every check must carry; validated when the registry loads the check."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    title: str = Field(min_length=5)
    severity: Severity
    rationale: str = Field(min_length=10)
    remediation: str = Field(min_length=5)
    frameworks: dict[str, tuple[str, ...]]
    target: TargetKind = "host"
    os_families: tuple[str, ...] = ()  # empty: any; else e.g. ("debian", "rhel")
    params: dict[str, Any] = Field(default_factory=dict)
    tags: tuple[str, ...] = ()

    @field_validator("id")
    @classmethod
    def _id_shape(cls, v: str) -> str:
        if not CHECK_ID_RE.match(v):
            raise ValueError("check id must look like domain.subject_property (lowercase, dots, underscores)")
        return v

    @field_validator("frameworks")
    @classmethod
    def _frameworks(cls, v: dict[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
        unknown = set(v) - set(FRAMEWORKS)
        if unknown:
            raise ValueError(f"unknown framework(s) {sorted(unknown)}; use {list(FRAMEWORKS)}")
        missing = [f for f in ("nist-800-53", "iso-27001") if not v.get(f)]
        if missing:
            raise ValueError(f"missing framework references for {missing}")
        return v


Evaluate = Callable[[Facts, Params], "Finding | Iterable[Finding]"]


@dataclass(frozen=True)
class Check:
    """A registered check: metadata, the probes it needs, and its pure evaluate function."""

    meta: CheckMeta
    probes: tuple[Probe, ...]
    evaluate_fn: Evaluate
    source: str = ""  # file it was loaded from
    description: str = ""  # the evaluate function's docstring

    @property
    def id(self) -> str:
        return self.meta.id

    def resolve_params(self, variables: Mapping[str, Any]) -> dict[str, Any]:
        """Parameter defaults overridden by inventory vars of the same name (type-checked)."""
        resolved: dict[str, Any] = {}
        for name, default in self.meta.params.items():
            value = variables.get(name, default)
            resolved[name] = _coerce_param(self.id, name, value, default)
        return resolved

    def evaluate(self, facts: Facts, params: Params | None = None) -> list[Finding]:
        """Run the evaluate function and normalise its output to a list of findings."""
        out = self.evaluate_fn(facts, params if params is not None else dict(self.meta.params))
        findings = [out] if isinstance(out, Finding) else list(out)
        if not findings:
            raise ValueError(f"check {self.id} returned no finding")
        for f in findings:
            if not isinstance(f, Finding):
                raise TypeError(f"check {self.id} returned {type(f).__name__}, not Finding")
        return findings


def _coerce_param(check_id: str, name: str, value: Any, default: Any) -> Any:
    if default is None or value is default:
        return value
    # bool is an int subclass; check it first so "yes"/1 don't slip through as bools
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, int) and isinstance(value, int) and not isinstance(value, bool):
        return value
    elif isinstance(default, float) and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    elif isinstance(default, str) and isinstance(value, str):
        return value
    elif isinstance(default, list | tuple) and isinstance(value, list | tuple):
        return list(value)
    elif isinstance(default, dict) and isinstance(value, dict):
        return value
    raise ValueError(
        f"var {name!r} for {check_id} must be {type(default).__name__}, got {type(value).__name__} {value!r}"
    )


def host_check(
    *,
    probes: Sequence[Probe],
    **meta: Any,
) -> Callable[[Evaluate], Check]:
    """Declare a host check; the decorated evaluate function becomes a :class:`Check`.

    Metadata is validated by the registry at load time (not here) so one broken
    check in a user pack is reported and skipped instead of failing the import.
    """

    def wrap(fn: Evaluate) -> Check:
        meta.setdefault("target", "host")
        return _PendingCheck(meta=dict(meta), probes=tuple(probes), fn=fn)  # type: ignore[return-value]

    return wrap


@dataclass
class _PendingCheck:
    """A declared but not yet validated check (the registry turns it into a Check)."""

    meta: dict[str, Any]
    probes: tuple[Probe, ...]
    fn: Evaluate

    def build(self, source: str) -> Check:
        return Check(
            meta=CheckMeta(**self.meta),
            probes=self.probes,
            evaluate_fn=self.fn,
            source=source,
            description=(self.fn.__doc__ or "").strip(),
        )


def is_pending_check(obj: object) -> TypeGuard[_PendingCheck]:
    return isinstance(obj, _PendingCheck)


def parse_os_release(text: str) -> dict[str, str]:
    """Parse /etc/os-release (shell-style KEY=value lines) into a dict."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        try:
            parts = shlex.split(value)
        except ValueError:
            parts = [value.strip("\"'")]
        out[key.strip()] = parts[0] if parts else ""
    return out


_FAMILIES = {
    "debian": ("debian", "ubuntu", "raspbian", "linuxmint", "kali"),
    "rhel": ("rhel", "centos", "fedora", "rocky", "almalinux", "ol", "amzn"),
    "suse": ("suse", "opensuse", "sles", "opensuse-leap"),
    "alpine": ("alpine",),
    "arch": ("arch",),
}


def os_family(os_release: Mapping[str, str]) -> str:
    """The OS family (debian, rhel, suse, alpine, arch) from parsed os-release; "" when unknown."""
    ids = [os_release.get("ID", "").lower(), *os_release.get("ID_LIKE", "").lower().split()]
    for family, members in _FAMILIES.items():
        if any(i in members for i in ids if i):
            return family
    return ""
