"""Planner: which checks run on which host, and the one deduplicated batch each host gets."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from itops.checkapi import Check, Probe
from itops.inventory import Host
from itops.transport.batch import BatchScript, build_script

#: Always collected: the OS family decides which checks apply.
OS_RELEASE = Probe("os_release", "cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release")


@dataclass
class PlannedCheck:
    check: Check
    params: dict[str, Any]
    probe_index: dict[str, int]  # probe name -> frame index in the host's batch


@dataclass
class HostPlan:
    """The checks to evaluate on one host and the commands to send it."""

    name: str
    planned: list[PlannedCheck] = field(default_factory=list)
    param_errors: list[tuple[Check, str]] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    timeouts: list[float] = field(default_factory=list)
    os_index: int = 0

    @property
    def check_count(self) -> int:
        return len(self.planned) + len(self.param_errors)

    def batch(self) -> BatchScript:
        return build_script(self.commands, self.timeouts)


def checks_for_host(checks: Sequence[Check], host_patterns: Sequence[str]) -> list[Check]:
    """The selected checks narrowed by the host's group ``checks:`` patterns (empty: all)."""
    if not host_patterns:
        return list(checks)
    return [c for c in checks if any(fnmatch.fnmatchcase(c.id, p) for p in host_patterns)]


def plan_host(
    name: str,
    checks: Sequence[Check],
    variables: Mapping[str, Any],
    command_timeout: float,
) -> HostPlan:
    """Resolve params, render probes, and deduplicate them (by command text) into one batch."""
    plan = HostPlan(name)
    index: dict[str, int] = {}

    def add(probe: Probe, params: Mapping[str, Any]) -> int:
        command = probe.render(params)
        if command not in index:
            index[command] = len(plan.commands)
            plan.commands.append(command)
            plan.timeouts.append(probe.timeout or command_timeout)
        return index[command]

    plan.os_index = add(OS_RELEASE, {})
    for check in checks:
        try:
            params = check.resolve_params(variables)
            probe_index = {p.name: add(p, params) for p in check.probes}
        except (ValueError, TypeError) as exc:
            plan.param_errors.append((check, str(exc)))
            continue
        plan.planned.append(PlannedCheck(check, params, probe_index))
    return plan


def plan_hosts(hosts: Sequence[Host], checks: Sequence[Check], default_timeout: float = 60.0) -> list[HostPlan]:
    """One plan per host: the selected checks narrowed by the host's groups, probes deduplicated."""
    return list(HostPlans(hosts, checks, default_timeout))


class HostPlans(Sequence[HostPlan]):
    """The plans of many hosts, each made when it is read and not kept.

    A host's plan (resolved params, rendered probes: ~50 KB with the whole pack) is needed only while
    that host runs; a run of 10,000 hosts holding every plan from the start would hold ~500 MB. This
    sequence plans host ``i`` when ``plans[i]`` or an iteration reaches it (the same plan each time:
    planning is deterministic); a slice is another lazy ``HostPlans``. :meth:`check_counts` gives each
    host's planned check count without planning (every chosen check is planned or a param error).
    """

    def __init__(self, hosts: Sequence[Host], checks: Sequence[Check], default_timeout: float = 60.0) -> None:
        self.hosts = hosts
        self.checks = checks
        self.default_timeout = default_timeout

    def __len__(self) -> int:
        return len(self.hosts)

    @overload
    def __getitem__(self, index: int) -> HostPlan: ...

    @overload
    def __getitem__(self, index: slice) -> HostPlans: ...

    def __getitem__(self, index: int | slice) -> HostPlan | HostPlans:
        if isinstance(index, slice):
            return HostPlans(self.hosts[index], self.checks, self.default_timeout)
        return self._plan(self.hosts[index])

    def __iter__(self) -> Iterator[HostPlan]:
        for host in self.hosts:
            yield self._plan(host)

    def check_counts(self) -> dict[str, int]:
        """Host name -> checks planned on it (``HostPlan.check_count``), without planning."""
        return {h.name: len(checks_for_host(self.checks, h.checks)) for h in self.hosts}

    def _plan(self, host: Host) -> HostPlan:
        timeout = float(host.ssh.command_timeout or self.default_timeout)
        return plan_host(host.name, checks_for_host(self.checks, host.checks), host.vars, timeout)
