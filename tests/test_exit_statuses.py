"""Exit statuses come from one place (issue #13, part 4): ExitStatus members end to end."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import itops
import itops.errors
from itops.cli.main import ItopsGroup
from itops.errors import CheckError, ConfigError, ConfigProblem, ItopsError, TransportError, UsageError
from itops.exitcodes import ExitStatus, exit_code_for
from itops.fsutil import UnsafePathError
from itops.model import Result, Severity, Status
from itops.tally import RunTally


def _result(status: Status, severity: Severity = Severity.HIGH, target: str = "h") -> Result:
    return Result(
        run_id="r", check_id="t.x", target=target, resource="", status=status, severity=severity, title="t", message="m"
    )


@pytest.mark.parametrize(
    ("statuses", "fail_on", "expected"),
    [
        ([Status.PASS], Severity.LOW, ExitStatus.OK),
        ([Status.PASS, Status.FAIL], Severity.LOW, ExitStatus.FAILURES),
        ([Status.ERROR, Status.FAIL], Severity.CRITICAL, ExitStatus.INCOMPLETE),  # FAIL below --fail-on
        ([Status.UNREACHABLE], Severity.LOW, ExitStatus.INCOMPLETE),
        ([Status.WAIVED, Status.SKIPPED], Severity.LOW, ExitStatus.OK),
    ],
)
def test_exit_code_for_and_the_streaming_counters_give_the_same_member(statuses, fail_on, expected):
    results = [_result(s) for s in statuses]
    assert exit_code_for(results, fail_on) is expected
    assert RunTally.of(results).exit_status(fail_on) is expected


def test_every_error_class_carries_an_exit_status():
    classes = [c for _, c in inspect.getmembers(itops.errors, inspect.isclass) if issubclass(c, ItopsError)]
    classes.append(UnsafePathError)
    for cls in classes:
        assert isinstance(cls.exit_status, ExitStatus), cls
    assert CheckError.exit_status is ExitStatus.INTERNAL  # a broken built-in check is a bug in itops, not 3
    assert ConfigError.exit_status is UnsafePathError.exit_status is ExitStatus.CONFIG
    assert UsageError.exit_status is ExitStatus.USAGE
    assert TransportError.exit_status is ItopsError.exit_status is ExitStatus.INCOMPLETE


def _group_raising(exc: BaseException | None, returns: ExitStatus | None = None) -> click.Group:
    @click.group(cls=ItopsGroup)
    def top() -> None:
        pass

    @top.command()
    def go() -> ExitStatus | None:
        if exc is not None:
            raise exc
        return returns

    return top


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (CheckError("checks/ssh/x.py: invalid check metadata"), ExitStatus.INTERNAL),
        (UsageError("bad option"), ExitStatus.USAGE),
        (ConfigError([ConfigProblem("inv.yaml", 3, "hosts", "bad")]), ExitStatus.CONFIG),
        (TransportError("no route"), ExitStatus.INCOMPLETE),
        (BrokenPipeError(), ExitStatus.BROKEN_PIPE),
        (RuntimeError("bug"), ExitStatus.INTERNAL),
    ],
)
def test_the_cli_entry_exits_with_the_status_the_error_carries(exc, expected):
    res = CliRunner().invoke(_group_raising(exc), ["go"])
    assert res.exit_code == expected


@pytest.mark.parametrize("status", list(ExitStatus))
def test_a_command_returns_its_exit_status_and_the_entry_exits_with_it(status):
    res = CliRunner().invoke(_group_raising(None, status), ["go"])
    assert res.exit_code == status


def test_no_bare_sys_exit_outside_main():
    """Commands return an ExitStatus; only the console-script entry (click's main) exits."""
    root = Path(itops.__file__).parent
    offenders = [
        f"{path.relative_to(root)}:{n}"
        for path in sorted(root.rglob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"\bsys\.exit\(|\bctx\.exit\(\s*\d", line)
    ]
    assert offenders == []
