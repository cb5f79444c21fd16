"""Views of a run for human reports: summary, per framework, per target and per check.

Plain data (dataclasses of strings, numbers and result indexes) computed once in Python,
so the HTML and Markdown templates only loop and print: that keeps a 10,000-result
report fast to render.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from itops.frameworks import CATALOGUES
from itops.frameworks import name as framework_name
from itops.model import Result, Severity, Status, count_statuses
from itops.report.controls import control_title
from itops.report.data import ReportData, compliance_score, coverage

#: Display names of the framework keys checks use (title and version, from itops.frameworks), in report order.
FRAMEWORK_NAMES: Mapping[str, str] = {key: cat.name for key, cat in CATALOGUES.items()}
STATUS_ORDER = (Status.FAIL, Status.ERROR, Status.UNREACHABLE, Status.WAIVED, Status.PASS, Status.SKIPPED)
SEVERITY_ORDER = (Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW, Severity.INFO)
#: Statuses that need a reader's attention, worst first.
_WORST = {s: i for i, s in enumerate(STATUS_ORDER)}
NOT_PASSING = frozenset({Status.FAIL, Status.ERROR, Status.UNREACHABLE, Status.WAIVED})


def natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """Sort ``A.8.9`` before ``A.8.20`` and ``AC-6`` before ``AC-6(2)``."""
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in re.split(r"(\d+)", text) if p)


def worst_status(statuses: Sequence[Status]) -> Status:
    return min(statuses, key=lambda s: _WORST[s]) if statuses else Status.SKIPPED


@dataclass(frozen=True)
class Summary:
    total: int
    counts: dict[str, int]
    score: float | None
    coverage: float | None
    by_severity: dict[str, dict[str, int]]  # severity -> status -> count
    top_failing: list[tuple[str, str, str, int]]  # check id, title, severity, failing targets
    unreachable: list[tuple[str, str]]  # target, reason
    targets: int
    checks: int
    not_audited: list[tuple[str, int]] = field(default_factory=list)  # planned target never reached, its checks


@dataclass(frozen=True)
class FindingGroup:
    """One finding as a reader sees it: the same check, resource and message on one or more targets."""

    check_id: str
    title: str
    severity: str
    status: Status
    resource: str
    message: str
    remediation: str
    results: list[int]  # indexes into the run's results, one per target
    targets: list[str]


def shared_reason(results: Sequence[Result]) -> tuple[Status, str] | None:
    """(status, message) when every result of one target is UNREACHABLE, or every one is ERROR,
    for the same reason (connection refused, sudo refused): the target was not assessed at all."""
    if len(results) < 2:
        return None
    first = results[0]
    if first.status not in (Status.UNREACHABLE, Status.ERROR):
        return None
    if all(r.status is first.status and r.message == first.message for r in results):
        return first.status, first.message
    return None


def not_assessed_targets(results: Sequence[Result]) -> dict[str, tuple[Status, str, int]]:
    """Targets none of whose checks was assessed, for one shared reason: status, reason, checks."""
    per_target: dict[str, list[Result]] = defaultdict(list)
    for r in results:
        per_target[r.target].append(r)
    out = {}
    for target in sorted(per_target, key=natural_key):
        reason = shared_reason(per_target[target])
        if reason is not None:
            out[target] = (reason[0], reason[1], len(per_target[target]))
    return out


def group_findings(
    results: Sequence[Result], statuses: frozenset[Status], severities: frozenset[Severity] | None = None
) -> list[FindingGroup]:
    """Results of ``statuses`` (and ``severities``) merged across targets when check, resource,
    message and fix (written with each host's parameters) are identical; most severe first, then
    the widest spread."""
    groups: dict[tuple[str, str, str, Status, str], list[int]] = defaultdict(list)
    for i, r in enumerate(results):
        if r.status in statuses and (severities is None or r.severity in severities):
            groups[(r.check_id, r.resource, r.message, r.status, r.remediation)].append(i)
    out = []
    for (check_id, resource, message, status, _fix), idx in groups.items():
        first = results[idx[0]]
        idx.sort(key=lambda i: natural_key(results[i].target))
        out.append(
            FindingGroup(
                check_id,
                first.title,
                first.severity.value,
                status,
                resource,
                message,
                first.remediation,
                idx,
                [results[i].target for i in idx],
            )
        )
    out.sort(key=lambda g: (-Severity(g.severity).rank, _WORST[g.status], g.check_id, -len(g.results), g.resource))
    return out


@dataclass
class ControlCheck:
    check_id: str
    title: str
    results: list[int] = field(default_factory=list)  # indexes into the run's results
    attention: list[int] = field(default_factory=list)  # the ones not passing (FAIL, ERROR, ...)
    passed: int = 0
    skipped: int = 0


@dataclass
class Control:
    control: str
    checks: list[ControlCheck]
    counts: dict[str, int]
    score: float | None
    status: Status
    #: the framework's title of the control (NIST, ISO), else the titles of the checks mapped to it (CIS)
    title: str = ""


@dataclass(frozen=True)
class FrameworkView:
    key: str
    name: str
    controls: list[Control]
    counts: dict[str, int]
    score: float | None


@dataclass(frozen=True)
class GroupView:
    """One target or one check: its results (indexes), counts and worst status."""

    key: str
    title: str
    severity: str
    results: list[int]
    counts: dict[str, int]
    status: Status
    remediation: str = ""
    frameworks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    attention: list[int] = field(default_factory=list)  # results not passing, worst first
    passing: list[int] = field(default_factory=list)  # PASS and SKIPPED


def summarize(results: Sequence[Result], top: int = 10, not_audited: Mapping[str, int] | None = None) -> Summary:
    counts = count_statuses(list(results))
    by_sev: dict[str, dict[str, int]] = {s.value: dict.fromkeys((x.value for x in Status), 0) for s in SEVERITY_ORDER}
    failing: dict[str, set[str]] = defaultdict(set)
    meta: dict[str, tuple[str, str]] = {}
    unreachable: dict[str, str] = {}
    for r in results:
        by_sev[r.severity.value][r.status.value] += 1
        if r.status is Status.FAIL:
            failing[r.check_id].add(r.target)
            meta[r.check_id] = (r.title, r.severity.value)
        elif r.status is Status.UNREACHABLE:
            unreachable.setdefault(r.target, r.message)
    # severity before spread: one critical finding on one host outranks a medium one everywhere
    ranked = sorted(failing, key=lambda c: (-Severity(meta[c][1]).rank, -len(failing[c]), c))[:top]
    return Summary(
        total=len(results),
        counts=counts,
        score=compliance_score(counts),
        coverage=coverage(counts, not_audited),
        by_severity=by_sev,
        top_failing=[(c, meta[c][0], meta[c][1], len(failing[c])) for c in ranked],
        unreachable=sorted(unreachable.items()),
        targets=len({r.target for r in results}),
        checks=len({r.check_id for r in results}),
        not_audited=sorted((not_audited or {}).items(), key=lambda item: natural_key(item[0])),
    )


def frameworks(results: Sequence[Result]) -> list[FrameworkView]:
    """Framework -> control -> checks -> result indexes, with a score per control."""
    tree: dict[str, dict[str, dict[str, ControlCheck]]] = defaultdict(lambda: defaultdict(dict))
    for i, r in enumerate(results):
        for fw, refs in r.frameworks.items():
            for control in refs:
                by_id = tree[fw][control]
                cc = by_id.get(r.check_id)
                if cc is None:
                    cc = by_id[r.check_id] = ControlCheck(r.check_id, r.title)
                cc.results.append(i)
                if r.status in NOT_PASSING:
                    cc.attention.append(i)
                elif r.status is Status.PASS:
                    cc.passed += 1
                else:
                    cc.skipped += 1
    known = [k for k in FRAMEWORK_NAMES if k in tree]
    views = []
    for fw in known + sorted(set(tree) - set(FRAMEWORK_NAMES)):
        controls = []
        fw_counts = dict.fromkeys((s.value for s in Status), 0)
        for name in sorted(tree[fw], key=natural_key):
            checks = sorted(tree[fw][name].values(), key=lambda c: c.check_id)
            statuses = [results[i].status for c in checks for i in c.results]
            counts = dict.fromkeys((s.value for s in Status), 0)
            for s in statuses:
                counts[s.value] += 1
                fw_counts[s.value] += 1
            title = control_title(fw, name) or "; ".join(dict.fromkeys(c.title for c in checks))
            controls.append(Control(name, checks, counts, compliance_score(counts), worst_status(statuses), title))
        views.append(FrameworkView(fw, framework_name(fw), controls, fw_counts, compliance_score(fw_counts)))
    return views


def _fix_text(results: Sequence[Result], idx: Sequence[int]) -> str:
    """A check's fix for its group view. Remediation is written with each host's parameters, so
    when targets differ (``MaxAuthTries 3`` here, ``4`` there) each text is shown with its targets."""
    by_fix: dict[str, list[str]] = {}
    for i in idx:
        r = results[i]
        if r.remediation and r.status in NOT_PASSING:
            by_fix.setdefault(r.remediation, []).append(r.target)
    if not by_fix:
        return next((results[i].remediation for i in idx if results[i].remediation), "")
    if len(by_fix) == 1:
        return next(iter(by_fix))
    return " — ".join(f"on {', '.join(dict.fromkeys(targets))}: {fix}" for fix, targets in by_fix.items())


def _group(results: Sequence[Result], by_check: bool) -> list[GroupView]:
    members: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(results):
        members[r.check_id if by_check else r.target].append(i)
    views = []
    for key, idx in members.items():
        statuses = [results[i].status for i in idx]
        counts = dict.fromkeys((s.value for s in Status), 0)
        for s in statuses:
            counts[s.value] += 1
        first = results[idx[0]]
        # Within a group, the results a reader must act on come first.
        idx.sort(
            key=lambda i: (
                _WORST[results[i].status],
                -results[i].severity.rank,
                results[i].check_id,
                results[i].target,
                results[i].resource,
            )
        )
        views.append(
            GroupView(
                key=key,
                title=first.title if by_check else "",
                severity=first.severity.value if by_check else "",
                results=idx,
                counts=counts,
                status=worst_status(statuses),
                remediation=_fix_text(results, idx) if by_check else "",
                frameworks=first.frameworks if by_check else {},
                attention=[i for i in idx if results[i].status in NOT_PASSING],
                passing=[i for i in idx if results[i].status not in NOT_PASSING],
            )
        )
    sev_rank = {s.value: s.rank for s in Severity}
    views.sort(key=lambda v: (_WORST[v.status], -sev_rank.get(v.severity, 0), natural_key(v.key)))
    return views


def by_check(results: Sequence[Result]) -> list[GroupView]:
    """One view per check, worst first (FAIL, then by severity)."""
    return _group(results, by_check=True)


def by_target(results: Sequence[Result]) -> list[GroupView]:
    """One view per target, worst first."""
    return _group(results, by_check=False)


def waived(results: Sequence[Result]) -> list[int]:
    return [i for i, r in enumerate(results) if r.status is Status.WAIVED]


@dataclass(frozen=True)
class Views:
    summary: Summary
    frameworks: list[FrameworkView]
    checks: list[GroupView]
    targets: list[GroupView]
    waived: list[int]
    #: critical and high FAILs merged across targets: what to fix first
    priority: list[FindingGroup] = field(default_factory=list)


PRIORITY_SEVERITIES = frozenset({Severity.CRITICAL, Severity.HIGH})


def build_views(data: ReportData) -> Views:
    results = data.results
    return Views(
        summarize(results, not_audited=data.not_audited),
        frameworks(results),
        by_check(results),
        by_target(results),
        waived(results),
        group_findings(results, frozenset({Status.FAIL}), PRIORITY_SEVERITIES),
    )
