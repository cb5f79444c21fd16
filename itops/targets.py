"""Which targets a run covers: hosts by ``--limit`` terms, cloud accounts by ``cloud:`` terms."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass

from itops.errors import UsageError
from itops.inventory import Host, Inventory


@dataclass(frozen=True)
class Selection:
    hosts: list[Host]
    clouds: list[str]


def split_limits(limits: Sequence[str]) -> tuple[list[str], list[str]]:
    """Separate ``cloud:GLOB`` / ``!cloud:GLOB`` terms from host terms (items may be comma-separated)."""
    host_terms: list[str] = []
    cloud_terms: list[str] = []
    for item in limits:
        for term in (t.strip() for t in item.split(",")):
            if not term:
                continue
            (cloud_terms if term.lstrip("!").startswith("cloud:") else host_terms).append(term)
    return host_terms, cloud_terms


def select_targets(inv: Inventory, limits: Sequence[str]) -> Selection:
    """No limits: every host and every cloud. Host terms select hosts only, cloud terms clouds only."""
    host_terms, cloud_terms = split_limits(limits)
    if not limits:
        return Selection(list(inv.hosts.values()), list(inv.clouds))
    hosts = inv.select(host_terms) if host_terms else []
    clouds: list[str] = []
    if cloud_terms:
        wanted = [t.split(":", 1)[1] for t in cloud_terms if not t.startswith("!")]
        excluded = [t.split(":", 1)[1] for t in cloud_terms if t.startswith("!")]
        for pattern in wanted + excluded:
            if not any(fnmatch.fnmatchcase(name, pattern) for name in inv.clouds):
                known = ", ".join(inv.clouds) or "none"
                raise UsageError(f"--limit cloud:{pattern} matches no cloud in the inventory (clouds: {known})")
        clouds = [
            name
            for name in inv.clouds
            if (not wanted or any(fnmatch.fnmatchcase(name, p) for p in wanted))
            and not any(fnmatch.fnmatchcase(name, p) for p in excluded)
        ]
    return Selection(hosts, clouds)
