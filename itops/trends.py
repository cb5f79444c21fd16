"""Posture over time, computed from the run store: pass ratios per run, finding ages, waiver debt.

Everything here reads the history database run by run (one SQL aggregate or one pass over a run's
rows at a time), so memory is bounded by the number of distinct findings, not by the number of
stored results. The pass ratio is PASS / (PASS + FAIL + WAIVED), as the run report's score: a
waived failure is an accepted risk, not a pass.
"""

from __future__ import annotations

import fnmatch
import json
import sqlite3
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from typing import Any

from itops import frameworks
from itops.model import Run, Status
from itops.store import Store

#: Days before expiry from which a waiver counts as "expiring".
EXPIRING_DAYS = 30
_EVALUATED = (Status.PASS.value, Status.FAIL.value, Status.WAIVED.value)
_FAILING = (Status.FAIL.value, Status.WAIVED.value)


def ratio(passed: int, evaluated: int) -> float | None:
    """Pass ratio in percent, one decimal; None when nothing was evaluated."""
    return round(100.0 * passed / evaluated, 1) if evaluated else None


@dataclass
class Series:
    """A check's or a framework control's pass ratio in each run (None: not evaluated then)."""

    key: str
    title: str = ""
    points: list[float | None] = field(default_factory=list)

    @property
    def latest(self) -> float | None:
        return next((p for p in reversed(self.points) if p is not None), None)

    @property
    def first(self) -> float | None:
        return next((p for p in self.points if p is not None), None)

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "title": self.title, "points": self.points}


@dataclass
class Finding:
    """One (check, target, resource) that failed in some run of the window."""

    check_id: str
    target: str
    resource: str
    severity: str
    first_seen: float  # start of the run where the current (or last) failing streak began
    last_seen: float  # last run where it failed
    fixed_on: float | None = None  # first run after the streak where it passed
    waived: bool = False

    def age_days(self, now: float) -> float:
        end = self.fixed_on if self.fixed_on is not None else now
        return round((end - self.first_seen) / 86400.0, 2)

    def to_dict(self, now: float) -> dict[str, Any]:
        return {
            "check_id": self.check_id,
            "target": self.target,
            "resource": self.resource,
            "severity": self.severity,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "fixed_on": self.fixed_on,
            "open": self.fixed_on is None,
            "waived": self.waived,
            "age_days": self.age_days(now),
        }


@dataclass
class WaiverDebt:
    """Waivers in force in the newest run, by how close they are to expiry."""

    active: int = 0
    expiring: int = 0
    expired: int = 0
    items: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Trends:
    """What ``itops trends`` shows."""

    runs: list[Run]
    checks: list[Series]
    controls: list[Series]
    overall: list[float | None]
    findings: list[Finding]
    waivers: WaiverDebt
    generated: float

    @property
    def mttr_days(self) -> float | None:
        """Mean time to remediate: mean age of the findings fixed within the window."""
        fixed = [f.age_days(self.generated) for f in self.findings if f.fixed_on is not None]
        return round(sum(fixed) / len(fixed), 2) if fixed else None

    def to_dict(self) -> dict[str, Any]:
        now = self.generated
        return {
            "generated": now,
            "runs": [{"id": r.id, "started": r.started, "state": r.state} for r in self.runs],
            "overall": self.overall,
            "checks": [s.to_dict() for s in self.checks],
            "controls": [s.to_dict() for s in self.controls],
            "findings": [f.to_dict(now) for f in self.findings],
            "open_findings": sum(1 for f in self.findings if f.fixed_on is None),
            "fixed_findings": sum(1 for f in self.findings if f.fixed_on is not None),
            "mttr_days": self.mttr_days,
            "waivers": {
                "active": self.waivers.active,
                "expiring": self.waivers.expiring,
                "expired": self.waivers.expired,
                "items": self.waivers.items,
            },
        }


def _matches(target: str, limits: Sequence[str]) -> bool:
    include = [p for p in limits if not p.startswith("!")]
    exclude = [p[1:] for p in limits if p.startswith("!")]
    if include and not any(fnmatch.fnmatchcase(target, p) for p in include):
        return False
    return not any(fnmatch.fnmatchcase(target, p) for p in exclude)


def _rows(db: sqlite3.Connection, run_id: str, legacy_data: bool) -> Iterator[sqlite3.Row]:
    data = "data" if legacy_data else "'' AS data"  # results.data: whole lines, in stores from before 2026-12-07
    yield from db.execute(
        f"SELECT check_id, target, resource, status, severity, waiver, {data} FROM results"  # noqa: S608
        " WHERE run_id = ? ORDER BY seq",
        (run_id,),
    )


def _run_checks(db: sqlite3.Connection, run_id: str) -> dict[str, tuple[str, dict[str, list[str]]]]:
    """A run's checks: title and frameworks as the run recorded them (empty for runs stored before)."""
    return {
        row["check_id"]: (row["title"], json.loads(row["frameworks"]))
        for row in db.execute("SELECT check_id, title, frameworks FROM run_checks WHERE run_id = ?", (run_id,))
    }


