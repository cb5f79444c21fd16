"""Acceptance: ``itops backup verify --restore-test`` against the lab reports exactly the planted faults,
with restore durations and RTO verdicts; runs are stored; the Prometheus textfile parses."""

# ruff: noqa: F811  (pytest fixtures imported from aws_fixtures are parameters here)
from __future__ import annotations

import copy
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from aws_fixtures import aws_env, cloud_entry, moto  # noqa: F401
from backup_helpers import run_cli, write_inventory
from cloud_scenario import CLOUD_FAULTS, REGION, s3_setup, snapshots_setup
from prometheus_client.parser import text_string_to_metric_families

from itops.store import Store
from itops_lab.backup_demo import DEMO_FAULTS, DEMO_RESTORE_ALL_FAULTS

pytestmark = pytest.mark.integration

RESTIC_FAULTS = {
    ("restic-main", "backup.within_rpo"): "host old-host: newest backup is 10d 1h old, RPO 26h",
    ("restic-corrupt", "backup.integrity_ok"): "restic check --read-data failed",
    ("restic-corrupt", "backup.restore_test_passed"): "restore failed",  # --restore-test restores it too
}
PG_FAULTS = {
    ("pg-small", "backup.restore_test_passed"): "SELECT count(*) FROM orders returned 10, expected at least 1000",
    ("pg-truncated", "backup.integrity_ok"): "does not end with '-- PostgreSQL database dump complete'",
}
ALL_FAULTS = {**DEMO_FAULTS, **DEMO_RESTORE_ALL_FAULTS, **RESTIC_FAULTS, **PG_FAULTS, **CLOUD_FAULTS}


@pytest.fixture
def lab_inventory_with_backups(backup_lab, restic_repos, pg_dumps, moto, tmp_path):
    entries = {
        **backup_lab.demo,
        **restic_repos.entries(tmp_path / "restic-scratch"),
        **pg_dumps.entries(),
        **s3_setup(moto),
        **snapshots_setup(moto),
    }
    entries.pop("_vols")
    clouds = {"aws-test": cloud_entry(regions=[REGION])}
    return write_inventory(tmp_path / "inventory.yaml", backup_lab.fleet, entries, clouds=clouds)


def test_restore_test_run_reports_exactly_the_planted_faults(lab_inventory_with_backups, backup_lab, tmp_path):
    store, prom = tmp_path / "store", tmp_path / "textfile" / "itops_backup.prom"
    code, doc, _, err = run_cli(
        "-i",
        str(lab_inventory_with_backups),
        "--restore-test",
        "--format",
        "json",
        "--store",
        str(store),
        "--prom-file",
        str(prom),
    )
    assert code == 1, err
    results = doc["results"]
    not_assessed = [
        f"{r['target']} {r['check_id']}: {r['message']}" for r in results if r["status"] in ("ERROR", "UNREACHABLE")
    ]
    assert not_assessed == []
    fails = {(r["target"], r["check_id"]): r["message"] for r in results if r["status"] == "FAIL"}
    assert set(fails) == set(ALL_FAULTS), sorted(set(fails) ^ set(ALL_FAULTS))
    for key, fragment in ALL_FAULTS.items():
        assert fragment in fails[key], (key, fails[key])
    assert {r["status"] for r in results} <= {"PASS", "FAIL", "SKIPPED"}
    # every restore is timed and judged against its RTO
    rto = {r["target"]: r for r in results if r["check_id"] == "backup.restore_within_rto"}
    assert re.fullmatch(
        r"restore took \d+ ms, within RTO 5m|restore took [\d.]+s, within RTO 5m", rto["files-fresh"]["message"]
    )
    assert rto["files-slow"]["status"] == "FAIL" and rto["files-slow"]["message"].endswith(", RTO 1ms")
    assert rto["pg-orders"]["status"] == "PASS" and float(rto["pg-orders"]["evidence"]["observed"].rstrip("s")) > 0
    assert rto["restic-main"]["status"] == "PASS"
    # the run is stored like an audit, with kind backup
    run = Store(store).list_runs(kind="backup")[0]
    assert run.id == doc["run"]["id"] and run.exit_code == 1 and run.state == "complete"
    assert run.counts["FAIL"] == len(ALL_FAULTS)
    assert set(run.host_keys) == {"bk1", "bk2"}
    # the textfile
    check_prom_file(prom.read_text(), doc)


