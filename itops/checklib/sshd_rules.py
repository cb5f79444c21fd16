"""Judging effective sshd settings: the shared evaluate logic of the ssh directive checks.

A check names the keywords it reads and a *judge*: a function of the settings that
returns a :class:`Verdict` (compliant or not, and what was observed, in words). The
global (effective) value gives one finding; every conditional ``Match`` block that
sets one of the keywords gives one more finding (resource ``Match ...``), so a
``PermitRootLogin yes`` hidden under ``Match Address 10.0.0.0/8`` is not missed.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from itops.checkapi import Facts, Params
from itops.checklib.common import summarize
from itops.checklib.sshd import (
    EffectiveSshdConfig,
    Setting,
    SshdNotInstalled,
    SshdUnavailable,
    load_sshd_config,
    parse_duration,
)
from itops.model import Finding, Status

__all__ = [
    "APPLY_SSHD_CHANGE",
    "MATCH_PARAM",
    "PSEUDO_ALGORITHMS",
    "Judge",
    "Verdict",
    "algorithms_allowed",
    "describe",
    "duration_between",
    "evaluate_sshd",
    "int_between",
    "one_of",
]

#: Appended to every sshd remediation: where a line must go for sshd to honour it.
APPLY_SSHD_CHANGE = (
    " sshd keeps the first value it reads, so put it in /etc/ssh/sshd_config.d/00-hardening.conf (read first on"
    " Debian/Ubuntu/RHEL 9) or above other occurrences, and fix conflicting lines in Match blocks; then"
    " `sshd -t && systemctl reload ssh` (`sshd` on RHEL/SUSE)."
)

#: The param every directive check takes: also judge values set in conditional Match blocks.
MATCH_PARAM: dict[str, object] = {"ssh_check_match_blocks": True}

#: Names that may appear in algorithm lists but are protocol markers, not algorithms.
PSEUDO_ALGORITHMS = ("ext-info-", "kex-strict-")

#: Keywords that legitimately take several arguments on one line.
_MULTI_ARG = frozenset({"authenticationmethods"})


@dataclass(frozen=True)
class Verdict:
    """A judge's answer: compliant or not, and the observation in words."""

    ok: bool
    observed: str


Judge = Callable[[Mapping[str, Setting]], Verdict]


def _where(s: Setting) -> str:
    if s.origin == "sshd -T":
        return ""
    if s.is_default:
        return " (OpenSSH default; not set in sshd_config)"
    return f" ({s.origin})"


def describe(display: str, s: Setting) -> str:
    """``PermitRootLogin is yes (/etc/ssh/sshd_config:3)`` — the value and where it comes from."""
    return f"{display} is {s.value}{_where(s)}"


def one_of(key: str, display: str, allowed: Collection[str]) -> Judge:
    """Compliant when the value (case-insensitive) is one of ``allowed``."""
    wanted = {a.lower() for a in allowed}

    def judge(settings: Mapping[str, Setting]) -> Verdict:
        s = settings[key]
        return Verdict(s.value.lower() in wanted, describe(display, s))

    return judge


def int_between(key: str, display: str, low: int, high: int) -> Judge:
    """Compliant when the value is an integer in [low, high]; ValueError when it is not a number."""

    def judge(settings: Mapping[str, Setting]) -> Verdict:
        s = settings[key]
        value = int(s.value.strip())
        return Verdict(low <= value <= high, describe(display, s))

    return judge


def duration_between(key: str, display: str, low: int, high: int) -> Judge:
    """Compliant when the time value (``90``, ``2m``) is within [low, high] seconds."""

    def judge(settings: Mapping[str, Setting]) -> Verdict:
        s = settings[key]
        seconds = parse_duration(s.value)
        shown = s.value if s.value.strip().isdigit() else f"{s.value} ({seconds}s)"
        return Verdict(low <= seconds <= high, f"{display} is {shown}{_where(s)}")

    return judge


def algorithms_allowed(key: str, display: str, allowed: Collection[str]) -> Judge:
    """Compliant when every algorithm in the effective list is in ``allowed``; names the others."""
    allow = {a.strip().lower() for a in allowed}

    def judge(settings: Mapping[str, Setting]) -> Verdict:
        s = settings[key]
        names = [a.strip() for a in s.value.split(",") if a.strip()]
        if not names:
            raise ValueError(f"empty {display} list")
        weak = [a for a in names if a.lower() not in allow and not a.lower().startswith(PSEUDO_ALGORITHMS)]
        if weak:
            return Verdict(False, f"{display} include {summarize(weak, 8)} (not in the allow-list){_where(s)}")
        return Verdict(True, f"{display} are all in the allow-list ({len(names)} enabled){_where(s)}")

    return judge


