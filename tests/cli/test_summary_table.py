"""The terminal summary (pure rendering of canned results): what a newcomer reads first."""

from __future__ import annotations

import time
from dataclasses import replace

from itops.cli.output import render_summary
from itops.model import Evidence, Result, Run, Severity, Status

FIX = "Allow SSH before switching to drop. " + "nft add rule inet filter input tcp dport 22 accept && " * 12


def _r(target: str, check: str, status: Status, message: str, severity: Severity = Severity.HIGH) -> Result:
    return Result(
        run_id="r",
        check_id=check,
        target=target,
        resource="",
        status=status,
        severity=severity,
        title=check,
        message=message,
        evidence=Evidence(),
        frameworks={},
        remediation=FIX,
        started=time.time(),
        duration=0.0,
    )


def test_every_check_error_for_one_reason_is_one_line() -> None:
    sudo = "could not assess: sudo refused: a password is required"
    results = [_r("web-c", f"x.check_{i}", Status.ERROR, sudo) for i in range(116)]
    results += [_r("web-a", "x.check_1", Status.PASS, "ok"), _r("web-a", "x.check_2", Status.ERROR, "timeout")]
    text = render_summary(Run(id="r", kind="audit", started=time.time()), results)
    lines = [ln for ln in text.splitlines() if "web-c" in ln]
    assert lines == [lines[0]] and f"ERROR (116 checks not assessed): {sudo}" in lines[0]
    assert "x.check_2 on web-a: timeout" in text  # a single error is still listed under NOT ASSESSED


def test_identical_failures_are_one_finding_with_its_hosts_and_the_fix_once() -> None:
    msg = "inbound traffic is not denied by default"
    results = [_r(f"web{i}", "services.firewall_default_deny", Status.FAIL, msg) for i in range(1, 42)]
    critical = _r("db1", "accounts.no_empty", Status.FAIL, "guest has an empty password", Severity.CRITICAL)
    results += [replace(critical, remediation="Lock the account: passwd -l NAME")]
    results += [replace(results[0], target="db1", message="only IPv4 is denied by default")]
    text = render_summary(Run(id="r", kind="audit", started=time.time()), results)
    assert text.count("fix: Allow SSH") == 1  # was once per host (43 times)
    assert text.count(msg) == 1 and "on 41 targets (web1, web2, web3" in text and "and 29 more" in text
    assert "only IPv4 is denied by default" in text
    first = next(ln for ln in text.splitlines() if ln.startswith("  FAIL"))
    assert "[critical] accounts.no_empty on db1" in first  # the critical finding comes first
    assert max(len(ln) for ln in text.splitlines()) < 400  # the long fix is cut, `checks show` has it whole
