"""Counters of a run's results, kept while they stream past instead of the results themselves.

Everything the end of a run needs (counts for the store and the summary, check ids for the
manifest, the exit status, the targets seen for "never audited") is folded in per result, so
memory grows with the number of targets and checks, never with the results or their evidence.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from itops.exitcodes import ExitStatus
from itops.model import Result, Run, Severity, Status


@dataclass
class RunTally:
    """Running counts of one run's results (see the module docstring)."""

    total: int = 0
    #: severity -> status -> count, every severity and status present
    by_severity: dict[str, dict[str, int]] = field(
        default_factory=lambda: {s.value: dict.fromkeys((x.value for x in Status), 0) for s in Severity}
    )
    targets: set[str] = field(default_factory=set)
    check_ids: set[str] = field(default_factory=set)
    #: framework catalogue keys the results reference, in the order first seen (a dict as an ordered set)
    frameworks: dict[str, None] = field(default_factory=dict)

    def add(self, result: Result) -> None:
        self.total += 1
        # _value_, not .value (a Python-level property): this runs once per result of the run
        self.by_severity[result.severity._value_][result.status._value_] += 1
        self.targets.add(result.target)
        self.check_ids.add(result.check_id)
        if result.frameworks:
            self.frameworks.update(dict.fromkeys(result.frameworks))  # first-seen order kept

    def add_all(self, results: Iterable[Result]) -> RunTally:
        for r in results:
            self.add(r)
        return self

    @classmethod
    def of(cls, results: Iterable[Result]) -> RunTally:
        return cls().add_all(results)

    @property
    def counts(self) -> dict[str, int]:
        """Counts per status, every status present (as :func:`itops.model.count_statuses`)."""
        out = dict.fromkeys((s.value for s in Status), 0)
        for per_status in self.by_severity.values():
            for status, n in per_status.items():
                out[status] += n
        return out

    def exit_status(self, fail_on: Severity) -> ExitStatus:
        """FAILURES for a FAIL at or above ``fail_on``, else INCOMPLETE for any ERROR/UNREACHABLE, else OK."""
        return exit_status_from(self.by_severity, fail_on)

    def not_audited(self, run: Run) -> dict[str, int]:
        """Planned targets with no result at all (as :meth:`itops.model.Run.not_audited`)."""
        return {t: n for t, n in sorted(run.planned.items()) if t not in self.targets}


def exit_status_from(by_severity: Mapping[str, Mapping[str, int]], fail_on: Severity) -> ExitStatus:
    """The exit status of a run from its severity -> status -> count table."""
    for severity, per_status in by_severity.items():
        if per_status.get(Status.FAIL.value) and Severity(severity).at_least(fail_on):
            return ExitStatus.FAILURES
    if any(per.get(Status.ERROR.value) or per.get(Status.UNREACHABLE.value) for per in by_severity.values()):
        return ExitStatus.INCOMPLETE
    return ExitStatus.OK
