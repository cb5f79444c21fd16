"""``sources: [{aws_ec2: {...}}]``: running EC2 instances of an inventory cloud account as hosts.

One ``ec2:DescribeInstances`` listing (paginated) per region, with the source's ``filters``
(the API's own filter names: ``tag:env``, ``instance-type``, ``vpc-id`` ...) and
``instance-state-name=running``. Each instance becomes a host:

- name: the ``name`` tag (``tag:Name`` by default), else the instance id; characters an
  inventory name cannot hold become ``-``; a name taken twice gets the instance id appended;
- address: ``private_ip_address`` (default), ``public_ip_address``, ``private_dns_name`` or
  ``public_dns_name``; an instance without one is left out (and so shows up as not covered);
- groups: for each key of ``groups_from_tags``, the group ``KEY_VALUE`` (``role_web``);
- vars: the source's ``vars`` plus ``ec2_instance_id`` and ``ec2_region``;
- ``user``, ``port`` and ``jump`` of the source apply to every instance.

boto3 is imported only when such a source is read (through :mod:`itops.transport.aws`).
"""

from __future__ import annotations

import re
from typing import Any

from itops.inventory_schema import Cloud, EC2SourceSpec
from itops.sources import SourceData, SourceError

ADDRESS_FIELDS = {
    "private_ip_address": "PrivateIpAddress",
    "public_ip_address": "PublicIpAddress",
    "private_dns_name": "PrivateDnsName",
    "public_dns_name": "PublicDnsName",
}
_BAD = re.compile(r"[^A-Za-z0-9_.\-]+")


def safe_name(text: str) -> str:
    """An inventory name from a tag value: other characters become ``-``."""
    name = _BAD.sub("-", text.strip()).strip("-.")
    return name if name and re.match(r"[A-Za-z0-9_]", name) else ""


def _tags(instance: dict[str, Any]) -> dict[str, str]:
    return {str(t.get("Key")): str(t.get("Value", "")) for t in instance.get("Tags") or []}


def instance_hosts(spec: EC2SourceSpec, listing: list[tuple[str, dict[str, Any]]]) -> SourceData:
    """The hosts and groups of ``(region, instance)`` pairs (pure; the listing comes from the API)."""
    out = SourceData()
    for region, inst in listing:
        iid = str(inst.get("InstanceId", ""))
        address = inst.get(ADDRESS_FIELDS[spec.address])
        if not iid or not address:
            continue
        tags = _tags(inst)
        if spec.name.startswith("tag:"):
            name = safe_name(tags.get(spec.name[4:], "")) or iid
        elif spec.name == "instance_id":
            name = iid
        else:
            name = safe_name(str(inst.get(ADDRESS_FIELDS[spec.name]) or "")) or iid
        if name in out.hosts:
            name = f"{name}-{iid}"
        entry: dict[str, Any] = {
            "address": str(address),
            "vars": {**spec.vars, "ec2_instance_id": iid, "ec2_region": region},
        }
        for key in ("user", "port", "jump"):
            if getattr(spec, key) is not None:
                entry[key] = getattr(spec, key)
        out.hosts[name] = entry
        for key in spec.groups_from_tags:
            if tags.get(key):
                group = safe_name(f"{key}_{tags[key]}")
                if group:
                    out.groups.setdefault(group, {"hosts": []})["hosts"].append(name)
    return out


def read_ec2_source(spec: EC2SourceSpec, cloud: Cloud) -> SourceData:
    """List the running instances the source selects and turn them into hosts."""
    from botocore.exceptions import BotoCoreError, ClientError

    from itops.transport.aws import ClientPool, classify, make_session

    regions = list(spec.regions or cloud.regions)
    if not regions:
        raise SourceError(f"aws_ec2 source of cloud {spec.cloud}: no regions (list them on the source or the cloud)")
    filters = [{"Name": k, "Values": list(v)} for k, v in spec.filters.items()]
    filters.append({"Name": "instance-state-name", "Values": ["running"]})
    listing: list[tuple[str, dict[str, Any]]] = []
    try:
        pool = ClientPool(make_session(cloud), cloud)
        for region in regions:
            pages = pool.get("ec2", region).get_paginator("describe_instances").paginate(Filters=filters)
            for page in pages:
                for reservation in page.get("Reservations", []):
                    listing += [(region, i) for i in reservation.get("Instances", [])]
    except (ClientError, BotoCoreError) as exc:
        raise SourceError(f"aws_ec2 source of cloud {spec.cloud}: {classify(exc, 'ec2:DescribeInstances')}") from None
    data = instance_hosts(spec, listing)
    data.clouds_covered[spec.cloud] = regions
    return data
