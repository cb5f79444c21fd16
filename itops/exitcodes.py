"""Process exit statuses (documented in the README)."""

from __future__ import annotations

import enum


class ExitStatus(enum.IntEnum):
    OK = 0  # everything evaluated; nothing failed at or above --fail-on
    FAILURES = 1  # at least one FAIL at or above --fail-on (valid waivers excepted)
    USAGE = 2  # bad command line
    INCOMPLETE = 3  # no such FAIL, but some target UNREACHABLE or some check ERROR, or the run was interrupted
    CONFIG = 4  # inventory / configuration invalid: nothing was run
    INTERNAL = 70  # a bug in itops (traceback with --debug)
    BROKEN_PIPE = 141  # stdout closed by the reader (`| head`): 128 + SIGPIPE, as a shell reports it
