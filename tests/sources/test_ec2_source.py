"""`sources: [{aws_ec2: {...}}]` on a moto server: running instances become hosts (filters, address,
name, groups from tags), and inventory.cloud_instances_covered FAILs for running instances no source
or host entry covers."""

# ruff: noqa: F811  (pytest fixtures imported from aws_fixtures are parameters here)
from __future__ import annotations

import pytest
import yaml
from audit_helpers import run_audit
from aws_fixtures import aws_env, cloud_entry, moto  # noqa: F401

from itops.errors import InventoryError
from itops.inventory import load_inventory

pytestmark = pytest.mark.integration
AMI = "ami-12c6146b"


def launch(ec2, name: str, **tags: str) -> dict:
    tag_list = [{"Key": "Name", "Value": name}] + [{"Key": k, "Value": v} for k, v in tags.items()]
    spec = [{"ResourceType": "instance", "Tags": tag_list}]
    return ec2.run_instances(ImageId=AMI, MinCount=1, MaxCount=1, InstanceType="t3.micro", TagSpecifications=spec)[
        "Instances"
    ][0]


def test_ec2_instances_become_hosts_and_uncovered_ones_fail(moto, tmp_path):
    eu, us = moto.client("ec2", "eu-west-1"), moto.client("ec2", "us-east-1")
    web_a = launch(eu, "web-a", env="prod", role="web")
    web_b = launch(eu, "web-b", env="prod", role="web")
    db = launch(eu, "db 1", env="prod", role="db")
    dev = launch(eu, "dev-x", env="dev", role="web")
    stopped = launch(eu, "old", env="prod", role="web")
    eu.stop_instances(InstanceIds=[stopped["InstanceId"]])
    twin = launch(us, "web-a", env="prod", role="web")  # the same Name in another region
    shadow = launch(us, "", env="prod")  # no Name tag value: named by its instance id

    inv_path = tmp_path / "inv.yaml"
    source = {
        "cloud": "aws-test",
        "filters": {"tag:env": "prod"},
        "groups_from_tags": ["role", "env"],
        "user": "ec2-user",
        "vars": {"team": "web"},
    }
    inv_path.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "clouds": {"aws-test": cloud_entry(regions=["eu-west-1", "us-east-1"])},
                "sources": [{"aws_ec2": source}],
                "hosts": {"web-a": {"port": 2222}},  # the file's own keys win over the source's
            }
        )
    )
    inv = load_inventory(inv_path)
    twin_name = f"web-a-{twin['InstanceId']}"
    assert set(inv.hosts) == {"web-a", "web-b", "db-1", twin_name, shadow["InstanceId"]}
    a = inv.hosts["web-a"]
    assert (a.address, a.ssh.port, a.ssh.user) == (web_a["PrivateIpAddress"], 2222, "ec2-user")
    assert dict(a.vars) == {"team": "web", "ec2_instance_id": web_a["InstanceId"], "ec2_region": "eu-west-1"}
    assert set(inv.groups["role_web"].hosts) == {"web-a", "web-b", twin_name}
    assert inv.groups["role_db"].hosts == ("db-1",) and len(inv.groups["env_prod"].hosts) == 5
    assert inv.hosts["db-1"].vars["ec2_instance_id"] == db["InstanceId"]

    # public addresses and the instance id as name
    doc = yaml.safe_load(inv_path.read_text())
    doc["sources"][0]["aws_ec2"] |= {"address": "private_dns_name", "name": "instance_id", "regions": ["eu-west-1"]}
    doc["hosts"] = {}
    inv_path.write_text(yaml.safe_dump(doc))
    by_id = load_inventory(inv_path).hosts
    assert set(by_id) == {web_a["InstanceId"], web_b["InstanceId"], db["InstanceId"]}
    assert by_id[db["InstanceId"]].address == db["PrivateDnsName"]

    # the coverage check: the dev instance is in no source; a host entry by address covers it
    doc["sources"][0]["aws_ec2"] = source
    inv_path.write_text(yaml.safe_dump(doc))
    code, out, err = run_audit(
        "-i",
        str(inv_path),
        "--limit",
        "cloud:aws-test",
        "--store",
        str(tmp_path / "s"),
        "--checks",
        "inventory.cloud_instances_covered",
    )
    assert code == 1, err
    verdicts = {r["resource"].rsplit("/", 1)[1]: (r["status"], r["message"]) for r in out["results"]}
    assert verdicts[dev["InstanceId"]][0] == "FAIL"
    assert (
        "dev-x" in verdicts[dev["InstanceId"]][1]
        and "no inventory host or source covers it" in verdicts[dev["InstanceId"]][1]
    )
    assert stopped["InstanceId"] not in verdicts  # not running: nothing to audit
    assert {i for i, (s, _) in verdicts.items() if s == "PASS"} == {
        web_a["InstanceId"],
        web_b["InstanceId"],
        db["InstanceId"],
        twin["InstanceId"],
        shadow["InstanceId"],
    }
    doc["hosts"] = {"dev-box": {"address": dev["PrivateIpAddress"]}}
    inv_path.write_text(yaml.safe_dump(doc))
    code, out, err = run_audit(
        "-i",
        str(inv_path),
        "--limit",
        "cloud:aws-test",
        "--store",
        str(tmp_path / "s"),
        "--checks",
        "inventory.cloud_instances_covered",
    )
    assert code == 0, err
    assert {r["status"] for r in out["results"]} == {"PASS"}


def test_an_unreachable_account_makes_the_inventory_invalid_naming_the_source(aws_env, tmp_path):
    inv_path = tmp_path / "inv.yaml"
    inv_path.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "clouds": {
                    "gone": cloud_entry(
                        endpoint_url="http://127.0.0.1:9", regions=["eu-west-1"], max_attempts=1, connect_timeout=1
                    )
                },
                "sources": [{"aws_ec2": {"cloud": "gone"}}],
            }
        )
    )
    with pytest.raises(InventoryError) as err:
        load_inventory(inv_path)
    assert "sources[0]" in str(err.value.problems) and "aws_ec2 source of cloud gone" in str(err.value.problems)
