"""``itops waivers``: list the waivers of an inventory (and a waivers file), with their state."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

from itops.cli.params import inventory_param
from itops.cli.runs_cmd import store_option
from itops.errors import UsageError
from itops.inventory import load_inventory
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
@click.option(
    "--waivers",
    "waivers_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="A separate waivers YAML file (same shape as the inventory's `waivers:`).",
)
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
    ws = WaiverSet.load(load_inventory(inventory_path), extra_file=waivers_file)
    results = []
    if run_id is not None:
        store = Store(store_dir)
        results = store.results(store.get_run(run_id).id)
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
    click.echo(f"{'STATE':<8} {'EXPIRES':<10} {'LEFT':>5}  {'CHECK':<32} {'TARGET':<22} {'APPROVER':<16} TICKET")
    for u in uses:
        r = u.entry.rule
        left = f"{u.days_left}d"
        line = f"{u.state:<8} {r.expires.isoformat():<10} {left:>5}  {r.check:<32} {r.target:<22} {r.approver:<16} "
        click.echo(printable(line + (r.ticket or "-")))
        detail = f"         {u.entry.where}: {r.justification}"
        if run_id is not None:
            detail += f"  [matched {u.matched}, waived {u.waived}]"
        click.echo(printable(detail))
