"""Run AWS checks on one cloud account: preflight, collections once, pure evaluation, results.

Per account: open the session and run the preflight (a failure makes every check of
the account UNREACHABLE with the reason); find the regions; make each collection the
selected checks need once (regions in parallel under ``concurrency``); evaluate each
check on the shared :class:`~itops.checkapi.CloudFacts`. Results look like host
results: target is the account's inventory name, resource the ARN, evidence the API
calls with observed vs expected.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from itops.checkapi import Check, CloudFacts, CollectionResult
from itops.inventory import Cloud, Inventory
from itops.model import Finding, Result, Status
from itops.transport.aws import AccountUnreachable, ClientPool, collect, discover_regions, open_account

log = logging.getLogger(__name__)

__all__ = ["CloudOutcome", "cloud_variables", "inventory_coverage", "run_cloud_account"]


@dataclass
class CloudOutcome:
    """One account's results, and what the preflight learnt (for the run's evidence)."""

    cloud: str
    results: list[Result]
    account_id: str = ""
    caller_arn: str = ""
    regions: tuple[str, ...] = ()
    unreachable: str = ""  # why the account could not be audited, when it could not
    elapsed: float = 0.0
    collections: dict[str, CollectionResult] = field(default_factory=dict)


def cloud_variables(inventory: Inventory, name: str) -> dict[str, Any]:
    """Check parameters of a cloud account: ``defaults.vars`` overridden by the entry's ``vars``."""
    return {**inventory.default_vars, **inventory.clouds[name].vars}


def inventory_coverage(inventory: Inventory) -> frozenset[str]:
    """What marks a cloud instance as covered by the inventory: every host's name and address, and
    the ``ec2_instance_id`` var the aws_ec2 source sets (``inventory.cloud_instances_covered``)."""
    covered: set[str] = set()
    for host in inventory.hosts.values():
        covered |= {host.name, host.address}
        if isinstance(host.vars.get("ec2_instance_id"), str):
            covered.add(host.vars["ec2_instance_id"])
    return frozenset(covered)


def run_cloud_account(
    run_id: str,
    name: str,
    cloud: Cloud,
    checks: Sequence[Check],
    variables: Mapping[str, Any],
    *,
    concurrency: int,
    stop: threading.Event | None = None,
    covered: frozenset[str] = frozenset(),
) -> CloudOutcome:
    """Audit one account with the ``aws`` checks among ``checks`` (others are ignored)."""
    started = time.time()
    t0 = time.monotonic()
    aws = [c for c in checks if c.meta.target == "aws"]
    outcome = CloudOutcome(name, [])
    planned: list[tuple[Check, dict[str, Any]]] = []
    for check in aws:
        try:
            planned.append((check, check.resolve_params(variables)))
        except (ValueError, TypeError) as exc:
            outcome.results.append(cloud_result(run_id, name, check, Finding.error(f"bad parameter: {exc}"), started))
    if not planned:
        return outcome
    try:
        session, identity = open_account(cloud)
        regions = discover_regions(session, cloud)
    except AccountUnreachable as exc:
        reason = f"unreachable: {exc}"
        outcome.unreachable = reason
        outcome.results += [
            cloud_result(run_id, name, c, Finding(Status.UNREACHABLE, reason), started) for c, _ in planned
        ]
        outcome.elapsed = time.monotonic() - t0
        return outcome
    outcome.account_id, outcome.caller_arn, outcome.regions = identity.account_id, identity.arn, regions
    collections = collect(
        ClientPool(session, cloud),
        identity,
        regions,
        {n for c, _ in planned for n in c.collections},
        concurrency=concurrency,
        stop=stop,
    )
    outcome.collections = collections
    facts = CloudFacts(
        account=name,
        account_id=identity.account_id,
        partition=identity.partition,
        regions=regions,
        collections=collections,
        vars=variables,
        backup_buckets=tuple(cloud.backup_buckets),
        covered=covered,
    )
    for check, params in planned:
        outcome.results += evaluate_cloud_check(run_id, name, check, facts, params, started)
    outcome.elapsed = time.monotonic() - t0
    return outcome


def evaluate_cloud_check(
    run_id: str, target: str, check: Check, facts: CloudFacts, params: Mapping[str, Any], started: float
) -> list[Result]:
    """One check on an account's facts; a check that raises becomes one ERROR result."""
    t0 = time.monotonic()
    try:
        findings = check.evaluate(facts, params)
    except Exception as exc:  # a check's bug is an ERROR for that check, not a crash
        log.debug("check %s raised on %s", check.id, target, exc_info=True)
        findings = [Finding.error(f"check raised {type(exc).__name__}: {exc}", resource=facts.account_arn)]
    elapsed = time.monotonic() - t0
    source = api_calls(check, facts)
    return [cloud_result(run_id, target, check, f, started, source, elapsed, params) for f in findings]


def api_calls(check: Check, facts: CloudFacts) -> str:
    """The API calls a check's verdict rests on (its IAM actions that were called), for evidence."""
    made = {c for name in check.collections if name in facts.collections for c in facts.collections[name].calls}
    relevant = sorted(a for a in check.meta.iam_actions if a in made) or sorted(made)
    where = f" in account {facts.account_id}" + (f" ({', '.join(facts.regions)})" if facts.regions else "")
    return ", ".join(relevant) + where if relevant else ""


def cloud_result(
    run_id: str,
    target: str,
    check: Check,
    finding: Finding,
    started: float,
    source: str = "",
    duration: float = 0.0,
    params: Mapping[str, Any] | None = None,
) -> Result:
    """The Result of a cloud check's finding (see :meth:`Check.result`)."""
    return check.result(
        finding, run_id=run_id, target=target, started=started, source=source, duration=duration, params=params
    )
