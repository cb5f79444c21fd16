"""Entry point: the ``itops`` group, logging setup, and the one place errors become exit codes."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import click

from itops import __version__
from itops.errors import ItopsError
from itops.exitcodes import ExitStatus

log = logging.getLogger("itops")


class ItopsGroup(click.Group):
    """The one place exit statuses are decided: a command returns its :class:`ExitStatus` (or None
    for OK), an itops error exits with the status its class carries; tracebacks only with --debug."""

    def invoke(self, ctx: click.Context) -> Any:
        debug = bool(ctx.params.get("debug")) or os.environ.get("ITOPS_DEBUG") == "1"
        try:
            status = super().invoke(ctx)
            if isinstance(status, ExitStatus) and status is not ExitStatus.OK:
                ctx.exit(status)
            return status
        except ItopsError as exc:
            if debug and exc.exit_status is ExitStatus.INTERNAL:
                raise
            _print_error(exc)
            ctx.exit(exc.exit_status)  # each error class carries its status (itops/errors.py)
        except BrokenPipeError:
            # stdout was closed early (`itops checks list | head -5`): stop quietly, as SIGPIPE would.
            _silence_stdout()
            ctx.exit(ExitStatus.BROKEN_PIPE)
        except (click.exceptions.Exit, click.ClickException, click.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            if debug:
                raise
            click.echo(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)", err=True)
            ctx.exit(ExitStatus.INTERNAL)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # no real file descriptor (e.g. under CliRunner)
        pass


def _print_error(exc: ItopsError) -> None:
    click.echo(f"error: {exc}", err=True)
    if exc.hint and exc.show_hint:
        click.echo(f"hint: {exc.hint}", err=True)


@click.group(cls=ItopsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="itops")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-vv for debug).")
def cli(debug: bool, verbose: int) -> None:
    """Infrastructure audit and disaster-recovery verification.

    Exit codes: 0 ok, 1 failures found, 2 usage error, 3 incomplete (unreachable / error),
    4 invalid inventory or configuration, 70 internal error, 141 output pipe closed (e.g. `| head`).
    """
    level = logging.DEBUG if debug or verbose > 1 else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if not debug and verbose < 2:
        logging.getLogger("paramiko").setLevel(logging.CRITICAL)


def _register() -> None:
    from itops.cli import (
        audit_cmd,
        aws_cmd,
        backup_cmd,
        checks_cmd,
        dr_cmd,
        forecast_cmd,
        inventory_cmd,
        remediate_cmd,
        report_cmd,
        runs_cmd,
        schedule_cmd,
        trends_cmd,
        waivers_cmd,
    )

    cli.add_command(inventory_cmd.inventory)
    cli.add_command(checks_cmd.checks)
    cli.add_command(audit_cmd.audit)
    cli.add_command(runs_cmd.runs)
    cli.add_command(aws_cmd.aws)
    cli.add_command(report_cmd.report)
    cli.add_command(report_cmd.diff)
    cli.add_command(waivers_cmd.waivers)
    cli.add_command(backup_cmd.backup)
    cli.add_command(schedule_cmd.schedule)
    cli.add_command(dr_cmd.dr)
    cli.add_command(trends_cmd.trends)
    cli.add_command(forecast_cmd.forecast)
    cli.add_command(remediate_cmd.remediate)


_register()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="itops")
