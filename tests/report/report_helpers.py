"""Runs for the report tests, written through the real Store (no mocks)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from itops.model import Evidence, Result, Run, Severity, Status, Waiver
from itops.store import Store

DATA = Path(__file__).parent / "data"
HOSTILE_TARGET = "<script>alert(1)</script>"
# ]]> ends a CDATA section, control characters are illegal in XML 1.0, quotes end attributes.
HOSTILE_EXCERPT = (
    "line1 ]]> <![CDATA[ x ]]>\x00\x01\x07\x1b[31mred\x1b[0m \"double\" 'single' </pre><script>alert(2)</script>"
)
SECRET = "password=hunter2-very-secret"

FW_SSH = {"cis-debian-12": ("5.1.20",), "nist-800-53": ("AC-6(2)", "IA-2"), "iso-27001": ("A.8.2",)}
FW_NET = {"cis-debian-12": ("3.3.1",), "nist-800-53": ("CM-7", "SC-7"), "iso-27001": ("A.8.20",)}

INVENTORY = """\
version: 1
groups:
  legacy: {hosts: [legacy1]}
  web: {}
hosts:
  web1: {address: 127.0.0.1, groups: [web]}
  web2: {address: 127.0.0.1, groups: [web]}
  db1: {address: 127.0.0.1}
  legacy1: {address: 127.0.0.1}
waivers:
  - {check: ssh.root_login_disabled, target: "group:legacy", justification: "vendor appliance, isolated VLAN",
     approver: "ciso@example.com", ticket: OPS-123, expires: 2099-01-31}
"""

_counter = itertools.count()


def result(
    target: str,
    check_id: str,
    status: Status,
    *,
    severity: Severity = Severity.HIGH,
    message: str = "",
    resource: str = "",
    evidence: Evidence | None = None,
    frameworks: dict[str, tuple[str, ...]] | None = None,
    waiver: Waiver | None = None,
) -> Result:
    """A result with sensible defaults; run_id is filled in by :func:`store_run`."""
    return Result(
        run_id="",
        check_id=check_id,
        target=target,
        resource=resource,
        status=status,
        severity=severity,
        title=f"Title of {check_id}",
        message=message or f"{check_id} is {status.value} on {target}",
        evidence=evidence
        or Evidence(source=f"probe {check_id}", excerpt="output line", observed="obs", expected="exp"),
        frameworks=FW_SSH if frameworks is None else frameworks,
        remediation=f"Fix {check_id}: edit the config and reload.",
        started=time.time(),
        duration=0.012,
        waiver=waiver,
    )


def store_run(
    store: Store,
    results: Sequence[Result],
    *,
    inventory: str = "",
    started: float | None = None,
    kind: str = "audit",
    state: str = "complete",
    inventory_lines: dict[str, int] | None = None,
) -> Run:
    """Write ``results`` as one finished run through the real Store and return its header."""
    started = started if started is not None else time.time()
    run_id = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started)) + f"-{next(_counter):06x}"
    run = Run(
        id=run_id,
        kind=kind,
        started=started,
        inventory=inventory,
        inventory_digest="ab" * 32,
        version="0.1.0",
        inventory_lines=inventory_lines or {},
    )
    writer = store.begin(run)
    for r in results:
        writer.add(replace(r, run_id=run_id, started=started))
    return writer.finish(state, 1 if any(r.status is Status.FAIL for r in results) else 0, {"web1": "SHA256:abc"})


WAIVER = Waiver(
    check="ssh.root_login_disabled",
    target="group:legacy",
    justification="vendor appliance, isolated VLAN",
    approver="ciso@example.com",
    expires="2099-01-31",
    ticket="OPS-123",
)


def sample_results() -> list[Result]:
    """Every status once or more, a hostile target and hostile evidence, and a secret to redact."""
    return [
        result("web1", "ssh.root_login_disabled", Status.PASS, severity=Severity.HIGH),
        result(
            "web1",
            "kernel.ip_forwarding_disabled",
            Status.FAIL,
            severity=Severity.MEDIUM,
            frameworks=FW_NET,
            evidence=Evidence("sysctl net.ipv4.ip_forward", f"net.ipv4.ip_forward = 1\n{SECRET}", "1", "0"),
        ),
        result("web2", "kernel.ip_forwarding_disabled", Status.PASS, severity=Severity.MEDIUM, frameworks=FW_NET),
        result("db1", "ssh.root_login_disabled", Status.ERROR, message="could not assess: sshd -T timed out"),
        result(HOSTILE_TARGET, "ssh.root_login_disabled", Status.UNREACHABLE, message="connect timed out"),
        result(
            "web2",
            "ssh.root_login_disabled",
            Status.FAIL,
            severity=Severity.CRITICAL,
            message='PermitRootLogin is "yes" <b>bold</b> | pipe `tick`',
            evidence=Evidence("sshd -T", HOSTILE_EXCERPT, 'permitrootlogin "yes"', "no"),
        ),
        result("web2", "services.cron_enabled", Status.SKIPPED, severity=Severity.LOW, frameworks={}),
        result("legacy1", "ssh.root_login_disabled", Status.WAIVED, waiver=WAIVER),
        result("web1", "storage.tmp_noexec", Status.FAIL, severity=Severity.LOW, resource="/tmp", frameworks=FW_NET),
    ]


def many_results(n: int) -> list[Result]:
    """``n`` results over n/20 hosts and 20 checks with a realistic status mix."""
    statuses = [Status.PASS] * 14 + [Status.FAIL] * 3 + [Status.ERROR, Status.SKIPPED, Status.WAIVED]
    checks = [f"pack{c % 4}.check_{c:02d}" for c in range(20)]
    out = []
    for i in range(n):
        host, check = f"host{i // 20:04d}", checks[i % 20]
        status = statuses[(i * 7 + i // 20) % len(statuses)]
        if (i // 20) % 97 == 5:
            status = Status.UNREACHABLE
        out.append(
            result(
                host,
                check,
                status,
                severity=list(Severity)[i % 5],
                frameworks={
                    "cis-debian-12": (f"{i % 20 // 4 + 1}.{i % 4 + 1}",),
                    "nist-800-53": (f"CM-{i % 9 + 1}",),
                    "iso-27001": (f"A.8.{i % 30 + 1}",),
                },
                evidence=Evidence(f"probe {check}", f"key value {i}\nother line", "observed", "expected"),
                waiver=WAIVER if status is Status.WAIVED else None,
            )
        )
    return out
