"""The AWS pack as a whole: metadata, IAM actions, and ERROR (never PASS) when data is missing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from aws_canned import DENIED, aws_checks, coll, facts

from itops.cli.aws_cmd import is_read_only
from itops.model import Status
from itops.transport.aws import collection_specs

CHECKS = aws_checks()
IDS = [c.id for c in CHECKS]


def test_at_least_forty_aws_checks() -> None:
    assert len(CHECKS) >= 40
    # aws.SERVICE.property, and inventory.cloud_instances_covered (about the inventory, judged from the account)
    assert all(re.match(r"^(aws\.[a-z0-9]+|inventory)\.[a-z0-9_]+$", i) for i in IDS)


@pytest.mark.parametrize("check", CHECKS, ids=IDS)
def test_metadata_complete(check) -> None:
    meta = check.meta
    assert meta.target == "aws"
    assert meta.frameworks.get("nist-800-53") and meta.frameworks.get("iso-27001")
    assert all(ref.startswith("A.") for ref in meta.frameworks["iso-27001"])
    assert all(re.match(r"^\d+(\.\d+)*$", ref) for ref in meta.frameworks.get("cis-aws-foundations", ()))
    assert re.search(r"\baws [a-z0-9-]+ [a-z0-9-]+", meta.remediation), "remediation must show the AWS CLI command"
    assert check.description, "evaluate needs a docstring"
    assert check.collections


@pytest.mark.parametrize("check", CHECKS, ids=IDS)
def test_iam_actions_are_exactly_read_actions_of_its_collections(check) -> None:
    specs = collection_specs()
    assert set(check.collections) <= set(specs), "unknown collection"
    available = {a for name in check.collections for a in specs[name].actions}
    assert set(check.meta.iam_actions) <= available
    assert all(is_read_only(a) for a in check.meta.iam_actions)
    assert len(set(check.meta.iam_actions)) == len(check.meta.iam_actions)


def test_every_collection_action_is_read_only_and_used() -> None:
    specs = collection_specs()
    used = {a for c in CHECKS for a in c.meta.iam_actions}
    for spec in specs.values():
        assert all(is_read_only(a) for a in spec.actions), spec.name
    assert {a for s in specs.values() for a in s.actions} == used  # no collection call no check needs


def test_every_check_has_a_unit_test() -> None:
    tests = [p for p in Path(__file__).parent.glob("test_aws_*.py") if p.name != Path(__file__).name]
    text = "\n".join(p.read_text() for p in tests)
    missing = [i for i in IDS if f'"{i}"' not in text]
    assert not missing


@pytest.mark.parametrize("check", CHECKS, ids=IDS)
def test_denied_collection_is_error_not_pass(check) -> None:
    action = check.meta.iam_actions[-1]
    f = facts(*(coll(n, errors={"eu-west-1": DENIED.format(action)}) for n in check.collections))
    findings = check.evaluate(f, dict(check.meta.params))
    assert findings and {x.status for x in findings} == {Status.ERROR}
    assert all(f"missing permission {action}" in x.message for x in findings)
    assert all(x.resource.startswith("arn:aws:") for x in findings)


@pytest.mark.parametrize("check", CHECKS, ids=IDS)
def test_empty_account_never_errors(check) -> None:
    findings = check.evaluate(facts(*(coll(n) for n in check.collections)), dict(check.meta.params))
    assert findings and all(x.status in (Status.SKIPPED, Status.FAIL) for x in findings)
