"""Large-run mode of the HTML report: summary first, computed by streaming the stored results.

Above :data:`LARGE_RUN_RESULTS` results (a 10,000-host audit with the whole pack has over a
million), a page with one row per result would be gigabytes to build and to open. The large-run
page keeps the layout of the normal one (headline, "Fix first", summary, checks, frameworks,
trend, targets, waivers) but:

- each check is a summary: counts per status, its fix, the worst targets (not passing, worst
  status first) with their findings and one sample of evidence, and a collapsed list of every
  target it did not pass on, up to :data:`HOST_LIST_LIMIT` names;
- each framework control lists its checks with counts and worst targets instead of one chip per
  result; the targets section shows the :data:`WORST_TARGETS` worst targets with their counts;
- the page says where the per-result detail is (``itops report RUN --format csv`` / ``json``,
  and the run's ``results.jsonl`` in the store).

Memory stays bounded by the number of checks, controls and targets (counters, capped host
lists and samples), not by the number of results: the results are read one line at a time
from ``results.jsonl`` and only the samples shown are kept (redacted once more, as
:func:`itops.report.data.load_report_data` does for every result).
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from itops import __version__
from itops.model import Result, Run, Severity, Status
from itops.redact import redact, redact_result
from itops.report import charts
from itops.report.controls import control_title
from itops.report.data import TREND_RUNS, check_integrity, compliance_score, coverage, trend_points
from itops.report.views import (
    _WORST,
    FRAMEWORK_NAMES,
    NOT_PASSING,
    PRIORITY_SEVERITIES,
    SEVERITY_ORDER,
    STATUS_ORDER,
    Control,
    ControlCheck,
    FindingGroup,
    FrameworkView,
    GroupView,
    Summary,
    natural_key,
    worst_status,
)
from itops.store import Store

#: Above this many results the HTML report is rendered in large-run mode.
LARGE_RUN_RESULTS = 10_000
#: Worst targets shown (with finding and evidence) per check, and per control check as chips.
WORST_PER_CHECK = 10
#: Names in a check's collapsed list of targets it did not pass on; the rest are counted.
HOST_LIST_LIMIT = 500
#: Targets listed in the targets section, worst first.
WORST_TARGETS = 200
#: Waived results listed; merged finding groups tracked for "Fix first".
WAIVED_LIMIT = 500
GROUP_LIMIT = 5_000
_TARGETS_PER_GROUP = 30
_STATUSES = frozenset(s.value for s in Status)
_NOT_PASSING = frozenset(s.value for s in NOT_PASSING)
_NOT_ASSESSED = frozenset({Status.UNREACHABLE.value, Status.ERROR.value})
_PRIORITY = frozenset(s.value for s in PRIORITY_SEVERITIES)
_RANK = {s.value: s.rank for s in Severity}


def result_count(store: Store, run: Run) -> int:
    """How many results ``run`` has: its stored counts, else the lines of its results.jsonl."""
    if run.counts:
        return sum(run.counts.values())
    path = store.run_dir(run.id) / "results.jsonl"
    if not path.exists():
        return len(store.results(run.id))
    with path.open("rb") as fh:
        return sum(1 for line in fh if line.strip())


def is_large(store: Store, run_id: str) -> bool:
    return result_count(store, store.get_run(run_id)) > LARGE_RUN_RESULTS


def iter_results(store: Store, run_id: str) -> Iterator[Result]:
    """The run's results one at a time from results.jsonl (torn or foreign lines skipped)."""
    path = store.run_dir(run_id) / "results.jsonl"
    if not path.exists():
        yield from store.results(run_id)
        return
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.endswith("\n") or not line.strip():
                continue  # a torn last line from a killed run
            try:
                yield Result.from_dict(json.loads(line))
            except (ValueError, KeyError, TypeError):
                continue


@dataclass
class _Check:
    title: str
    severity: str
    frameworks: Mapping[str, tuple[str, ...]]
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys((s.value for s in Status), 0))
    #: counts per framework mapping (results of one check normally share one; a plugin's may not)
    by_mapping: dict[tuple[tuple[str, tuple[str, ...]], ...], dict[str, int]] = field(default_factory=dict)
    fixes: dict[str, int] = field(default_factory=dict)  # fix text -> targets not passing with it
    worst: list[tuple[int, int]] = field(default_factory=list)  # (status rank, sample index)
    hosts: list[str] = field(default_factory=list)  # not passing, in run order, capped
    failing_targets: set[str] = field(default_factory=set)
    last_fw: Any = None  # the framework mapping (as stored) of the result counted last, and its key
    last_key: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass
class _Group:
    title: str
    severity: str
    remediation: str
    sample: int
    count: int = 0
    targets: list[str] = field(default_factory=list)


