"""EC2 and VPC: security groups, EBS encryption, public snapshots, IMDSv2, flow logs."""

from __future__ import annotations

from itops.checkapi import CloudFacts, CloudResource, Finding, Params, Severity, aws_check
from itops.checklib.aws import open_ingress

SG = dict(collections=["ec2.security_groups"], iam_actions=["ec2:DescribeSecurityGroups"])


def _port_open(facts: CloudFacts, port: int | None, label: str) -> list[Finding]:
    def judge(g: CloudResource) -> Finding:
        sources = open_ingress(g.data, port)
        where = f"security group {g.name} ({facts.where(g.region)})"
        if sources:
            return Finding.failed(
                f"{where} allows {label} from {', '.join(sources)}",
                observed=f"{label} from {', '.join(sources)}",
                expected=f"{label} only from known networks",
            )
        return Finding.passed(f"{where} does not open {label} to the internet")

    return facts.each("ec2.security_groups", judge, what="security groups")


@aws_check(
    id="aws.ec2.sg_ssh_restricted",
    title="No security group allows SSH (22) from the internet",
    severity=Severity.HIGH,
    rationale="SSH open to 0.0.0.0/0 or ::/0 invites brute force and exploits; reach it through a bastion, "
    "VPN or Session Manager instead.",
    remediation="aws ec2 revoke-security-group-ingress --group-id SG --protocol tcp --port 22 --cidr 0.0.0.0/0 "
    "(and --ip-permissions IpProtocol=tcp,FromPort=22,ToPort=22,Ipv6Ranges=[{CidrIpv6=::/0}])",
    frameworks={
        "cis-aws-foundations": ["5.2", "5.3"],
        "nist-800-53": ["SC-7", "SC-7(5)", "AC-17"],
        "iso-27001": ["A.8.20", "A.8.22"],
    },
    **SG,
)
def sg_ssh_restricted(facts: CloudFacts, params: Params) -> list[Finding]:
    """No ingress rule covers TCP 22 from 0.0.0.0/0 or ::/0."""
    return _port_open(facts, 22, "SSH (22)")


@aws_check(
    id="aws.ec2.sg_rdp_restricted",
    title="No security group allows RDP (3389) from the internet",
    severity=Severity.HIGH,
    rationale="RDP exposed to the internet is one of the most attacked services; reach it through a VPN.",
    remediation="aws ec2 revoke-security-group-ingress --group-id SG --protocol tcp --port 3389 --cidr 0.0.0.0/0",
    frameworks={
        "cis-aws-foundations": ["5.2", "5.3"],
        "nist-800-53": ["SC-7", "SC-7(5)", "AC-17"],
        "iso-27001": ["A.8.20", "A.8.22"],
    },
    **SG,
)
def sg_rdp_restricted(facts: CloudFacts, params: Params) -> list[Finding]:
    """No ingress rule covers TCP 3389 from 0.0.0.0/0 or ::/0."""
    return _port_open(facts, 3389, "RDP (3389)")


@aws_check(
    id="aws.ec2.sg_all_ports_restricted",
    title="No security group allows all ports from the internet",
    severity=Severity.CRITICAL,
    rationale="A rule for every protocol/port from anywhere exposes every service on the instance.",
    remediation="aws ec2 revoke-security-group-ingress --group-id SG --ip-permissions "
    "'IpProtocol=-1,IpRanges=[{CidrIp=0.0.0.0/0}]'",
    frameworks={
        "cis-aws-foundations": ["5.2", "5.3"],
        "nist-800-53": ["SC-7", "SC-7(5)", "CM-7"],
        "iso-27001": ["A.8.20", "A.8.22"],
    },
    **SG,
)
def sg_all_ports_restricted(facts: CloudFacts, params: Params) -> list[Finding]:
    """No ingress rule with protocol -1 (or TCP/UDP 0-65535) from 0.0.0.0/0 or ::/0."""
    return _port_open(facts, None, "all ports")


