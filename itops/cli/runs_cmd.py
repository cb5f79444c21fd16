"""``itops runs``: the run history."""

from __future__ import annotations

import json
from pathlib import Path

import click

from itops.cli.output import render_run_list, render_summary, run_to_json, use_colour
from itops.store import Store

store_option = click.option(
    "--store",
    "store_dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="ITOPS_HOME",
    help="Run store folder (default: $ITOPS_HOME or the user data dir).",
)


@click.group()
def runs() -> None:
    """List and show stored runs."""


@runs.command("list")
@store_option
@click.option("--limit", default=30, show_default=True, help="Newest N runs.")
@click.option("--kind", type=click.Choice(["audit", "backup", "drill"]), default=None)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def list_runs(store_dir: Path | None, limit: int, kind: str | None, fmt: str) -> None:
    """Runs, newest first."""
    items = Store(store_dir).list_runs(limit=limit, kind=kind)
    if fmt == "json":
        click.echo(json.dumps([r.to_dict() for r in items], indent=2))
    elif not items:
        click.echo("no runs stored yet", err=True)
    else:
        click.echo(render_run_list(items))


@runs.command("show")
@click.argument("run_id")
@store_option
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--all", "show_pass", is_flag=True, help="Also list passed checks.")
def show_run(run_id: str, store_dir: Path | None, fmt: str, show_pass: bool) -> None:
    """One run's results (RUN_ID, a unique prefix, or `latest`)."""
    store = Store(store_dir)
    run = store.get_run(run_id)
    results = store.results(run.id)
    if fmt == "json":
        click.echo(run_to_json(run, results))
    else:
        click.echo(render_summary(run, results, colour=use_colour(), show_pass=show_pass))