def basis(cfg: EffectiveSshdConfig) -> str:
    """What a message adds when the configuration came from the files rather than ``sshd -T``."""
    if cfg.source == "sshd -T":
        return ""
    return f" [from sshd_config files; {cfg.fallback_note}]" if cfg.fallback_note else " [from sshd_config files]"


def _extra_args_error(settings: Mapping[str, Setting], keys: Sequence[str]) -> Finding | None:
    for key in keys:
        s = settings[key]
        if len(s.args) > 1 and key not in _MULTI_ARG:
            return Finding.error(
                f"could not assess: {key} at {s.origin} has {len(s.args)} arguments; sshd rejects this line",
                observed=" ".join(s.args),
            )
    return None


def _judge(
    judge: Judge, settings: Mapping[str, Setting], keys: Sequence[str], expected: str, suffix: str, resource: str = ""
) -> Finding:
    bad = _extra_args_error(settings, keys)
    if bad is not None:
        return Finding(bad.status, bad.message, observed=bad.observed, resource=resource)
    try:
        verdict = judge(settings)
    except (ValueError, KeyError) as exc:
        shown = ", ".join(f"{k}={settings[k].value!r}" for k in keys if k in settings)
        return Finding.error(
            f"could not assess: cannot interpret {shown} ({exc})", observed=shown, expected=expected, resource=resource
        )
    if verdict.ok:
        return Finding(
            Status.PASS, verdict.observed + suffix, observed=verdict.observed, expected=expected, resource=resource
        )
    return Finding(
        Status.FAIL,
        f"{verdict.observed} (expected {expected}){suffix}",
        observed=verdict.observed,
        expected=expected,
        resource=resource,
    )


def sshd_config_or_finding(facts: Facts) -> EffectiveSshdConfig | list[Finding]:
    """The host's effective sshd configuration, or the one finding to report instead:
    SKIPPED when no OpenSSH server is installed, ERROR when no configuration source was usable."""
    try:
        return load_sshd_config(facts)
    except SshdNotInstalled as exc:
        return [Finding.skipped(str(exc))]
    except SshdUnavailable as exc:
        return [Finding.error(f"could not assess: {exc}", observed=str(exc))]


def evaluate_sshd(facts: Facts, params: Params, keys: Sequence[str], judge: Judge, expected: str) -> list[Finding]:
    """Findings for ``judge`` over ``keys``: the effective value, then each conditional Match block.

    ERROR (never PASS) when no configuration source was usable, when a keyword is not
    reported, or when a value cannot be interpreted.
    """
    cfg = sshd_config_or_finding(facts)
    if isinstance(cfg, list):
        return cfg
    missing = [k for k in keys if cfg.get(k) is None]
    if missing:
        return [
            Finding.error(
                f"could not assess: {cfg.source} does not report {', '.join(missing)} (OpenSSH older than 9.x?)",
                expected=expected,
            )
        ]
    settings = {k: s for k in keys if (s := cfg.get(k)) is not None}
    check_match = bool(params.get("ssh_check_match_blocks", True))
    note = ""
    if check_match and cfg.match_note:
        note = f" ({cfg.match_note})"
    findings = [_judge(judge, settings, keys, expected, basis(cfg) + note)]
    if not check_match:
        return findings
    seen: set[str] = set()
    for block in cfg.conditional:
        overlay = dict(settings)
        touched = False
        for key in keys:
            for d_block, s in cfg.overrides(key):
                if d_block is block:
                    overlay[key] = s
                    touched = True
        if not touched:
            continue
        resource = f"{block.label} ({block.file}:{block.line})"
        if resource in seen:
            continue
        seen.add(resource)
        f = _judge(judge, overlay, keys, expected, "", resource=resource)
        if f.status is Status.PASS:
            continue  # a compliant override adds nothing a reader needs
        findings.append(
            Finding(
                f.status,
                f"under '{block.label}': {f.message}",
                observed=f.observed,
                expected=expected,
                resource=resource,
            )
        )
    return findings