@aws_check(
    id="aws.ec2.default_sg_no_rules",
    title="Default security groups allow no traffic",
    severity=Severity.MEDIUM,
    rationale="Resources launched without a chosen group land in the default one; with no rules it cannot "
    "silently expose them.",
    remediation="aws ec2 revoke-security-group-ingress --group-id SG --ip-permissions file://ingress.json; "
    "aws ec2 revoke-security-group-egress --group-id SG --ip-permissions file://egress.json "
    "(the rules shown by aws ec2 describe-security-groups --group-ids SG)",
    frameworks={"cis-aws-foundations": ["5.4"], "nist-800-53": ["SC-7(5)", "CM-7"], "iso-27001": ["A.8.20"]},
    **SG,
)
def default_sg_no_rules(facts: CloudFacts, params: Params) -> list[Finding]:
    """Every security group named ``default`` has no ingress and no egress rules."""

    def judge(g: CloudResource) -> Finding | None:
        if g.get("GroupName") != "default":
            return None
        inbound, outbound = len(g.get("IpPermissions") or []), len(g.get("IpPermissionsEgress") or [])
        where = f"default security group {g.name} of {g.get('VpcId', '?')} ({facts.where(g.region)})"
        if inbound or outbound:
            return Finding.failed(
                f"{where} has {inbound} inbound and {outbound} outbound rule(s)",
                observed=f"{inbound} in, {outbound} out",
                expected="0 in, 0 out",
            )
        return Finding.passed(f"{where} has no rules")

    return facts.each("ec2.security_groups", judge, what="default security groups")


@aws_check(
    id="aws.ec2.ebs_encryption_by_default",
    title="EBS encryption by default is on in every region",
    severity=Severity.MEDIUM,
    rationale="With it on, every new volume and snapshot copy is encrypted, whoever creates it.",
    remediation="aws ec2 enable-ebs-encryption-by-default --region REGION",
    frameworks={"cis-aws-foundations": ["2.2.1"], "nist-800-53": ["SC-28", "SC-28(1)"], "iso-27001": ["A.8.24"]},
    collections=["ec2.ebs_encryption_default"],
    iam_actions=["ec2:GetEbsEncryptionByDefault"],
)
def ebs_encryption_by_default(facts: CloudFacts, params: Params) -> list[Finding]:
    """GetEbsEncryptionByDefault is true in each audited region."""

    def judge(r: CloudResource) -> Finding:
        if not r.part("enabled"):
            return Finding.failed(
                f"EBS encryption by default is off in {facts.where(r.region)}", observed="off", expected="on"
            )
        return Finding.passed(f"EBS encryption by default is on in {facts.where(r.region)}")

    return facts.each("ec2.ebs_encryption_default", judge, what="regions")


@aws_check(
    id="aws.ec2.volumes_encrypted",
    title="EBS volumes are encrypted",
    severity=Severity.MEDIUM,
    rationale="Unencrypted volumes and their snapshots expose data to anyone who gets a copy.",
    remediation="Snapshot the volume, copy it encrypted (aws ec2 copy-snapshot --source-snapshot-id SNAP "
    "--source-region REGION --encrypted), create a volume from the copy and swap it in.",
    frameworks={"cis-aws-foundations": ["2.2.1"], "nist-800-53": ["SC-28", "SC-28(1)"], "iso-27001": ["A.8.24"]},
    collections=["ec2.volumes"],
    iam_actions=["ec2:DescribeVolumes"],
)
def volumes_encrypted(facts: CloudFacts, params: Params) -> list[Finding]:
    """Every volume has Encrypted=true."""

    def judge(v: CloudResource) -> Finding:
        where = f"volume {v.name} ({facts.where(v.region)})"
        if not v.get("Encrypted"):
            return Finding.failed(f"{where} is not encrypted", observed="unencrypted", expected="encrypted")
        return Finding.passed(f"{where} is encrypted")

    return facts.each("ec2.volumes", judge, what="EBS volumes")


