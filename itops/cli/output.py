"""Human and JSON renderings of a run for the terminal (reports proper live in itops.report)."""

from __future__ import annotations

import os
import sys
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import click

from itops.model import Result, Run, Status, count_statuses
from itops.report.data import printable_line
from itops.report.jsondoc import run_to_json as run_document_json
from itops.report.views import group_findings, shared_reason

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


def run_to_json(run: Run, results: Sequence[Result], integrity: Mapping[str, Any] | None = None) -> str:
    """The machine-readable form of a run (``--format json``): pure JSON, no colour codes.

    The same ``itops.run/1`` document as ``itops report --format json`` (schema:
    itops/report/schema/run-1.json); ``integrity`` is what ``runs verify`` found, when checked.
    """
    return run_document_json(run, results, integrity)


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


def render_summary(run: Run, results: Sequence[Result], colour: bool = False, show_pass: bool = False) -> str:
    """A readable table: one row per target (a target not assessed at all is one line saying
    why), then each failure once with the targets it was found on and its fix once."""
    lines: list[str] = []
    per_target: dict[str, list[Result]] = defaultdict(list)
    for r in results:
        per_target[r.target].append(r)
    elapsed = (run.finished or time.time()) - run.started
    lines.append(
        f"Run {run.id}  {run.kind}  {run.inventory or ''}  {len(per_target)} target(s), {len(results)} result(s), "
        f"{elapsed:.1f}s  [{run.state}]"
    )
    missing = run.not_audited(results)
    if missing:
        lines.append(
            f"INCOMPLETE: {len(missing)} of {len(run.planned)} planned target(s) never audited "
            f"({sum(missing.values())} checks not assessed): {_listing(list(missing))}"
        )
    lines.append("")
    width = max([len("TARGET"), *(len(t) for t in per_target)]) + 2
    header = "TARGET".ljust(width) + "".join(s.value.rjust(12) for s in COLUMNS)
    lines.append(header)
    collapsed: set[str] = set()
    for target, own in per_target.items():
        reason = shared_reason(own)
        if reason is not None:
            collapsed.add(target)
            tag = _style(reason[0].value, reason[0], colour)
            lines.append(f"{target.ljust(width)}{tag} ({len(own)} checks not assessed): {shown(reason[1])}")
            continue
        counts = dict.fromkeys(Status, 0)
        for r in own:
            counts[r.status] += 1
        cells = []
        for s in COLUMNS:
            cell = str(counts[s]).rjust(12)
            cells.append(_style(cell, s, colour) if counts[s] and s is not Status.PASS else cell)
        lines.append(target.ljust(width) + "".join(cells))

    def section(title: str, wanted: set[Status], with_fix: bool) -> None:
        chosen = [r for r in results if r.status in wanted and r.target not in collapsed]
        if not chosen:
            return
        groups = group_findings(chosen, frozenset(wanted))
        lines.append("")
        lines.append(f"{title} ({len(chosen)} result(s) as {len(groups)} finding(s))")
        fixed: set[tuple[str, str]] = set()
        for g in groups:
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
    totals = count_statuses(list(results))
    lines.append("")
    lines.append(
        "Totals: "
        + ", ".join(_style(f"{totals[s.value]} {s.value}", s, colour and totals[s.value] > 0) for s in COLUMNS)
    )
    return "\n".join(lines)


def render_run_list(runs: Sequence[Run]) -> str:
    lines = [f"{'RUN ID':<26} {'KIND':<7} {'STARTED':<19} {'STATE':<11} {'EXIT':>4}  COUNTS"]
    for run in runs:
        counts = " ".join(f"{k}={v}" for k, v in run.counts.items() if v)
        code = "" if run.exit_code is None else str(run.exit_code)
        lines.append(f"{run.id:<26} {run.kind:<7} {_fmt_time(run.started):<19} {run.state:<11} {code:>4}  {counts}")
    return "\n".join(lines)
