"""``itops inventory``: validate and list an inventory."""

from __future__ import annotations

import json
from pathlib import Path

import click

from itops.inventory import load_inventory


@click.group()
def inventory() -> None:
    """Validate and inspect inventories."""


@inventory.command("validate")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def validate(path: Path) -> None:
    """Check an inventory; every problem is reported with file:line (exit 4 when invalid)."""
    inv = load_inventory(path)
    click.echo(
        f"{path}: OK ({len(inv.hosts)} hosts, {len(inv.groups)} groups, {len(inv.sites)} sites, "
        f"{len(inv.clouds)} clouds, {len(inv.backups)} backups, {len(inv.waivers)} waivers)"
    )


@inventory.command("list")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--limit", "limits", multiple=True, help="name-glob, group:NAME, site:NAME, tag:NAME, !excl.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def list_hosts(path: Path, limits: tuple[str, ...], fmt: str) -> None:
    """The hosts an inventory (and --limit) selects."""
    inv = load_inventory(path)
    hosts = inv.select(list(limits))
    if fmt == "json":
        rows = [
            {
                "name": h.name,
                "address": h.address,
                "port": h.ssh.port,
                "user": h.ssh.user,
                "site": h.site,
                "groups": list(h.groups),
                "tags": list(h.tags),
                "jump": h.jump,
                "vars": dict(h.vars),
            }
            for h in hosts
        ]
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    click.echo(f"{'HOST':<20} {'ADDRESS':<22} {'USER':<10} {'SITE':<8} {'GROUPS':<24} TAGS")
    for h in hosts:
        addr = f"{h.address}:{h.ssh.port}"
        click.echo(
            f"{h.name:<20} {addr:<22} {h.ssh.user:<10} {h.site or '-':<8} {','.join(h.groups) or '-':<24} "
            f"{','.join(h.tags) or '-'}"
        )