class LargeRun:
    """Everything the large-run page shows, gathered in one pass over the results."""

    def __init__(self) -> None:
        self.samples: list[Result] = []  # the only results kept (redacted), indexed by the views
        self.counts: dict[str, int] = dict.fromkeys((s.value for s in Status), 0)
        self.by_sev: dict[str, dict[str, int]] = {
            s.value: dict.fromkeys((x.value for x in Status), 0) for s in SEVERITY_ORDER
        }
        self.checks: dict[str, _Check] = {}
        self.targets: dict[str, dict[str, int]] = {}
        self.target_sev: dict[str, list[int]] = {}  # FAILs per severity rank, for ranking targets
        self.reasons: dict[str, tuple[Status, str] | None] = {}  # target -> shared not-assessed reason
        self.unreachable: dict[str, str] = {}
        self.groups: dict[tuple[str, str, str, str], _Group] = {}
        self.groups_dropped = 0
        self.waived: list[int] = []
        self.waived_total = 0
        self.total = 0

    def _keep(self, d: Mapping[str, Any], memo: dict[str, str]) -> int:
        self.samples.append(redact_result(Result.from_dict(d), memo))
        return len(self.samples) - 1

    def add(self, d: Mapping[str, Any], memo: dict[str, str]) -> None:
        """Count one stored result (its JSON object as read: a Result is built only for the samples kept)."""
        self.total += 1
        st, sev, cid, target = d["status"], d["severity"], d["check_id"], d["target"]
        self.counts[st] += 1
        if sev in self.by_sev:
            self.by_sev[sev][st] += 1
        c = self.checks.get(cid)
        if c is None:
            fw = {k: tuple(v) for k, v in d.get("frameworks", {}).items()}
            c = self.checks[cid] = _Check(d.get("title", ""), sev, fw)
        c.counts[st] += 1
        fw_raw = d.get("frameworks", {})
        if fw_raw != c.last_fw:  # results of one check nearly always share their mapping
            c.last_fw, c.last_key = fw_raw, tuple((k, tuple(v)) for k, v in fw_raw.items())
        mc = c.by_mapping.get(c.last_key)
        if mc is None:
            mc = c.by_mapping[c.last_key] = dict.fromkeys((s.value for s in Status), 0)
        mc[st] += 1
        message = d.get("message", "")
        tc = self.targets.get(target)
        if tc is None:
            tc = self.targets[target] = dict.fromkeys((s.value for s in Status), 0)
            self.target_sev[target] = [0] * 5
            self.reasons[target] = (Status(st), message) if st in _NOT_ASSESSED else None
        else:
            reason = self.reasons[target]
            if reason is not None and (reason[0].value != st or reason[1] != message):
                self.reasons[target] = None
        tc[st] += 1
        if st == "UNREACHABLE":
            self.unreachable.setdefault(target, redact(message))
        if st not in _NOT_PASSING:
            return
        resource, remediation = d.get("resource", ""), d.get("remediation", "")
        if st == "FAIL":
            c.failing_targets.add(target)
            self.target_sev[target][4 - _RANK.get(sev, 0)] += 1
        if remediation:
            c.fixes[remediation] = c.fixes.get(remediation, 0) + 1
        if len(c.hosts) < HOST_LIST_LIMIT:
            c.hosts.append(target if not resource else f"{target} · {redact(resource)}")
        rank = _WORST[Status(st)]
        if len(c.worst) < WORST_PER_CHECK or rank < c.worst[-1][0]:
            c.worst.append((rank, self._keep(d, memo)))
            c.worst.sort(key=lambda w: w[0])  # stable: run order within a status
            del c.worst[WORST_PER_CHECK:]
        if st == "WAIVED":
            self.waived_total += 1
            if len(self.waived) < WAIVED_LIMIT:
                self.waived.append(self._keep(d, memo))
        if st == "FAIL" and sev in _PRIORITY:
            key = (cid, resource, message, remediation)
            g = self.groups.get(key)
            if g is None:
                if len(self.groups) >= GROUP_LIMIT:
                    self.groups_dropped += 1
                    return
                g = self.groups[key] = _Group(d.get("title", ""), sev, remediation, self._keep(d, memo))
            g.count += 1
            if len(g.targets) < _TARGETS_PER_GROUP:
                g.targets.append(target)


def iter_raw(store: Store, run_id: str) -> Iterator[Mapping[str, Any]]:
    """The run's results as the JSON objects stored in results.jsonl (torn or foreign lines skipped)."""
    path = store.run_dir(run_id) / "results.jsonl"
    if not path.exists():
        yield from (r.to_dict() for r in store.results(run_id))
        return
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.endswith("\n") or not line.strip():
                continue  # a torn last line from a killed run
            try:
                d = json.loads(line)
            except ValueError:
                continue
            if isinstance(d, dict) and d.get("status") in _STATUSES and isinstance(d.get("target"), str):
                yield d


