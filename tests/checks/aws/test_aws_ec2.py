"""EC2/VPC checks on canned collection data: pass, fail, missing permission -> ERROR."""

from __future__ import annotations

import pytest
from aws_canned import DENIED, coll, facts, only, res, run, statuses

from itops.model import Status


def sg(gid: str, *perms: dict, name: str = "web", egress: tuple = (), region: str = "eu-west-1"):
    arn = f"arn:aws:ec2:{region}:123456789012:security-group/{gid}"
    return res(
        arn,
        region,
        name=f"{gid} ({name})",
        GroupId=gid,
        GroupName=name,
        VpcId="vpc-1",
        IpPermissions=list(perms),
        IpPermissionsEgress=list(egress),
    )


def rule(proto: str, low: int | None, high: int | None, v4: str = "", v6: str = "") -> dict:
    r: dict = {
        "IpProtocol": proto,
        "IpRanges": [{"CidrIp": v4}] if v4 else [],
        "Ipv6Ranges": [{"CidrIpv6": v6}] if v6 else [],
    }
    if low is not None:
        r.update(FromPort=low, ToPort=high)
    return r


GROUPS = [
    sg("sg-ssh", rule("tcp", 22, 22, v4="0.0.0.0/0")),
    sg("sg-rdp6", rule("tcp", 3389, 3389, v6="::/0")),
    sg("sg-range", rule("tcp", 0, 65535, v4="0.0.0.0/0")),
    sg("sg-all", rule("-1", None, None, v4="0.0.0.0/0")),
    sg("sg-office", rule("tcp", 22, 22, v4="203.0.113.0/24"), rule("tcp", 443, 443, v4="0.0.0.0/0")),
    sg("sg-udp", rule("udp", 0, 65535, v6="::/0")),
]


@pytest.mark.parametrize(
    ("check_id", "failing"),
    [
        ("aws.ec2.sg_ssh_restricted", {"sg-ssh", "sg-range", "sg-all"}),
        ("aws.ec2.sg_rdp_restricted", {"sg-rdp6", "sg-range", "sg-all"}),
        ("aws.ec2.sg_all_ports_restricted", {"sg-range", "sg-all", "sg-udp"}),
    ],
)
def test_open_ports(check_id: str, failing: set[str]) -> None:
    found = run(check_id, facts(coll("ec2.security_groups", GROUPS)))
    got = {r.rsplit("/", 1)[1] for r, s in statuses(found).items() if s is Status.FAIL}
    assert got == failing
    assert all(f.status is Status.PASS for f in found if f.resource.rsplit("/", 1)[1] not in failing)


def test_default_security_group() -> None:
    groups = [
        sg("sg-d1", name="default"),
        sg("sg-d2", rule("-1", None, None, v4="10.0.0.0/8"), name="default"),
        sg("sg-d3", name="default", egress=(rule("-1", None, None, v4="0.0.0.0/0"),)),
        sg("sg-web"),
    ]
    found = run("aws.ec2.default_sg_no_rules", facts(coll("ec2.security_groups", groups)))
    assert {r.rsplit("/", 1)[1]: s for r, s in statuses(found).items()} == {
        "sg-d1": Status.PASS,
        "sg-d2": Status.FAIL,
        "sg-d3": Status.FAIL,
    }


def test_security_groups_denied() -> None:
    f = only(
        run(
            "aws.ec2.sg_ssh_restricted",
            facts(coll("ec2.security_groups", [], {"us-east-1": DENIED.format("ec2:DescribeSecurityGroups")})),
        )
    )
    assert f.status is Status.ERROR and "us-east-1" in f.message


def test_ebs_encryption_by_default() -> None:
    regions = [
        res("arn:aws:ec2:eu-west-1:123456789012:account", "eu-west-1", enabled=True),
        res("arn:aws:ec2:us-east-1:123456789012:account", "us-east-1", enabled=False),
    ]
    found = run("aws.ec2.ebs_encryption_by_default", facts(coll("ec2.ebs_encryption_default", regions)))
    assert [f.status for f in found] == [Status.PASS, Status.FAIL]
    assert "us-east-1" in found[1].message


def test_volumes_encrypted() -> None:
    vols = [
        res("arn:aws:ec2:eu-west-1:123456789012:volume/vol-1", Encrypted=True),
        res("arn:aws:ec2:eu-west-1:123456789012:volume/vol-2", Encrypted=False),
    ]
    found = run("aws.ec2.volumes_encrypted", facts(coll("ec2.volumes", vols)))
    assert [f.status for f in found] == [Status.PASS, Status.FAIL]


