"""The API collections AWS checks read, each made once per account (global) or region.

A collector lists resources with paginators and reads each resource's parts; a
part that fails (one bucket's GetBucketPolicy denied) is recorded on that resource
only, so the other parts and resources stay assessable. Every action a collector
may call is declared in its ``actions`` (the policy test compares them with the
checks' ``iam_actions``).
"""

from __future__ import annotations

import csv
import io
import json
import time
from typing import Any
from urllib.parse import unquote

from itops.facts import CloudResource
from itops.transport.aws import GLOBAL, ApiFailure, CallContext, PermissionMissing, collection

#: How long to wait for IAM to finish generating the credential report.
CREDENTIAL_REPORT_WAIT = 30.0


def _region_setting(
    ctx: CallContext, service: str, data: dict[str, Any], errors: dict[str, str] | None = None
) -> CloudResource:
    """A region-wide setting as a resource (AWS has no ARN for it)."""
    return CloudResource(ctx.arn(service, "account"), ctx.region, data, errors or {}, name=ctx.region)


def _policy_document(raw: Any) -> Any:
    """IAM/S3 policy documents arrive as dicts, JSON text or URL-encoded JSON text."""
    if isinstance(raw, dict):
        return raw
    text = unquote(raw) if isinstance(raw, str) and raw.startswith("%7B") else raw
    try:
        return json.loads(text)
    except (TypeError, ValueError) as exc:
        raise ApiFailure(f"could not assess: policy document is not valid JSON ({exc})") from exc


# --- S3 ------------------------------------------------------------------------------------


@collection("s3.account_public_access_block", scope="global", actions=["s3:GetAccountPublicAccessBlock"])
def s3_account_public_access_block(ctx: CallContext) -> list[CloudResource]:
    resp = ctx.call(
        "s3control",
        "get_public_access_block",
        absent=("NoSuchPublicAccessBlockConfiguration",),
        AccountId=ctx.account_id,
    )
    config = (resp or {}).get("PublicAccessBlockConfiguration")
    return [CloudResource(ctx.arn("s3", "account", region=""), GLOBAL, {"config": config}, name="account")]


S3_ACTIONS = (
    "s3:ListAllMyBuckets",
    "s3:GetBucketLocation",
    "s3:GetBucketPublicAccessBlock",
    "s3:GetBucketPolicy",
    "s3:GetBucketAcl",
    "s3:GetEncryptionConfiguration",
    "s3:GetBucketVersioning",
    "s3:GetBucketLogging",
    "s3:GetBucketObjectLockConfiguration",
)


@collection("s3.buckets", scope="global", actions=S3_ACTIONS)
def s3_buckets(ctx: CallContext) -> list[CloudResource]:
    """Every bucket with its location, public access block, policy, ACL, encryption,
    versioning, logging and object lock configuration."""
    buckets = ctx.pages("s3", "list_buckets", "Buckets")

    def one(bucket: dict[str, Any]) -> CloudResource:
        name = bucket["Name"]
        data: dict[str, Any] = {"name": name}
        errors: dict[str, str] = {}
        region: str = ctx.region
        try:
            loc = (ctx.call("s3", "get_bucket_location", Bucket=name) or {}).get("LocationConstraint")
            region = {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}.get(loc, str(loc))
        except ApiFailure as exc:
            errors["location"] = str(exc)

        def get(method: str, absent: tuple[str, ...] = ()) -> dict[str, Any] | None:
            return ctx.call("s3", method, absent=absent, region=region, Bucket=name)

        def pab() -> Any:
            resp = get("get_public_access_block", ("NoSuchPublicAccessBlockConfiguration",))
            return (resp or {}).get("PublicAccessBlockConfiguration")

        def policy() -> Any:
            resp = get("get_bucket_policy", ("NoSuchBucketPolicy",))
            return _policy_document(resp["Policy"]) if resp else None

        def acl() -> Any:
            resp = get("get_bucket_acl") or {}
            return {"Owner": resp.get("Owner", {}), "Grants": resp.get("Grants", [])}

        def encryption() -> Any:
            resp = get("get_bucket_encryption", ("ServerSideEncryptionConfigurationNotFoundError",))
            return (resp or {}).get("ServerSideEncryptionConfiguration", {}).get("Rules") if resp else None

        def versioning() -> Any:
            resp = get("get_bucket_versioning") or {}
            return {"Status": resp.get("Status", "Disabled"), "MFADelete": resp.get("MFADelete", "Disabled")}

        def logging() -> Any:
            return (get("get_bucket_logging") or {}).get("LoggingEnabled")

        def object_lock() -> Any:
            resp = get("get_object_lock_configuration", ("ObjectLockConfigurationNotFoundError",))
            return (resp or {}).get("ObjectLockConfiguration")

        for key, fetch in (
            ("public_access_block", pab),
            ("policy", policy),
            ("acl", acl),
            ("encryption", encryption),
            ("versioning", versioning),
            ("logging", logging),
            ("object_lock", object_lock),
        ):
            ctx.part(data, errors, key, fetch)
        return CloudResource(f"arn:{ctx.partition}:s3:::{name}", region, data, errors, name=name)

    return ctx.map(one, buckets)


