"""DR readiness: every DR playbook had a successful drill recently (``dr.drill_recent``).

Evaluated by ``itops dr check`` over the drill history in the run store (target kind ``dr``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from itops.checkapi import Finding, Params, Severity, dr_check

if TYPE_CHECKING:  # the registry imports every check file: keep this one cheap to import
    from itops.playbook.readiness import DrillFacts


def _age(seconds: float) -> str:
    days, rest = divmod(int(seconds), 86400)
    hours = rest // 3600
    return f"{days}d {hours}h" if days else f"{hours}h {rest % 3600 // 60}m"


META: dict[str, Any] = {
    "id": "dr.drill_recent",
    "title": "The DR playbook had a successful drill recently",
    "severity": Severity.HIGH,
    "rationale": "A recovery procedure that has not been exercised recently has usually drifted from the systems it "
    "recovers (renamed hosts, new dependencies, expired credentials); regular successful drills are the only "
    "evidence that the RTO can be met.",
    "remediation": "Run `itops dr drill PLAYBOOK -i INVENTORY` (or schedule a dr-drill job), fix the steps that "
    "fail until the drill passes, and repeat it at least as often as max_drill_age / --max-age says.",
    "frameworks": {"cis-controls": ["11.5"], "nist-800-53": ["CP-4", "CP-4(1)"], "iso-27001": ["A.5.30", "A.5.29"]},
    "params": {"max_age_days": 90},
    "tags": ["dr"],
}


@dr_check(**META)
def drill_recent(facts: DrillFacts, params: Params) -> list[Finding]:
    """PASS when the newest successful drill of the playbook ended within the allowed age, else FAIL."""
    limit = _age(facts.max_age)
    expected = f"a successful drill within {limit}"
    last = facts.last_success
    if last is None:
        tried = facts.last_drill
        extra = f" (last attempt {tried.run_id} failed at {tried.failed_step or tried.state})" if tried else ""
        return [
            Finding.failed(
                f"playbook {facts.playbook} was never drilled successfully{extra}",
                observed="no successful drill",
                expected=expected,
            )
        ]
    age = facts.now - (last.finished or last.started)
    observed = f"last successful drill {_age(age)} ago (run {last.run_id})"
    if age > facts.max_age:
        return [
            Finding.failed(
                f"playbook {facts.playbook}: last successful drill was {_age(age)} ago, allowed {limit}",
                observed=observed,
                expected=expected,
            )
        ]
    return [
        Finding.passed(
            f"playbook {facts.playbook}: last successful drill {_age(age)} ago (allowed {limit})",
            observed=observed,
            expected=expected,
        )
    ]
