"""Canned facts for check tests: build Facts from probe outputs and run checks through the registry."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from itops.checkapi import Facts, ProbeResult, os_family, parse_os_release
from itops.model import Finding, Status
from itops.registry import Registry, load_registry

ProbeSpec = tuple[int | None, str] | tuple[int | None, str, str] | ProbeResult

DEBIAN_12 = {"ID": "debian", "VERSION_ID": "12", "PRETTY_NAME": "Debian GNU/Linux 12 (bookworm)"}
RHEL_9 = {"ID": "rhel", "ID_LIKE": "fedora", "VERSION_ID": "9.4"}


def result(name: str, spec: ProbeSpec) -> ProbeResult:
    """A ProbeResult from ``(rc, stdout)``, ``(rc, stdout, stderr)`` or a ready ProbeResult."""
    if isinstance(spec, ProbeResult):
        return spec
    rc, stdout, *rest = spec
    stderr = rest[0] if rest else ""
    return ProbeResult(command=name, rc=rc, stdout=stdout.encode(), stderr=stderr.encode())


def timed_out(name: str = "probe") -> ProbeResult:
    return ProbeResult(command=name, rc=None, timed_out=True, error="timed out")


def not_found(name: str = "probe") -> ProbeResult:
    return ProbeResult(command=name, rc=127, stderr=f"sh: 1: {name}: not found\n".encode())


def make_facts(
    probes: Mapping[str, ProbeSpec],
    os_release: Mapping[str, str] | str | None = None,
    vars: Mapping[str, Any] | None = None,
    target: str = "host1",
) -> Facts:
    """Facts for one target: probe name → (rc, stdout[, stderr]) or ProbeResult."""
    if isinstance(os_release, str):
        osr = parse_os_release(os_release)
    else:
        osr = dict(os_release if os_release is not None else DEBIAN_12)
    return Facts(
        target=target,
        probes={name: result(name, spec) for name, spec in probes.items()},
        os=osr,
        family=os_family(osr),
        vars=dict(vars or {}),
    )


@cache
def registry() -> Registry:
    return load_registry(entry_point_packs=False)


def run_check(check_id: str, facts: Facts, **variables: Any) -> list[Finding]:
    """Evaluate a check the way the runner does: params resolved from vars, then evaluate."""
    check = registry().get(check_id)
    merged = {**facts.vars, **variables}
    return check.evaluate(facts, check.resolve_params(merged))


def statuses(findings: list[Finding]) -> list[Status]:
    return [f.status for f in findings]


def overall(findings: list[Finding]) -> Status:
    """The worst status among findings (ERROR > FAIL > PASS > SKIPPED) — what a reader sees first."""
    order = [Status.ERROR, Status.FAIL, Status.PASS, Status.SKIPPED]
    for status in order:
        if any(f.status is status for f in findings):
            return status
    raise AssertionError(f"unexpected statuses {statuses(findings)}")


# --------------------------------------------------------------------------- sshd

SSHD_T = "sshd_effective_config"
SSHD_FILES = "sshd_config_files"

#: ``sshd -T`` of a CIS-hardened OpenSSH 9.2 (Debian 12), keys as sshd prints them.
HARDENED_SSHD_T: dict[str, str] = {
    "port": "22",
    "addressfamily": "any",
    "listenaddress": "0.0.0.0:22",
    "usepam": "yes",
    "logingracetime": "60",
    "maxauthtries": "4",
    "maxsessions": "10",
    "clientaliveinterval": "15",
    "clientalivecountmax": "3",
    "permitrootlogin": "no",
    "ignorerhosts": "yes",
    "hostbasedauthentication": "no",
    "pubkeyauthentication": "yes",
    "gssapiauthentication": "no",
    "passwordauthentication": "no",
    "kbdinteractiveauthentication": "no",
    "x11forwarding": "no",
    "permitemptypasswords": "no",
    "disableforwarding": "yes",
    "banner": "/etc/issue.net",
    "ciphers": "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr",
    "macs": "hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com",
    "kexalgorithms": "sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org",
    "loglevel": "VERBOSE",
    "maxstartups": "10:30:60",
    "permituserenvironment": "no",
    "authenticationmethods": "any",
}


def sshd_t(**overrides: str) -> str:
    """``sshd -T`` output: the hardened baseline with some keys changed (a value of "" drops the key)."""
    values = {**HARDENED_SSHD_T, **overrides}
    lines = [f"{k} {v}" for k, v in values.items() if v != ""]
    lines += ["hostkey /etc/ssh/ssh_host_ed25519_key", "acceptenv LANG", "acceptenv LC_*"]
    return "\n".join(lines) + "\n"


def files_dump(
    files: Mapping[str, str],
    includes: Mapping[str, list[str]] | None = None,
    *,
    meta: Mapping[str, str] | None = None,
    unreadable: Mapping[str, str] | None = None,
    missing: tuple[str, ...] = (),
    done: bool = True,
) -> str:
    """Output of the sshd files probe: each file (content, stat "mode uid gid"), include expansions, markers."""
    meta = meta or {}
    out: list[str] = []
    for path in missing:
        out.append(f"@MISSING\t{path}")
    for path, m in (unreadable or {}).items():
        out.append(f"@UNREADABLE\t{m}\t{path}")
    for path, content in files.items():
        out.append(f"@FILE\t{meta.get(path, '600 0 0')}\t{path}")
        out += ["|" + line for line in content.splitlines()]
        out.append(f"@ENDFILE\t{path}")
    for pattern, matches in (includes or {}).items():
        out.append(f"@INCLUDE\t{pattern}")
        out += [f"@MATCH\t{m}" for m in matches]
        out.append(f"@ENDINCLUDE\t{pattern}")
    if done:
        out.append("@DONE")
    return "\n".join(out) + "\n"


def sshd_facts(t: ProbeSpec | None = None, files: ProbeSpec | None = None, **kw: Any) -> Facts:
    """Facts with the two sshd probes; by default ``sshd -T`` hardened and the files dump a bare sshd_config."""
    probes: dict[str, ProbeSpec] = {
        SSHD_T: t if t is not None else (0, sshd_t()),
        SSHD_FILES: files if files is not None else (0, files_dump({"/etc/ssh/sshd_config": "PermitRootLogin no\n"})),
    }
    return make_facts(probes, **kw)


SSHD_T_NEEDS_ROOT: ProbeSpec = (255, "", "sshd: no hostkeys available -- exiting.\n")


# --------------------------------------------------------------------------- pack-level invariants


def assert_pack_ok(prefix: str, test_dir: Any) -> None:
    """Invariants every pack of this family keeps (run from one test per pack):

    * each check has NIST and ISO references, a remediation with a concrete action, a rationale;
    * each check id appears in a test file of the pack's test folder;
    * a probe name always means the same command, across the whole registry (the batch dedups by it);
    * a param name means one thing: every check using it has the same default.
    """
    from pathlib import Path

    reg = registry()
    pack = f"/checks/{prefix.rstrip('.')}/"
    mine = [c for c in reg if c.id.startswith(prefix) and pack in c.source.replace("\\", "/")]
    assert mine, f"no checks under {prefix}"
    tests_text = "\n".join(p.read_text() for p in Path(test_dir).glob("test_*.py"))
    problems: list[str] = []
    for c in mine:
        if f'"{c.id}"' not in tests_text:
            problems.append(f"{c.id}: no test mentions it")
        if len(c.meta.remediation) < 25 or not any(ch in c.meta.remediation for ch in "`/"):
            problems.append(f"{c.id}: remediation lacks the exact fix")
        if not c.description:
            problems.append(f"{c.id}: evaluate function has no docstring")
    commands: dict[str, set[str]] = {}
    defaults: dict[str, list[tuple[str, Any]]] = {}
    for c in reg:
        params = c.resolve_params({})
        for p in c.probes:
            commands.setdefault(p.name, set()).add(p.render(params))
        for name, default in c.meta.params.items():
            defaults.setdefault(name, []).append((c.id, default))
    for c in mine:
        for p in c.probes:
            if len(commands[p.name]) > 1:
                problems.append(f"{c.id}: probe name {p.name!r} is used with different commands")
        for name in c.meta.params:
            values = {repr(d) for _, d in defaults[name]}
            if len(values) > 1:
                users = [i for i, _ in defaults[name]]
                problems.append(f"{c.id}: param {name!r} has different defaults in {users}")
    assert not problems, "\n".join(problems)