def check_prom_file(text: str, doc: dict) -> None:
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in (
        "itops_backup_last_verification_timestamp_seconds",
        "itops_backup_age_seconds",
        "itops_backup_size_bytes",
        "itops_backup_status",
        "itops_backup_restore_duration_seconds",
        "itops_backup_rpo_seconds",
    ):
        assert name in families, sorted(families)
    status = {
        (s.labels["backup"], s.labels["itops_backup_status"]): s.value for s in families["itops_backup_status"].samples
    }
    assert status[("files-fresh", "pass")] == 1 and status[("files-stale", "fail")] == 1
    assert status[("files-stale", "pass")] == 0
    restore = {s.labels["backup"]: s.value for s in families["itops_backup_restore_duration_seconds"].samples}
    assert restore["pg-orders"] > 0 and restore["files-fresh"] > 0
    age = {s.labels["backup"]: s.value for s in families["itops_backup_age_seconds"].samples}
    assert 3 * 86400 < age["files-stale"] < 4 * 86400
    success = {s.labels["backup"] for s in families["itops_backup_last_success_timestamp_seconds"].samples}
    assert "files-fresh" in success and "files-stale" not in success
    assert all(s.timestamp is None for f in families.values() for s in f.samples)  # node_exporter rejects timestamps
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: scripts/install-system-deps.sh installs Debian's prometheus"
    proc = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_table_output_lists_failures_and_restore_times(backup_lab, tmp_path):
    entries = dict(backup_lab.demo)
    default_rto = copy.deepcopy(entries["files-fresh"])
    del default_rto["restore_test"]["rto"]  # held to the check's default RTO (4h), which the table shows
    entries["files-default-rto"] = default_rto
    nothing = copy.deepcopy(entries["files-missing"])  # no file to restore: the restore never runs
    nothing["restore_test"] = {"into": default_rto["restore_test"]["into"]}
    entries["files-nothing-to-restore"] = nothing
    inv = write_inventory(tmp_path / "inv.yaml", backup_lab.fleet, entries)
    code, _, out, err = run_cli("-i", str(inv), "--store", str(tmp_path / "store"))
    assert code == 1, err
    assert "FAIL [high] backup.within_rpo on files-stale: newest backup is 3d 4h old, RPO 26h" in out
    assert "RESTORE TESTS" in out
    lines = {line.split()[0]: line for line in out.split("RESTORE TESTS")[1].splitlines() if line.strip()}
    assert "ok (within RTO)" in lines["files-fresh"] and "RTO 5m" in lines["files-fresh"]
    assert "FAIL (over RTO)" in lines["files-slow"]
    assert "RTO 4h (default)" in lines["files-default-rto"] and "ok (within RTO)" in lines["files-default-rto"]
    nothing_line = lines["files-nothing-to-restore"]
    assert "RTO 4h (default)" in nothing_line and "FAIL (restore)" in nothing_line
    assert "FAIL (restore)" in lines["files-badrestore"]
    assert "Stored as run" in err


def test_limit_and_metrics_of_other_backups_are_kept(backup_lab, tmp_path):
    inv = write_inventory(tmp_path / "inv.yaml", backup_lab.fleet, backup_lab.demo)
    store, prom = tmp_path / "store", tmp_path / "m.prom"
    code, doc, _, _ = run_cli("-i", str(inv), "--store", str(store), "--format", "json", "--no-restore-test")
    assert code == 1
    assert not [r for r in doc["results"] if r["check_id"].startswith("backup.restore")]
    # every backup is recorded as planned before the run starts, with the checks it gets
    per_target: dict[str, int] = {}
    for r in doc["results"]:
        per_target[r["target"]] = per_target.get(r["target"], 0) + 1
    assert doc["run"]["planned"] == per_target and set(per_target) == set(backup_lab.demo) - {"_vols"}
    assert doc["summary"]["not_audited"] == []
    code, doc, _, _ = run_cli(
        "-i", str(inv), "--store", str(store), "--format", "json", "--limit", "files-fresh", "--prom-file", str(prom)
    )
    assert code == 0 and {r["target"] for r in doc["results"]} == {"files-fresh"}
    families = {f.name: f for f in text_string_to_metric_families(prom.read_text())}
    backups = {s.labels["backup"] for s in families["itops_backup_age_seconds"].samples}
    assert {"files-fresh", "files-stale", "files-shrunk"} <= backups  # the earlier run's records are kept


def test_exit_codes_match_audits(backup_lab, tmp_path):
    inv = write_inventory(tmp_path / "inv.yaml", backup_lab.fleet, backup_lab.demo)
    store = str(tmp_path / "store")
    assert run_cli("-i", str(inv), "--store", store, "--limit", "files-fresh")[0] == 0
    assert run_cli("-i", str(inv), "--store", store, "--limit", "files-few", "--fail-on", "high")[0] == 0  # medium
    assert run_cli("-i", str(inv), "--store", store, "--limit", "files-few")[0] == 1
    assert run_cli("-i", str(inv), "--store", store, "--limit", "nope")[0] == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text(inv.read_text().replace("rto: 5m", "rto: soon", 1))
    code, _, _, err = run_cli("-i", str(bad), "--store", store)
    assert code == 4 and "restore_test.rto" in err


def test_lab_up_with_backups_makes_the_demo_verify_them(tmp_path):
    """What scripts/demo.sh runs: `python -m itops_lab up --roots --backups`, then `itops backup verify`."""
    lab = tmp_path / "lab"
    cmd = [sys.executable, "-m", "itops_lab"]
    up = subprocess.run(
        [*cmd, "up", "--dir", str(lab), "--hosts", "1", "--roots", "--backups", "--detach"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    try:
        assert up.returncode == 0, up.stderr
        inventory = Path(up.stdout.strip())
        code, doc, _, _ = run_cli("-i", str(inventory), "--store", str(tmp_path / "store"), "--format", "json")
        assert code == 1
        fails = {(r["target"], r["check_id"]) for r in doc["results"] if r["status"] == "FAIL"}
        assert fails == set(DEMO_FAULTS)
        assert {r["status"] for r in doc["results"]} <= {"PASS", "FAIL", "SKIPPED"}
    finally:
        subprocess.run([*cmd, "down", "--dir", str(lab)], capture_output=True, timeout=120)
