"""Evidence is what decided a verdict, never the whole probe output (issue 12, item 1a)."""

from __future__ import annotations

from itops.checkapi import ProbeResult
from itops.model import Finding, Status
from itops.planner import plan_host
from itops.registry import load_registry
from itops.runner import evaluate_host
from itops.transport.base import BatchOutcome

OS_RELEASE = b'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12"\n'


def _run_all_host_checks(stdout: bytes) -> list:
    checks = load_registry([]).select([], target="host")
    plan = plan_host("h1", checks, {}, 30.0)
    results = {
        i: ProbeResult(command=cmd, rc=0, stdout=OS_RELEASE if i == plan.os_index else stdout)
        for i, cmd in enumerate(plan.commands)
    }
    return evaluate_host("r1", plan, BatchOutcome(results=results), {}, 0.0)


def test_no_result_keeps_the_raw_probe_output():
    """Every host check on outputs it cannot use: the store gets the commands, never the output."""
    raw = b"RAW-OUTPUT-LINE-1 unrelated\nDB_PASSWORD=Raw-Canary-1\nRAW-OUTPUT-LINE-3\n"
    results = _run_all_host_checks(raw)
    assert len(results) > 50
    for r in results:
        assert "RAW-OUTPUT-LINE" not in r.evidence.excerpt, (r.check_id, r.evidence.excerpt[:200])
        assert r.evidence.source  # the command that was run stays


def test_a_finding_s_deciding_lines_are_its_excerpt():
    check = load_registry([]).get("accounts.login_defs_umask_restrictive")
    text = "# comment\nMAIL_DIR /var/mail\nUMASK 022\nPASS_MAX_DAYS 99999\n"
    plan = plan_host("h1", [check], {}, 30.0)
    results = {
        i: ProbeResult(command=cmd, rc=0, stdout=OS_RELEASE if i == plan.os_index else text.encode())
        for i, cmd in enumerate(plan.commands)
    }
    (r,) = evaluate_host("r1", plan, BatchOutcome(results=results), {}, 0.0)
    assert r.status is Status.FAIL
    assert r.evidence.excerpt == "UMASK 022" and r.evidence.observed == "UMASK 022"


def test_check_result_prefers_lines_over_a_producer_excerpt():
    check = load_registry([]).get("ssh.root_login_disabled")
    with_lines = Finding.failed("m", observed="o", lines=("PermitRootLogin yes",))
    assert check.result(with_lines, run_id="r", target="t", started=0.0, excerpt="x").evidence.excerpt == (
        "PermitRootLogin yes"
    )
    assert check.result(Finding.failed("m"), run_id="r", target="t", started=0.0, excerpt="x").evidence.excerpt == "x"


def test_check_result_sets_every_field_of_result_and_evidence():
    """Check.result builds Result and Evidence without their __init__ (itops.model.frozen_instance):
    every field must be there, so a field added to either must be added there too."""
    import dataclasses

    from itops.model import Evidence, Result

    check = load_registry([]).get("ssh.root_login_disabled")
    finding = Finding.failed("m", observed="o", expected="e", lines=("a", "b"), resource="x", metrics={"n": 1.0})
    r = check.result(finding, run_id="r", target="t", started=1.0, source="s", duration=0.5)
    assert set(vars(r)) == {f.name for f in dataclasses.fields(Result)}
    assert set(vars(r.evidence)) == {f.name for f in dataclasses.fields(Evidence)}
    assert r == Result(**vars(r)) and r.evidence == Evidence(**vars(r.evidence))
    assert (r.evidence.excerpt, r.resource, r.remediation, r.waiver) == ("a\nb", "x", check.remediation_for(), None)