def gather(store: Store, run_id: str) -> LargeRun:
    agg = LargeRun()
    memo: dict[str, str] = {}
    for d in iter_raw(store, run_id):
        try:
            agg.add(d, memo)
        except (KeyError, TypeError, ValueError, AttributeError):
            continue  # not a result written by itops: skipped, as store.results() skips it
    return agg


def _views(agg: LargeRun, run: Run) -> dict[str, Any]:
    samples = agg.samples
    not_audited = {t: n for t, n in sorted(run.planned.items()) if t not in agg.targets}
    ranked = sorted(
        (c for c in agg.checks if agg.checks[c].failing_targets),
        key=lambda c: (-Severity(agg.checks[c].severity).rank, -len(agg.checks[c].failing_targets), c),
    )[:10]
    summary = Summary(
        total=agg.total,
        counts=agg.counts,
        score=compliance_score(agg.counts),
        coverage=coverage(agg.counts, not_audited),
        by_severity=agg.by_sev,
        top_failing=[
            (c, agg.checks[c].title, agg.checks[c].severity, len(agg.checks[c].failing_targets)) for c in ranked
        ],
        unreachable=sorted(agg.unreachable.items()),
        targets=len(agg.targets),
        checks=len(agg.checks),
        not_audited=sorted(not_audited.items(), key=lambda item: natural_key(item[0])),
    )
    check_views = []
    for cid, c in agg.checks.items():
        statuses = [s for s in Status if c.counts[s.value]]
        fixes = sorted(c.fixes.items(), key=lambda kv: -kv[1])
        if len(fixes) > 1:
            fix = " — ".join(f"on {n} target{'s' if n != 1 else ''}: {text}" for text, n in fixes[:5])
            fix += f" — and {len(fixes) - 5} other fixes" if len(fixes) > 5 else ""
        else:
            fix = fixes[0][0] if fixes else ""
        check_views.append(
            GroupView(
                key=cid,
                title=c.title,
                severity=c.severity,
                results=[i for _, i in c.worst],
                counts=c.counts,
                status=worst_status(statuses),
                remediation=redact(fix),
                frameworks=c.frameworks,
                attention=[i for _, i in c.worst],
            )
        )
    sev_rank = {s.value: s.rank for s in Severity}
    check_views.sort(key=lambda v: (_WORST[v.status], -sev_rank.get(v.severity, 0), natural_key(v.key)))
    hosts = {cid: c.hosts for cid, c in agg.checks.items()}
    not_passing = {cid: sum(c.counts[s.value] for s in NOT_PASSING) for cid, c in agg.checks.items()}

    # framework -> control -> check -> counts of that check's results mapped to the control
    tree: dict[str, dict[str, dict[str, dict[str, int]]]] = defaultdict(lambda: defaultdict(dict))
    for cid, c in agg.checks.items():
        for mapping, mcounts in c.by_mapping.items():
            for fw, refs in mapping:
                for control in refs:
                    cc_counts = tree[fw][control].setdefault(cid, dict.fromkeys((s.value for s in Status), 0))
                    for k, n in mcounts.items():
                        cc_counts[k] += n
    fw_views = []
    for fw in [k for k in FRAMEWORK_NAMES if k in tree] + sorted(set(tree) - set(FRAMEWORK_NAMES)):
        controls = []
        fw_counts = dict.fromkeys((s.value for s in Status), 0)
        for name in sorted(tree[fw], key=natural_key):
            counts = dict.fromkeys((s.value for s in Status), 0)
            ccs = []
            for cid in sorted(tree[fw][name]):
                c, cc_counts = agg.checks[cid], tree[fw][name][cid]
                for k, n in cc_counts.items():
                    counts[k] += n
                    fw_counts[k] += n
                worst = [i for _, i in c.worst if name in samples[i].frameworks.get(fw, ())]
                ccs.append(
                    ControlCheck(
                        cid, c.title, worst, worst, cc_counts[Status.PASS.value], cc_counts[Status.SKIPPED.value]
                    )
                )
            statuses = [s for s in Status if counts[s.value]]
            title = control_title(fw, name) or "; ".join(dict.fromkeys(cc.title for cc in ccs))
            controls.append(Control(name, ccs, counts, compliance_score(counts), worst_status(statuses), title))
        fw_views.append(
            FrameworkView(fw, FRAMEWORK_NAMES.get(fw, fw), controls, fw_counts, compliance_score(fw_counts))
        )

    def target_key(t: str) -> tuple[Any, ...]:
        tc = agg.targets[t]
        return (*(-n for n in agg.target_sev[t]), -tc["FAIL"], -tc["ERROR"], -tc["UNREACHABLE"], natural_key(t))

    worst_targets = sorted(agg.targets, key=target_key)[:WORST_TARGETS]
    target_views = [
        GroupView(
            key=t,
            title="",
            severity="",
            results=[],
            counts=agg.targets[t],
            status=worst_status([s for s in Status if agg.targets[t][s.value]]),
        )
        for t in worst_targets
    ]
    priority = [
        FindingGroup(
            cid,
            g.title,
            g.severity,
            Status.FAIL,
            redact(resource),
            redact(message),
            redact(g.remediation),
            [g.sample] * g.count,
            g.targets,
        )
        for (cid, resource, message, _fix), g in agg.groups.items()
    ]
    priority.sort(key=lambda g: (-Severity(g.severity).rank, g.check_id, -len(g.results), g.resource))
    not_assessed = {
        t: (reason[0], redact(reason[1]), sum(agg.targets[t].values()))
        for t, reason in sorted(agg.reasons.items(), key=lambda kv: natural_key(kv[0]))
        if reason is not None and sum(agg.targets[t].values()) >= 2
    }
    return {
        "summary": summary,
        "checks": check_views,
        "frameworks": fw_views,
        "targets": target_views,
        "priority": priority,
        "hosts": hosts,
        "not_passing": not_passing,
        "not_assessed": not_assessed,
        "samples": samples,
    }


