"""Process exit statuses (documented in the README) and the one rule that derives a run's status."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from itops.model import Result, Severity


class ExitStatus(enum.IntEnum):
    OK = 0  # everything evaluated; nothing failed at or above --fail-on
    FAILURES = 1  # at least one FAIL at or above --fail-on (valid waivers excepted)
    USAGE = 2  # bad command line
    INCOMPLETE = 3  # no such FAIL, but some target UNREACHABLE or some check ERROR, or the run was interrupted
    CONFIG = 4  # inventory / configuration invalid: nothing was run
    INTERNAL = 70  # a bug in itops (traceback with --debug)
    BROKEN_PIPE = 141  # stdout closed by the reader (`| head`): 128 + SIGPIPE, as a shell reports it


def exit_code_for(results: Iterable[Result], fail_on: Severity) -> ExitStatus:
    """FAILURES for a FAIL at or above ``fail_on``; else INCOMPLETE when something was not assessed
    (ERROR / UNREACHABLE); else OK. A streaming run uses :meth:`itops.tally.RunTally.exit_status`,
    which applies the same rule to its counters."""
    from itops.model import Status

    incomplete = False
    for r in results:
        if r.status is Status.FAIL and r.severity.at_least(fail_on):
            return ExitStatus.FAILURES
        if r.status in (Status.ERROR, Status.UNREACHABLE):
            incomplete = True
    return ExitStatus.INCOMPLETE if incomplete else ExitStatus.OK
