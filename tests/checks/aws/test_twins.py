"""Twins on a real moto server: for each AWS check, a compliant and a non-compliant resource side by side.

One ``itops audit -i INVENTORY`` (in-process through Click, as a user runs it) over three
accounts, planted once for the module:

- ``twins`` (the default moto account, two regions): one good and one bad resource per
  check, the way an outside evaluator plants them (public via ACL vs via policy vs a
  Block Public Access that neutralises it; SSH/RDP/all ports open over IPv4 and IPv6;
  suspended vs never-enabled versioning; an access key backdated 200 days ...);
- ``stopped`` (an assumed-role account): only a multi-region trail that is not logging,
  and a weak password policy;
- ``empty`` (another account with nothing in it): checks with nothing to assess are
  SKIPPED, never a vacuous PASS.

Then failure modes with the same code the CLI runs: an API denied by IAM makes only its
check ERROR; a region the endpoint does not serve is one clear ERROR per regional check.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from audit_helpers import run_audit
from aws_canned import aws_checks
from aws_fixtures import (
    ACCOUNT_ID,
    OTHER_ACCOUNT_ID,
    REGIONS,
    Moto,
    cloud_entry,
    cloud_model,
    enforce_iam,
    moto_endpoint,
    moto_reset,
    write_inventory,
)
from aws_scenario import PAB_ON, STRONG_PASSWORDS, compliant_region, empty_default_group, good_bucket

from itops.cloud import run_cloud_account
from itops.model import Status
from itops.transport.aws import _strip_account_host_prefix

pytestmark = pytest.mark.integration

HOME, OTHER = REGIONS
EMPTY_ACCOUNT_ID = "222222222222"
PASS, FAIL, SKIPPED, ERROR = Status.PASS.value, Status.FAIL.value, Status.SKIPPED.value, Status.ERROR.value
Verdicts = dict[tuple[str, str], str]  # (check id, resource ARN) -> expected status


def _arn(service: str, region: str, resource: str, account: str = ACCOUNT_ID) -> str:
    return f"arn:aws:{service}:{region}:{account}:{resource}"


def _policy(name: str, *statements: dict[str, Any]) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Resource": [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"], **s} for s in statements],
        }
    )


TLS_DENY = {
    "Sid": "TLS",
    "Effect": "Deny",
    "Principal": "*",
    "Action": "s3:*",
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}
PUBLIC_READ = {"Sid": "Public", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:GetObject"}


# --- planting --------------------------------------------------------------------------------


def plant_s3(moto: Moto, expect: Verdicts) -> None:
    s3 = moto.client("s3", HOME)
    loc = {"CreateBucketConfiguration": {"LocationConstraint": HOME}}
    bucket_checks = (
        "bucket_public_access_blocked",
        "bucket_policy_not_public",
        "bucket_acl_not_public",
        "bucket_default_encryption_enabled",
        "bucket_versioning_enabled",
        "bucket_access_logging_enabled",
        "bucket_tls_only",
    )

    def verdicts(name: str, **fails: bool) -> None:
        for check in bucket_checks:
            expect[(f"aws.s3.{check}", f"arn:aws:s3:::{name}")] = FAIL if fails.get(check) else PASS

    # a bucket made with no settings fails these (AWS itself now adds SSE-S3 to every new bucket; moto
    # does not, and a bucket with no default encryption rule does not meet the check's title)
    bare = dict(
        bucket_public_access_blocked=True,
        bucket_default_encryption_enabled=True,
        bucket_versioning_enabled=True,
        bucket_access_logging_enabled=True,
        bucket_tls_only=True,
    )
    good_bucket(moto, "good-logs", HOME)  # flow logs, Config and the good trail deliver here
    verdicts("good-logs")
    # public through an ACL only (never versioned, no encryption, no logging, no policy)
    s3.create_bucket(Bucket="bad-acl", ACL="public-read", **loc)
    verdicts("bad-acl", **bare, bucket_acl_not_public=True)
    # "authenticated-read": any AWS account may read
    s3.create_bucket(Bucket="bad-acl-authenticated", ACL="authenticated-read", **loc)
    verdicts("bad-acl-authenticated", **bare, bucket_acl_not_public=True)
    # public through the policy only; versioning suspended; SSE-KMS by default
    s3.create_bucket(Bucket="bad-policy", **loc)
    s3.put_bucket_policy(Bucket="bad-policy", Policy=_policy("bad-policy", TLS_DENY, PUBLIC_READ))
    s3.put_bucket_versioning(Bucket="bad-policy", VersioningConfiguration={"Status": "Suspended"})
    s3.put_bucket_encryption(
        Bucket="bad-policy",
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]
        },
    )
    verdicts(
        "bad-policy",
        bucket_public_access_blocked=True,
        bucket_policy_not_public=True,
        bucket_versioning_enabled=True,
        bucket_access_logging_enabled=True,
    )
    # a Condition that restricts nothing (TLS required, still everyone) is public
    cond = {**PUBLIC_READ, "Condition": {"Bool": {"aws:SecureTransport": "true"}}}
    s3.create_bucket(Bucket="bad-policy-tls-condition", **loc)
    s3.put_bucket_policy(Bucket="bad-policy-tls-condition", Policy=_policy("bad-policy-tls-condition", cond))
    verdicts("bad-policy-tls-condition", **bare, bucket_policy_not_public=True)
    # ... while one limited to a VPC endpoint is not
    vpce = {**PUBLIC_READ, "Condition": {"StringEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}}}
    s3.create_bucket(Bucket="good-policy-vpce", **loc)
    s3.put_bucket_policy(Bucket="good-policy-vpce", Policy=_policy("good-policy-vpce", vpce))
    verdicts("good-policy-vpce", **bare)
    # public ACL and policy, but the bucket's Block Public Access neutralises both
    # (AWS would refuse to set them afterwards; moto does not, and an old bucket may have them)
    s3.create_bucket(Bucket="good-blocked", ACL="public-read", **loc)
    s3.put_bucket_policy(Bucket="good-blocked", Policy=_policy("good-blocked", PUBLIC_READ))
    s3.put_public_access_block(Bucket="good-blocked", PublicAccessBlockConfiguration=PAB_ON)
    verdicts("good-blocked", **{**bare, "bucket_public_access_blocked": False})
    # Block Public Access partly on: ACLs blocked, policies not -> the ACL is neutralised, the policy is not
    s3.create_bucket(Bucket="bad-partial-block", ACL="public-read", **loc)
    s3.put_bucket_policy(Bucket="bad-partial-block", Policy=_policy("bad-partial-block", PUBLIC_READ))
    s3.put_public_access_block(
        Bucket="bad-partial-block",
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": False,
            "RestrictPublicBuckets": False,
        },
    )
    verdicts("bad-partial-block", **bare, bucket_policy_not_public=True)  # ACL: PASS (ignored)
    # a TLS statement with the condition the wrong way round
    wrong = {**TLS_DENY, "Condition": {"Bool": {"aws:SecureTransport": "true"}}}
    s3.create_bucket(Bucket="bad-tls-inverted", **loc)
    s3.put_bucket_policy(Bucket="bad-tls-inverted", Policy=_policy("bad-tls-inverted", wrong))
    verdicts("bad-tls-inverted", **bare)
    # backups: locked + versioned vs plain
    good_bucket(moto, "backup-locked", HOME, lock=True)
    good_bucket(moto, "backup-plain", OTHER)
    moto.client("s3", OTHER).put_bucket_versioning(
        Bucket="backup-plain", VersioningConfiguration={"Status": "Suspended"}
    )
    for check, good, bad in (
        ("backup_bucket_object_lock_enabled", PASS, FAIL),
        ("backup_bucket_versioning_enabled", PASS, FAIL),
    ):
        expect[(f"aws.s3.{check}", "arn:aws:s3:::backup-locked")] = good
        expect[(f"aws.s3.{check}", "arn:aws:s3:::backup-plain")] = bad
    verdicts("backup-locked")
    verdicts("backup-plain", bucket_versioning_enabled=True)
    # the account-level block: partly on (BlockPublicAcls only) is a FAIL
    s3control = moto.client("s3control", HOME)  # no {account}. before an IP endpoint's host, as ClientPool does
    s3control.meta.events.register("before-sign.s3-control.*", _strip_account_host_prefix)
    s3control.put_public_access_block(
        AccountId=ACCOUNT_ID,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": False,
            "BlockPublicPolicy": False,
            "RestrictPublicBuckets": False,
        },
    )
    expect[("aws.s3.account_public_access_blocked", f"arn:aws:s3::{ACCOUNT_ID}:account")] = FAIL


def plant_iam(moto: Moto, expect: Verdicts) -> None:
    import moto.iam.models as iam_models

    iam = moto.client("iam")
    user = f"arn:aws:iam::{ACCOUNT_ID}:user/{{}}".format
    iam.update_account_password_policy(**STRONG_PASSWORDS)
    for check in ("min_length", "reuse_prevention", "complexity"):
        expect[(f"aws.iam.password_policy_{check}", f"arn:aws:iam::{ACCOUNT_ID}:account")] = PASS
    # moto's root user: never MFA, never access keys (GetAccountSummary is fixed there)
    expect[("aws.iam.root_mfa_enabled", f"arn:aws:iam::{ACCOUNT_ID}:root")] = FAIL
    expect[("aws.iam.root_access_keys_absent", f"arn:aws:iam::{ACCOUNT_ID}:root")] = PASS
    iam.create_group(GroupName="staff")
    # console users: with and without MFA
    for name in ("good-console", "bad-console"):
        iam.create_user(UserName=name)
        iam.add_user_to_group(GroupName="staff", UserName=name)
        iam.create_login_profile(UserName=name, Password="Correct-Horse-Battery-1")
    serial = iam.create_virtual_mfa_device(VirtualMFADeviceName="good-console")["VirtualMFADevice"]["SerialNumber"]
    iam.enable_mfa_device(
        UserName="good-console", SerialNumber=serial, AuthenticationCode1="123456", AuthenticationCode2="654321"
    )
    expect[("aws.iam.console_users_mfa_enabled", user("good-console"))] = PASS
    expect[("aws.iam.console_users_mfa_enabled", user("bad-console"))] = FAIL
    # access keys: a fresh one vs one issued 200 days ago and never used; two active keys
    iam.create_user(UserName="good-key")
    iam.add_user_to_group(GroupName="staff", UserName="good-key")
    iam.create_access_key(UserName="good-key")
    iam.create_user(UserName="bad-old-key")
    iam.add_user_to_group(GroupName="staff", UserName="bad-old-key")
    real = iam_models.utcnow
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(iam_models, "utcnow", lambda: real() - timedelta(days=200))
        iam.create_access_key(UserName="bad-old-key")
    iam.create_user(UserName="bad-two-keys")
    iam.add_user_to_group(GroupName="staff", UserName="bad-two-keys")
    iam.create_access_key(UserName="bad-two-keys")
    iam.create_access_key(UserName="bad-two-keys")
    for name, rotated, unused, single in (
        ("good-key", PASS, PASS, PASS),
        ("bad-old-key", FAIL, FAIL, PASS),
        ("bad-two-keys", PASS, PASS, FAIL),
    ):
        expect[("aws.iam.access_keys_rotated", user(name))] = rotated
        expect[("aws.iam.unused_credentials_disabled", user(name))] = unused
        expect[("aws.iam.single_active_access_key", user(name))] = single
    # policies: full admin vs scoped; a user with a policy of its own vs one through a group
    admin = iam.create_policy(
        PolicyName="bad-admin",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["*"], "Resource": ["*"]}]}
        ),
    )["Policy"]["Arn"]
    scoped = iam.create_policy(
        PolicyName="good-scoped",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}}
        ),
    )["Policy"]["Arn"]
    expect[("aws.iam.policies_no_full_admin", admin)] = FAIL
    expect[("aws.iam.policies_no_full_admin", scoped)] = PASS
    iam.attach_group_policy(GroupName="staff", PolicyArn=scoped)
    iam.create_user(UserName="bad-own-policy")
    iam.put_user_policy(
        UserName="bad-own-policy",
        PolicyName="inline",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}]}
        ),
    )
    expect[("aws.iam.users_no_attached_policies", user("bad-own-policy"))] = FAIL
    expect[("aws.iam.users_no_attached_policies", user("good-key"))] = PASS


def plant_regions(moto: Moto, expect: Verdicts) -> None:
    """Home: GuardDuty, Config, EBS default encryption, flow logs, empty default SG. Other: the opposite."""
    compliant_region(moto, HOME)
    for check, service in (
        ("guardduty.enabled", "guardduty"),
        ("config.recorder_enabled", "config"),
        ("ec2.ebs_encryption_by_default", "ec2"),
    ):
        expect[(f"aws.{check}", _arn(service, HOME, "account"))] = PASS
    ec2 = moto.client("ec2", OTHER)
    moto.client("guardduty", OTHER).create_detector(Enable=False)  # a suspended detector
    cfg = moto.client("config", OTHER)  # a recorder that was never started
    cfg.put_configuration_recorder(
        ConfigurationRecorder={
            "name": "default",
            "roleARN": f"arn:aws:iam::{ACCOUNT_ID}:role/config",
            "recordingGroup": {"allSupported": True, "includeGlobalResourceTypes": True},
        }
    )
    expect[("aws.guardduty.enabled", _arn("guardduty", OTHER, "account"))] = FAIL
    expect[("aws.config.recorder_enabled", _arn("config", OTHER, "account"))] = FAIL
    expect[("aws.ec2.ebs_encryption_by_default", _arn("ec2", OTHER, "account"))] = FAIL
    # the other region's default VPC keeps moto's default rules and has no flow log
    default_vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    default_sg = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [default_vpc]}, {"Name": "group-name", "Values": ["default"]}]
    )
    expect[
        (
            "aws.ec2.default_sg_no_rules",
            _arn("ec2", OTHER, f"security-group/{default_sg['SecurityGroups'][0]['GroupId']}"),
        )
    ] = FAIL
    expect[("aws.ec2.vpc_flow_logs_enabled", _arn("ec2", OTHER, f"vpc/{default_vpc}"))] = FAIL
    home = moto.client("ec2", HOME)
    for vpc in home.describe_vpcs()["Vpcs"]:
        expect[("aws.ec2.vpc_flow_logs_enabled", _arn("ec2", HOME, f"vpc/{vpc['VpcId']}"))] = PASS
    for g in home.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["default"]}])["SecurityGroups"]:
        expect[("aws.ec2.default_sg_no_rules", _arn("ec2", HOME, f"security-group/{g['GroupId']}"))] = PASS
        empty_default_group(home, g)


def plant_ec2(moto: Moto, expect: Verdicts) -> str:
    """Plant the EC2 twins; returns the address of the instance an inventory host covers."""
    ec2 = moto.client("ec2", HOME)
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    v4, v6 = [{"CidrIp": "0.0.0.0/0"}], [{"CidrIpv6": "::/0"}]
    groups: dict[str, tuple[list[dict[str, Any]], tuple[str, str, str]]] = {
        # name: (ingress, (ssh, rdp, all ports))
        "good-restricted": (
            [
                {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]},
                {"IpProtocol": "tcp", "FromPort": 3389, "ToPort": 3389, "Ipv6Ranges": [{"CidrIpv6": "2001:db8::/32"}]},
                {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": v4, "Ipv6Ranges": v6},
                {"IpProtocol": "udp", "FromPort": 22, "ToPort": 22, "IpRanges": v4},
            ],
            (PASS, PASS, PASS),
        ),
        "bad-ssh-v4": ([{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": v4}], (FAIL, PASS, PASS)),
        "bad-ssh-v6": ([{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "Ipv6Ranges": v6}], (FAIL, PASS, PASS)),
        "bad-ssh-range": ([{"IpProtocol": "tcp", "FromPort": 20, "ToPort": 30, "IpRanges": v4}], (FAIL, PASS, PASS)),
        "bad-rdp-v4": ([{"IpProtocol": "tcp", "FromPort": 3389, "ToPort": 3389, "IpRanges": v4}], (PASS, FAIL, PASS)),
        "bad-rdp-v6": ([{"IpProtocol": "6", "FromPort": 3389, "ToPort": 3389, "Ipv6Ranges": v6}], (PASS, FAIL, PASS)),
        "bad-all-v4": ([{"IpProtocol": "-1", "IpRanges": v4}], (FAIL, FAIL, FAIL)),
        "bad-all-v6": ([{"IpProtocol": "-1", "Ipv6Ranges": v6}], (FAIL, FAIL, FAIL)),
        "bad-all-tcp": ([{"IpProtocol": "tcp", "FromPort": 0, "ToPort": 65535, "IpRanges": v4}], (FAIL, FAIL, FAIL)),
    }
    for name, (perms, (ssh, rdp, every)) in groups.items():
        gid = ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=perms)
        sg = _arn("ec2", HOME, f"security-group/{gid}")
        expect[("aws.ec2.sg_ssh_restricted", sg)] = ssh
        expect[("aws.ec2.sg_rdp_restricted", sg)] = rdp
        expect[("aws.ec2.sg_all_ports_restricted", sg)] = every
    plain = ec2.create_volume(Size=1, AvailabilityZone=f"{HOME}a", Encrypted=False)["VolumeId"]
    sealed = ec2.create_volume(Size=1, AvailabilityZone=f"{HOME}a", Encrypted=True)["VolumeId"]
    expect[("aws.ec2.volumes_encrypted", _arn("ec2", HOME, f"volume/{plain}"))] = FAIL
    expect[("aws.ec2.volumes_encrypted", _arn("ec2", HOME, f"volume/{sealed}"))] = PASS
    public = ec2.create_snapshot(VolumeId=sealed)["SnapshotId"]
    ec2.modify_snapshot_attribute(
        SnapshotId=public, Attribute="createVolumePermission", OperationType="add", GroupNames=["all"]
    )
    shared = ec2.create_snapshot(VolumeId=sealed)["SnapshotId"]  # shared with one account only: not public
    ec2.modify_snapshot_attribute(
        SnapshotId=shared, Attribute="createVolumePermission", OperationType="add", UserIds=["444455556666"]
    )
    expect[("aws.ec2.snapshots_not_public", f"arn:aws:ec2:{HOME}::snapshot/{public}")] = FAIL
    expect[("aws.ec2.snapshots_not_public", f"arn:aws:ec2:{HOME}::snapshot/{shared}")] = PASS
    root = [{"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 8, "Encrypted": True}}]
    covered = ""
    for tokens, verdict in (("optional", FAIL), ("required", PASS)):
        inst = ec2.run_instances(
            ImageId="ami-12345678",
            MinCount=1,
            MaxCount=1,
            BlockDeviceMappings=root,
            MetadataOptions={"HttpTokens": tokens},
        )["Instances"][0]
        iid = inst["InstanceId"]
        expect[("aws.ec2.imdsv2_required", _arn("ec2", HOME, f"instance/{iid}"))] = verdict
        # the required one is in the inventory (a host with its address), the optional one is not
        expect[("inventory.cloud_instances_covered", _arn("ec2", HOME, f"instance/{iid}"))] = verdict
        if verdict == PASS:
            covered = inst["PrivateIpAddress"]
    return covered


def plant_kms_rds_trails(moto: Moto, expect: Verdicts) -> None:
    kms = moto.client("kms", HOME)
    rotating = kms.create_key(Description="good rotating")["KeyMetadata"]["Arn"]
    kms.enable_key_rotation(KeyId=rotating)
    lazy = kms.create_key(Description="bad no rotation")["KeyMetadata"]["Arn"]
    expect[("aws.kms.customer_key_rotation_enabled", rotating)] = PASS
    expect[("aws.kms.customer_key_rotation_enabled", lazy)] = FAIL
    # the encrypted EBS volumes made moto create alias/aws/ebs's key, as a CUSTOMER key without rotation:
    # in AWS that key is AWS-managed (it rotates by itself), so it must not be judged
    ebs_key = kms.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]["Arn"]
    expect[("aws.kms.customer_key_rotation_enabled", ebs_key)] = "absent"

    rds = moto.client("rds", HOME)
    common = dict(
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        AllocatedStorage=20,
        MasterUsername="u",
        MasterUserPassword="p" * 12,
        Tags=[{"Key": "Environment", "Value": "Production"}],
    )
    bad = rds.create_db_instance(
        DBInstanceIdentifier="bad-db",
        StorageEncrypted=False,
        PubliclyAccessible=True,
        BackupRetentionPeriod=0,
        DeletionProtection=False,
        AutoMinorVersionUpgrade=False,
        MultiAZ=False,
        **common,
    )["DBInstance"]["DBInstanceArn"]
    good = rds.create_db_instance(
        DBInstanceIdentifier="good-db",
        StorageEncrypted=True,
        PubliclyAccessible=False,
        BackupRetentionPeriod=14,
        DeletionProtection=True,
        AutoMinorVersionUpgrade=True,
        MultiAZ=True,
        KmsKeyId=rotating,
        **common,
    )["DBInstance"]["DBInstanceArn"]
    for check in (
        "storage_encrypted",
        "not_publicly_accessible",
        "backup_retention_sufficient",
        "deletion_protection_enabled",
        "auto_minor_version_upgrade",
        "production_multi_az",
    ):
        expect[(f"aws.rds.{check}", bad)] = FAIL
        expect[(f"aws.rds.{check}", good)] = PASS
    public = rds.create_db_snapshot(DBInstanceIdentifier="good-db", DBSnapshotIdentifier="bad-public-snap")
    rds.modify_db_snapshot_attribute(
        DBSnapshotIdentifier="bad-public-snap", AttributeName="restore", ValuesToAdd=["all"]
    )
    private = rds.create_db_snapshot(DBInstanceIdentifier="good-db", DBSnapshotIdentifier="good-shared-snap")
    rds.modify_db_snapshot_attribute(
        DBSnapshotIdentifier="good-shared-snap", AttributeName="restore", ValuesToAdd=["444455556666"]
    )
    expect[("aws.rds.snapshots_not_public", public["DBSnapshot"]["DBSnapshotArn"])] = FAIL
    expect[("aws.rds.snapshots_not_public", private["DBSnapshot"]["DBSnapshotArn"])] = PASS

    ct = moto.client("cloudtrail", HOME)
    good_trail = ct.create_trail(
        Name="good-trail",
        S3BucketName="good-logs",
        IsMultiRegionTrail=True,
        EnableLogFileValidation=True,
        KmsKeyId=rotating,
    )["TrailARN"]
    ct.start_logging(Name="good-trail")
    bad_trail = moto.client("cloudtrail", OTHER).create_trail(Name="bad-trail", S3BucketName="bad-acl")["TrailARN"]
    for check in ("log_file_validation_enabled", "kms_encrypted", "bucket_not_public", "bucket_access_logging_enabled"):
        expect[(f"aws.cloudtrail.{check}", good_trail)] = PASS
        expect[(f"aws.cloudtrail.{check}", bad_trail)] = FAIL
    expect[("aws.cloudtrail.multi_region_trail_logging", f"arn:aws:cloudtrail::{ACCOUNT_ID}:account")] = PASS


def plant_stopped_account(moto: Moto, expect: Verdicts) -> None:
    """Another account: only a multi-region trail that is not logging, and a weak password policy."""
    session = moto.assumed(OTHER_ACCOUNT_ID)
    good_bucket(moto, "stopped-logs", HOME, session=session)
    moto.client("cloudtrail", HOME, session).create_trail(
        Name="stopped", S3BucketName="stopped-logs", IsMultiRegionTrail=True, EnableLogFileValidation=True
    )  # never started
    expect[("aws.cloudtrail.multi_region_trail_logging", f"arn:aws:cloudtrail::{OTHER_ACCOUNT_ID}:account")] = FAIL
    moto.client("iam", session=session).update_account_password_policy(
        MinimumPasswordLength=8, PasswordReusePrevention=3, RequireUppercaseCharacters=True
    )
    for check in ("min_length", "reuse_prevention", "complexity"):
        expect[(f"aws.iam.password_policy_{check}", f"arn:aws:iam::{OTHER_ACCOUNT_ID}:account")] = FAIL


# --- the audit -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def audit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], dict[str, Verdicts]]]:
    """Plant the three accounts, run `itops audit` once over them; (JSON output, expected verdicts per cloud)."""
    tmp = tmp_path_factory.mktemp("twins")
    with pytest.MonkeyPatch.context() as mp:
        for key in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ROLE_ARN"):
            mp.delenv(key, raising=False)
        for key, value in (
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_DEFAULT_REGION", HOME),
            ("AWS_CONFIG_FILE", str(tmp / "config")),
            ("AWS_SHARED_CREDENTIALS_FILE", str(tmp / "credentials")),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ):
            mp.setenv(key, value)
        moto_reset()
        moto = Moto(moto_endpoint())
        twins: Verdicts = {}
        plant_s3(moto, twins)
        plant_iam(moto, twins)
        plant_regions(moto, twins)
        covered = plant_ec2(moto, twins)
        plant_kms_rds_trails(moto, twins)
        stopped: Verdicts = {}
        plant_stopped_account(moto, stopped)
        role = "arn:aws:iam::{}:role/audit".format
        inv = write_inventory(
            tmp / "inventory.yaml",
            {
                "twins": cloud_entry(backup_buckets=["backup-*"]),
                "stopped": cloud_entry(regions=[HOME], role_arn=role(OTHER_ACCOUNT_ID)),
                "empty": cloud_entry(regions=[HOME], role_arn=role(EMPTY_ACCOUNT_ID)),
            },
            hosts={"app1": {"address": covered}},
        )
        code, doc, err = run_audit("-i", str(inv), "--limit", "cloud:*")  # app1 only covers an instance
        assert code == 1 and doc, err  # failures found, nothing crashed
        yield doc, {"twins": twins, "stopped": stopped}
        moto_reset()


def _results(doc: dict[str, Any], cloud: str) -> list[dict[str, Any]]:
    return [r for r in doc["results"] if r["target"] == cloud]


@pytest.mark.parametrize("cloud", ["twins", "stopped"])
def test_every_twin_gets_its_verdict(audit, cloud: str) -> None:
    doc, expected = audit
    got: dict[tuple[str, str], str] = {}
    for r in _results(doc, cloud):
        key = (r["check_id"], r["resource"])
        assert key not in got, f"two results for {key}"
        got[key] = r["status"]
    wrong = {
        key: (want, got.get(key, "absent")) for key, want in expected[cloud].items() if got.get(key, "absent") != want
    }
    assert not wrong, "\n".join(f"{c} {res}: expected {w}, got {g}" for (c, res), (w, g) in sorted(wrong.items()))


def test_twins_account_is_fully_assessed(audit) -> None:
    doc, expected = audit
    results = _results(doc, "twins")
    assert not [(r["check_id"], r["message"]) for r in results if r["status"] in (ERROR, "UNREACHABLE")]
    # every one of the 45 checks has at least one twin pair (or its one account-wide verdict)
    assert {c for c, _ in expected["twins"]} == {c.id for c in aws_checks()}
    # nothing in the account fails that was not planted to fail
    fails = {(r["check_id"], r["resource"]) for r in results if r["status"] == FAIL}
    planted = {k for k, v in expected["twins"].items() if v == FAIL}
    assert fails - planted == set()


def test_empty_account_is_skipped_never_a_vacuous_pass(audit) -> None:
    doc, _ = audit
    results = _results(doc, "empty")
    assert {r["check_id"] for r in results} == {c.id for c in aws_checks()}
    by_status: dict[str, set[str]] = {}
    for r in results:
        by_status.setdefault(r["status"], set()).add(r["check_id"])
    # an account-wide or region-wide setting is always there to judge: a real verdict
    assert by_status[PASS] == {
        "aws.iam.root_access_keys_absent",
        "aws.ec2.sg_ssh_restricted",
        "aws.ec2.sg_rdp_restricted",
        "aws.ec2.sg_all_ports_restricted",
    }  # default SGs
    assert by_status[FAIL] == {
        "aws.iam.root_mfa_enabled",
        "aws.iam.password_policy_min_length",
        "aws.iam.password_policy_complexity",
        "aws.iam.password_policy_reuse_prevention",
        "aws.s3.account_public_access_blocked",
        "aws.cloudtrail.multi_region_trail_logging",
        "aws.config.recorder_enabled",
        "aws.guardduty.enabled",
        "aws.ec2.ebs_encryption_by_default",
        "aws.ec2.vpc_flow_logs_enabled",
        "aws.ec2.default_sg_no_rules",
    }
    # every per-resource check with nothing to look at says so
    skipped = [r for r in results if r["status"] == SKIPPED]
    assert skipped and all("no " in r["message"] and EMPTY_ACCOUNT_ID in r["message"] for r in skipped)
    assert not by_status.get(ERROR) and not by_status.get("UNREACHABLE")


# --- failure modes (these reset the server: keep them after the module audit) ------------------


def test_denied_api_is_an_error_for_its_check_only(moto, tmp_path: Path, monkeypatch) -> None:
    ec2 = moto.client("ec2", HOME)
    ec2.create_volume(Size=1, AvailabilityZone=f"{HOME}a", Encrypted=False)
    iam = moto.client("iam")
    iam.create_user(UserName="auditor")
    iam.put_user_policy(
        UserName="auditor",
        PolicyName="no-volumes",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": ["ec2:Describe*", "ec2:Get*", "sts:GetCallerIdentity"],
                        "Resource": "*",
                    },
                    {"Effect": "Deny", "Action": "ec2:DescribeVolumes", "Resource": "*"},
                ],
            }
        ),
    )
    key = iam.create_access_key(UserName="auditor")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
    enforce_iam()
    checks = [c for c in aws_checks() if c.id.startswith("aws.ec2.")]
    out = run_cloud_account("r", "denied", cloud_model(tmp_path, regions=[HOME]), checks, {}, concurrency=4)
    by_check: dict[str, set[str]] = {}
    for r in out.results:
        by_check.setdefault(r.check_id, set()).add(r.status.value)
    assert by_check.pop("aws.ec2.volumes_encrypted") == {ERROR}
    assert all(ERROR not in s for s in by_check.values()), by_check
    err = next(r for r in out.results if r.check_id == "aws.ec2.volumes_encrypted")
    assert (
        err.message
        == f"not assessable: missing permission ec2:DescribeVolumes (region {HOME}, account {ACCOUNT_ID} (denied))"
    )


def test_region_the_endpoint_does_not_serve_is_one_clear_error_per_check(moto, tmp_path: Path) -> None:
    compliant_region(moto, HOME)
    regional = [c for c in aws_checks() if c.id.split(".")[1] in ("ec2", "guardduty", "config", "kms", "rds")]
    cloud = cloud_model(tmp_path, regions=[HOME, "eu-nowhere-9"], max_attempts=1)
    out = run_cloud_account("r", "half", cloud, regional, {}, concurrency=4)
    for check in regional:
        mine = [r for r in out.results if r.check_id == check.id]
        errors = [r for r in mine if r.status is Status.ERROR]
        assert errors, f"{check.id}: no ERROR for the unserved region"
        assert all("eu-nowhere-9" in r.message and "could not assess" in r.message for r in errors)
        assert all(len(r.message) < 300 and "<" not in r.message for r in errors), errors[0].message
        # the served region still has its verdicts; the unserved one never a PASS
        assert not [r for r in mine if r.status is Status.PASS and "eu-nowhere-9" in (r.resource + r.message)]
    guardduty = {r.resource: r.status for r in out.results if r.check_id == "aws.guardduty.enabled"}
    assert guardduty[_arn("guardduty", HOME, "account")] is Status.PASS
