"""`itops aws policy`, and the IAM actions in `itops checks list/show`."""

from __future__ import annotations

import json
import re

from click.testing import CliRunner

from itops.cli.main import cli

READ_ACTION = re.compile(r"^[a-z0-9-]+:(Get|List|Describe)[A-Za-z]+$|^iam:GenerateCredentialReport$")


def invoke(*args: str):
    res = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert res.exit_code == 0, res.stderr
    return res


def test_policy_is_minimal_read_only_iam_json() -> None:
    doc = json.loads(invoke("aws", "policy").stdout)
    assert doc["Version"] == "2012-10-17"
    (stmt,) = doc["Statement"]
    assert stmt["Effect"] == "Allow" and stmt["Resource"] == "*"
    actions = stmt["Action"]
    assert actions == sorted(set(actions))
    assert "sts:GetCallerIdentity" in actions and "s3:GetBucketPolicy" in actions
    bad = [a for a in actions if not READ_ACTION.match(a)]
    assert not bad, f"not read-only: {bad}"
    assert not any("*" in a for a in actions)


def test_policy_for_selected_checks_only() -> None:
    doc = json.loads(invoke("aws", "policy", "--checks", "aws.ec2.sg_*").stdout)
    assert doc["Statement"][0]["Action"] == ["ec2:DescribeSecurityGroups", "sts:GetCallerIdentity"]
    res = CliRunner().invoke(cli, ["aws", "policy", "--checks", "nothing.*"])
    assert res.exit_code == 2


def test_checks_list_and_show_iam_actions() -> None:
    listed = invoke("checks", "list", "--target", "aws", "--format", "json").stdout
    checks = json.loads(listed)
    assert len(checks) >= 40 and all(c["iam_actions"] for c in checks)
    table = invoke("checks", "list", "--target", "aws").stdout.splitlines()
    assert len(table) >= 40 and all(" aws " in line for line in table)
    shown = invoke("checks", "show", "aws.s3.bucket_policy_not_public").stdout
    needed = "IAM actions needed (read-only):\n  s3:ListAllMyBuckets\n  s3:GetBucketLocation\n  s3:GetBucketPolicy"
    assert needed in shown
    as_json = json.loads(invoke("checks", "show", "aws.iam.root_mfa_enabled", "--format", "json").stdout)
    assert as_json["iam_actions"] == ["iam:GetAccountSummary"] and as_json["collections"] == ["iam.account_summary"]
