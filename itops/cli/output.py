"""Human and JSON renderings of a run for the terminal (reports proper live in itops.report)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import click

from itops.model import Result, Run, Severity, Status
from itops.report.data import printable_line
from itops.report.views import STATUS_ORDER, natural_key

if TYPE_CHECKING:
    from itops.session import ResultStream

COLUMNS = (Status.PASS, Status.FAIL, Status.ERROR, Status.UNREACHABLE, Status.SKIPPED, Status.WAIVED)
_COLOURS = {
    Status.PASS: "green",
    Status.FAIL: "red",
    Status.ERROR: "yellow",
    Status.UNREACHABLE: "magenta",
    Status.SKIPPED: "blue",
    Status.WAIVED: "cyan",
}


def use_colour() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


def _style(text: str, status: Status, colour: bool) -> str:
    return click.style(text, fg=_COLOURS[status], bold=status is Status.FAIL) if colour else text


#: ``--format`` of the commands that run things: a table at the end, or JSON / JSON lines as results arrive.
RUN_FORMATS = ("table", "json", "jsonl")


def result_stream(fmt: str) -> ResultStream | None:
    """The live output of a run for ``--format`` (None for the table, rendered from the store at the end)."""
    from itops.report.jsondoc import JsonLinesStream, JsonRunStream

    def write(text: str) -> None:
        click.echo(text, nl=False)  # flushed per call: a reader sees each target's results as they come

    if fmt == "json":
        return JsonRunStream(write)
    if fmt == "jsonl":
        return JsonLinesStream(write)
    return None


def shown(text: str) -> str:
    """Host-controlled text (file names, contents) as one visible terminal line: control characters
    (ESC, BEL, CR, LF, TAB, C1 ...) become ``\\xNN`` as in the reports, so they cannot move the cursor,
    clear the screen or rewrite what the operator reads."""
    return printable_line(text)


def _fmt_time(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts)) if ts else "-"


#: Targets and hosts listed on one line before "and N more".
MAX_LISTED = 12
#: A fix longer than this is cut in the terminal; `itops checks show ID` prints it whole.
MAX_FIX = 240


def _listing(names: Sequence[str]) -> str:
    text = ", ".join(shown(name) for name in names[:MAX_LISTED])
    return text + (f" and {len(names) - MAX_LISTED} more" if len(names) > MAX_LISTED else "")


def _fix_line(check_id: str, remediation: str) -> str:
    fix = remediation.strip().splitlines()[0]
    if len(fix) > MAX_FIX:
        fix = fix[: MAX_FIX - 1].rstrip() + f"… (whole fix: itops checks show {check_id})"
    return fix


class _TargetRow:
    """One target's line of the table, folded result by result."""

    __slots__ = ("counts", "first", "same", "total")

    def __init__(self, first: Result) -> None:
        self.counts = dict.fromkeys(Status, 0)
        self.first = (first.status, first.message)
        self.same = True
        self.total = 0

    def add(self, r: Result) -> None:
        self.counts[r.status] += 1
        self.total += 1
        if self.same and (r.status, r.message) != self.first:
            self.same = False

    def shared_reason(self) -> tuple[Status, str] | None:
        """As :func:`itops.report.views.shared_reason`: every result UNREACHABLE (or ERROR) for one reason."""
        if self.total >= 2 and self.same and self.first[0] in (Status.UNREACHABLE, Status.ERROR):
            return self.first
        return None


@dataclass
class _Finding:
    """A finding group as :func:`itops.report.views.group_findings` makes it, holding target names only."""

    check_id: str
    title: str
    severity: str
    status: Status
    resource: str
    message: str
    remediation: str
    targets: list[str] = field(default_factory=list)


