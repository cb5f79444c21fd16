"""Which targets a run covers: hosts by ``--limit`` terms, cloud accounts by ``cloud:`` terms."""

from __future__ import annotations

import fnmatch
import hashlib
import re
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


_SHARD = re.compile(r"^(\d{1,6})/(\d{1,6})$")


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/5"`` -> (2, 5); a usage error unless 1 <= I <= N."""
    match = _SHARD.match(text.strip())
    if match is None or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise UsageError(f"--shard {text!r}: expected I/N with 1 <= I <= N", hint="e.g. --shard 1/4")
    return int(match.group(1)), int(match.group(2))


def shard_of(name: str, count: int) -> int:
    """The shard (1..count) a target belongs to: stable across runs and machines (SHA-256 of the name)."""
    return int(hashlib.sha256(name.encode()).hexdigest()[:16], 16) % count + 1


def apply_shard(selection: Selection, index: int, count: int) -> Selection:
    """The targets of ``selection`` in shard ``index`` of ``count`` (clouds keyed ``cloud:NAME``)."""
    return Selection(
        [h for h in selection.hosts if shard_of(h.name, count) == index],
        [c for c in selection.clouds if shard_of(f"cloud:{c}", count) == index],
    )
