"""``itops runs``: the run history."""

from __future__ import annotations

import json
from pathlib import Path

import click

from itops.cli.output import render_run_list, render_summary, use_colour
from itops.errors import UsageError
from itops.exitcodes import ExitStatus
from itops.store import Store

store_option = click.option(
    "--store",
    "store_dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="ITOPS_HOME",
    help="Run store folder (default: $ITOPS_HOME or the user data dir).",
)

signing_key_option = click.option(
    "--signing-key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    envvar="ITOPS_SIGNING_KEY",
    default=None,
    help="Ed25519 private key (0600) that signs the stored run (default: the store's keys/signing.key).",
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
    if fmt == "json":  # printed as it is read from the store: a run of any size in bounded memory
        from itops.report.jsondoc import stored_run_json

        for piece in stored_run_json(store, run.id):
            click.echo(piece, nl=False)
    else:
        click.echo(render_summary(run, store.iter_results(run.id), colour=use_colour(), show_pass=show_pass))


@runs.command("verify")
@click.argument("run_id", required=False)
@store_option
@click.option("--all", "verify_all", is_flag=True, help="Verify every stored run.")
@click.option(
    "--pubkey",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Public key to trust (PEM or ssh-ed25519); default: the store's keys/signing.pub.",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def verify_runs(
    ctx: click.Context, run_id: str | None, store_dir: Path | None, verify_all: bool, pubkey: Path | None, fmt: str
) -> None:
    """Check that stored runs were not changed after the fact.

    Each result line is hash-chained and the chain head is signed (after every batch, and in the
    run's manifest when it finishes). Exit 0 when every run verifies; 1 naming the first bad line
    when a line was edited, removed, reordered or appended, or the manifest or signature changed.
    """
    if bool(run_id) == verify_all:
        raise UsageError("give one RUN_ID or --all", hint="itops runs verify latest --pubkey signing.pub")
    store = Store(store_dir)
    ids = [r.id for r in store.list_runs(limit=1_000_000)] if verify_all else [store.resolve(str(run_id))]
    outcomes = [store.verify(rid, pubkey) for rid in ids]
    if fmt == "json":
        click.echo(json.dumps([o.to_dict() for o in outcomes], indent=2))
    else:
        for o in outcomes:
            state = "verified" if o.ok else "FAILED"
            sealed = f"sealed, manifest {o.manifest_digest}" if o.sealed else "not sealed"
            click.echo(f"{o.run_id}  {state}  {o.lines} lines, {o.signed_lines} signed, {sealed}")
            for problem in o.problems:
                click.echo(f"  problem: {problem}")
            for note in o.notes:
                click.echo(f"  note: {note}")
    if not all(o.ok for o in outcomes):
        ctx.exit(int(ExitStatus.FAILURES))


@runs.command("merge")
@click.argument("run_ids", nargs=-1, required=True)
@store_option
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def merge_cmd(run_ids: tuple[str, ...], store_dir: Path | None, fmt: str) -> None:
    """Combine the shard runs of one sharded audit (`audit --shard I/N`, all N of them) into one run.

    Counts, reports, diff and `runs verify` then work on the merged run. Shards of different
    inventories, selections or splits, a missing or repeated shard, or a target in two shards are refused.
    """
    from itops.merge import merge_runs

    store = Store(store_dir)
    run = merge_runs(store, run_ids)
    if fmt == "json":
        click.echo(json.dumps(run.to_dict(), indent=2))
    else:
        counts = ", ".join(f"{n} {status}" for status, n in run.counts.items() if n)
        click.echo(f"merged {len(run.merged_from)} shard runs into {run.id}: {counts or 'no results'}")


@runs.command("import")
@click.argument("folders", nargs=-1, required=True, type=click.Path(file_okay=False, exists=True, path_type=Path))
@store_option
@click.option(
    "--pubkey",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Public key of the store that wrote the runs: each is verified after import, and removed if it fails.",
)
@click.pass_context
def import_cmd(ctx: click.Context, folders: tuple[Path, ...], store_dir: Path | None, pubkey: Path | None) -> None:
    """Copy run folders (STORE/runs/RUN_ID) from other stores into this one, e.g. shard runs to merge."""
    import shutil

    store = Store(store_dir)
    failed = False
    for folder in folders:
        run = store.import_run(folder)
        if pubkey is not None:
            outcome = store.verify(run.id, pubkey)
            if not outcome.ok:
                store.forget(run.id)
                shutil.rmtree(store.run_dir(run.id), ignore_errors=True)
                click.echo(f"error: {folder}: does not verify, not imported: {outcome.problems[0]}", err=True)
                failed = True
                continue
        click.echo(f"imported {run.id} ({run.kind}{', shard ' + run.shard if run.shard else ''})")
    if failed:
        ctx.exit(int(ExitStatus.FAILURES))


@runs.command("prune")
@store_option
@click.option("--older-than", required=True, metavar="DURATION", help="Remove runs started longer ago, e.g. 90d.")
@click.option(
    "--keep-last",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="Never remove the newest N runs, however old.",
)
@click.option("--dry-run", is_flag=True, help="Only print what would be removed.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def prune_runs(store_dir: Path | None, older_than: str, keep_last: int, dry_run: bool, fmt: str) -> None:
    """Remove old runs from the history database and their result files (run retention)."""
    from itops.errors import UsageError
    from itops.yamlload import parse_duration

    try:
        age = parse_duration(older_than)
    except ValueError as exc:
        raise UsageError(f"--older-than {older_than!r}: {exc}", hint="e.g. --older-than 90d") from None
    removed = Store(store_dir).prune(age, keep_last, dry_run=dry_run)
    if fmt == "json":
        doc = {"dry_run": dry_run, "removed": [r.to_dict() for r in removed]}
        click.echo(json.dumps(doc, indent=2))
        return
    verb = "would remove" if dry_run else "removed"
    if removed:
        click.echo(render_run_list(removed))
    click.echo(
        f"{verb} {len(removed)} run{'' if len(removed) == 1 else 's'} started before {older_than} ago"
        + (f" (kept the newest {keep_last})" if keep_last else ""),
        err=True,
    )