# --- IAM -----------------------------------------------------------------------------------


@collection("iam.account_summary", scope="global", actions=["iam:GetAccountSummary"])
def iam_account_summary(ctx: CallContext) -> list[CloudResource]:
    summary = (ctx.call("iam", "get_account_summary") or {}).get("SummaryMap", {})
    return [CloudResource(ctx.arn("iam", "root", region=""), GLOBAL, {"summary": summary}, name="root")]


@collection("iam.password_policy", scope="global", actions=["iam:GetAccountPasswordPolicy"])
def iam_password_policy(ctx: CallContext) -> list[CloudResource]:
    resp = ctx.call("iam", "get_account_password_policy", absent=("NoSuchEntity",))
    policy = (resp or {}).get("PasswordPolicy")
    return [CloudResource(ctx.arn("iam", "account", region=""), GLOBAL, {"policy": policy}, name="account")]


@collection(
    "iam.credential_report", scope="global", actions=["iam:GenerateCredentialReport", "iam:GetCredentialReport"]
)
def iam_credential_report(ctx: CallContext) -> list[CloudResource]:
    """One resource per row of the credential report (the root account's row included)."""
    deadline = time.monotonic() + CREDENTIAL_REPORT_WAIT
    while (ctx.call("iam", "generate_credential_report") or {}).get("State") != "COMPLETE":
        if time.monotonic() > deadline:
            raise ApiFailure(f"could not assess: credential report not ready after {CREDENTIAL_REPORT_WAIT:.0f}s")
        time.sleep(1.0)
    resp = ctx.call("iam", "get_credential_report") or {}
    content = resp.get("Content", b"")
    text = content.decode("utf-8") if isinstance(content, bytes) else str(content)
    rows = list(csv.DictReader(io.StringIO(text)))
    generated = resp.get("GeneratedTime")
    out = []
    for row in rows:
        data: dict[str, Any] = dict(row)
        data["report_generated"] = generated
        out.append(CloudResource(row.get("arn", ""), GLOBAL, data, name=row.get("user", "")))
    return out


@collection(
    "iam.users",
    scope="global",
    actions=["iam:ListUsers", "iam:ListAttachedUserPolicies", "iam:ListUserPolicies"],
)
def iam_users(ctx: CallContext) -> list[CloudResource]:
    users = ctx.pages("iam", "list_users", "Users")

    def one(user: dict[str, Any]) -> CloudResource:
        name = user["UserName"]
        data: dict[str, Any] = {"user": user}
        errors: dict[str, str] = {}
        ctx.part(
            data,
            errors,
            "attached",
            lambda: ctx.pages("iam", "list_attached_user_policies", "AttachedPolicies", UserName=name),
        )
        ctx.part(data, errors, "inline", lambda: ctx.pages("iam", "list_user_policies", "PolicyNames", UserName=name))
        return CloudResource(user["Arn"], GLOBAL, data, errors, name=name)

    return ctx.map(one, users)