def render_summary(run: Run, results: Iterable[Result], colour: bool = False, show_pass: bool = False) -> str:
    """A readable table: one row per target (a target not assessed at all is one line saying
    why), then each failure once with the targets it was found on and its fix once.

    ``results`` is read once, as it comes (e.g. :meth:`itops.store.Store.iter_results`): what is
    kept is a row per target and the target names of each finding, never the results."""
    shown_statuses = {Status.FAIL, Status.ERROR, Status.UNREACHABLE} | ({Status.PASS} if show_pass else set())
    rows: dict[str, _TargetRow] = {}
    groups: dict[tuple[str, str, str, Status, str], _Finding] = {}
    total = 0
    for r in results:
        total += 1
        row = rows.get(r.target)
        if row is None:
            row = rows[r.target] = _TargetRow(r)
        row.add(r)
        if r.status in shown_statuses:
            key = (r.check_id, r.resource, r.message, r.status, r.remediation)
            group = groups.get(key)
            if group is None:
                group = groups[key] = _Finding(
                    r.check_id, r.title, r.severity.value, r.status, r.resource, r.message, r.remediation
                )
            group.targets.append(r.target)
    lines: list[str] = []
    elapsed = (run.finished or time.time()) - run.started
    lines.append(
        f"Run {run.id}  {run.kind}  {run.inventory or ''}  {len(rows)} target(s), {total} result(s), "
        f"{elapsed:.1f}s  [{run.state}]"
    )
    missing = {t: n for t, n in sorted(run.planned.items()) if t not in rows}
    if missing:
        lines.append(
            f"INCOMPLETE: {len(missing)} of {len(run.planned)} planned target(s) never audited "
            f"({sum(missing.values())} checks not assessed): {_listing(list(missing))}"
        )
    lines.append("")
    width = max([len("TARGET"), *(len(t) for t in rows)]) + 2
    header = "TARGET".ljust(width) + "".join(s.value.rjust(12) for s in COLUMNS)
    lines.append(header)
    collapsed: set[str] = set()
    totals = dict.fromkeys(Status, 0)
    for target, row in rows.items():
        for s, n in row.counts.items():
            totals[s] += n
        reason = row.shared_reason()
        if reason is not None:
            collapsed.add(target)
            tag = _style(reason[0].value, reason[0], colour)
            lines.append(f"{target.ljust(width)}{tag} ({row.total} checks not assessed): {shown(reason[1])}")
            continue
        cells = []
        for s in COLUMNS:
            cell = str(row.counts[s]).rjust(12)
            cells.append(_style(cell, s, colour) if row.counts[s] and s is not Status.PASS else cell)
        lines.append(target.ljust(width) + "".join(cells))
    for g in groups.values():
        g.targets = sorted((t for t in g.targets if t not in collapsed), key=natural_key)
    rank = {s: i for i, s in enumerate(STATUS_ORDER)}
    ordered = sorted(
        (g for g in groups.values() if g.targets),
        key=lambda g: (-Severity(g.severity).rank, rank[g.status], g.check_id, -len(g.targets), g.resource),
    )

    def section(title: str, wanted: set[Status], with_fix: bool) -> None:
        chosen = [g for g in ordered if g.status in wanted]
        if not chosen:
            return
        lines.append("")
        lines.append(f"{title} ({sum(len(g.targets) for g in chosen)} result(s) as {len(chosen)} finding(s))")
        fixed: set[tuple[str, str]] = set()
        for g in chosen:
            res = f" ({shown(g.resource)})" if g.resource else ""
            tag = _style(g.status.value, g.status, colour)
            where = shown(g.targets[0]) if len(g.targets) == 1 else f"{len(g.targets)} targets ({_listing(g.targets)})"
            lines.append(f"  {tag} [{g.severity}] {g.check_id}{res} on {where}: {shown(g.message)}")
            if with_fix and g.remediation and (g.check_id, g.remediation) not in fixed:
                fixed.add((g.check_id, g.remediation))  # the same fix once, under the first finding showing it
                lines.append(f"      fix: {_fix_line(g.check_id, g.remediation)}")

    section("FAILURES", {Status.FAIL}, with_fix=True)
    section("NOT ASSESSED (unreachable / error)", {Status.UNREACHABLE, Status.ERROR}, with_fix=False)
    if show_pass:
        section("PASSED", {Status.PASS}, with_fix=False)
    lines.append("")
    lines.append("Totals: " + ", ".join(_style(f"{totals[s]} {s.value}", s, colour and totals[s] > 0) for s in COLUMNS))
    return "\n".join(lines)


def render_run_list(runs: Sequence[Run]) -> str:
    lines = [f"{'RUN ID':<26} {'KIND':<7} {'STARTED':<19} {'STATE':<11} {'EXIT':>4}  COUNTS"]
    for run in runs:
        counts = " ".join(f"{k}={v}" for k, v in run.counts.items() if v)
        code = "" if run.exit_code is None else str(run.exit_code)
        lines.append(f"{run.id:<26} {run.kind:<7} {_fmt_time(run.started):<19} {run.state:<11} {code:>4}  {counts}")
    return "\n".join(lines)