def compute_trends(
    store: Store,
    *,
    kind: str = "audit",
    since: float | None = None,
    framework: str | None = None,
    limits: Sequence[str] = (),
    max_runs: int = 200,
    now: float | None = None,
) -> Trends:
    """Trends over the finished runs of ``kind`` started after ``since`` (epoch seconds), oldest first."""
    now = time.time() if now is None else now
    runs = [
        r
        for r in store.list_runs(limit=max_runs, kind=kind)
        if r.state != "running" and (since is None or r.started >= since)
    ]
    runs.sort(key=lambda r: (r.started, r.id))
    per_check: dict[str, dict[int, list[int]]] = defaultdict(dict)  # check -> run index -> [pass, evaluated]
    per_control: dict[str, dict[int, list[int]]] = defaultdict(dict)
    overall: list[float | None] = []
    titles: dict[str, str] = {}
    controls_of: dict[str, list[str]] = {}
    open_streak: dict[tuple[str, str, str], Finding] = {}
    findings: list[Finding] = []
    newest_waivers: list[dict[str, Any]] = []
    with closing(sqlite3.connect(store.db_path)) as db:
        db.row_factory = sqlite3.Row
        for index, run in enumerate(runs):
            passed = evaluated = 0
            seen: set[tuple[str, str, str]] = set()
            waivers_here: list[dict[str, Any]] = []
            recorded = _run_checks(db, run.id)
            for row in _rows(db, run.id, store.legacy_data):
                target = row["target"]
                if limits and not _matches(target, limits):
                    continue
                check, status = row["check_id"], row["status"]
                if check not in controls_of or check not in titles:
                    data = json.loads(row["data"]) if row["data"] else {}
                    title, fws = recorded.get(check) or (data.get("title", ""), data.get("frameworks") or {})
                    titles[check] = title
                    controls_of[check] = [
                        f"{fw}:{ref}" for fw, refs in fws.items() if frameworks.matches(fw, framework) for ref in refs
                    ]
                if status not in _EVALUATED:
                    continue
                ok = status == Status.PASS.value
                passed += ok
                evaluated += 1
                cell = per_check[check].setdefault(index, [0, 0])
                cell[0] += ok
                cell[1] += 1
                for control in controls_of[check]:
                    cc = per_control[control].setdefault(index, [0, 0])
                    cc[0] += ok
                    cc[1] += 1
                key = (check, target, row["resource"])
                seen.add(key)
                if status in _FAILING:
                    streak = open_streak.get(key)
                    if streak is None:
                        streak = Finding(check, target, row["resource"], row["severity"], run.started, run.started)
                        open_streak[key] = streak
                        findings.append(streak)
                    streak.last_seen = run.started
                    streak.waived = status == Status.WAIVED.value
                    if streak.waived and index == len(runs) - 1:
                        waiver = row["waiver"] or (json.loads(row["data"]).get("waiver") if row["data"] else None)
                        waivers_here.append(json.loads(waiver) if isinstance(waiver, str) else waiver or {})
                elif key in open_streak:
                    open_streak.pop(key).fixed_on = run.started
            overall.append(ratio(passed, evaluated))
            if index == len(runs) - 1:
                newest_waivers = waivers_here
    n = len(runs)

    def series(table: dict[str, dict[int, list[int]]], title_of: dict[str, str]) -> list[Series]:
        out = []
        for key in sorted(table):
            cells = table[key]
            out.append(Series(key, title_of.get(key, ""), [ratio(*cells[i]) if i in cells else None for i in range(n)]))
        return out

    control_titles: dict[str, str] = {}
    for check, controls in controls_of.items():
        for control in controls:
            control_titles.setdefault(control, titles.get(check, ""))
    return Trends(
        runs=runs,
        checks=series(per_check, titles),
        controls=series(per_control, {}),
        overall=overall,
        findings=findings,
        waivers=_waiver_debt(newest_waivers, now),
        generated=now,
    )


def _waiver_debt(applied: Iterable[dict[str, Any]], now: float) -> WaiverDebt:
    """One entry per waiver rule applied in the newest run, with how many results it covered."""
    debt = WaiverDebt()
    today = time.strftime("%Y-%m-%d", time.gmtime(now))
    soon = time.strftime("%Y-%m-%d", time.gmtime(now + EXPIRING_DAYS * 86400))
    rules: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for waiver in applied:
        key = (
            str(waiver.get("check", "")),
            str(waiver.get("target", "")),
            str(waiver.get("expires", "")),
            str(waiver.get("ticket", "")),
        )
        rule = rules.setdefault(key, {**waiver, "results": 0})
        rule["results"] += 1
    for rule in rules.values():
        expires = str(rule.get("expires", ""))
        if expires and expires < today:
            state = "expired"
            debt.expired += 1
        elif expires and expires <= soon:
            state = "expiring"
            debt.expiring += 1
        else:
            state = "active"
            debt.active += 1
        debt.items.append({**rule, "state": state})
    return debt
