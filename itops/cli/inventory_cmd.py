"""``itops inventory``: validate and list an inventory."""

from __future__ import annotations

import json
from pathlib import Path

import click

from itops.cli.checks_cmd import checks_dir_option
from itops.cli.params import inventory_param, waivers_option
from itops.inventory import load_inventory
from itops.inventory_refs import raise_for_unmatched_patterns, unknown_var_warnings
from itops.registry import load_registry
from itops.waivers import WaiverSet


@click.group()
def inventory() -> None:
    """Validate and inspect inventories."""


@inventory.command("validate")
@inventory_param()
@checks_dir_option
@waivers_option("Also validate this waivers file (same shape as the inventory's waivers:).")
@click.option(
    "--playbooks",
    "playbooks",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="Playbook file or folder whose {{ hosts.H.vars.KEY }} templates use inventory vars (repeatable).",
)
def validate(
    inventory_path: Path, checks_dirs: tuple[Path, ...], waivers_file: Path | None, playbooks: tuple[Path, ...]
) -> None:
    """Check an inventory; every problem is reported with file:line (exit 4 when invalid).

    Besides the file itself: every group `checks:` pattern and waiver `check` must match a loaded
    check (built-in, --checks-dir, the inventory's checks_dirs); a var that no check reads and no
    playbook uses is warned about.
    """
    inv = load_inventory(inventory_path)
    waivers = WaiverSet.load(inv, waivers_file)
    registry = load_registry([*checks_dirs, *inv.checks_dirs])
    for w in registry.warnings:
        click.echo(f"warning: {w}", err=True)
    raise_for_unmatched_patterns(inv, registry, waivers.entries)
    for w in unknown_var_warnings(inv, registry, playbooks):
        click.echo(f"warning: {w}", err=True)
    click.echo(
        f"{inventory_path}: OK ({len(inv.hosts)} hosts, {len(inv.groups)} groups, {len(inv.sites)} sites, "
        f"{len(inv.clouds)} clouds, {len(inv.backups)} backups, {len(inv.waivers)} waivers)"
    )


@inventory.command("list")
@inventory_param()
@click.option("--limit", "limits", multiple=True, help="name-glob, group:NAME, site:NAME, tag:NAME, !excl.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def list_hosts(inventory_path: Path, limits: tuple[str, ...], fmt: str) -> None:
    """The hosts an inventory (and --limit) selects."""
    inv = load_inventory(inventory_path)
    hosts = inv.select(list(limits))
    if fmt == "json":
        rows = [
            {
                "name": h.name,
                "address": h.address,
                "port": h.ssh.port,
                "user": h.ssh.user,
                "identity_file": h.ssh.identity_file,
                "known_hosts": list(h.ssh.known_hosts),
                "jump": h.jump_text,  # an inventory host's name, or a ProxyJump chain user@address:port,...
                # where each came from: hosts.NAME, defaults.ssh, "ssh config PATH", built-in, host name
                "origins": dict(h.origins),
                "site": h.site,
                "groups": list(h.groups),
                "tags": list(h.tags),
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


@inventory.group("import")
def import_() -> None:
    """Convert another tool's inventory into an itops inventory (printed on stdout)."""


@import_.command("ansible")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
def import_ansible(path: Path) -> None:
    """Print the itops inventory equivalent to the Ansible inventory PATH (INI, YAML, folder or plugin
    config; read with ansible-inventory from the itops[ansible] extra). To convert once; to keep
    following the Ansible inventory, list it under `sources:` instead."""
    import yaml

    from itops.errors import UsageError
    from itops.sources import SourceError
    from itops.sources.ansible import read_ansible_source

    try:
        data = read_ansible_source(path)
    except SourceError as exc:
        raise UsageError(str(exc), hint=exc.hint) from None
    doc = {"version": 1, "groups": data.groups, "hosts": data.hosts}
    click.echo(f"# converted from the Ansible inventory {path} by `itops inventory import ansible`")
    click.echo(yaml.safe_dump(doc, sort_keys=False, default_flow_style=None, width=120), nl=False)


# DESIGN.md's earlier name for the same conversion
inventory.add_command(
    click.Command(
        "import-ansible",
        callback=import_ansible.callback,
        params=import_ansible.params,
        help="Same as `itops inventory import ansible PATH`.",
        hidden=True,
    )
)
