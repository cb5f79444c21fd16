"""A host sending huge probe output over real sshd: that probe's checks ERROR, memory stays bounded."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time

import pytest
from audit_helpers import lab_target, write_pack, write_yaml

pytestmark = pytest.mark.integration

BIG_PACK = textwrap.dedent(
    """
    from itops.checkapi import Finding, Probe, Severity, host_check

    META = dict(severity=Severity.LOW, rationale="test-only check for transport behaviour",
                remediation="nothing to fix", frameworks={"nist-800-53": ["SI-4"], "iso-27001": ["A.8.16"]})

    # a check that takes a failed probe for a verdict (as grep-based checks do): without the
    # transport's own ERROR, output it never saw would become a FAIL
    @host_check(id="test.big_stdout", title="64 MiB on stdout",
                probes=[Probe("big_out", "head -c 67108864 /dev/zero; echo")], **META)
    def big_stdout(facts, params):
        r = facts["big_out"]
        return Finding.passed("read it all") if r.ok else Finding.failed("probe failed")

    @host_check(id="test.big_stderr", title="32 MiB on stderr",
                probes=[Probe("big_err", "head -c 33554432 /dev/zero >&2")], **META)
    def big_stderr(facts, params):
        r = facts["big_err"]
        return Finding.passed("read it all") if r.ok else Finding.failed("probe failed")
    """
)

#: Runs `itops audit` in a fresh interpreter and reports how much its peak RSS grew during the run.
AUDIT_HWM = textwrap.dedent(
    r"""
    import json, sys
    from click.testing import CliRunner
    from itops.cli.main import cli

    def hwm():
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmHWM:"))

    before = hwm()
    res = CliRunner().invoke(cli, ["audit", *sys.argv[1:], "--format", "json"], catch_exceptions=False)
    if not res.stdout.startswith("{"):
        sys.exit(f"exit {res.exit_code}, not JSON: {res.stdout[-2000:]} {res.stderr[-2000:]}")
    print(json.dumps({"grown": hwm() - before, "code": res.exit_code, "doc": json.loads(res.stdout)}))
    """
)


def audit_in_fresh_process(*args: str) -> tuple[int, dict, int]:
    proc = subprocess.run(
        [sys.executable, "-c", AUDIT_HWM, *args], capture_output=True, text=True, timeout=170, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return out["code"], out["doc"], out["grown"]


def statuses(doc: dict) -> dict[str, tuple[str, str]]:
    return {r["check_id"]: (r["status"], r["message"]) for r in doc["results"]}


@pytest.mark.timeout(180)
def test_probes_sending_64_mib_are_errors_and_the_rest_of_the_host_is_assessed(fleet_factory, tmp_path):
    fleet = fleet_factory(1)
    pack = write_pack(tmp_path / "p")
    (pack / "big_checks.py").write_text(BIG_PACK)
    inv = write_yaml(tmp_path / "inv.yaml", fleet.inventory({"defaults": {"ssh": {"max_probe_output": "1MiB"}}}))
    common = ["-i", str(inv), "--checks-dir", str(pack), "--store", str(tmp_path / "s")]

    _, _, baseline = audit_in_fresh_process(*common, "--checks", "test.path_exists")
    t0 = time.monotonic()
    code, doc, grown = audit_in_fresh_process(*common, "--checks", "test.big_stdout,test.big_stderr,test.path_exists")
    elapsed = time.monotonic() - t0
    print(f"elapsed {elapsed:.1f}s, peak RSS growth {grown >> 20} MiB (small audit: {baseline >> 20} MiB)")

    res = statuses(doc)
    assert res["test.path_exists"][0] == "PASS", res
    for check_id in ("test.big_stdout", "test.big_stderr"):
        status, message = res[check_id]
        assert status == "ERROR", res[check_id]
        assert "sent more than 1 MiB of output; not assessed" in message, message
    assert code == 3
    # 96 MiB came over the connection; what the audit kept of it is bounded by the limit
    assert grown - baseline < 32 << 20, f"peak RSS grew {(grown - baseline) >> 20} MiB more than a small audit"
    assert elapsed < 150, elapsed


@pytest.mark.timeout(120)
def test_a_flood_on_the_batch_shells_own_stderr_neither_stalls_nor_fills_memory(fleet_factory):
    """stdout and stderr share the SSH channel's window: stderr left unread until the end stalled
    the probes' stdout (the host stops sending) until the idle deadline; it is now drained as it
    comes and only its tail kept."""
    from itops.transport.batch import build_script
    from itops.transport.ssh import KnownHosts, SSHConnection

    fleet = fleet_factory(1)
    target = lab_target(fleet, "lab1")
    batch = build_script(["head -c 16777216 /dev/zero >&3", "echo ok"], [60, 60])
    # fd 3 is the batch shell's own stderr (the channel's stderr), outside any probe's frame
    batch = type(batch)(batch.script.replace(b"_n=", b"exec 3>&2\n_n=", 1), batch.nonce, batch.commands, batch.timeouts)
    conn = SSHConnection(target, KnownHosts(target.known_hosts))
    try:
        t0 = time.monotonic()
        out = conn.run_batch(batch, idle_timeout=15, total_timeout=60)
        elapsed = time.monotonic() - t0
    finally:
        conn.close()
    assert out.complete, out.problem
    assert out.results[1].stdout == b"ok\n"
    assert len(out.stderr) <= 64 * 1024
    assert elapsed < 15, elapsed
