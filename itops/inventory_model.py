"""The resolved inventory: hosts, groups and the whole :class:`Inventory` as itops uses them.

:mod:`itops.inventory` builds these from a validated file (and its sources); everything else
reads them. Frozen dataclasses; a host's ``ssh`` holds its effective connection settings.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from itops.errors import UsageError
from itops.inventory_schema import Backup, Cloud, Site, SourceSpec, WaiverRule
from itops.transport.batch import DEFAULT_MAX_PROBE_OUTPUT
from itops.yamlload import unknown_name

__all__ = ["Group", "Host", "Inventory", "SSHSettings", "chain_length", "depth_order", "target_lines"]


# --- resolved hosts and groups -------------------------------------------------------------


@dataclass(frozen=True)
class SSHSettings:
    """Effective SSH settings of one host (timeouts in seconds, paths expanded)."""

    user: str
    port: int
    identity_file: str | None
    known_hosts: tuple[str, ...]
    connect_timeout: float
    banner_timeout: float
    auth_timeout: float
    command_timeout: float
    sudo: bool = False
    max_probe_output: int = DEFAULT_MAX_PROBE_OUTPUT
    password_env: str | None = None
    password_file: str | None = None


@dataclass(frozen=True)
class Host:
    """One host: where to reach it, what it belongs to, and its merged vars."""

    name: str
    address: str
    ssh: SSHSettings
    site: str | None
    groups: tuple[str, ...]  # every group incl. ancestors, sorted
    tags: tuple[str, ...]
    jump: str | None
    vars: Mapping[str, Any]
    checks: tuple[str, ...]  # check id patterns; empty = all
    line: int
    description: str | None = None
    #: a jump host that is not an inventory host (a ProxyJump hop of the ssh config), itself maybe behind one
    via: Host | None = None
    #: where each effective connection value came from: address, port, user, identity_file, known_hosts,
    #: connect_timeout, jump -> "hosts.NAME", "defaults.ssh", "ssh config PATH", "built-in", "host name"
    origins: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def jump_text(self) -> str | None:
        """The jump chain as ``ssh -J`` would take it (``admin@10.0.0.1:22,web1``), or None."""
        if self.jump:
            return self.jump
        if self.via is None:
            return None
        hop, before = self.via, self.via.jump_text
        own = f"{hop.ssh.user}@{hop.address}:{hop.ssh.port}"
        return f"{before},{own}" if before else own


@dataclass(frozen=True)
class Group:
    """A group as written, plus every member host (incl. members of child groups) in file order."""

    name: str
    hosts: tuple[str, ...]
    children: tuple[str, ...]
    vars: Mapping[str, Any]
    checks: tuple[str, ...]
    line: int
    description: str | None = None


@dataclass(frozen=True)
class Inventory:
    """A validated inventory. Hosts keep the order of the file."""

    path: Path
    digest: str  # sha256 hex of the file bytes
    concurrency: int
    hosts: dict[str, Host]
    groups: dict[str, Group]
    sites: dict[str, Site]
    clouds: dict[str, Cloud]
    backups: dict[str, Backup]
    waivers: tuple[WaiverRule, ...]
    checks_dirs: tuple[Path, ...]
    default_vars: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))  # for non-host targets
    sources: tuple[SourceSpec, ...] = ()  # `sources:` as validated (their hosts and groups are merged in)
    # "hosts.NAME" / "groups.NAME" -> var names a source set there (an Ansible inventory's vars are its
    # playbooks' business: not warned about as vars no check reads)
    source_vars: Mapping[str, frozenset[str]] = field(default_factory=lambda: MappingProxyType({}))

    def select(self, limits: Sequence[str] | None) -> list[Host]:
        """The hosts chosen by ``--limit`` terms, in file order.

        Each item may hold comma-separated terms: a host-name glob (``web*``),
        ``group:NAME``, ``site:NAME`` or ``tag:NAME`` (NAME may be a glob); ``!`` in front
        excludes. Result: the union of positive terms (all hosts when there are none)
        minus the excluded ones. Raises :class:`UsageError` for a term matching nothing.
        """
        include: set[str] | None = None
        exclude: set[str] = set()
        for term in (t.strip() for item in limits or () for t in item.split(",")):
            if term.startswith("!"):
                exclude |= self._match(term[1:].strip(), term)
            elif term:
                include = (include or set()) | self._match(term, term)
        chosen = set(self.hosts) if include is None else include
        return [h for name, h in self.hosts.items() if name in chosen and name not in exclude]

    def _match(self, body: str, term: str) -> set[str]:
        kind, _, pattern = body.partition(":") if ":" in body else ("host", "", body)
        if not pattern or kind not in ("host", "group", "site", "tag"):
            hint = "use NAME-GLOB, group:NAME, site:NAME or tag:NAME; ! in front excludes"
            raise UsageError(f"bad --limit term {term!r}", hint=hint)
        labels: dict[str, tuple[str, ...]] = {}
        for h in self.hosts.values():
            labels[h.name] = {"host": (h.name,), "group": h.groups, "site": (h.site or "",), "tag": h.tags}[kind]
        wanted = re.compile(fnmatch.translate(pattern)).match  # compiled once: hosts x groups can be large
        matched = {name for name, values in labels.items() if any(wanted(v) for v in values)}
        if not matched:
            known = set(self.groups) if kind == "group" else set(self.sites) if kind == "site" else set()
            known |= {v for values in labels.values() for v in values if v}
            raise UsageError(f"--limit {term!r} matches no host", hint=unknown_name(kind, pattern, sorted(known)))
        return matched


def target_lines(inv: Inventory) -> dict[str, int]:
    """Target name -> line of its entry in the inventory file (hosts, backups, clouds; a host wins over
    a same-named entry). Recorded in the run when it starts (``Run.inventory_lines``), so a report
    (SARIF) points at the inventory as it was, not at today's file."""
    lines: dict[str, int] = {}
    for section in (inv.clouds, inv.backups, inv.hosts):
        for name, entry in section.items():
            if entry.line:
                lines[name] = entry.line
    return lines


def chain_length(host: Host, hosts: Mapping[str, Host]) -> int:
    """How many jump hosts stand in front of ``host`` (stops counting past 8: a cycle)."""
    hops, current = 0, host
    while hops <= 8:
        nxt = hosts.get(current.jump) if current.jump else current.via
        if nxt is None:
            break
        hops, current = hops + 1, nxt
    return hops


def depth_order(parents: Mapping[str, set[str]]) -> dict[str, int]:
    """Depth of each group: the longest chain of parents above it (no cycles by now)."""
    depth: dict[str, int] = {}

    def of(group: str) -> int:
        if group not in depth:
            depth[group] = max((of(p) + 1 for p in parents[group]), default=0)
        return depth[group]

    return {g: of(g) for g in parents}
