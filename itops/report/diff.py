"""``itops diff RUN_A RUN_B``: what changed between two stored runs.

Results are matched on (check, target, resource). A result whose resource is new (a check
that passed as a whole now fails on one account or file, or the reverse) is compared with
the unmatched results of the same check and target in the other run, so it reads as
regressed or fixed rather than as new plus removed. Each changed result lands in exactly
one category:

- ``regressed``: PASS in A, FAIL in B
- ``new_failures``: FAIL in B, and in A absent, SKIPPED, ERROR or UNREACHABLE
- ``still_failing``: FAIL in both
- ``fixed``: FAIL or WAIVED in A, PASS in B
- ``newly_unreachable``: UNREACHABLE in B, anything else (or absent) in A
- ``new_errors``: ERROR in B, anything else (or absent) in A
- ``waiver_changes``: FAIL -> WAIVED (newly waived), WAIVED -> FAIL (waiver expired or
  removed), or WAIVED in both under a different waiver
- ``removed``: in A, not in B (a target or check left the run)
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from itops.model import Result, Run, Status, count_statuses
from itops.redact import redact_result
from itops.report.data import compliance_score, printable_line
from itops.report.views import worst_status
from itops.store import Store

CATEGORIES = (
    "new_failures",
    "regressed",
    "fixed",
    "still_failing",
    "newly_unreachable",
    "new_errors",
    "waiver_changes",
    "removed",
)
_TITLES = {
    "new_failures": "New failures",
    "regressed": "Regressed (PASS -> FAIL)",
    "fixed": "Fixed",
    "still_failing": "Still failing",
    "newly_unreachable": "Newly unreachable",
    "new_errors": "New errors (not assessed)",
    "waiver_changes": "Waiver changes",
    "removed": "Removed from the run",
}
_NOT_ASSESSED = (Status.SKIPPED, Status.ERROR, Status.UNREACHABLE)


@dataclass(frozen=True)
class Change:
    """One result's move from run A to run B (``before``/``after`` None when absent)."""

    before: Result | None
    after: Result | None
    note: str = ""

    @property
    def current(self) -> Result:
        result = self.after or self.before
        assert result is not None
        return result

    def to_dict(self) -> dict[str, Any]:
        r = self.current
        return {
            "check_id": r.check_id,
            "target": r.target,
            "resource": r.resource,
            "severity": r.severity.value,
            "before": self.before.status.value if self.before else None,
            "after": self.after.status.value if self.after else None,
            "message": r.message,
            "note": self.note,
            "waiver_before": self.before.waiver.to_dict() if self.before and self.before.waiver else None,
            "waiver_after": self.after.waiver.to_dict() if self.after and self.after.waiver else None,
        }


