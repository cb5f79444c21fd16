"""`itops report --restore-proof`: every restore test of a period, from real restic restores in real runs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from backup_helpers import run_cli, write_inventory
from click.testing import CliRunner

from itops.cli.main import cli

pytestmark = pytest.mark.integration


def _vault(restic_repos, scratch: Path, repository: Path) -> dict:
    entry = restic_repos.entries(scratch)["restic-main"]
    return {"vault": {**entry, "repository": str(repository)}}


def test_restore_proof_lists_each_test_what_it_verified_and_the_follow_up_of_a_failure(restic_repos, tmp_path):
    store = tmp_path / "store"
    scratch = tmp_path / "scratch"
    scratch.mkdir(mode=0o700)
    # Run 1: the vault's repository is corrupt, so its restore test fails.
    bad = write_inventory(tmp_path / "bad.yaml", None, _vault(restic_repos, scratch, restic_repos.corrupt))
    code, doc, _, err = run_cli("-i", str(bad), "--restore-test", "--format", "json", "--store", str(store))
    assert code == 1, err
    first = doc["run"]["id"]
    time.sleep(1.1)
    # Run 2: fixed (the healthy repository): the restore passes and verifies the config file's checksum.
    good = write_inventory(tmp_path / "good.yaml", None, _vault(restic_repos, scratch, restic_repos.main))
    code, doc, _, err = run_cli("-i", str(good), "--restore-test", "--format", "json", "--store", str(store))
    assert code in (0, 1), err
    second = doc["run"]["id"]
    statuses = {r["check_id"]: r["status"] for r in doc["results"] if r["target"] == "vault"}
    assert statuses["backup.restore_test_passed"] == "PASS"

    res = CliRunner().invoke(
        cli, ["report", "--restore-proof", "--since", "1d", "--format", "json", "--store", str(store)]
    )
    assert res.exit_code == 0, res.output
    proof = json.loads(res.stdout)
    assert (proof["passed"], proof["failed"]) == (1, 1)
    failed, passed = proof["tests"]
    assert (failed["run_id"], failed["backup"], failed["status"]) == (first, "vault", "FAIL")
    assert "restore failed" in failed["message"] and failed["follow_up"] == second
    assert passed["run_id"] == second and "sha256" in passed["verified"]
    assert passed["rto"] == "<= 300s" and passed["rto_status"] == "PASS" and passed["duration"].endswith("s")
    for run_id in (first, second):
        assert proof["runs"][run_id]["verified"] is True
        assert proof["runs"][run_id]["manifest_digest"].startswith("sha256:")

    md = CliRunner().invoke(cli, ["report", "--restore-proof", "--format", "md", "--store", str(store)])
    assert md.exit_code == 0 and f"passed again in {second}" in md.stdout and "verified sha256:" in md.stdout
    out = tmp_path / "proof.html"
    html = CliRunner().invoke(cli, ["report", "--restore-proof", "-f", "html", "-o", str(out), "--store", str(store)])
    assert html.exit_code == 0 and "Restore proof" in out.read_text() and "<script" not in out.read_text()
    # A run edited after the fact shows as NOT VERIFIED in the proof.
    results = store / "runs" / first / "results.jsonl"
    lines = results.read_text().splitlines(keepends=True)
    results.write_text("".join(lines[:1] + lines[2:]))
    md = CliRunner().invoke(cli, ["report", "--restore-proof", "--format", "md", "--store", str(store)])
    assert first + " \\(NOT VERIFIED" in md.stdout
