"""A planted AWS account on moto: a compliant baseline plus known failures, and the exact FAIL set expected.

Used by the moto audit test and the mixed (hosts + cloud) audit test. Every failure
planted here is listed in the returned set as ``(check_id, resource ARN)``; everything
else in the account is made compliant, so the audit's FAIL set must equal it exactly.
"""

from __future__ import annotations

import json
from typing import Any

from aws_fixtures import ACCOUNT_ID, Moto

Expected = set[tuple[str, str]]
PAB_ON = {k: True for k in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")}
STRONG_PASSWORDS = dict(
    MinimumPasswordLength=16,
    PasswordReusePrevention=24,
    RequireUppercaseCharacters=True,
    RequireLowercaseCharacters=True,
    RequireNumbers=True,
    RequireSymbols=True,
)
BACKUP_BUCKETS = ["backup-*"]


def _tls_policy(name: str) -> str:
    """TLS only, plus S3 server access log delivery (moto checks the target bucket allows it)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "TLSOnly",
                    "Effect": "Deny",
                    "Principal": {"AWS": "*"},
                    "Action": "s3:*",
                    "Resource": [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"],
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                },
                {
                    "Sid": "AccessLogs",
                    "Effect": "Allow",
                    "Principal": {"Service": "logging.s3.amazonaws.com"},
                    "Action": "s3:PutObject",
                    "Resource": f"arn:aws:s3:::{name}/logs/*",
                },
            ],
        }
    )


def good_bucket(moto: Moto, name: str, region: str, *, lock: bool = False, session: Any = None) -> None:
    """A bucket that passes every bucket check (it logs to itself)."""
    s3 = moto.client("s3", region, session)
    kw: dict[str, Any] = {"ObjectLockEnabledForBucket": True} if lock else {}
    if region != "us-east-1":
        kw["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(Bucket=name, **kw)
    s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=PAB_ON)
    s3.put_bucket_policy(Bucket=name, Policy=_tls_policy(name))
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_logging(
        Bucket=name, BucketLoggingStatus={"LoggingEnabled": {"TargetBucket": name, "TargetPrefix": "logs/"}}
    )


def compliant_region(
    moto: Moto,
    region: str,
    *,
    guardduty: bool = True,
    config: bool = True,
    ebs_default: bool = True,
    session: Any = None,
) -> None:
    """Flow logs on the default VPC, default SG emptied, EBS default encryption, GuardDuty, Config."""
    ec2 = moto.client("ec2", region, session)
    for vpc in ec2.describe_vpcs()["Vpcs"]:
        ec2.create_flow_logs(
            ResourceIds=[vpc["VpcId"]],
            ResourceType="VPC",
            TrafficType="ALL",
            LogDestinationType="s3",
            LogDestination="arn:aws:s3:::good-logs",
        )
    for group in ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["default"]}])[
        "SecurityGroups"
    ]:
        empty_default_group(ec2, group)
    if ebs_default:
        ec2.enable_ebs_encryption_by_default()
    if guardduty:
        moto.client("guardduty", region, session).create_detector(Enable=True)
    if config:
        cfg = moto.client("config", region, session)
        cfg.put_configuration_recorder(
            ConfigurationRecorder={
                "name": "default",
                "roleARN": f"arn:aws:iam::{ACCOUNT_ID}:role/config",
                "recordingGroup": {"allSupported": True, "includeGlobalResourceTypes": True},
            }
        )
        cfg.put_delivery_channel(DeliveryChannel={"name": "default", "s3BucketName": "good-logs"})
        cfg.start_configuration_recorder(ConfigurationRecorderName="default")


def empty_default_group(ec2: Any, group: dict[str, Any]) -> None:
    if group.get("IpPermissions"):
        ec2.revoke_security_group_ingress(GroupId=group["GroupId"], IpPermissions=group["IpPermissions"])
    if group.get("IpPermissionsEgress"):
        ec2.revoke_security_group_egress(GroupId=group["GroupId"], IpPermissions=group["IpPermissionsEgress"])


def plant_account(moto: Moto, regions: tuple[str, str]) -> Expected:
    """Plant the main scenario in the default moto account; returns the expected FAIL set."""
    home, other = regions
    arn = f"arn:aws:{{}}:{{}}:{ACCOUNT_ID}:{{}}".format
    expected: Expected = set()

    def fail(check: str, resource: str) -> None:
        expected.add((f"aws.{check}", resource))

    # environment facts of moto: its root user cannot have MFA
    fail("iam.root_mfa_enabled", f"arn:aws:iam::{ACCOUNT_ID}:root")
    # --- account-wide: strong password policy; no account-level public access block (planted)
    moto.client("iam").update_account_password_policy(**STRONG_PASSWORDS)
    fail("s3.account_public_access_blocked", f"arn:aws:s3::{ACCOUNT_ID}:account")

    # --- regions: home fully compliant; the other lacks GuardDuty, Config and EBS default encryption
    good_bucket(moto, "good-logs", home)  # flow logs and Config deliver here
    compliant_region(moto, home)
    compliant_region(moto, other, guardduty=False, config=False, ebs_default=False)
    fail("guardduty.enabled", arn("guardduty", other, "account"))
    fail("config.recorder_enabled", arn("config", other, "account"))
    fail("ec2.ebs_encryption_by_default", arn("ec2", other, "account"))

    # --- S3
    good_bucket(moto, "backup-locked", home, lock=True)
    good_bucket(moto, "backup-unlocked", other)
    fail("s3.backup_bucket_object_lock_enabled", "arn:aws:s3:::backup-unlocked")
    s3 = moto.client("s3", home)
    s3.create_bucket(Bucket="bad-public", CreateBucketConfiguration={"LocationConstraint": home}, ACL="public-read")
    s3.put_bucket_policy(
        Bucket="bad-public",
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": "*",
                        "Action": "s3:GetObject",
                        "Resource": "arn:aws:s3:::bad-public/*",
                    }
                ],
            }
        ),
    )
    for check in (
        "bucket_public_access_blocked",
        "bucket_policy_not_public",
        "bucket_acl_not_public",
        "bucket_default_encryption_enabled",
        "bucket_versioning_enabled",
        "bucket_access_logging_enabled",
        "bucket_tls_only",
    ):
        fail(f"s3.{check}", "arn:aws:s3:::bad-public")

    # --- IAM
    iam = moto.client("iam")
    iam.create_user(UserName="alice")  # console password, no MFA
    iam.create_login_profile(UserName="alice", Password="Correct-Horse-Battery-1")
    fail("iam.console_users_mfa_enabled", f"arn:aws:iam::{ACCOUNT_ID}:user/alice")
    iam.create_user(UserName="bob")  # two active keys and a policy of his own
    iam.create_access_key(UserName="bob")
    iam.create_access_key(UserName="bob")
    fail("iam.single_active_access_key", f"arn:aws:iam::{ACCOUNT_ID}:user/bob")
    fail("iam.users_no_attached_policies", f"arn:aws:iam::{ACCOUNT_ID}:user/bob")
    iam.create_user(UserName="carol")  # compliant: one key, permissions via a group
    iam.create_access_key(UserName="carol")
    iam.create_group(GroupName="readers")
    iam.add_user_to_group(GroupName="readers", UserName="carol")
    admin = iam.create_policy(
        PolicyName="god-mode",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        ),
    )["Policy"]
    s3_read = iam.create_policy(
        PolicyName="s3-read",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}]}
        ),
    )
    iam.attach_user_policy(UserName="bob", PolicyArn=s3_read["Policy"]["Arn"])
    fail("iam.policies_no_full_admin", admin["Arn"])

    # --- EC2 (home region)
    ec2 = moto.client("ec2", home)
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]

    def group(name: str, *perms: dict[str, Any]) -> str:
        gid = ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=list(perms))
        return arn("ec2", home, f"security-group/{gid}")

    world = [{"CidrIp": "0.0.0.0/0"}]
    ssh = group("ssh-open", {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": world})
    rdp = group(
        "rdp-open6", {"IpProtocol": "tcp", "FromPort": 3389, "ToPort": 3389, "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}
    )
    everything = group("all-open", {"IpProtocol": "-1", "IpRanges": world})
    group("https", {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": world})
    fail("ec2.sg_ssh_restricted", ssh)
    fail("ec2.sg_rdp_restricted", rdp)
    for check in ("sg_ssh_restricted", "sg_rdp_restricted", "sg_all_ports_restricted"):
        fail(f"ec2.{check}", everything)  # all ports covers 22 and 3389 too
    plain = ec2.create_volume(Size=1, AvailabilityZone=f"{home}a", Encrypted=False)["VolumeId"]
    ec2.create_volume(Size=1, AvailabilityZone=f"{home}a", Encrypted=True)
    fail("ec2.volumes_encrypted", arn("ec2", home, f"volume/{plain}"))
    public = ec2.create_snapshot(VolumeId=plain)["SnapshotId"]
    ec2.modify_snapshot_attribute(
        SnapshotId=public, Attribute="createVolumePermission", OperationType="add", GroupNames=["all"]
    )
    ec2.create_snapshot(VolumeId=plain)
    fail("ec2.snapshots_not_public", f"arn:aws:ec2:{home}::snapshot/{public}")
    root = [{"DeviceName": "/dev/sda1", "Ebs": {"VolumeSize": 8, "Encrypted": True}}]  # else an unencrypted root
    v1 = ec2.run_instances(ImageId="ami-12345678", MinCount=1, MaxCount=1, BlockDeviceMappings=root)["Instances"][0][
        "InstanceId"
    ]
    v2 = ec2.run_instances(
        ImageId="ami-12345678",
        MinCount=1,
        MaxCount=1,
        BlockDeviceMappings=root,
        MetadataOptions={"HttpTokens": "required"},
    )["Instances"][0]["InstanceId"]
    fail("ec2.imdsv2_required", arn("ec2", home, f"instance/{v1}"))
    for iid in (v1, v2):  # running, and no inventory host covers them
        expected.add(("inventory.cloud_instances_covered", arn("ec2", home, f"instance/{iid}")))
    # a new VPC in the other region without flow logs (its default group emptied)
    ec2_other = moto.client("ec2", other)
    bare = ec2_other.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    for g in ec2_other.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [bare]}])["SecurityGroups"]:
        empty_default_group(ec2_other, g)
    fail("ec2.vpc_flow_logs_enabled", arn("ec2", other, f"vpc/{bare}"))

    # --- KMS (the rotating key also encrypts the good DB and the trail)
    kms = moto.client("kms", home)
    trail_key = kms.create_key(Description="cloudtrail")["KeyMetadata"]["Arn"]
    kms.enable_key_rotation(KeyId=trail_key)
    lazy = kms.create_key(Description="no rotation")["KeyMetadata"]["Arn"]
    fail("kms.customer_key_rotation_enabled", lazy)

    # --- RDS (home region)
    rds = moto.client("rds", home)
    common = dict(
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        AllocatedStorage=20,
        MasterUsername="u",
        MasterUserPassword="p" * 12,
        Tags=[{"Key": "environment", "Value": "production"}],
    )
    bad_db = rds.create_db_instance(
        DBInstanceIdentifier="prod-bad",
        StorageEncrypted=False,
        PubliclyAccessible=True,
        BackupRetentionPeriod=1,
        DeletionProtection=False,
        AutoMinorVersionUpgrade=False,
        MultiAZ=False,
        **common,
    )["DBInstance"]["DBInstanceArn"]
    rds.create_db_instance(
        DBInstanceIdentifier="prod-good",
        StorageEncrypted=True,
        PubliclyAccessible=False,
        BackupRetentionPeriod=7,
        DeletionProtection=True,
        AutoMinorVersionUpgrade=True,
        MultiAZ=True,
        KmsKeyId=trail_key,
        **common,
    )
    for check in (
        "storage_encrypted",
        "not_publicly_accessible",
        "backup_retention_sufficient",
        "deletion_protection_enabled",
        "auto_minor_version_upgrade",
        "production_multi_az",
    ):
        fail(f"rds.{check}", bad_db)
    snap = rds.create_db_snapshot(DBInstanceIdentifier="prod-good", DBSnapshotIdentifier="shared-snap")
    rds.modify_db_snapshot_attribute(DBSnapshotIdentifier="shared-snap", AttributeName="restore", ValuesToAdd=["all"])
    rds.create_db_snapshot(DBInstanceIdentifier="prod-good", DBSnapshotIdentifier="private-snap")
    fail("rds.snapshots_not_public", snap["DBSnapshot"]["DBSnapshotArn"])

    # --- CloudTrail
    ct = moto.client("cloudtrail", home)
    ct.create_trail(
        Name="org-trail",
        S3BucketName="good-logs",
        IsMultiRegionTrail=True,
        EnableLogFileValidation=True,
        KmsKeyId=trail_key,
    )
    ct.start_logging(Name="org-trail")
    # moto creates alias/aws/ebs (for the encrypted volumes) as a CUSTOMER key; AWS makes it AWS-managed
    kms.enable_key_rotation(KeyId=kms.describe_key(KeyId="alias/aws/ebs")["KeyMetadata"]["KeyId"])
    weak = moto.client("cloudtrail", other).create_trail(Name="weak-trail", S3BucketName="bad-public")["TrailARN"]
    for check in ("log_file_validation_enabled", "kms_encrypted", "bucket_not_public", "bucket_access_logging_enabled"):
        fail(f"cloudtrail.{check}", weak)
    return expected


def plant_other_account(moto: Moto, session: Any, region: str) -> Expected:
    """Second account (assumed role): one bucket without versioning, one compliant."""
    good_bucket(moto, "acct2-good", region, session=session)
    good_bucket(moto, "acct2-unversioned", region, session=session)
    moto.client("s3", region, session).put_bucket_versioning(
        Bucket="acct2-unversioned", VersioningConfiguration={"Status": "Suspended"}
    )
    return {("aws.s3.bucket_versioning_enabled", "arn:aws:s3:::acct2-unversioned")}
