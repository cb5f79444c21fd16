"""Issue #18, a newcomer's first hour: what the terminal, the reports and `diff` tell a reader.

Against real sshd (the lab fixtures): a host that cannot be reached is one line, not one line
per check; an interrupted run names the planned targets it never audited, in the run record,
the coverage, the reports and `diff`.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from audit_helpers import ITOPS, run_cli_process, write_yaml

pytestmark = pytest.mark.integration


def _closed_port() -> int:
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_host_is_one_line_and_json_keeps_every_check(lab_inventory, tmp_path):
    doc = yaml.safe_load(lab_inventory.read_text())
    doc["hosts"]["web-b"] = {"address": "127.0.0.1", "port": _closed_port(), "groups": ["linux"]}
    inv = write_yaml(tmp_path / "inv.yaml", doc)
    store = str(tmp_path / "store")
    proc = run_cli_process("audit", "-i", str(inv), "--limit", "good1,web-b", "--store", store)
    assert proc.returncode in (1, 3), proc.stderr
    lines = [ln for ln in proc.stdout.splitlines() if "web-b" in ln]
    shown = json.loads(run_cli_process("runs", "show", "latest", "--store", store, "--format", "json").stdout)
    web_b = [r for r in shown["results"] if r["target"] == "web-b"]
    assert len(web_b) > 50 and {r["status"] for r in web_b} == {"UNREACHABLE"}  # the JSON keeps every check
    assert len(lines) == 1, proc.stdout  # was one line per check (116)
    assert "web-b" in lines[0] and f"UNREACHABLE ({len(web_b)} checks not assessed): unreachable:" in lines[0]
    assert "refused" in lines[0].lower()
    assert "NOT ASSESSED" not in proc.stdout  # nothing else was left unassessed
    md = run_cli_process("report", "latest", "--format", "md", "--store", store).stdout
    assert "on web-b" not in md  # no finding per check (was 116 "### UNREACHABLE: ... on web-b")
    assert f"- **web-b** UNREACHABLE ({len(web_b)} checks not assessed): unreachable:" in md
    page = run_cli_process("report", "latest", "--format", "html", "--store", store).stdout
    assert "Targets not assessed (1)" in page and f"UNREACHABLE</span> ({len(web_b)} checks)" in page


# A user pack whose one probe sleeps for the host's `pause` var: the first host answers at once,
# the others hang until the run is interrupted.
PAUSE_PACK = textwrap.dedent(
    """
    from itops.checkapi import Finding, Probe, Severity, host_check, quote

    PAUSE = Probe("pause", lambda p: "sleep " + quote(str(p["pause"])) + " && echo done")

    @host_check(id="test.pause_done", title="A probe that waits for the host's pause var", probes=[PAUSE],
                params={"pause": 0}, severity=Severity.LOW, rationale="test-only check",
                remediation="nothing to fix", frameworks={"nist-800-53": ["SI-4"], "iso-27001": ["A.8.16"]})
    def pause_done(facts, params):
        r = facts["pause"]
        return Finding.passed("done") if r.ok else Finding.error("could not assess: " + r.problem())

    @host_check(id="test.pause_fails", title="Fails once the pause is over", probes=[PAUSE],
                params={"pause": 0}, severity=Severity.MEDIUM, rationale="test-only check",
                remediation="nothing to fix", frameworks={"nist-800-53": ["SI-4"], "iso-27001": ["A.8.16"]})
    def pause_fails(facts, params):
        r = facts["pause"]
        return Finding.failed("planted failure") if r.ok else Finding.error("could not assess: " + r.problem())
    """
)


def _wait_for_target(results: Path, target: str, proc: subprocess.Popen[str], seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        lines = results.read_text().splitlines() if results.exists() else []
        if any(json.loads(ln)["target"] == target for ln in lines if ln):
            return
        time.sleep(0.1)
    raise AssertionError(f"no result for {target} before the deadline (exit {proc.poll()})")


@pytest.mark.timeout(240)
def test_interrupted_run_names_targets_never_audited(fleet_factory, tmp_path):
    fleet = fleet_factory(4)
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "pause_checks.py").write_text(PAUSE_PACK)
    store = tmp_path / "store"
    base = ["--checks-dir", str(pack), "--checks", "test.*", "--store", str(store), "--concurrency", "1"]
    quick = write_yaml(tmp_path / "quick.yaml", fleet.inventory())
    full = run_cli_process("audit", "-i", str(quick), *base, "--format", "json")
    assert full.returncode == 1, full.stderr
    run_a = json.loads(full.stdout)["run"]["id"]

    slow_hosts = {name: {"vars": {"pause": 60}} for name in ("lab2", "lab3", "lab4")}
    slow = write_yaml(
        tmp_path / "slow.yaml", fleet.inventory({"defaults": {"ssh": {"command_timeout": 100}}, "hosts": slow_hosts})
    )
    md, html = tmp_path / "interrupted.md", tmp_path / "interrupted.html"
    proc = subprocess.Popen(
        [
            ITOPS,
            "audit",
            "-i",
            str(slow),
            *base,
            "--format",
            "json",
            "--report",
            f"md:{md}",
            "--report",
            f"html:{html}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        folders: list[Path] = []
        while time.monotonic() < deadline and not folders:
            folders = [p for p in (store / "runs").iterdir() if p.name != run_a]
            time.sleep(0.1)
        assert len(folders) == 1
        _wait_for_target(folders[0] / "results.jsonl", "lab1", proc)  # the first host's results arrived
        time.sleep(0.5)  # lab2's batch is running
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, err  # lab1's planted FAIL (an interrupted run without one exits 3)
    doc = json.loads(out)
    run_b = doc["run"]["id"]
    assert doc["run"]["state"] == "interrupted"
    assert doc["run"]["planned"] == {"lab1": 2, "lab2": 2, "lab3": 2, "lab4": 2}
    assert {r["target"] for r in doc["results"]} == {"lab1", "lab2"}  # lab2 was cut off, ERROR
    assert doc["summary"]["not_audited"] == ["lab3", "lab4"]
    assert doc["summary"]["coverage"] == 25.0  # lab1's 2 of 8 planned checks were evaluated

    # the reports written at the end of the interrupted run say so
    text = md.read_text()
    assert "Incomplete run" in text and "2 planned target(s) never audited" in text and "lab3, lab4" in text
    assert "coverage 25.0%" in text and "coverage 100.0%" not in text
    page = html.read_text()
    assert 'id="incomplete"' in page and '<b class="wrap">lab3</b>' in page and '<b class="wrap">lab4</b>' in page
    assert "Targets not assessed (3)" in page and "never audited (2 checks planned)" in page  # lab2 cut off: ERROR
    # ... and so do the stored run's table and its reports rendered later
    table = run_cli_process("runs", "show", run_b, "--store", str(store)).stdout
    assert "INCOMPLETE: 2 of 4 planned target(s) never audited (4 checks not assessed): lab3, lab4" in table
    later = run_cli_process("report", run_b, "--format", "json", "--store", str(store)).stdout
    assert json.loads(later)["summary"]["not_audited"] == ["lab3", "lab4"]

    # diff: never-audited results are not "removed", and the incomplete side is named
    diff = run_cli_process("diff", run_a, run_b, "--store", str(store))
    assert f"run B ({run_b}) is INCOMPLETE (state interrupted): 2 target(s) never audited: lab3, lab4" in diff.stdout
    assert "0 removed" in diff.stdout and "4 not audited" in diff.stdout
    assert "score over the targets audited in both runs" in diff.stdout
    as_json = json.loads(run_cli_process("diff", run_a, run_b, "--store", str(store), "--format", "json").stdout)
    assert as_json["incomplete"] is True and as_json["not_audited_b"] == ["lab3", "lab4"]
    assert as_json["summary"]["removed"] == 0 and as_json["summary"]["not_audited"] == 4
    back = run_cli_process("diff", run_b, run_a, "--store", str(store), "--format", "md").stdout
    assert "is INCOMPLETE" in back and "never audited: lab3, lab4" in back
    assert "not audited in A" in back  # lab3/lab4's failures in the full run are not "new" to a reader
