"""Planner: which checks run on which host, and the one deduplicated batch each host gets."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

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
    plans = []
    for host in hosts:
        chosen = checks_for_host(checks, host.checks)
        timeout = float(host.ssh.command_timeout or default_timeout)
        plans.append(plan_host(host.name, chosen, host.vars, timeout))
    return plans
