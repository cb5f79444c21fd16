"""What every report renders: a stored run, its results (redacted again), and its history.

Reports are rendered from the store, never from a live run, so any past run re-renders
the same way. Evidence is redacted when the runner stores it; :func:`load_report_data`
redacts once more (defence in depth: a result written by an older itops, a plugin, or a
merged store may not have been).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from itops.errors import ItopsError
from itops.model import Result, Run, Status, count_statuses
from itops.redact import redact_result
from itops.store import Store

#: Runs shown in a report's trend chart by default (this run and the ones before it).
TREND_RUNS = 20

# C0 controls (but tab, newline, carriage return), DEL, C1 controls, and lone surrogates:
# XML 1.0 cannot carry most of them even escaped, and in a terminal or a spreadsheet they
# can rewrite what the reader sees. Text formats show them as visible \xNN escapes.
CONTROL_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def printable(text: str) -> str:
    """``text`` with control characters replaced by visible ``\\xNN`` escapes."""
    if not text:
        return text
    return CONTROL_CHARS.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 256 else "\ufffd", text)


_LINE_LAYOUT = {9: "\\x09", 10: "\\x0a", 13: "\\x0d"}


def printable_line(text: str) -> str:
    """:func:`printable`, and tab, newline and carriage return too: host text on ONE terminal or table line,
    where a CR could overwrite what came before it and a newline fake a line of its own."""
    return printable(text).translate(_LINE_LAYOUT) if text else text


def compliance_score(counts: Mapping[str, int]) -> float | None:
    """PASS / (PASS + FAIL + WAIVED) as a percentage; None when nothing was evaluated.

    Waived failures count against the score: a waiver accepts a risk, it does not make
    the control pass. ERROR, UNREACHABLE and SKIPPED are not evaluations (see coverage).
    """
    passed = counts.get(Status.PASS.value, 0)
    evaluated = passed + counts.get(Status.FAIL.value, 0) + counts.get(Status.WAIVED.value, 0)
    return round(100.0 * passed / evaluated, 1) if evaluated else None


def coverage(counts: Mapping[str, int]) -> float | None:
    """Share of applicable checks that could be evaluated (not ERROR/UNREACHABLE), in percent."""
    evaluated = sum(counts.get(s.value, 0) for s in (Status.PASS, Status.FAIL, Status.WAIVED))
    missing = counts.get(Status.ERROR.value, 0) + counts.get(Status.UNREACHABLE.value, 0)
    total = evaluated + missing
    return round(100.0 * evaluated / total, 1) if total else None


@dataclass(frozen=True)
class TrendPoint:
    """One run in the trend chart."""

    run_id: str
    started: float
    counts: Mapping[str, int]
    score: float | None


@dataclass(frozen=True)
class Integrity:
    """Whether the stored run verified (hash chain and signature) when the report was made."""

    verified: bool
    manifest_digest: str = ""
    detail: str = ""

    def to_dict(self) -> dict[str, object]:
        return {"verified": self.verified, "manifest_digest": self.manifest_digest, "detail": self.detail}


def check_integrity(store: Store, run_id: str) -> Integrity:
    """Verify ``run_id`` against the store's public key; never raises (a report still renders)."""
    try:
        outcome = store.verify(run_id)
    except ItopsError as exc:
        return Integrity(False, detail=f"not verifiable: {exc}")
    if not outcome.ok:
        return Integrity(False, outcome.manifest_digest, outcome.problems[0])
    if not outcome.sealed:
        return Integrity(True, "", f"not sealed; verified up to line {outcome.signed_lines}")
    return Integrity(True, outcome.manifest_digest, f"{outcome.lines} lines signed")


@dataclass(frozen=True)
class ReportData:
    """A stored run ready to render: header, redacted results, and the runs before it."""

    run: Run
    results: Sequence[Result]
    history: Sequence[TrendPoint] = ()
    generated: float = field(default_factory=time.time)
    integrity: Integrity | None = None

    @property
    def counts(self) -> dict[str, int]:
        return count_statuses(list(self.results))

    @property
    def score(self) -> float | None:
        return compliance_score(self.counts)


def trend_points(runs: Iterable[Run], current: Run, current_counts: Mapping[str, int], limit: int) -> list[TrendPoint]:
    """The last ``limit`` finished runs of the same kind up to ``current``, oldest first."""
    points = [
        TrendPoint(r.id, r.started, dict(r.counts), compliance_score(r.counts))
        for r in runs
        if r.id != current.id and r.kind == current.kind and r.started <= current.started and r.counts
    ]
    points.sort(key=lambda p: (p.started, p.run_id))
    points.append(TrendPoint(current.id, current.started, dict(current_counts), compliance_score(current_counts)))
    return points[-limit:] if limit > 0 else points[-1:]


def load_report_data(store: Store, run_id: str, trend: int = TREND_RUNS) -> ReportData:
    """Read a run (``latest`` or an id prefix works) and its history from ``store``."""
    run = store.get_run(run_id)
    memo: dict[str, str] = {}
    results = [redact_result(r, memo) for r in store.results(run.id)]
    counts = count_statuses(results)
    # Enough history rows to find `trend` runs of this kind that started before this one.
    history = store.list_runs(limit=max(trend * 4, 200), kind=run.kind)
    return ReportData(
        run=run,
        results=results,
        history=trend_points(history, run, counts, trend),
        integrity=check_integrity(store, run.id),
    )
