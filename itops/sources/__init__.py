"""Inventory sources: hosts and groups that come from somewhere else than the inventory file.

``sources:`` in the inventory lists them; each is read when the inventory is loaded and
turned into ``hosts:``/``groups:`` entries in itops's own format (plain dicts), which are
then validated like entries written by hand::

    sources:
      - ansible: ../ansible/hosts.ini            # ansible-inventory's view of an Ansible inventory
      - aws_ec2: {cloud: aws-prod, regions: [eu-west-1], filters: {"tag:env": prod}}

Merge rule: the inventory file's own ``hosts:``/``groups:`` win. A name defined by a source
and by the file is one entry: the file's keys replace the source's, its ``vars`` are merged
over the source's (key by key), and membership lists (``hosts``, ``children``, ``groups``,
``tags``) are united. Later sources extend earlier ones the same way.

One module per kind (``ansible.py``, ``aws_ec2.py``); heavy libraries (boto3) are imported
only when a source of that kind is read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from itops.errors import ItopsError

#: membership lists that are united when a source and the file define the same entry
UNITED_KEYS = frozenset({"hosts", "children", "groups", "tags"})


class SourceError(ItopsError):
    """A source could not be read (tool missing, file unreadable, API refused); the inventory is invalid."""


@dataclass
class SourceData:
    """What one source contributes, in inventory format: ``hosts`` and ``groups`` entries by name."""

    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    clouds_covered: dict[str, list[str]] = field(default_factory=dict)  # cloud -> regions a source audits


def merge_entry(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``over``'s keys win; ``vars`` merge key by key; membership lists are united (base order first)."""
    merged = dict(base)
    for key, value in over.items():
        old = merged.get(key)
        if key in UNITED_KEYS and isinstance(value, list | tuple) and isinstance(old, list | tuple):
            merged[key] = list(dict.fromkeys([*old, *value]))
        elif key == "vars" and isinstance(value, Mapping) and isinstance(old, Mapping):
            merged[key] = {**old, **value}
        else:
            merged[key] = value
    return merged


def merge_section(source: Mapping[str, Mapping[str, Any]], own: Mapping[str, Any]) -> dict[str, Any]:
    """The file's entries (in file order, merged over the source's) then the source-only entries."""
    out: dict[str, Any] = {}
    for name, entry in own.items():
        base = source.get(name)
        out[name] = merge_entry(base, entry) if base is not None and isinstance(entry, Mapping) else entry
    for name, entry in source.items():
        if name not in out:
            out[name] = dict(entry)
    return out


def combine(parts: list[SourceData]) -> SourceData:
    """Several sources as one (later sources extend earlier ones)."""
    total = SourceData()
    for part in parts:
        for name, entry in part.hosts.items():
            total.hosts[name] = merge_entry(total.hosts.get(name, {}), entry)
        for name, entry in part.groups.items():
            total.groups[name] = merge_entry(total.groups.get(name, {}), entry)
        for cloud, regions in part.clouds_covered.items():
            total.clouds_covered.setdefault(cloud, [])
            total.clouds_covered[cloud] += [r for r in regions if r not in total.clouds_covered[cloud]]
    return total


def source_vars(data: SourceData | None) -> dict[str, frozenset[str]]:
    if data is None:
        return {}
    out = {f"hosts.{n}": frozenset(e.get("vars") or ()) for n, e in data.hosts.items()}
    out.update({f"groups.{n}": frozenset(e.get("vars") or ()) for n, e in data.groups.items()})
    return {k: v for k, v in out.items() if v}


def digest_with_sources(digest: str, data: SourceData) -> str:
    """The inventory digest covers what its sources contributed, not only the file's bytes."""
    text = json.dumps({"hosts": data.hosts, "groups": data.groups}, sort_keys=True, default=str)
    return hashlib.sha256(f"{digest}\n{text}".encode()).hexdigest()
