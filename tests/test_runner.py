"""Runner behaviour on this machine (``itops audit --local``): the same batch and evaluation as over SSH."""

from __future__ import annotations

import textwrap

from audit_helpers import by_target, run_audit, write_yaml

PACK = textwrap.dedent(
    """
    from itops.checkapi import Finding, Probe, Severity, host_check

    META = dict(severity=Severity.LOW, rationale="test-only check for runner behaviour",
                remediation="nothing to fix", frameworks={"nist-800-53": ["SI-4"], "iso-27001": ["A.8.16"]})

    @host_check(id="test.slow_probe_finishes", title="A slow probe with its own longer timeout",
                probes=[Probe("slow", "sleep 8; echo done", timeout=30)], **META)
    def slow(facts, params):
        r = facts["slow"]
        return Finding.passed(r.text.strip()) if r.ok else Finding.error("could not assess: " + r.problem())

    @host_check(id="test.raises", title="A check with a bug", probes=[Probe("t", "true")], **META)
    def raises(facts, params):
        raise KeyError("oops")

    @host_check(id="test.debian_only", title="Applies to another OS family only", os_families=("alpine",),
                probes=[Probe("t", "true")], **META)
    def other_family(facts, params):
        return Finding.failed("should never run here")
    """
)


def test_probe_declaring_a_longer_timeout_is_not_cut_by_the_host_default(tmp_path):
    (tmp_path / "pack").mkdir()
    (tmp_path / "pack" / "runner_checks.py").write_text(PACK)
    inv = write_yaml(
        tmp_path / "inv.yaml",
        {"version": 1, "defaults": {"ssh": {"command_timeout": 1}}, "hosts": {"here": {"address": "127.0.0.1"}}},
    )
    code, doc, _err = run_audit(
        "-i",
        str(inv),
        "--local",
        "--checks-dir",
        str(tmp_path / "pack"),
        "--checks",
        "test.*",
        "--store",
        str(tmp_path / "s"),
    )
    assert by_target(doc, "test.slow_probe_finishes")["here"]["status"] == "PASS"
    assert by_target(doc, "test.slow_probe_finishes")["here"]["message"] == "done"
    broken = by_target(doc, "test.raises")["here"]
    assert broken["status"] == "ERROR" and "KeyError" in broken["message"]
    skipped = by_target(doc, "test.debian_only")["here"]
    assert skipped["status"] == "SKIPPED" and "needs alpine" in skipped["message"]
    assert code == 3  # an ERROR and no FAIL: incomplete


def test_unset_password_env_is_warned_about_and_no_password_tried(caplog, monkeypatch):
    from itops.transport.pool import _read_secret

    monkeypatch.delenv("ITOPS_TEST_UNSET_PW", raising=False)
    with caplog.at_level("WARNING", logger="itops.transport.pool"):
        assert _read_secret("ITOPS_TEST_UNSET_PW", None) is None
    assert "password_env ITOPS_TEST_UNSET_PW is not set" in caplog.text