def test_public_snapshots() -> None:
    snaps = [
        res("arn:aws:ec2:eu-west-1::snapshot/snap-1", create_volume_permissions=[{"Group": "all"}]),
        res("arn:aws:ec2:eu-west-1::snapshot/snap-2", create_volume_permissions=[{"UserId": "111111111111"}]),
        res(
            "arn:aws:ec2:eu-west-1::snapshot/snap-3",
            errors={"create_volume_permissions": DENIED.format("ec2:DescribeSnapshotAttribute")},
        ),
    ]
    found = run("aws.ec2.snapshots_not_public", facts(coll("ec2.snapshots", snaps)))
    assert [f.status for f in found] == [Status.FAIL, Status.PASS, Status.ERROR]


def test_imdsv2() -> None:
    def inst(iid, **opts):
        return res(f"arn:aws:ec2:eu-west-1:123456789012:instance/{iid}", InstanceId=iid, MetadataOptions=opts)

    found = run(
        "aws.ec2.imdsv2_required",
        facts(
            coll(
                "ec2.instances",
                [
                    inst("i-1", HttpTokens="required"),
                    inst("i-2", HttpTokens="optional"),
                    inst("i-3", HttpTokens="optional", HttpEndpoint="disabled"),
                    inst("i-4"),
                ],
            )
        ),
    )
    assert [f.status for f in found] == [Status.PASS, Status.FAIL, Status.PASS, Status.FAIL]


def test_flow_logs() -> None:
    vpcs = [
        res("arn:aws:ec2:eu-west-1:123456789012:vpc/vpc-1", flow_logs=[{"FlowLogStatus": "ACTIVE"}]),
        res("arn:aws:ec2:eu-west-1:123456789012:vpc/vpc-2", flow_logs=[]),
        res(
            "arn:aws:ec2:eu-west-1:123456789012:vpc/vpc-3", errors={"flow_logs": DENIED.format("ec2:DescribeFlowLogs")}
        ),
    ]
    found = run("aws.ec2.vpc_flow_logs_enabled", facts(coll("ec2.vpcs", vpcs)))
    assert [f.status for f in found] == [Status.PASS, Status.FAIL, Status.ERROR]
    assert "missing permission ec2:DescribeFlowLogs" in found[2].message


def test_cloud_instances_covered() -> None:
    """Running instances no inventory host covers FAIL; covered by id, address or DNS name PASS; stopped ones
    are left out."""
    from dataclasses import replace

    def inst(iid, state="running", **data):
        return res(f"arn:aws:ec2:eu-west-1:123456789012:instance/{iid}", InstanceId=iid, State={"Name": state}, **data)

    SHADOW = {"Key": "Name", "Value": "shadow"}
    instances = [
        inst("i-1"),  # covered by its id (the aws_ec2 source's ec2_instance_id)
        inst("i-2", PrivateIpAddress="10.0.0.2"),  # a host entry with this address
        inst("i-3", PrivateIpAddress="10.0.0.3", PrivateDnsName="ip-10-0-0-3.ec2.internal", Tags=[SHADOW]),
        inst("i-4", PublicDnsName="ec2-1.compute.amazonaws.com"),
        inst("i-5", state="stopped"),
    ]
    f = replace(
        facts(coll("ec2.instances", instances)), covered=frozenset({"i-1", "10.0.0.2", "ec2-1.compute.amazonaws.com"})
    )
    found = run("inventory.cloud_instances_covered", f)
    got = {r.rsplit("/", 1)[1]: s for r, s in statuses(found).items()}
    assert got == {"i-1": Status.PASS, "i-2": Status.PASS, "i-3": Status.FAIL, "i-4": Status.PASS}
    shadow = next(x for x in found if x.status is Status.FAIL)
    assert "instance i-3 (shadow)" in shadow.message and "no inventory host or source covers it" in shadow.message
    assert shadow.observed == "i-3, 10.0.0.3, ip-10-0-0-3.ec2.internal"
    # an account without running instances: nothing to cover, SKIPPED (not a vacuous PASS)
    assert {x.status for x in run("inventory.cloud_instances_covered", facts(coll("ec2.instances", [])))} == {
        Status.SKIPPED
    }
