"""Whole-account audits against the moto server: the FAIL set equals exactly what was planted."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from aws_canned import aws_checks
from aws_fixtures import ACCOUNT_ID, OTHER_ACCOUNT_ID, REGIONS, cloud_model
from aws_scenario import BACKUP_BUCKETS, plant_account, plant_other_account

from itops.cloud import run_cloud_account
from itops.model import Status

pytestmark = pytest.mark.integration


def fails(results) -> set[tuple[str, str]]:
    return {(r.check_id, r.resource) for r in results if r.status is Status.FAIL}


def test_planted_account_fails_exactly_as_planted(moto, tmp_path: Path) -> None:
    expected = plant_account(moto, REGIONS)
    cloud = cloud_model(tmp_path, backup_buckets=BACKUP_BUCKETS)
    t0 = time.monotonic()
    out = run_cloud_account("run-1", "aws-test", cloud, aws_checks(), {}, concurrency=8, stop=None)
    elapsed = time.monotonic() - t0
    assert out.account_id == ACCOUNT_ID and out.regions == REGIONS and not out.unreachable
    problems = [
        (r.check_id, r.resource, r.message) for r in out.results if r.status in (Status.ERROR, Status.UNREACHABLE)
    ]
    assert not problems
    assert fails(out.results) == expected
    # every check produced something; resources are ARNs; messages name region/account
    assert {r.check_id for r in out.results} == {c.id for c in aws_checks()}
    assert all(r.resource.startswith("arn:aws:") and r.target == "aws-test" for r in out.results)
    assert all(ACCOUNT_ID in r.message for r in out.results)
    bad = next(r for r in out.results if r.check_id == "aws.s3.bucket_policy_not_public" and r.status is Status.FAIL)
    assert "eu-west-1" in bad.message and "s3:GetBucketPolicy" in bad.evidence.source
    assert bad.remediation.startswith("Remove") and bad.frameworks["nist-800-53"] and bad.title
    # a few of the passes, to be sure they are real verdicts
    passed = {(r.check_id, r.resource) for r in out.results if r.status is Status.PASS}
    assert ("aws.s3.backup_bucket_object_lock_enabled", "arn:aws:s3:::backup-locked") in passed
    assert ("aws.cloudtrail.multi_region_trail_logging", f"arn:aws:cloudtrail::{ACCOUNT_ID}:account") in passed
    assert elapsed < 30, f"audit took {elapsed:.1f}s"


def test_two_accounts_via_profile_and_assumed_role(moto, tmp_path: Path, monkeypatch) -> None:
    other = moto.assumed(OTHER_ACCOUNT_ID)
    expected_other = plant_other_account(moto, other, REGIONS[0])
    # account 1 through a named profile in a credentials file, account 2 by assuming a role from it
    creds = tmp_path / "aws-credentials"
    creds.write_text("[auditor]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    s3_checks = [c for c in aws_checks() if c.id.startswith("aws.s3.bucket_")]
    first = run_cloud_account(
        "run-2",
        "acct-1",
        cloud_model(tmp_path, "acct-1", profile="auditor", regions=[REGIONS[0]]),
        s3_checks,
        {},
        concurrency=4,
    )
    second = run_cloud_account(
        "run-2",
        "acct-2",
        cloud_model(
            tmp_path,
            "acct-2",
            profile="auditor",
            regions=[REGIONS[0]],
            role_arn=f"arn:aws:iam::{OTHER_ACCOUNT_ID}:role/audit",
            external_id="xyz",
            session_name="itops-test",
        ),
        s3_checks,
        {},
        concurrency=4,
    )
    assert (first.account_id, second.account_id) == (ACCOUNT_ID, OTHER_ACCOUNT_ID)
    assert "assumed-role/audit/itops-test" in second.caller_arn
    assert {r.status for r in first.results} == {Status.SKIPPED}  # account 1 has no buckets
    assert fails(second.results) == expected_other
    assert all(r.target == "acct-2" and OTHER_ACCOUNT_ID in r.message for r in second.results)