@aws_check(
    id="aws.ec2.snapshots_not_public",
    title="No EBS snapshot is shared publicly",
    severity=Severity.CRITICAL,
    rationale="A public snapshot lets any AWS account create a volume holding your data.",
    remediation="aws ec2 modify-snapshot-attribute --snapshot-id SNAP --attribute createVolumePermission "
    "--operation-type remove --group-names all; and aws ec2 enable-snapshot-block-public-access "
    "--state block-all-sharing",
    frameworks={"nist-800-53": ["AC-3", "AC-21", "SC-28"], "iso-27001": ["A.8.3", "A.8.12"]},
    collections=["ec2.snapshots"],
    iam_actions=["ec2:DescribeSnapshots", "ec2:DescribeSnapshotAttribute"],
)
def snapshots_not_public(facts: CloudFacts, params: Params) -> list[Finding]:
    """No snapshot owned by the account has createVolumePermission for group ``all``."""

    def judge(s: CloudResource) -> Finding:
        perms = s.part("create_volume_permissions") or []
        where = f"snapshot {s.name} ({facts.where(s.region)})"
        if any(p.get("Group") == "all" for p in perms):
            return Finding.failed(f"{where} is public", observed="createVolumePermission: all", expected="private")
        return Finding.passed(f"{where} is not public")

    return facts.each("ec2.snapshots", judge, what="EBS snapshots")


@aws_check(
    id="aws.ec2.imdsv2_required",
    title="EC2 instances require IMDSv2",
    severity=Severity.MEDIUM,
    rationale="IMDSv1 answers any request, so an SSRF bug in an application can steal the instance role's "
    "credentials; IMDSv2 needs a session token.",
    remediation="aws ec2 modify-instance-metadata-options --instance-id ID --http-tokens required "
    "--http-endpoint enabled",
    frameworks={"cis-aws-foundations": ["5.6"], "nist-800-53": ["AC-3", "CM-6", "SC-7"], "iso-27001": ["A.8.9"]},
    collections=["ec2.instances"],
    iam_actions=["ec2:DescribeInstances"],
)
def imdsv2_required(facts: CloudFacts, params: Params) -> list[Finding]:
    """Every running/stopped instance has HttpTokens=required (or the metadata endpoint disabled)."""

    def judge(i: CloudResource) -> Finding:
        opts = i.get("MetadataOptions") or {}
        tokens, endpoint = opts.get("HttpTokens", "optional"), opts.get("HttpEndpoint", "enabled")
        where = f"instance {i.name} ({facts.where(i.region)})"
        if endpoint != "disabled" and tokens != "required":
            return Finding.failed(
                f"{where} allows IMDSv1", observed=f"HttpTokens={tokens}", expected="HttpTokens=required"
            )
        return Finding.passed(f"{where} requires IMDSv2", observed=f"HttpTokens={tokens}, endpoint {endpoint}")

    return facts.each("ec2.instances", judge, what="EC2 instances")


@aws_check(
    id="aws.ec2.vpc_flow_logs_enabled",
    title="VPC flow logs are on for every VPC",
    severity=Severity.MEDIUM,
    rationale="Flow logs record who talked to what: needed to detect and investigate intrusions.",
    remediation="aws ec2 create-flow-logs --resource-type VPC --resource-ids VPC --traffic-type REJECT "
    "--log-destination-type cloud-watch-logs --log-group-name vpc-flow-logs --deliver-logs-permission-arn ROLE_ARN",
    frameworks={"cis-aws-foundations": ["3.7"], "nist-800-53": ["AU-12", "SI-4"], "iso-27001": ["A.8.15", "A.8.16"]},
    collections=["ec2.vpcs"],
    iam_actions=["ec2:DescribeVpcs", "ec2:DescribeFlowLogs"],
)
def vpc_flow_logs_enabled(facts: CloudFacts, params: Params) -> list[Finding]:
    """Every VPC has at least one active flow log."""

    def judge(v: CloudResource) -> Finding:
        active = [f for f in v.part("flow_logs") or [] if f.get("FlowLogStatus", "ACTIVE") == "ACTIVE"]
        where = f"VPC {v.name} ({facts.where(v.region)})"
        if not active:
            return Finding.failed(f"{where} has no active flow log", observed="none", expected="an active flow log")
        return Finding.passed(f"{where} has {len(active)} active flow log(s)")

    return facts.each("ec2.vpcs", judge, what="VPCs")
