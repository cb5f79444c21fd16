# ruff: noqa: F811  (pytest fixtures imported from aws_fixtures are parameters here)
"""One `itops audit` over lab SSH hosts and a moto AWS account: one run, both in the stored results.

Assumes the CLI behaviour the lead wires into `itops audit`: every host and every cloud of
the inventory is audited; ``--limit cloud:NAME`` selects clouds (host terms select hosts);
``--checks`` filters both kinds.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from audit_helpers import run_audit, write_pack
from aws_fixtures import ACCOUNT_ID, REGIONS, aws_env, cloud_entry, moto  # noqa: F401
from aws_scenario import BACKUP_BUCKETS, plant_account
from lab_hosts import LAB_HOSTS

from itops.store import Store

pytestmark = pytest.mark.integration


def mixed_inventory(lab_inventory: Path, tmp_path: Path) -> Path:
    doc = yaml.safe_load(lab_inventory.read_text())
    doc["clouds"] = {"aws-lab": cloud_entry(backup_buckets=BACKUP_BUCKETS)}
    path = tmp_path / "mixed.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_hosts_and_cloud_in_one_run(moto, lab_inventory: Path, tmp_path: Path) -> None:
    expected_cloud = plant_account(moto, REGIONS)
    inv = mixed_inventory(lab_inventory, tmp_path)
    pack = write_pack(tmp_path / "pack")
    store = tmp_path / "store"
    code, doc, err = run_audit(
        "-i",
        str(inv),
        "--checks-dir",
        str(pack),
        "--checks",
        "test.shadow_mode",
        "--checks",
        "aws.*",
        "--checks",
        "inventory.cloud_instances_covered",
        "--limit",
        "good1,bad1",
        "--limit",
        "cloud:aws-lab",
        "--store",
        str(store),
    )
    assert code == 1, err
    results = doc["results"]
    run_id = doc["run"]["id"]
    assert {r["run_id"] for r in results} == {run_id}
    assert {r["target"] for r in results} == {"good1", "bad1", "aws-lab"}
    # hosts: exactly the planted host failure
    host_fails = {(r["target"], r["check_id"]) for r in results if r["status"] == "FAIL" and r["target"] != "aws-lab"}
    planted_hosts = {(h, "test.shadow_mode") for h in ("good1", "bad1") if LAB_HOSTS[h].shadow_mode.startswith("644")}
    assert host_fails == planted_hosts
    # cloud: exactly the planted AWS failures, nothing unassessed
    cloud = [r for r in results if r["target"] == "aws-lab"]
    assert {(r["check_id"], r["resource"]) for r in cloud if r["status"] == "FAIL"} == expected_cloud
    assert not [r for r in cloud if r["status"] in ("ERROR", "UNREACHABLE")]
    assert all(ACCOUNT_ID in r["message"] for r in cloud)
    # both kinds are in the stored run
    stored = Store(store).results(run_id)
    assert {r.target for r in stored} == {"good1", "bad1", "aws-lab"}
    assert len(stored) == len(results)


def test_limit_to_the_cloud_and_filter_checks(moto, lab_inventory: Path, tmp_path: Path) -> None:
    moto.client("s3").create_bucket(Bucket="lonely", CreateBucketConfiguration={"LocationConstraint": REGIONS[0]})
    inv = mixed_inventory(lab_inventory, tmp_path)
    code, doc, err = run_audit(
        "-i",
        str(inv),
        "--limit",
        "cloud:aws-lab",
        "--checks",
        "aws.s3.bucket_versioning*",
        "--store",
        str(tmp_path / "store"),
    )
    assert code == 1, err
    assert {(r["target"], r["check_id"], r["resource"], r["status"]) for r in doc["results"]} == {
        ("aws-lab", "aws.s3.bucket_versioning_enabled", "arn:aws:s3:::lonely", "FAIL")
    }
