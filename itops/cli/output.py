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


def render_summary(run: Run, results: Sequence[Result], colour: bool = False, show_pass: bool = False) -> str:
    """A readable table: per target counts per status, then each failure with its fix."""
    lines: list[str] = []
    targets: dict[str, dict[Status, int]] = defaultdict(lambda: dict.fromkeys(Status, 0))
    for r in results:
        targets[r.target][r.status] += 1
    elapsed = (run.finished or time.time()) - run.started
    lines.append(
        f"Run {run.id}  {run.kind}  {run.inventory or ''}  {len(targets)} target(s), {len(results)} result(s), "
        f"{elapsed:.1f}s  [{run.state}]"
    )
    lines.append("")
    width = max([len("TARGET"), *(len(t) for t in targets)]) + 2
    header = "TARGET".ljust(width) + "".join(s.value.rjust(12) for s in COLUMNS)
    lines.append(header)
    for target, counts in targets.items():
        cells = []
        for s in COLUMNS:
            cell = str(counts[s]).rjust(12)
            cells.append(_style(cell, s, colour) if counts[s] and s is not Status.PASS else cell)
        lines.append(target.ljust(width) + "".join(cells))

    def section(title: str, wanted: set[Status], with_fix: bool) -> None:
        chosen = [r for r in results if r.status in wanted]
        if not chosen:
            return
        lines.append("")
        lines.append(title)
        for r in sorted(chosen, key=lambda r: (-r.severity.rank, r.target, r.check_id)):
            res = f" ({shown(r.resource)})" if r.resource else ""
            tag = _style(r.status.value, r.status, colour)
            lines.append(f"  {tag} {shown(r.target)}  {r.check_id}{res} [{r.severity.value}]: {shown(r.message)}")
            if with_fix and r.remediation:
                lines.append(f"      fix: {r.remediation.strip().splitlines()[0]}")

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
