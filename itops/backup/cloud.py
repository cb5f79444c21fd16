"""Cloud backups through the account's boto3 session: s3, ebs_snapshot, rds_snapshot, aws_backup.

Each function reads what the checks need, once: the copies (objects, snapshots, recovery
points: time, size, encrypted, public), the integrity of the newest S3 object (its stored
checksum recomputed from the bytes), and the protection (Object Lock, vault lock, public
sharing). A failed API call becomes the aspect's error ("not assessable: missing permission
s3:GetObject"), so the checks that needed it end in ERROR, never PASS.

Clients come from a ``(service, region) -> client`` function: the verifier passes the
account's :class:`~itops.transport.aws.ClientPool`; tests may pass stubbed clients.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from itops.backup.facts import BackupFacts, Copy, Observation, Verdict, format_size
from itops.inventory import AWSBackupVault, AWSSnapshotBackup, Backup, Cloud, S3Backup
from itops.transport.aws import classify

ClientGetter = Callable[[str, str], Any]
GIB = 1024**3
#: Newest S3 objects larger than this are not downloaded to recompute their checksum (vars override).
DEFAULT_S3_VERIFY_MAX_BYTES = 2 * 1000**3
#: Snapshots whose sharing is looked up one by one (newest first) per backup.
MAX_SHARING_LOOKUPS = 200

_ACTIONS = {
    "list_objects_v2": "s3:ListBucket",
    "head_object": "s3:GetObject",
    "get_object": "s3:GetObject",
    "get_bucket_versioning": "s3:GetBucketVersioning",
    "get_object_lock_configuration": "s3:GetBucketObjectLockConfiguration",
    "describe_snapshots": "ec2:DescribeSnapshots",
    "describe_snapshot_attribute": "ec2:DescribeSnapshotAttribute",
    "describe_db_snapshots": "rds:DescribeDBSnapshots",
    "describe_db_snapshot_attributes": "rds:DescribeDBSnapshotAttributes",
    "list_recovery_points_by_backup_vault": "backup:ListRecoveryPointsByBackupVault",
    "describe_backup_vault": "backup:DescribeBackupVault",
    "get_backup_vault_access_policy": "backup:GetBackupVaultAccessPolicy",
}


class _Failed(Exception):
    """An API call failed; str() is the reason a check shows."""


def _call(client: Any, method: str, absent: tuple[str, ...] = (), **kw: Any) -> Any:
    """``client.method(**kw)``; None when the error code is in ``absent`` ("not configured")."""
    try:
        return getattr(client, method)(**kw)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in absent:
            return None
        raise _Failed(str(classify(exc, _ACTIONS.get(method, method)))) from exc
    except BotoCoreError as exc:
        raise _Failed(str(classify(exc, _ACTIONS.get(method, method)))) from exc


def _pages(client: Any, method: str, key: str, **kw: Any) -> list[Any]:
    out: list[Any] = []
    try:
        for page in client.get_paginator(method).paginate(**kw):
            out.extend(page.get(key, []))
    except ClientError as exc:
        raise _Failed(str(classify(exc, _ACTIONS.get(method, method)))) from exc
    except BotoCoreError as exc:
        raise _Failed(str(classify(exc, _ACTIONS.get(method, method)))) from exc
    return out


def _ts(value: Any) -> float:
    return value.timestamp() if isinstance(value, datetime) else float(value)


def region_of(b: AWSSnapshotBackup | S3Backup, cloud: Cloud) -> str:
    explicit = getattr(b, "region", None)
    return str(explicit or (cloud.regions[0] if cloud.regions else "us-east-1"))


def cloud_facts(
    b: Backup, cloud: Cloud, clients: ClientGetter, now: float, variables: Mapping[str, Any]
) -> BackupFacts:
    """Gather the facts of one cloud backup (kind s3, ebs_snapshot, rds_snapshot or aws_backup)."""
    kind = b.kind
    base = dict(
        name=b.name,
        kind=kind,
        now=now,
        rpo=float(b.rpo),
        min_size=b.min_size,
        max_shrink_pct=b.max_shrink_pct,
        min_copies=b.min_copies,
        vars=variables,
    )
    if isinstance(b, S3Backup):
        return _s3(b, cloud, clients, base, variables)
    if isinstance(b, AWSBackupVault):
        return _vault(b, cloud, clients, base)
    assert isinstance(b, AWSSnapshotBackup)
    return _ebs(b, cloud, clients, base) if kind == "ebs_snapshot" else _rds(b, cloud, clients, base)


# --- s3 -------------------------------------------------------------------------------------------


def _s3(
    b: S3Backup, cloud: Cloud, clients: ClientGetter, base: dict[str, Any], variables: Mapping[str, Any]
) -> BackupFacts:
    s3 = clients("s3", region_of(b, cloud))
    where = f"s3://{b.bucket}/{b.prefix}"
    src = f"s3:ListObjectsV2 {where}"
    try:
        objects = _pages(s3, "list_objects_v2", "Contents", Bucket=b.bucket, Prefix=b.prefix)
    except _Failed as exc:
        if "NoSuchBucket" in str(exc):
            return BackupFacts(
                where=where,
                absent=f"bucket {b.bucket} does not exist",
                observations={"copies": Observation(src)},
                **base,
            )
        return BackupFacts(where=where, observations={"copies": Observation(src, error=str(exc))}, **base)
    copies = [
        Copy(name=o["Key"], created=_ts(o["LastModified"]), size=int(o.get("Size", 0)))
        for o in objects
        if not o["Key"].endswith("/")
    ]
    obs = {"copies": Observation(src, excerpt=f"{len(copies)} object(s)")}
    integrity: Verdict | None = None
    immutable: Verdict | None = None
    newest = max(copies, key=lambda c: (c.created, c.name), default=None)
    head: dict[str, Any] = {}
    if newest is not None:
        try:
            head = _call(s3, "head_object", Bucket=b.bucket, Key=newest.name, ChecksumMode="ENABLED") or {}
            sse = head.get("ServerSideEncryption")
            copies = [Copy(c.name, c.created, c.size, encrypted=bool(sse)) if c is newest else c for c in copies]
            limit = int(variables.get("s3_verify_max_bytes", DEFAULT_S3_VERIFY_MAX_BYTES))
            if b.integrity != "none":
                integrity = _s3_integrity(s3, b, newest, head, limit)
            obs["integrity"] = Observation(f"s3:GetObject s3://{b.bucket}/{newest.name} (checksum)")
        except _Failed as exc:
            obs["integrity"] = Observation(f"s3:HeadObject/GetObject s3://{b.bucket}/{newest.name}", error=str(exc))
            copies = [Copy(c.name, c.created, c.size) for c in copies]
    try:
        immutable = _s3_lock(s3, b, head)
        obs["protection"] = Observation(f"s3:GetObjectLockConfiguration, s3:GetBucketVersioning {b.bucket}")
    except _Failed as exc:
        obs["protection"] = Observation(f"s3:GetObjectLockConfiguration {b.bucket}", error=str(exc))
    return BackupFacts(
        where=where, copies=tuple(copies), integrity=integrity, immutable=immutable, observations=obs, **base
    )


def _s3_integrity(s3: Any, b: S3Backup, newest: Copy, head: Mapping[str, Any], limit: int) -> Verdict:
    algo, stored = next(
        ((a, head[f"Checksum{a}"]) for a in ("SHA256", "SHA1", "CRC32") if head.get(f"Checksum{a}")), ("", "")
    )
    etag = str(head.get("ETag", "")).strip('"')
    if not algo and (not etag or "-" in etag):
        other = next((a for a in ("CRC32C", "CRC64NVME") if head.get(f"Checksum{a}")), "")
        why = f"its {other} checksum cannot be recomputed here" if other else "no checksum is stored with it"
        return Verdict(None, f"{newest.name}: {why} (multipart upload)")
    if (newest.size or 0) > limit:
        return Verdict(
            None,
            f"{newest.name} is {format_size(newest.size or 0)}, over s3_verify_max_bytes "
            f"{format_size(limit)}: not downloaded",
        )
    body = _call(s3, "get_object", Bucket=b.bucket, Key=newest.name)["Body"]
    digest: Any = {"SHA256": hashlib.sha256(), "SHA1": hashlib.sha1(usedforsecurity=False)}.get(algo)
    md5 = hashlib.md5(usedforsecurity=False)
    crc = 0
    try:
        for chunk in iter(lambda: body.read(1 << 20), b""):
            if digest is not None:
                digest.update(chunk)
            crc = zlib.crc32(chunk, crc)
            md5.update(chunk)
    except (BotoCoreError, OSError) as exc:
        raise _Failed(f"could not assess: reading s3://{b.bucket}/{newest.name} failed: {exc}") from exc
    finally:
        body.close()
    if algo:
        raw = digest.digest() if digest is not None else crc.to_bytes(4, "big")
        actual = base64.b64encode(raw).decode()
        if actual != stored:
            return Verdict(False, f"{newest.name}: {algo} checksum {actual} does not match the stored {stored}")
        return Verdict(True, f"{newest.name}: {algo} checksum matches the object's bytes")
    if md5.hexdigest() != etag:
        return Verdict(False, f"{newest.name}: MD5 {md5.hexdigest()} does not match the ETag {etag}")
    return Verdict(True, f"{newest.name}: MD5 matches the ETag")


def _s3_lock(s3: Any, b: S3Backup, head: Mapping[str, Any]) -> Verdict:
    lock = _call(s3, "get_object_lock_configuration", ("ObjectLockConfigurationNotFoundError",), Bucket=b.bucket)
    conf = (lock or {}).get("ObjectLockConfiguration", {})
    if conf.get("ObjectLockEnabled") == "Enabled":
        rule = conf.get("Rule", {}).get("DefaultRetention", {})
        if rule:
            span = f"{rule['Days']} days" if rule.get("Days") else f"{rule.get('Years', '?')} years"
            return Verdict(
                True, f"Object Lock on bucket {b.bucket}: {rule.get('Mode', '?')} retention {span} by default"
            )
        if head.get("ObjectLockMode") and head.get("ObjectLockRetainUntilDate"):
            until = head["ObjectLockRetainUntilDate"]
            return Verdict(
                True, f"Object Lock on bucket {b.bucket}: newest object locked ({head['ObjectLockMode']}) until {until}"
            )
        return Verdict(
            False,
            f"Object Lock is enabled on bucket {b.bucket} but there is no default retention and "
            "the newest object has none: it can be deleted",
        )
    versioning = (_call(s3, "get_bucket_versioning", Bucket=b.bucket) or {}).get("Status") or "never enabled"
    return Verdict(
        False,
        f"Object Lock is not enabled on bucket {b.bucket} (versioning: {versioning}): "
        "backups can be deleted or overwritten",
    )


# --- ebs / rds snapshots ----------------------------------------------------------------------------


def _ebs(b: AWSSnapshotBackup, cloud: Cloud, clients: ClientGetter, base: dict[str, Any]) -> BackupFacts:
    region = region_of(b, cloud)
    ec2 = clients("ec2", region)
    ids = list(b.resource_ids)
    where = f"EBS snapshots of {', '.join(ids) or 'every volume'} ({region})"
    src = f"ec2:DescribeSnapshots OwnerIds=self {region}"
    filters = [{"Name": "volume-id", "Values": ids}] if ids else []
    try:
        snaps = _pages(ec2, "describe_snapshots", "Snapshots", OwnerIds=["self"], Filters=filters)
    except _Failed as exc:
        return BackupFacts(
            where=where, expected_groups=tuple(ids), observations={"copies": Observation(src, error=str(exc))}, **base
        )
    done = sorted((s for s in snaps if s.get("State") == "completed"), key=lambda s: _ts(s["StartTime"]), reverse=True)
    obs = {"copies": Observation(src, excerpt=f"{len(done)} completed of {len(snaps)} snapshot(s)")}
    public: dict[str, bool] = {}
    try:
        for s in done[:MAX_SHARING_LOOKUPS]:
            attr = _call(
                ec2, "describe_snapshot_attribute", SnapshotId=s["SnapshotId"], Attribute="createVolumePermission"
            )
            perms = (attr or {}).get("CreateVolumePermissions", [])
            public[s["SnapshotId"]] = any(p.get("Group") == "all" for p in perms)
        obs["protection"] = Observation(
            f"ec2:DescribeSnapshotAttribute createVolumePermission ({len(public)} snapshot(s))"
        )
    except _Failed as exc:
        obs["protection"] = Observation("ec2:DescribeSnapshotAttribute createVolumePermission", error=str(exc))
    copies = tuple(
        Copy(
            name=s["SnapshotId"],
            created=_ts(s["StartTime"]),
            size=int(s.get("VolumeSize", 0)) * GIB,
            group=s.get("VolumeId", ""),
            encrypted=bool(s.get("Encrypted")),
            public=public.get(s["SnapshotId"]),
        )
        for s in done
    )
    return BackupFacts(where=where, copies=copies, expected_groups=tuple(ids), observations=obs, **base)


def _rds(b: AWSSnapshotBackup, cloud: Cloud, clients: ClientGetter, base: dict[str, Any]) -> BackupFacts:
    region = region_of(b, cloud)
    rds = clients("rds", region)
    ids = list(b.resource_ids)
    where = f"RDS snapshots of {', '.join(ids) or 'every DB instance'} ({region})"
    src = f"rds:DescribeDBSnapshots {region}"
    try:
        snaps: list[Any] = []
        for ident in ids or [""]:
            kw = {"DBInstanceIdentifier": ident} if ident else {}
            snaps += _pages(rds, "describe_db_snapshots", "DBSnapshots", **kw)
    except _Failed as exc:
        return BackupFacts(
            where=where, expected_groups=tuple(ids), observations={"copies": Observation(src, error=str(exc))}, **base
        )
    done = sorted(
        (s for s in snaps if s.get("Status") == "available" and s.get("SnapshotCreateTime")),
        key=lambda s: _ts(s["SnapshotCreateTime"]),
        reverse=True,
    )
    obs = {"copies": Observation(src, excerpt=f"{len(done)} available of {len(snaps)} snapshot(s)")}
    public: dict[str, bool] = {}
    try:
        # only manual snapshots can be shared; automated ones are never public
        for s in [s for s in done if s.get("SnapshotType") != "automated"][:MAX_SHARING_LOOKUPS]:
            res = _call(rds, "describe_db_snapshot_attributes", DBSnapshotIdentifier=s["DBSnapshotIdentifier"]) or {}
            attrs = res.get("DBSnapshotAttributesResult", {}).get("DBSnapshotAttributes", [])
            public[s["DBSnapshotIdentifier"]] = any(
                a.get("AttributeName") == "restore" and "all" in a.get("AttributeValues", []) for a in attrs
            )
        obs["protection"] = Observation(f"rds:DescribeDBSnapshotAttributes ({len(public)} manual snapshot(s))")
    except _Failed as exc:
        obs["protection"] = Observation("rds:DescribeDBSnapshotAttributes", error=str(exc))
    copies = tuple(
        Copy(
            name=s["DBSnapshotIdentifier"],
            created=_ts(s["SnapshotCreateTime"]),
            size=int(s.get("AllocatedStorage", 0)) * GIB,
            group=s.get("DBInstanceIdentifier", ""),
            encrypted=bool(s.get("Encrypted")),
            public=public.get(s["DBSnapshotIdentifier"], False),
        )
        for s in done
    )
    return BackupFacts(where=where, copies=copies, expected_groups=tuple(ids), observations=obs, **base)


# --- aws backup ------------------------------------------------------------------------------------


def _vault(b: AWSBackupVault, cloud: Cloud, clients: ClientGetter, base: dict[str, Any]) -> BackupFacts:
    region = region_of(b, cloud)
    bk = clients("backup", region)
    ids = list(b.resource_ids)
    where = f"AWS Backup vault {b.vault} ({region})"
    src = f"backup:ListRecoveryPointsByBackupVault {b.vault} {region}"
    try:
        points = _pages(bk, "list_recovery_points_by_backup_vault", "RecoveryPoints", BackupVaultName=b.vault)
    except _Failed as exc:
        return BackupFacts(
            where=where, expected_groups=tuple(ids), observations={"copies": Observation(src, error=str(exc))}, **base
        )
    obs: dict[str, Observation] = {}
    public = False
    immutable: Verdict | None = None
    try:
        vault = _call(bk, "describe_backup_vault", BackupVaultName=b.vault) or {}
        policy = _call(bk, "get_backup_vault_access_policy", ("ResourceNotFoundException",), BackupVaultName=b.vault)
        public = policy_is_public((policy or {}).get("Policy"))
        if vault.get("Locked"):
            immutable = Verdict(
                True, f"vault {b.vault} is locked (minimum retention {vault.get('MinRetentionDays', '?')} days)"
            )
        else:
            immutable = Verdict(
                False, f"vault {b.vault} has no Vault Lock: recovery points can be deleted before they expire"
            )
        obs["protection"] = Observation(f"backup:DescribeBackupVault, backup:GetBackupVaultAccessPolicy {b.vault}")
    except _Failed as exc:
        obs["protection"] = Observation(f"backup:DescribeBackupVault {b.vault}", error=str(exc))
    chosen = [
        p
        for p in points
        if p.get("Status") == "COMPLETED" and (not ids or any(i in p.get("ResourceArn", "") for i in ids))
    ]
    groups = {i: i for i in ids}

    def group_of(arn: str) -> str:
        return next((i for i in groups if i in arn), arn)

    copies = tuple(
        Copy(
            name=p.get("RecoveryPointArn", "").rsplit(":", 1)[-1] or p.get("RecoveryPointArn", ""),
            created=_ts(p.get("CompletionDate") or p["CreationDate"]),
            size=p.get("BackupSizeInBytes"),
            group=group_of(p.get("ResourceArn", "")),
            encrypted=bool(p.get("IsEncrypted")),
            public=public,
        )
        for p in chosen
    )
    obs["copies"] = Observation(src, excerpt=f"{len(chosen)} completed of {len(points)} recovery point(s)")
    return BackupFacts(
        where=where, copies=copies, expected_groups=tuple(ids), immutable=immutable, observations=obs, **base
    )


def policy_is_public(policy: str | None) -> bool:
    """True when a resource policy allows anyone (Principal ``*``) without a condition."""
    if not policy:
        return False
    try:
        doc = json.loads(policy)
    except ValueError:
        return False
    statements = doc.get("Statement", [])
    for st in statements if isinstance(statements, list) else [statements]:
        if st.get("Effect") != "Allow" or st.get("Condition"):
            continue
        principal = st.get("Principal")
        values = principal.get("AWS", []) if isinstance(principal, dict) else principal
        values = values if isinstance(values, list) else [values]
        if "*" in values:
            return True
    return False