@dataclass
class RunDiff:
    run_a: Run
    run_b: Run
    counts_a: dict[str, int]
    counts_b: dict[str, int]
    changes: dict[str, list[Change]] = field(default_factory=lambda: {c: [] for c in CATEGORIES})

    @property
    def score_a(self) -> float | None:
        return compliance_score(self.counts_a)

    @property
    def score_b(self) -> float | None:
        return compliance_score(self.counts_b)

    @property
    def worse(self) -> bool:
        """True when B has new failures, regressions, new errors or newly unreachable targets."""
        return any(self.changes[c] for c in ("new_failures", "regressed", "newly_unreachable", "new_errors"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": "itops.diff/1",
            "run_a": self.run_a.id,
            "run_b": self.run_b.id,
            "score_a": self.score_a,
            "score_b": self.score_b,
            "counts_a": self.counts_a,
            "counts_b": self.counts_b,
            "summary": {c: len(v) for c, v in self.changes.items()},
            **{c: [ch.to_dict() for ch in v] for c, v in self.changes.items()},
        }


def _waiver_note(before: Result, after: Result) -> str | None:
    b, a = before.status, after.status
    if b is Status.FAIL and a is Status.WAIVED:
        return "newly waived"
    if b is Status.WAIVED and a is Status.FAIL:
        return "waiver no longer applies (expired or removed)"
    if b is Status.WAIVED and a is Status.WAIVED and before.waiver != after.waiver:
        return "waiver changed"
    return None


def _category(before: Result | None, after: Result) -> tuple[str, str] | None:
    b, a = (before.status if before else None), after.status
    if a is Status.FAIL:
        if b is Status.PASS:
            return "regressed", ""
        if b is Status.FAIL:
            return "still_failing", ""
        if b is None or b in _NOT_ASSESSED:
            return "new_failures", "" if b is None else f"was {b.value}"
    if a is Status.PASS and b in (Status.FAIL, Status.WAIVED):
        return "fixed", ""
    if a is Status.UNREACHABLE and b is not Status.UNREACHABLE:
        return "newly_unreachable", ""
    if a is Status.ERROR and b is not Status.ERROR:
        return "new_errors", ""
    if before is not None and (note := _waiver_note(before, after)):
        return "waiver_changes", note
    return None


def diff_results(run_a: Run, a: Sequence[Result], run_b: Run, b: Sequence[Result]) -> RunDiff:
    before = {r.key: r for r in a}
    after = {r.key: r for r in b}
    # Results of A with no exact match in B, per (check, target): what a new resource in B is compared with.
    leftover: dict[tuple[str, str], list[Result]] = defaultdict(list)
    for key, r in before.items():
        if key not in after:
            leftover[key[:2]].append(r)
    paired: set[tuple[str, str, str]] = set()
    out = RunDiff(run_a, run_b, count_statuses(list(a)), count_statuses(list(b)))
    for key, r in after.items():
        prev = before.get(key)
        if prev is None and (same := leftover.get(key[:2])):
            worst = worst_status([x.status for x in same])
            prev = next(x for x in same if x.status is worst)
            paired.update(x.key for x in same)
        found = _category(prev, r)
        if found:
            out.changes[found[0]].append(Change(prev, r, found[1]))
    out.changes["removed"] = [Change(r, None) for key, r in before.items() if key not in after and key not in paired]
    for changes in out.changes.values():
        changes.sort(key=lambda c: (-c.current.severity.rank, c.current.target, c.current.check_id))
    return out


def diff_runs(store: Store, run_a: str, run_b: str) -> RunDiff:
    """Diff two stored runs (ids, unique prefixes or ``latest``); evidence redacted."""
    ra, rb = store.get_run(run_a), store.get_run(run_b)
    a = [redact_result(r) for r in store.results(ra.id)]
    b = [redact_result(r) for r in store.results(rb.id)]
    return diff_results(ra, a, rb, b)


def _score(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}%"


def _delta(d: RunDiff) -> str:
    if d.score_a is None or d.score_b is None:
        return ""
    return f" ({d.score_b - d.score_a:+.1f})"


def _line(c: Change) -> str:
    r = c.current
    res = f" ({r.resource})" if r.resource else ""
    moved = f"{c.before.status.value if c.before else '-'} -> {c.after.status.value if c.after else '-'}"
    note = f" [{c.note}]" if c.note else ""
    return printable_line(f"[{r.severity.value}] {r.target}  {r.check_id}{res}  {moved}{note}: {r.message}")


def render_diff_table(d: RunDiff) -> str:
    lines = [
        f"Diff {d.run_a.id} (A) -> {d.run_b.id} (B)",
        f"score {_score(d.score_a)} -> {_score(d.score_b)}{_delta(d)}",
        "  " + ", ".join(f"{len(v)} {c.replace('_', ' ')}" for c, v in d.changes.items()),
    ]
    for category, changes in d.changes.items():
        if not changes or category == "removed":
            continue
        lines += ["", f"{_TITLES[category].upper()} ({len(changes)})"]
        lines += [f"  {_line(c)}" for c in changes]
    return "\n".join(lines)


def _md(text: str) -> str:
    from itops.report.templating import md_inline

    return str(md_inline(text))


def render_diff_markdown(d: RunDiff) -> str:
    lines = [
        f"# itops diff {_md(d.run_a.id)} → {_md(d.run_b.id)}",
        "",
        f"Compliance score {_md(_score(d.score_a))} → {_md(_score(d.score_b))}{_md(_delta(d))}",
        "",
        "| Change | Results |",
        "|---|---:|",
        *(f"| {_TITLES[c]} | {len(v)} |" for c, v in d.changes.items()),
    ]
    for category, changes in d.changes.items():
        if not changes or category == "removed":
            continue
        lines += ["", f"## {_TITLES[category]} ({len(changes)})", ""]
        lines += ["| Severity | Target | Check | Was | Now | Message |", "|---|---|---|---|---|---|"]
        for c in changes:
            r = c.current
            target = r.target + (f" ({r.resource})" if r.resource else "")
            was = c.before.status.value if c.before else "-"
            now = c.after.status.value if c.after else "-"
            message = r.message + (f" [{c.note}]" if c.note else "")
            lines.append(f"| {r.severity.value} | {_md(target)} | {_md(r.check_id)} | {was} | {now} | {_md(message)} |")
    return "\n".join(lines) + "\n"


def render_diff_json(d: RunDiff) -> str:
    return json.dumps(d.to_dict(), indent=2, ensure_ascii=False)
