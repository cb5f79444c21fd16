"""DR readiness: the ``dr.drill_recent`` check (``checks/dr/drill_recent.py``) over the drill history.

The check's facts are not gathered from a host, a cloud account or a backup but from the run
store (the drills recorded by ``itops dr drill``), and the check API has no target kind for
that yet; so ``itops dr check`` loads the check module itself, validates its metadata with
:class:`~itops.checkapi.CheckMeta`, evaluates it once per playbook and stores the results as
an ordinary run (kind ``audit``), which makes it schedulable and notifiable like any job.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from itops.checkapi import CheckMeta, Finding
from itops.errors import ConfigError
from itops.model import Evidence, Result, Status
from itops.playbook.drill import DrillRecord, last_success
from itops.playbook.schema import load_playbook
from itops.registry import Registry, load_folder, load_registry

DEFAULT_MAX_AGE = 90 * 86400.0


@dataclass(frozen=True)
class DrillFacts:
    """What ``dr.drill_recent`` evaluates: one playbook and its drills."""

    playbook: str
    path: str
    now: float
    max_age: float  # seconds
    last_success: DrillRecord | None
    last_drill: DrillRecord | None


Evaluate = Callable[[DrillFacts, dict[str, Any]], list[Finding]]


def load_dr_check(path: Path | None = None) -> tuple[CheckMeta, Evaluate]:
    """The check's validated metadata and evaluate function: from the registry (built-in packs), or
    from ``path`` (a user's copy of ``checks/dr/drill_recent.py``)."""
    if path is None:
        check = load_registry(entry_point_packs=False).get("dr.drill_recent")
    else:
        registry = Registry()
        load_folder(registry, path.parent, strict=True)
        check = registry.get("dr.drill_recent")

    def evaluate(facts: DrillFacts, params: dict[str, Any]) -> list[Finding]:
        return check.evaluate(facts, params)  # type: ignore[arg-type]  # DrillFacts: the dr target's facts

    return check.meta, evaluate


def playbook_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.y*ml") if p.is_file() and p.suffix in (".yaml", ".yml"))


def readiness_results(
    run_id: str,
    files: Sequence[Path],
    records: Iterable[DrillRecord],
    *,
    max_age: float | None = None,
    now: float | None = None,
) -> list[Result]:
    """One ``dr.drill_recent`` result per playbook file (an invalid playbook is an ERROR result)."""
    meta, evaluate = load_dr_check()
    now = time.time() if now is None else now
    records = list(records)
    best = last_success(records)
    newest: dict[str, DrillRecord] = {}
    for r in records:
        if r.playbook not in newest or r.started > newest[r.playbook].started:
            newest[r.playbook] = r
    out = []
    for path in files:
        started = time.time()
        try:
            pb = load_playbook(path)
        except ConfigError as exc:
            findings = [Finding.error(f"playbook is invalid: {exc.problems[0] if exc.problems else exc}")]
            name = path.stem
        else:
            name = pb.name
            limit = max_age or pb.max_drill_age or float(meta.params.get("max_age_days", 90)) * 86400
            facts = DrillFacts(name, str(path), now, limit, best.get(name), newest.get(name))
            try:
                findings = evaluate(facts, dict(meta.params))
            except Exception as exc:  # a check's bug is an ERROR, not a crash
                findings = [Finding.error(f"check raised {type(exc).__name__}: {exc}")]
        for f in findings:
            out.append(
                Result(
                    run_id=run_id,
                    check_id=meta.id,
                    target=name,
                    resource=f.resource or str(path),
                    status=f.status,
                    severity=meta.severity,
                    title=meta.title,
                    message=f.message,
                    evidence=Evidence(source=f"drill history of {name}", observed=f.observed, expected=f.expected),
                    frameworks=meta.frameworks,
                    remediation=meta.remediation,
                    started=started,
                )
            )
    return out


__all__ = ["DEFAULT_MAX_AGE", "DrillFacts", "Status", "load_dr_check", "playbook_files", "readiness_results"]