@collection("iam.policies", scope="global", actions=["iam:ListPolicies", "iam:GetPolicyVersion"])
def iam_policies(ctx: CallContext) -> list[CloudResource]:
    """Customer-managed policies with their default version's document."""
    policies = ctx.pages("iam", "list_policies", "Policies", Scope="Local")

    def one(policy: dict[str, Any]) -> CloudResource:
        data: dict[str, Any] = {"policy": policy}
        errors: dict[str, str] = {}

        def document() -> Any:
            resp = ctx.call("iam", "get_policy_version", PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"])
            return _policy_document((resp or {}).get("PolicyVersion", {}).get("Document"))

        ctx.part(data, errors, "document", document)
        return CloudResource(policy["Arn"], GLOBAL, data, errors, name=policy["PolicyName"])

    return ctx.map(one, policies)


# --- EC2 / VPC -----------------------------------------------------------------------------


@collection("ec2.security_groups", scope="regional", actions=["ec2:DescribeSecurityGroups"])
def ec2_security_groups(ctx: CallContext) -> list[CloudResource]:
    return [
        CloudResource(
            ctx.arn("ec2", f"security-group/{g['GroupId']}"),
            ctx.region,
            g,
            name=f"{g['GroupId']} ({g.get('GroupName', '')})",
        )
        for g in ctx.pages("ec2", "describe_security_groups", "SecurityGroups")
    ]


@collection("ec2.ebs_encryption_default", scope="regional", actions=["ec2:GetEbsEncryptionByDefault"])
def ec2_ebs_encryption_default(ctx: CallContext) -> list[CloudResource]:
    resp = ctx.call("ec2", "get_ebs_encryption_by_default") or {}
    return [_region_setting(ctx, "ec2", {"enabled": bool(resp.get("EbsEncryptionByDefault"))})]


@collection("ec2.volumes", scope="regional", actions=["ec2:DescribeVolumes"])
def ec2_volumes(ctx: CallContext) -> list[CloudResource]:
    return [
        CloudResource(ctx.arn("ec2", f"volume/{v['VolumeId']}"), ctx.region, v, name=v["VolumeId"])
        for v in ctx.pages("ec2", "describe_volumes", "Volumes")
    ]


@collection("ec2.snapshots", scope="regional", actions=["ec2:DescribeSnapshots", "ec2:DescribeSnapshotAttribute"])
def ec2_snapshots(ctx: CallContext) -> list[CloudResource]:
    snaps = [
        s
        for s in ctx.pages("ec2", "describe_snapshots", "Snapshots", OwnerIds=[ctx.account_id])
        if s.get("OwnerId", ctx.account_id) == ctx.account_id
    ]

    def one(snap: dict[str, Any]) -> CloudResource:
        sid = snap["SnapshotId"]
        data: dict[str, Any] = dict(snap)
        errors: dict[str, str] = {}
        ctx.part(
            data,
            errors,
            "create_volume_permissions",
            lambda: (
                ctx.call(
                    "ec2",
                    "describe_snapshot_attribute",
                    SnapshotId=sid,
                    Attribute="createVolumePermission",
                )
                or {}
            ).get("CreateVolumePermissions", []),
        )
        return CloudResource(ctx.arn("ec2", f"snapshot/{sid}", account=False), ctx.region, data, errors, name=sid)

    return ctx.map(one, snaps)


@collection("ec2.instances", scope="regional", actions=["ec2:DescribeInstances"])
def ec2_instances(ctx: CallContext) -> list[CloudResource]:
    reservations = ctx.pages("ec2", "describe_instances", "Reservations")
    return [
        CloudResource(ctx.arn("ec2", f"instance/{i['InstanceId']}"), ctx.region, i, name=i["InstanceId"])
        for r in reservations
        for i in r.get("Instances", [])
        if i.get("State", {}).get("Name") not in ("terminated", "shutting-down")
    ]


@collection("ec2.vpcs", scope="regional", actions=["ec2:DescribeVpcs", "ec2:DescribeFlowLogs"])
def ec2_vpcs(ctx: CallContext) -> list[CloudResource]:
    vpcs = ctx.pages("ec2", "describe_vpcs", "Vpcs")
    flow_error = ""
    flows: list[dict[str, Any]] = []
    try:
        flows = ctx.pages("ec2", "describe_flow_logs", "FlowLogs")
    except ApiFailure as exc:
        flow_error = str(exc)
    out = []
    for vpc in vpcs:
        vid = vpc["VpcId"]
        data = {"vpc": vpc, "flow_logs": [f for f in flows if f.get("ResourceId") == vid]}
        errors = {"flow_logs": flow_error} if flow_error else {}
        out.append(CloudResource(ctx.arn("ec2", f"vpc/{vid}"), ctx.region, data, errors, name=vid))
    return out


# --- RDS -----------------------------------------------------------------------------------


@collection("rds.instances", scope="regional", actions=["rds:DescribeDBInstances"])
def rds_instances(ctx: CallContext) -> list[CloudResource]:
    return [
        CloudResource(db["DBInstanceArn"], ctx.region, db, name=db["DBInstanceIdentifier"])
        for db in ctx.pages("rds", "describe_db_instances", "DBInstances")
    ]


@collection("rds.snapshots", scope="regional", actions=["rds:DescribeDBSnapshots", "rds:DescribeDBSnapshotAttributes"])
def rds_snapshots(ctx: CallContext) -> list[CloudResource]:
    """Manual DB snapshots (only those can be shared) with their restore attribute."""
    snaps = ctx.pages("rds", "describe_db_snapshots", "DBSnapshots", SnapshotType="manual")

    def one(snap: dict[str, Any]) -> CloudResource:
        sid = snap["DBSnapshotIdentifier"]
        data: dict[str, Any] = dict(snap)
        errors: dict[str, str] = {}

        def restore() -> list[str]:
            resp = ctx.call("rds", "describe_db_snapshot_attributes", DBSnapshotIdentifier=sid) or {}
            attrs = resp.get("DBSnapshotAttributesResult", {}).get("DBSnapshotAttributes", [])
            return [v for a in attrs if a.get("AttributeName") == "restore" for v in a.get("AttributeValues", [])]

        ctx.part(data, errors, "restore", restore)
        return CloudResource(snap["DBSnapshotArn"], ctx.region, data, errors, name=sid)

    return ctx.map(one, snaps)


# --- logging, keys, detection ---------------------------------------------------------------


@collection(
    "cloudtrail.trails",
    scope="global",
    actions=["cloudtrail:DescribeTrails", "cloudtrail:GetTrailStatus", "cloudtrail:GetEventSelectors"],
)
def cloudtrail_trails(ctx: CallContext) -> list[CloudResource]:
    """Every trail visible from the audited regions (multi-region trails once), with status and selectors."""
    seen: dict[str, dict[str, Any]] = {}
    for region in ctx.regions:
        try:
            found = ctx.call("cloudtrail", "describe_trails", region=region, includeShadowTrails=True) or {}
        except PermissionMissing:
            raise
        except ApiFailure as exc:  # global collection: say which region did not answer
            raise ApiFailure(f"{exc} (in region {region})") from exc
        for trail in found.get("trailList", []):
            seen.setdefault(trail["TrailARN"], trail)

    def one(trail: dict[str, Any]) -> CloudResource:
        arn, home = trail["TrailARN"], trail.get("HomeRegion") or ctx.region
        data: dict[str, Any] = {"trail": trail}
        errors: dict[str, str] = {}
        ctx.part(data, errors, "status", lambda: ctx.call("cloudtrail", "get_trail_status", region=home, Name=arn))
        ctx.part(
            data, errors, "selectors", lambda: ctx.call("cloudtrail", "get_event_selectors", region=home, TrailName=arn)
        )
        return CloudResource(arn, home, data, errors, name=trail.get("Name", arn))

    return ctx.map(one, list(seen.values()))


@collection(
    "kms.keys",
    scope="regional",
    actions=["kms:ListKeys", "kms:ListAliases", "kms:DescribeKey", "kms:GetKeyRotationStatus"],
)
def kms_keys(ctx: CallContext) -> list[CloudResource]:
    """Every key with its metadata and aliases; rotation status for enabled symmetric customer keys.

    A key behind an ``alias/aws/...`` alias is AWS-managed whatever its KeyManager says: only
    AWS may create those aliases, and some endpoints (moto) report their keys as CUSTOMER.
    """
    keys = ctx.pages("kms", "list_keys", "Keys")
    aliases: dict[str, list[str]] = {}
    for alias in ctx.pages("kms", "list_aliases", "Aliases"):
        if alias.get("TargetKeyId"):
            aliases.setdefault(alias["TargetKeyId"], []).append(str(alias.get("AliasName", "")))

    def one(key: dict[str, Any]) -> CloudResource:
        kid = key["KeyId"]
        data: dict[str, Any] = {"aliases": sorted(aliases.get(kid, []))}
        errors: dict[str, str] = {}
        ctx.part(
            data, errors, "metadata", lambda: (ctx.call("kms", "describe_key", KeyId=kid) or {}).get("KeyMetadata", {})
        )
        meta = data.get("metadata") or {}
        if (
            meta.get("KeyManager") == "CUSTOMER"
            and not any(a.startswith("alias/aws/") for a in data["aliases"])
            and meta.get("KeyState") == "Enabled"
            and (meta.get("KeySpec", meta.get("CustomerMasterKeySpec")) == "SYMMETRIC_DEFAULT")
        ):
            ctx.part(
                data,
                errors,
                "rotation",
                lambda: bool((ctx.call("kms", "get_key_rotation_status", KeyId=kid) or {}).get("KeyRotationEnabled")),
            )
        return CloudResource(key.get("KeyArn") or ctx.arn("kms", f"key/{kid}"), ctx.region, data, errors, name=kid)

    return ctx.map(one, keys)


@collection(
    "config.recorders",
    scope="regional",
    actions=["config:DescribeConfigurationRecorders", "config:DescribeConfigurationRecorderStatus"],
)
def config_recorders(ctx: CallContext) -> list[CloudResource]:
    recorders = (ctx.call("config", "describe_configuration_recorders") or {}).get("ConfigurationRecorders", [])
    statuses = (ctx.call("config", "describe_configuration_recorder_status") or {}).get(
        "ConfigurationRecordersStatus", []
    )
    return [_region_setting(ctx, "config", {"recorders": recorders, "statuses": statuses})]


@collection("guardduty.detectors", scope="regional", actions=["guardduty:ListDetectors", "guardduty:GetDetector"])
def guardduty_detectors(ctx: CallContext) -> list[CloudResource]:
    detectors = []
    for did in ctx.pages("guardduty", "list_detectors", "DetectorIds"):
        resp = ctx.call("guardduty", "get_detector", DetectorId=did) or {}
        detectors.append({"id": did, "status": resp.get("Status", "")})
    return [_region_setting(ctx, "guardduty", {"detectors": detectors})]
