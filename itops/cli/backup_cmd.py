"""``itops backup verify``: freshness, integrity and restore tests of the inventory's backups, stored as a run."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click

from itops import __version__
from itops.backup.facts import format_duration, format_limit
from itops.backup.options import backup_options
from itops.cli.checks_cmd import checks_dir_option
from itops.cli.output import RUN_FORMATS, render_summary, result_stream, shown, use_colour
from itops.cli.params import inventory_param, tofu_option, waivers_option
from itops.cli.runs_cmd import signing_key_option, store_option
from itops.errors import UsageError
from itops.executors import ExecutorSpec, executor_option
from itops.exitcodes import ExitStatus
from itops.forecast import RTO_SECONDS
from itops.inventory import load_inventory, target_lines
from itops.inventory_refs import raise_for_unmatched_patterns
from itops.model import Run, Severity
from itops.redact import redact
from itops.registry import load_registry
from itops.session import RunSession, TargetOutcome
from itops.store import Store, new_run_id
from itops.waivers import WaiverSet

if TYPE_CHECKING:
    from itops.backup.facts import RestoreOutcome
    from itops.backup.verify import BackupVerifier
    from itops.executors.dask import DaskBackupVerifier


@click.group()
def backup() -> None:
    """Backups: verify freshness (RPO), integrity and restores (RTO)."""


@backup.command("verify")
@inventory_param()
@click.option("--limit", "limits", multiple=True, help="Backups: name-glob, kind:KIND, host:HOST, cloud:CLOUD, !excl.")
@click.option(
    "--restore-test/--no-restore-test",
    "restore",
    default=None,
    help="Restore every restorable backup into scratch space and verify it (default: only backups with a "
    "restore_test section); --no-restore-test: none.",
)
@click.option("--checks", "patterns", multiple=True, help="Backup check id glob(s), e.g. 'backup.within_rpo'.")
@checks_dir_option
@click.option(
    "--prom-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write node_exporter textfile metrics here (atomic rename).",
)
@click.option("--concurrency", type=click.IntRange(1, 1024), default=None, help="Hosts / cloud backups in parallel.")
@click.option(
    "--fail-on",
    type=click.Choice([s.value for s in Severity]),
    default="low",
    show_default=True,
    help="Lowest severity of a FAIL that makes the exit code 1.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(RUN_FORMATS),
    default="table",
    show_default=True,
    help="table at the end; json / jsonl stream as backups are verified.",
)
@store_option
@signing_key_option
@waivers_option("Extra waivers file (besides the inventory's waivers).")
@tofu_option
@executor_option
@click.option("--all", "show_pass", is_flag=True, help="List passed checks too.")
def verify(
    inventory_path: Path,
    limits: tuple[str, ...],
    restore: bool | None,
    patterns: tuple[str, ...],
    checks_dirs: tuple[Path, ...],
    prom_file: Path | None,
    concurrency: int | None,
    fail_on: str,
    fmt: str,
    store_dir: Path | None,
    signing_key: Path | None,
    waivers_file: Path | None,
    tofu_file: str | None,
    executor: ExecutorSpec,
    show_pass: bool,
) -> ExitStatus:
    """Verify backups: newest copy within RPO, size, integrity, copies, protection, and restore tests."""
    # Imported here: they pull in paramiko and boto3, which `itops --help` must not pay for.
    from itops.backup.metrics import load_records, save_records, update_records, write_prom_file
    from itops.backup.verify import BackupOutcome, BackupVerifier, VerifyOptions, select_backups

    if executor.is_dask and tofu_file:
        raise UsageError(
            f"--executor {executor} cannot be combined with --trust-on-first-use",
            hint="Dask workers connect with their own known_hosts; use --executor threads for TOFU",
        )
    inv = load_inventory(inventory_path)
    options = backup_options(inv)
    if not inv.backups:
        raise UsageError(f"{inventory_path} has no backups", hint="declare them under `backups:` in the inventory")
    registry = load_registry([*checks_dirs, *inv.checks_dirs])
    for w in registry.warnings:
        click.echo(f"warning: {w}", err=True)
    registry.require_matches(list(patterns))
    waivers = WaiverSet.load(inv, extra_file=waivers_file)
    raise_for_unmatched_patterns(inv, registry, waivers.entries)
    backups = select_backups(inv, list(limits))
    checks = registry.select(list(patterns), target="backup")
    if not checks:
        raise UsageError(
            f"no backup check matches {', '.join(patterns) or '*'}", hint="itops checks list --target backup"
        )
    cluster = None
    if executor.is_dask:  # before anything is stored: a scheduler not there stores no run
        from itops.executors.dask import DaskBackupVerifier, DaskCluster

        cluster = DaskCluster(executor)
    store = Store(store_dir, signing_key=signing_key)
    state_dir = store.root / "state"
    run = Run(
        id=new_run_id(),
        kind="backup",
        started=time.time(),
        inventory=str(inventory_path),
        inventory_digest=inv.digest,
        inventory_lines=target_lines(inv),
        version=__version__,
    )
    verifier = BackupVerifier(
        run.id,
        inv,
        backups,
        checks,
        options,
        VerifyOptions(
            restore=restore,
            concurrency=concurrency or inv.concurrency,
            state_dir=state_dir,
            tofu_file=tofu_file,
            history=store.history_for,
        ),
    )
    # recorded before anything runs, so an interrupted run still names the backups it never verified
    run.planned = verifier.planned()
    runner: BackupVerifier | DaskBackupVerifier = verifier
    if cluster is not None:
        runner = DaskBackupVerifier(verifier, cluster, [*checks_dirs, *inv.checks_dirs], concurrency or inv.concurrency)
    records = load_records(state_dir)
    restores: list[tuple[str, RestoreOutcome, float | None]] = []

    def fold(outcome: TargetOutcome) -> None:
        # each backup's record is folded in as it is verified; only its restore line is kept for the table
        assert isinstance(outcome, BackupOutcome)
        waived = replace(outcome, results=waivers.apply_all(outcome.results))  # a waived FAIL is no failed backup
        update_records(records, [waived], time.time())
        if outcome.facts.restore is not None:
            # the RTO the restore was judged against (the backup's, else the check's default)
            judged = next((r.metrics[RTO_SECONDS] for r in outcome.results if RTO_SECONDS in r.metrics), None)
            restores.append((outcome.backup, outcome.facts.restore, judged))

    session = RunSession(store, run, fail_on=Severity(fail_on), waivers=waivers, stream=result_stream(fmt))
    try:
        done = session.execute(runner.run(), interrupt=runner.interrupt, on_outcome=fold)
    finally:
        if cluster is not None:
            cluster.close()
    save_records(state_dir, records)
    if prom_file is not None:
        write_prom_file(prom_file, records, time.time(), only=inv.backups)
    if done.output_closed:
        raise BrokenPipeError  # the run was kept; the CLI exits 141 as for any closed pipe
    if fmt == "table":
        click.echo(render_summary(done.run, store.iter_results(run.id), colour=use_colour(), show_pass=show_pass))
        table = render_restores(restores)
        if table:
            click.echo(table)
        click.echo(f"Stored as run {run.id} in {store.root} (exit {int(done.status)})", err=True)
    return done.status


def render_restores(rows: Sequence[tuple[str, RestoreOutcome, float | None]]) -> str:
    """The restore tests of the run (backup name, restore facts, the RTO the checks judged it against):
    measured time against the RTO and the verdict, one line each. A backup without ``restore_test.rto``
    shows the default RTO the check applied, marked "(default)"."""
    if not rows:
        return ""
    width = max(len(row[0]) for row in rows) + 2
    lines = ["", "RESTORE TESTS"]
    for name, r, judged in sorted(rows, key=lambda row: row[0]):
        assert r is not None
        took = format_duration(r.seconds) if r.seconds is not None else "-"
        limit = r.rto if r.rto is not None else judged
        default = " (default)" if r.rto is None else ""
        rto = "no RTO" if limit is None else f"RTO {format_limit(limit)}{default}"
        over = limit is not None and r.seconds is not None and r.seconds > limit
        if not r.ok:
            verdict = "FAIL (restore, over RTO)" if over else "FAIL (restore)"
        else:
            verdict = "FAIL (over RTO)" if over else "ok" if limit is None else "ok (within RTO)"
        what = shown(redact(r.what or "; ".join(r.problems)))  # restore output comes from the backup host
        lines.append(f"  {name.ljust(width)}{took:>9}  {rto:<18} {verdict:<24} {what}")
    return "\n".join(lines)
