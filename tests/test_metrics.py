"""Prometheus textfile metrics of audits and drills: real audits over the lab sshd and real local drills,
files checked with promtool and read back with prometheus_client's parser."""

from __future__ import annotations

import json
import shutil
import subprocess
import textwrap
from collections import Counter
from pathlib import Path

import pytest
from audit_helpers import run_cli_process, write_pack
from prometheus_client.parser import text_string_to_metric_families

from itops.store import Store

pytestmark = pytest.mark.integration


def promtool_ok(path: Path) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: scripts/install-system-deps.sh installs Debian's prometheus"
    proc = subprocess.run(
        [promtool, "check", "metrics"], input=path.read_text(), capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def samples(path: Path) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(path.read_text()):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def test_audit_prom_file(lab_inventory, tmp_path):
    store, prom = tmp_path / "store", tmp_path / "textfile" / "itops_audit.prom"
    waivers = tmp_path / "waivers.yaml"  # a waived failure counts against the control ratio, as in `itops trends`
    waivers.write_text(
        "waivers:\n  - {check: ssh.root_login_disabled, target: bad1, justification: test, approver: qa,"
        " expires: 2099-01-01}\n"
    )
    proc = run_cli_process(
        "audit",
        "-i",
        str(lab_inventory),
        "--checks",
        "ssh.*",
        "--store",
        str(store),
        "--format",
        "json",
        "--prom-file",
        str(prom),
        "--waivers",
        str(waivers),
    )
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)
    results = doc["results"]
    promtool_ok(prom)
    m = samples(prom)
    assert [p.name for p in prom.parent.iterdir()] == ["itops_audit.prom"]  # no temp file left behind
    assert prom.stat().st_mode & 0o777 == 0o600  # like the backup textfile: private
    # results by status and severity: every result counted once, in its cell
    by_cell = Counter((r["status"], r["severity"]) for r in results)
    got = {dict(k)["status"] + "/" + dict(k)["severity"]: v for k, v in m["itops_audit_results"].items() if v}
    assert got == {f"{s}/{v}": n for (s, v), n in by_cell.items()}
    # failing checks per host (the planted bad host fails, every audited host has a series)
    failing = {dict(k)["target"]: v for k, v in m["itops_audit_failing_checks"].items()}
    expected = {
        t: len({r["check_id"] for r in results if r["target"] == t and r["status"] == "FAIL"})
        for t in {r["target"] for r in results}
    }
    assert failing == expected and failing["bad1"] > 0
    # per framework control pass ratio
    ratios = {(dict(k)["framework"], dict(k)["control"]): v for k, v in m["itops_audit_control_pass_ratio"].items()}
    assert ratios and all(0.0 <= v <= 1.0 for v in ratios.values())
    waived = next(r for r in results if r["status"] == "WAIVED")
    fw, control = next((f, c) for f, refs in sorted(waived["frameworks"].items()) for c in refs)
    ratio = ratios[(fw, control)]
    judged = [
        r["status"]
        for r in results
        if r["status"] in ("PASS", "FAIL", "WAIVED") and control in r["frameworks"].get(fw, [])
    ]
    assert ratio == pytest.approx(judged.count("PASS") / len(judged))
    run = Store(store).get_run(doc["run"]["id"])
    assert m["itops_audit_run_duration_seconds"][()] == pytest.approx(run.finished - run.started)
    assert m["itops_audit_exit_code"][()] == 1
    assert "itops_audit_last_success_timestamp_seconds" not in m  # never succeeded: no series, not 0

    # a successful audit of the same inventory sets the last success; a later failing one keeps it
    pack = write_pack(tmp_path / "pack")
    ok = run_cli_process(
        "audit",
        "-i",
        str(lab_inventory),
        "--checks-dir",
        str(pack),
        "--checks",
        "test.shadow_mode",
        "--fail-on",
        "high",
        "--store",
        str(store),
        "--format",
        "json",
        "--prom-file",
        str(prom),
    )
    assert ok.returncode == 0, ok.stderr
    ok_run = Store(store).get_run(json.loads(ok.stdout)["run"]["id"])
    assert samples(prom)["itops_audit_last_success_timestamp_seconds"][()] == pytest.approx(ok_run.finished)
    again = run_cli_process(
        "audit", "-i", str(lab_inventory), "--checks", "ssh.*", "--store", str(store), "--prom-file", str(prom)
    )
    assert again.returncode == 1
    promtool_ok(prom)
    assert samples(prom)["itops_audit_last_success_timestamp_seconds"][()] == pytest.approx(ok_run.finished)


def _playbook(folder: Path, name: str, command: str, rto: str = "1m") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        name: {name}
        description: a local drill
        systems: [none]
        rto: {rto}
        rpo: 1h
        owner: tests
        steps:
          - {{name: work, local: "{command}"}}
    """)
    )
    return path


def test_drill_prom_file(tmp_path):
    store, prom = tmp_path / "store", tmp_path / "itops_drill.prom"
    good = _playbook(tmp_path, "failover", "sleep 0.2")
    assert run_cli_process("dr", "drill", str(good), "--store", str(store), "--prom-file", str(prom)).returncode == 0
    promtool_ok(prom)
    m = samples(prom)
    first = Store(store).get_run("latest")
    label = (("playbook", "failover"),)
    assert m["itops_drill_success"][label] == 1 and m["itops_drill_rto_met"][label] == 1
    assert m["itops_drill_rto_target_seconds"][label] == 60
    assert 0.2 <= m["itops_drill_rto_achieved_seconds"][label] < 60
    assert m["itops_drill_last_success_timestamp_seconds"][label] == pytest.approx(first.finished)

    # the same playbook now fails, another playbook succeeds: both are in the one file
    _playbook(tmp_path, "failover", "exit 3")
    other = _playbook(tmp_path, "dns-switch", "true", rto="0.001s")
    assert run_cli_process("dr", "drill", str(good), "--store", str(store), "--prom-file", str(prom)).returncode == 1
    assert run_cli_process("dr", "drill", str(other), "--store", str(store), "--prom-file", str(prom)).returncode == 1
    promtool_ok(prom)
    m = samples(prom)
    assert m["itops_drill_success"][label] == 0 and m["itops_drill_rto_met"][label] == 0
    assert label not in m.get("itops_drill_rto_achieved_seconds", {})  # it never got to the end
    assert m["itops_drill_last_success_timestamp_seconds"][label] == pytest.approx(first.finished)
    assert m["itops_drill_rto_target_seconds"][(("playbook", "dns-switch"),)] == pytest.approx(0.001)


def test_scheduled_audit_and_drill_jobs_pass_prom_file(tmp_path):
    from itops.scheduler import load_schedule
    from itops.scheduler.jobs import job_argv

    (tmp_path / "inv.yaml").write_text("version: 1\nhosts: {}\n")
    _playbook(tmp_path, "failover", "true")
    (tmp_path / "schedule.yaml").write_text(
        textwrap.dedent("""\
        version: 1
        jobs:
          audit: {cron: "0 * * * *", command: audit, inventory: inv.yaml, options: {prom_file: /tmp/a.prom}}
          drill: {cron: "0 3 * * 0", command: dr-drill, playbook: failover.yaml, options: {prom_file: d.prom}}
    """)
    )
    jobs = load_schedule(tmp_path / "schedule.yaml").jobs
    assert job_argv(jobs["audit"], tmp_path / "store")[-2:] == ["--prom-file", "/tmp/a.prom"]
    assert job_argv(jobs["drill"], tmp_path / "store")[-2:] == ["--prom-file", "d.prom"]
