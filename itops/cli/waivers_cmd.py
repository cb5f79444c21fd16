"""``itops waivers``: list the waivers of an inventory (and a waivers file), with their state."""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import textwrap
from collections.abc import Iterable
from pathlib import Path

import click

from itops.cli.params import inventory_param, waivers_option
from itops.cli.runs_cmd import store_option
from itops.errors import UsageError
from itops.inventory import load_inventory
from itops.inventory_refs import raise_for_unmatched_patterns
from itops.model import Result
from itops.registry import load_registry
from itops.report.data import printable
from itops.store import Store
from itops.waivers import WaiverSet, WaiverUse
from itops.yamlload import parse_duration


@click.group()
def waivers() -> None:
    """Accepted risks: a valid waiver turns a FAIL into WAIVED until it expires."""


def _days(text: str) -> int:
    try:
        return math.ceil(parse_duration(text) / 86400)
    except ValueError as exc:
        raise UsageError(f"--expiring {text!r}: {exc}", hint="e.g. --expiring 30d") from exc


@waivers.command("list")
@inventory_param()
@waivers_option("A separate waivers YAML file (same shape as the inventory's `waivers:`).")
@click.option(
    "--expiring", default=None, metavar="DURATION", help="Only waivers expiring within e.g. 30d (and expired)."
)
@click.option("--run", "run_id", default=None, help="Also tell, for this stored run, which waivers are stale.")
@store_option
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def list_waivers(
    inventory_path: Path,
    waivers_file: Path | None,
    expiring: str | None,
    run_id: str | None,
    store_dir: Path | None,
    fmt: str,
) -> None:
    """Waivers with their expiry and state: active, expired, or stale (matches nothing in --run)."""
    inv = load_inventory(inventory_path)
    ws = WaiverSet.load(inv, extra_file=waivers_file)
    # a waiver for a check that does not exist is an error, never listed as `active`
    raise_for_unmatched_patterns(inv, load_registry(list(inv.checks_dirs)), ws.entries)
    results: Iterable[Result] = ()
    if run_id is not None:
        store = Store(store_dir)
        results = store.iter_results(store.get_run(run_id).id)
    uses = [u for group in ws.report(results).values() for u in group]
    if run_id is None:  # without a run nothing can be stale: report validity only
        uses = [u if u.state == "expired" else WaiverUse(u.entry, "active", 0, 0, u.days_left) for u in uses]
    if expiring is not None:
        keep = {id(e) for e in ws.expiring(_days(expiring))}
        uses = [u for u in uses if id(u.entry) in keep]
    uses.sort(key=lambda u: (u.entry.rule.expires, u.entry.where))
    if fmt == "json":
        click.echo(json.dumps([u.to_dict() for u in uses], indent=2, ensure_ascii=False))
        return
    if not uses:
        click.echo("no waivers" + (f" expiring within {expiring}" if expiring else ""), err=True)
        return
    width = _terminal_width()
    rows = [
        (
            u.state,
            u.entry.rule.expires.isoformat(),
            f"{u.days_left}d",
            printable(u.entry.rule.check),
            printable(u.entry.rule.target),
            printable(u.entry.rule.approver),
            printable(u.entry.rule.ticket or "-"),
        )
        for u in uses
    ]
    header = ("STATE", "EXPIRES", "LEFT", "CHECK", "TARGET", "APPROVER", "TICKET")
    widths = _fit([max(len(row[i]) for row in [header, *rows]) for i in range(len(header))], width)
    click.echo(_row(header, widths))
    for u, row in zip(uses, rows, strict=True):
        click.echo(_row(row, widths))
        detail = f"{u.entry.where}: {u.entry.rule.justification}"
        if run_id is not None:
            detail += f"  [matched {u.matched}, waived {u.waived}]"
        indent = " " * 9
        if width is None:
            click.echo(indent + printable(detail))
        else:
            for line in textwrap.wrap(printable(detail), max(20, width - len(indent))) or [""]:
                click.echo(indent + line)


#: Columns that may be shortened (with an ellipsis) to fit: CHECK, TARGET, APPROVER, TICKET.
_SHRINKABLE = (3, 4, 5, 6)


def _terminal_width() -> int | None:
    """The terminal's width, or $COLUMNS; None when writing to a pipe or file (nothing is cut)."""
    if os.environ.get("COLUMNS", "").isdigit():
        return int(os.environ["COLUMNS"])
    return shutil.get_terminal_size().columns if sys.stdout.isatty() else None


def _fit(widths: list[int], total: int | None) -> list[int]:
    """Shrink the widest shrinkable column, one character at a time, until the row fits ``total``."""
    if total is None:
        return widths
    widths = list(widths)
    while sum(widths) + 2 * (len(widths) - 1) > total:
        i = max(_SHRINKABLE, key=lambda k: widths[k])
        if widths[i] <= 8:
            break  # narrower than this says nothing; let the terminal wrap
        widths[i] -= 1
    return widths


def _row(cells: tuple[str, ...], widths: list[int]) -> str:
    out = []
    for i, (cell, w) in enumerate(zip(cells, widths, strict=True)):
        cell = cell if len(cell) <= w else cell[: w - 1] + "…"
        out.append(cell.rjust(w) if i == 2 else cell.ljust(w))
    return "  ".join(out).rstrip()