@dataclass(frozen=True)
class LargeViews:
    """The ``views`` object the template reads (same attribute names as :class:`~itops.report.views.Views`)."""

    summary: Summary
    frameworks: list[FrameworkView]
    checks: list[GroupView]
    targets: list[GroupView]
    waived: list[int]
    priority: list[FindingGroup]


def large_html_context(store: Store, run_id: str, trend: int = TREND_RUNS) -> dict[str, Any]:
    """The template context of the large-run page (the keys of :func:`itops.report.html.html_context`
    plus ``large``)."""
    from itops.report.html import COLOURS, CSP, PRIORITY_LIMIT

    run = store.get_run(run_id)
    agg = gather(store, run.id)
    v = _views(agg, run)
    summary: Summary = v["summary"]
    history = store.list_runs(limit=max(trend * 4, 200), kind=run.kind)
    points = trend_points(history, run, summary.counts, trend)
    views = LargeViews(summary, v["frameworks"], v["checks"], v["targets"], agg.waived, v["priority"])
    return {
        "run": run,
        "integrity": check_integrity(store, run.id),
        "results": v["samples"],
        "views": views,
        "summary": summary,
        "history": points,
        "generated": time.time(),
        "itops_version": __version__,
        "csp": CSP,
        "statuses": [s.value for s in STATUS_ORDER],
        "not_passing": NOT_PASSING,
        "colours": COLOURS,
        "open_evidence": False,
        "priority_limit": PRIORITY_LIMIT,
        "not_assessed": v["not_assessed"],
        "priority_counts": {
            sev: summary.by_severity.get(sev, {}).get(Status.FAIL.value, 0) for sev in ("critical", "high")
        },
        "donut": charts.donut(summary.score),
        "status_bar": charts.stacked(summary.counts, 600.0),
        "severity_rows": charts.severity_rows(summary),
        "top_rows": charts.top_failing_rows(summary),
        "trend": charts.trend(points),
        "large": {
            "results": agg.total,
            "threshold": LARGE_RUN_RESULTS,
            "hosts": v["hosts"],
            "not_passing": v["not_passing"],
            "host_limit": HOST_LIST_LIMIT,
            "worst_per_check": WORST_PER_CHECK,
            "targets_total": len(agg.targets),
            "waived_total": agg.waived_total,
            "groups_dropped": agg.groups_dropped,
            "run_dir": str(store.run_dir(run.id)),
        },
    }


def render_large_html(store: Store, run_id: str, templates: Path | None = None, trend: int = TREND_RUNS) -> bytes:
    """The large-run HTML page of ``run_id`` (the same template as the normal page)."""
    from itops.report.templating import render_template

    return render_template("report.html.j2", templates, **large_html_context(store, run_id, trend)).encode("utf-8")


def large_csv_chunks(store: Store, run_id: str) -> Iterator[bytes]:
    """The CSV report of a large run, read from results.jsonl and written piece by piece (each result
    redacted once more, as :func:`itops.report.data.load_report_data` does)."""
    from itops.report.csv_report import csv_chunks

    rid = store.get_run(run_id).id
    return csv_chunks(redact_result(r) for r in iter_results(store, rid))
