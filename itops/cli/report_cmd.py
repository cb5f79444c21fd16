"""``itops report`` and ``itops diff``: render a stored run, compare two stored runs."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from itops.cli.runs_cmd import store_option
from itops.exitcodes import ExitStatus
from itops.report import atomic_write, normalize_format, render, render_pieces
from itops.report.data import TREND_RUNS
from itops.report.diff import diff_runs, render_diff_json, render_diff_markdown, render_diff_table
from itops.store import Store


@click.command()
@click.argument("run_id", default="latest")
@click.option(
    "-f",
    "--format",
    "fmt",
    default="html",
    show_default=True,
    help="html, md, json, csv, junit, sarif, ocsf, pdf, or a format a plugin adds.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File to write (atomically); '-' or none prints to stdout.",
)
@click.option(
    "--templates",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="Folder with your own copy of report templates (searched before the shipped ones).",
)
@click.option("--trend", type=click.IntRange(1, 1000), default=TREND_RUNS, show_default=True, help="Runs in the trend.")
@click.option(
    "--restore-proof",
    is_flag=True,
    help="Instead of one run: every restore test of the period (--since), for auditors (html, md or json).",
)
@click.option("--since", default="30d", show_default=True, help="With --restore-proof: the period, e.g. 90d.")
@store_option
def report(
    run_id: str,
    fmt: str,
    output: Path | None,
    templates: Path | None,
    trend: int,
    restore_proof: bool,
    since: str,
    store_dir: Path | None,
) -> None:
    """Render a stored run (RUN_ID, a unique prefix, or `latest`) as a report.

    Formats: html (self-contained, no JavaScript needed), md, json (schema itops.run/1),
    csv, junit (CI), sarif (code scanning), ocsf (SIEM), pdf (needs weasyprint).
    With --restore-proof: every restore test since --since, what it verified, its duration against
    the RTO, failures and their follow-up run, each with its run's manifest digest.
    """
    name = normalize_format(fmt)
    if restore_proof:
        _restore_proof(Store(store_dir), name, since, output)
        return
    if name in ("csv", "json"):  # written as they are read from the store (json: any run; csv: a large one)
        pieces = render_pieces(Store(store_dir), run_id, name, templates=templates, trend=trend)
        if output is None or str(output) == "-":
            for piece in pieces:
                sys.stdout.buffer.write(piece)
            sys.stdout.flush()
            return
        atomic_write(output, pieces)
        click.echo(f"wrote {name} report to {output} ({output.stat().st_size:,} bytes)", err=True)
        return
    data = render(Store(store_dir), run_id, name, templates=templates, trend=trend)
    if output is None or str(output) == "-":
        if name == "pdf" and sys.stdout.isatty():
            raise click.UsageError("refusing to print a PDF to a terminal: use -o FILE")
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    atomic_write(output, data)
    click.echo(f"wrote {name} report to {output} ({len(data):,} bytes)", err=True)


@click.command()
@click.argument("run_a")
@click.argument("run_b", default="latest")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "md"]), default="table", show_default=True)
@click.option(
    "--exit-code", is_flag=True, help="Exit 1 when B has new failures, regressions, errors or unreachable targets."
)
@store_option
def diff(run_a: str, run_b: str, fmt: str, exit_code: bool, store_dir: Path | None) -> ExitStatus:
    """What changed from RUN_A to RUN_B (default: latest): new failures, fixed, regressed,
    still failing, newly unreachable, waiver changes."""
    d = diff_runs(Store(store_dir), run_a, run_b)
    if fmt == "json":
        click.echo(render_diff_json(d))
    elif fmt == "md":
        click.echo(render_diff_markdown(d), nl=False)
    else:
        click.echo(render_diff_table(d))
    if exit_code and d.worse:
        return ExitStatus.FAILURES
    return ExitStatus.OK


def _restore_proof(store: Store, fmt: str, since: str, output: Path | None) -> None:
    import time

    from itops.errors import UsageError
    from itops.report.restore_proof import collect_restore_proof, render_restore_proof
    from itops.yamlload import parse_duration

    if fmt not in ("html", "md", "json"):
        raise UsageError(f"--restore-proof renders html, md or json, not {fmt}")
    try:
        start = time.time() - parse_duration(since)
    except ValueError as exc:
        raise UsageError(f"--since {since!r}: {exc}", hint="e.g. --since 30d") from exc
    data = render_restore_proof(collect_restore_proof(store, start), fmt).encode("utf-8")
    if output is None or str(output) == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    atomic_write(output, data)
    click.echo(f"wrote restore proof to {output} ({len(data):,} bytes)", err=True)
