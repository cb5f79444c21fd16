"""Inventory coverage: every running EC2 instance of an audited account is audited as a host."""

from __future__ import annotations

from itops.checkapi import CloudFacts, CloudResource, Finding, Params, Severity, aws_check

#: the instance fields an inventory host may name it by
_IDENTIFIERS = ("InstanceId", "PrivateIpAddress", "PublicIpAddress", "PrivateDnsName", "PublicDnsName")


@aws_check(
    id="inventory.cloud_instances_covered",
    title="Every running EC2 instance of the account is in the inventory",
    severity=Severity.MEDIUM,
    rationale="A machine nobody audits is where unpatched software and forgotten credentials live; listing "
    "running instances that no inventory host or source covers makes shadow machines visible in the report.",
    remediation="Find out what the instance is (aws ec2 describe-instances --instance-ids ID), then add it to the "
    "inventory: an `aws_ec2` source whose filters select it (sources: [{aws_ec2: {cloud: NAME, filters: {...}}}]) "
    "or a host entry with its address; or stop it (aws ec2 stop-instances --instance-ids ID) if it should not run.",
    # CIS Controls v8 1.1: Establish and Maintain Detailed Enterprise Asset Inventory (not CIS AWS 1.1, contact details)
    frameworks={"cis-controls": ["1.1"], "nist-800-53": ["CM-8"], "iso-27001": ["A.5.9"]},
    collections=["ec2.instances"],
    iam_actions=["ec2:DescribeInstances"],
)
def cloud_instances_covered(facts: CloudFacts, params: Params) -> list[Finding]:
    """A running instance is covered when an inventory host has its instance id (the aws_ec2 source's
    ``ec2_instance_id`` var), its name, or one of its addresses or DNS names as address."""

    def judge(i: CloudResource) -> Finding | None:
        if (i.get("State") or {}).get("Name") != "running":
            return None  # a stopped instance runs nothing to audit
        ids = [str(i.get(k)) for k in _IDENTIFIERS if i.get(k)]
        name = next((t.get("Value") for t in i.get("Tags") or [] if t.get("Key") == "Name"), None)
        label = f"instance {i.name}" + (f" ({name})" if name else "") + f" in {facts.where(i.region)}"
        hit = next((x for x in ids if x in facts.covered), None)
        if hit is None:
            return Finding.failed(
                f"{label} is running but no inventory host or source covers it",
                observed=", ".join(ids),
                expected="a host with this instance id or address",
            )
        return Finding.passed(f"{label} is in the inventory (as {hit})", observed=hit)

    return facts.each("ec2.instances", judge, what="running EC2 instances")
