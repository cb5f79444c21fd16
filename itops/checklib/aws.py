"""Helpers the AWS check pack shares: policy documents, ACLs, security group rules, tags, dates.

Pure functions of the data the collections hold (itops.transport.aws_collections);
no boto3 here. A policy statement is public when it allows everyone (``Principal: *``
or a ``NotPrincipal``) and its Condition does not confine it to fixed accounts, VPCs,
VPC endpoints, organisations or IP ranges (AWS's own definition of a public bucket
policy); a Condition on anything else (aws:SecureTransport, aws:Referer) restricts nobody.
"""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "PUBLIC_ACL_GROUPS",
    "as_list",
    "denies_insecure_transport",
    "grants_full_admin",
    "matches_any",
    "open_ingress",
    "parse_time",
    "public_acl_grants",
    "public_statements",
    "statements",
    "tag_map",
]

PUBLIC_ACL_GROUPS = {
    "http://acs.amazonaws.com/groups/global/AllUsers": "everyone",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers": "any AWS account",
}
WORLD_V4 = "0.0.0.0/0"
WORLD_V6 = "::/0"


def as_list(value: Any) -> list[Any]:
    """Policy fields may be one value or a list of values."""
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def statements(policy: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    """The statements of a policy document (``Statement`` may be one object or a list)."""
    if not policy:
        return []
    return [s for s in as_list(policy.get("Statement")) if isinstance(s, Mapping)]


def _is_everyone(principal: Any) -> bool:
    if principal == "*":
        return True
    if isinstance(principal, Mapping):
        return any(v == "*" for key in ("AWS", "CanonicalUser") for v in as_list(principal.get(key)))
    return False


#: Condition keys that, tested for fixed values, confine a grant to known callers (AWS's own
#: definition of a non-public bucket policy); a Condition on anything else (aws:SecureTransport,
#: aws:Referer, s3:prefix ...) leaves the statement open to everyone.
RESTRICTING_KEYS = frozenset(
    k.lower()
    for k in (
        "aws:SourceArn",
        "aws:SourceAccount",
        "aws:SourceOwner",
        "aws:SourceVpc",
        "aws:SourceVpce",
        "aws:SourceIp",
        "aws:SourceOrgID",
        "aws:SourceOrgPaths",
        "aws:PrincipalOrgID",
        "aws:PrincipalOrgPaths",
        "aws:PrincipalAccount",
        "aws:PrincipalArn",
        "aws:userid",
        "aws:username",
        "s3:DataAccessPointArn",
        "s3:DataAccessPointAccount",
        "s3:x-amz-server-side-encryption-aws-kms-key-id",
    )
)
#: Condition operators that allow only the listed values ("Not" and "IfExists" forms do not).
POSITIVE_OPERATORS = frozenset(
    {"stringequals", "stringequalsignorecase", "stringlike", "arnequals", "arnlike", "ipaddress"}
)


def _fixed_value(key: str, value: Any) -> bool:
    text = str(value).strip()
    if not text or text == "*":
        return False
    if key == "aws:sourceip":
        try:  # AWS counts a range wider than /8 (IPv4) or /32 (IPv6) as public
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            return False
        return net.prefixlen >= (8 if net.version == 4 else 32)
    return True


def _restricts(condition: Any) -> bool:
    """Does a statement's Condition confine it to fixed callers (then it is not public)?"""
    if not isinstance(condition, Mapping):
        return False
    for operator, tests in condition.items():
        op = str(operator).lower().split(":")[-1]  # ForAnyValue:StringEquals -> stringequals
        if op not in POSITIVE_OPERATORS or not isinstance(tests, Mapping):
            continue
        for key, values in tests.items():
            vals = as_list(values)
            if str(key).lower() in RESTRICTING_KEYS and vals and all(_fixed_value(str(key).lower(), v) for v in vals):
                return True
    return False


def _everyone(statement: Mapping[str, Any]) -> bool:
    # an Allow to everyone except a few (NotPrincipal) is still everyone
    return "NotPrincipal" in statement or _is_everyone(statement.get("Principal"))


def public_statements(policy: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    """Allow statements open to everyone: ``Principal: *`` (or a NotPrincipal) with no Condition
    that confines them to fixed accounts, networks, VPCs or organisations."""
    return [
        s
        for s in statements(policy)
        if s.get("Effect") == "Allow" and _everyone(s) and not _restricts(s.get("Condition"))
    ]


def _secure_transport_false(condition: Any) -> bool:
    if not isinstance(condition, Mapping):
        return False
    for operator, tests in condition.items():
        if not str(operator).startswith("Bool") or not isinstance(tests, Mapping):
            continue
        for key, value in tests.items():
            if key.lower() == "aws:securetransport" and any(str(v).lower() == "false" for v in as_list(value)):
                return True
    return False


def denies_insecure_transport(policy: Mapping[str, Any] | None) -> bool:
    """True when a Deny to everyone of s3:* (or *) applies when ``aws:SecureTransport`` is false."""
    for s in statements(policy):
        actions = {a.lower() for a in as_list(s.get("Action"))}
        if (
            s.get("Effect") == "Deny"
            and _is_everyone(s.get("Principal"))
            and actions & {"s3:*", "*"}
            and _secure_transport_false(s.get("Condition"))
        ):
            return True
    return False


def grants_full_admin(policy: Mapping[str, Any] | None) -> bool:
    """True when a statement allows every action (``*`` or ``*:*``) on every resource."""
    for s in statements(policy):
        if s.get("Effect") != "Allow" or "NotAction" in s or "NotResource" in s:
            continue
        actions = set(as_list(s.get("Action")))
        if actions & {"*", "*:*"} and "*" in as_list(s.get("Resource")):
            return True
    return False


def public_acl_grants(acl: Mapping[str, Any] | None) -> list[str]:
    """``"everyone: READ"``-style descriptions of ACL grants to the public groups."""
    out = []
    for grant in (acl or {}).get("Grants", []):
        uri = grant.get("Grantee", {}).get("URI", "")
        if uri in PUBLIC_ACL_GROUPS:
            out.append(f"{PUBLIC_ACL_GROUPS[uri]}: {grant.get('Permission', '?')}")
    return out


def _covers(rule: Mapping[str, Any], port: int | None) -> bool:
    """Does a permission cover ``port`` (TCP), or every port when ``port`` is None?"""
    proto = str(rule.get("IpProtocol", ""))
    if proto in ("-1", "all"):
        return True
    if port is None:
        return proto in ("tcp", "6", "udp", "17") and rule.get("FromPort") == 0 and rule.get("ToPort") == 65535
    if proto not in ("tcp", "6"):
        return False
    low, high = rule.get("FromPort"), rule.get("ToPort")
    return isinstance(low, int) and isinstance(high, int) and low <= port <= high


def open_ingress(group: Mapping[str, Any], port: int | None) -> list[str]:
    """Sources ``0.0.0.0/0`` / ``::/0`` a security group admits on ``port`` (None: all ports)."""
    found = []
    for rule in group.get("IpPermissions", []):
        if not _covers(rule, port):
            continue
        found += [r["CidrIp"] for r in rule.get("IpRanges", []) if r.get("CidrIp") == WORLD_V4]
        found += [r["CidrIpv6"] for r in rule.get("Ipv6Ranges", []) if r.get("CidrIpv6") == WORLD_V6]
    return sorted(set(found))


def tag_map(tags: Iterable[Mapping[str, Any]] | None) -> dict[str, str]:
    """``[{"Key": k, "Value": v}]`` as ``{k: v}``."""
    return {str(t.get("Key")): str(t.get("Value", "")) for t in tags or () if "Key" in t}


def matches_any(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def parse_time(value: Any) -> datetime | None:
    """An ISO 8601 timestamp (credential report, API) as an aware datetime; None for N/A-like values."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or value in ("", "N/A", "no_information", "not_supported"):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
