"""Canned CloudFacts for unit tests of the AWS checks: build collections from plain dicts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

from itops.checkapi import Check, CloudFacts, CloudResource, CollectionResult
from itops.model import Finding, Status
from itops.registry import Registry, load_registry

ACCOUNT = "123456789012"
DENIED = "not assessable: missing permission {}"


@cache
def registry() -> Registry:
    return load_registry(entry_point_packs=False)


def aws_checks() -> list[Check]:
    return registry().select(None, target="aws")


def res(
    arn: str, region: str = "eu-west-1", /, *, name: str = "", errors: Mapping[str, str] | None = None, **data: Any
) -> CloudResource:
    """A resource; keyword arguments are its data parts."""
    return CloudResource(arn, region, data, dict(errors or {}), name=name or arn.rsplit("/", 1)[-1].split(":")[-1])


def coll(
    name: str, resources: Sequence[CloudResource] = (), errors: Mapping[str, str] | None = None
) -> CollectionResult:
    return CollectionResult(name, tuple(resources), ("eu-west-1",), (), dict(errors or {}))


def facts(*collections: CollectionResult, backup_buckets: Sequence[str] = (), **vars: Any) -> CloudFacts:
    return CloudFacts(
        account="aws-test",
        account_id=ACCOUNT,
        partition="aws",
        regions=("eu-west-1",),
        collections={c.name: c for c in collections},
        vars=vars,
        backup_buckets=tuple(backup_buckets),
    )


def run(check_id: str, f: CloudFacts, **params: Any) -> list[Finding]:
    check = registry().get(check_id)
    merged = {**check.meta.params, **params}
    return check.evaluate(f, merged)


def statuses(findings: Sequence[Finding]) -> dict[str, Status]:
    """resource -> status (a check yields at most one finding per resource)."""
    out = {f.resource: f.status for f in findings}
    assert len(out) == len(findings), f"duplicate resources in {findings}"
    return out


def only(findings: Sequence[Finding]) -> Finding:
    assert len(findings) == 1, findings
    return findings[0]


# --- building blocks -------------------------------------------------------------------------

PAB_ON = {k: True for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")}
OWNER_ACL = {
    "Owner": {"ID": "abc"},
    "Grants": [{"Grantee": {"ID": "abc", "Type": "CanonicalUser"}, "Permission": "FULL_CONTROL"}],
}
PUBLIC_READ_ACL = {
    "Owner": {"ID": "abc"},
    "Grants": [
        *OWNER_ACL["Grants"],
        {"Grantee": {"Type": "Group", "URI": "http://acs.amazonaws.com/groups/global/AllUsers"}, "Permission": "READ"},
    ],
}


def tls_policy(bucket: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "TLSOnly",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


def public_policy(bucket: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}
        ],
    }


def bucket(name: str, *, good: bool = True, errors: Mapping[str, str] | None = None, **parts: Any) -> CloudResource:
    """A bucket that passes every bucket check (good) or fails every one (not good); parts override."""
    data: dict[str, Any] = {
        "name": name,
        "public_access_block": PAB_ON if good else None,
        "policy": tls_policy(name) if good else public_policy(name),
        "acl": OWNER_ACL if good else PUBLIC_READ_ACL,
        "encryption": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}] if good else None,
        "versioning": {"Status": "Enabled" if good else "Suspended", "MFADelete": "Disabled"},
        "logging": {"TargetBucket": "logs", "TargetPrefix": name} if good else None,
        "object_lock": {"ObjectLockEnabled": "Enabled"} if good else None,
    }
    data.update(parts)
    return CloudResource(f"arn:aws:s3:::{name}", "eu-west-1", data, dict(errors or {}), name=name)
