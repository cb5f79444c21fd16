"""``itops audit``: run the selected checks on the selected hosts and store the run."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import click

from itops import __version__
from itops.checkapi import Check
from itops.cli.checks_cmd import checks_dir_option
from itops.cli.output import RUN_FORMATS, render_summary, result_stream, use_colour
from itops.cli.params import inventory_param, tofu_option, waivers_option
from itops.cli.runs_cmd import signing_key_option, store_option
from itops.errors import UsageError
from itops.executors import ExecutorSpec, executor_option
from itops.exitcodes import ExitStatus
from itops.inventory import Host, Inventory, load_inventory, target_lines
from itops.inventory_refs import raise_for_unmatched_patterns, unknown_var_warnings
from itops.model import Run, Severity
from itops.registry import load_registry
from itops.report import parse_report_spec, write_reports
from itops.session import RunSession, SessionResult
from itops.store import Store, new_run_id
from itops.targets import apply_shard, parse_shard, select_targets
from itops.waivers import WaiverSet

if TYPE_CHECKING:
    from itops.executors.dask import DaskAuditRunner, DaskCluster
    from itops.runner import AuditRunner, HostOutcome

ProgressFn = Callable[[str | None], None]


@click.command()
@inventory_param()
@click.option("--limit", "limits", multiple=True, help="Hosts: name-glob, group:NAME, site:NAME, tag:NAME, !excl.")
@click.option("--checks", "patterns", multiple=True, help="Check id glob(s), e.g. 'ssh.*' (default: all).")
@checks_dir_option
@click.option("--concurrency", type=click.IntRange(1, 1024), default=None, help="Hosts in parallel.")
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
    help="table at the end; json / jsonl (one result per line, then a summary line) stream as targets finish.",
)
@store_option
@signing_key_option
@tofu_option
@click.option(
    "--shard",
    default=None,
    metavar="I/N",
    help="Audit only shard I of N of the selected targets (stable by name); combine with `itops runs merge`.",
)
@click.option("--local", is_flag=True, help="Run the probes on this machine instead of over SSH.")
@executor_option
@click.option("--all", "show_pass", is_flag=True, help="List passed checks too.")
@click.option(
    "--report",
    "reports",
    multiple=True,
    metavar="FORMAT:PATH",
    help="Also write a report of this run, e.g. html:out/report.html (repeatable).",
)
@waivers_option()
@click.option(
    "--templates",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="Folder of report templates overriding the shipped ones (for --report).",
)
@click.option(
    "--prom-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write node_exporter textfile metrics of this run to FILE (atomically).",
)
def audit(
    inventory_path: Path,
    limits: tuple[str, ...],
    patterns: tuple[str, ...],
    checks_dirs: tuple[Path, ...],
    concurrency: int | None,
    fail_on: str,
    fmt: str,
    store_dir: Path | None,
    signing_key: Path | None,
    tofu_file: str | None,
    shard: str | None,
    local: bool,
    executor: ExecutorSpec,
    show_pass: bool,
    reports: tuple[str, ...],
    waivers_file: Path | None,
    templates: Path | None,
    prom_file: Path | None,
) -> ExitStatus:
    """Audit hosts and cloud accounts: one SSH connection and one batched probe script per host,
    each cloud API collection made once per account and region."""
    # Imported here: the runner pulls in paramiko and the cloud code boto3; `itops --help` must not pay for them.
    from itops.planner import HostPlans
    from itops.runner import AuditRunner, RunOptions

    if executor.is_dask and (local or tofu_file):
        raise UsageError(
            f"--executor {executor} cannot be combined with {'--local' if local else '--trust-on-first-use'}",
            hint="Dask workers connect with their own known_hosts; use --executor threads for --local or TOFU",
        )
    inv = load_inventory(inventory_path)
    report_specs = [parse_report_spec(spec) for spec in reports]  # bad specs fail before anything runs
    waivers = WaiverSet.load(inv, waivers_file)
    registry = load_registry([*checks_dirs, *inv.checks_dirs])
    for w in registry.warnings:
        click.echo(f"warning: {w}", err=True)
    raise_for_unmatched_patterns(inv, registry, waivers.entries)
    for w in unknown_var_warnings(inv, registry):
        click.echo(f"warning: {w}", err=True)
    registry.require_matches(list(patterns))
    selection = select_targets(inv, list(limits))
    host_checks = registry.select(list(patterns), target="host") if selection.hosts else []
    cloud_checks = registry.select(list(patterns), target="aws") if selection.clouds else []
    if not host_checks and not cloud_checks:
        raise UsageError(
            f"no check matches {', '.join(patterns) or '*'} for the selected targets",
            hint="see `itops checks list`",
        )
    shard_index = shard_count = 0
    if shard is not None:
        shard_index, shard_count = parse_shard(shard)
        whole = len(selection.hosts) + len(selection.clouds)
        selection = apply_shard(selection, shard_index, shard_count)
        click.echo(
            f"shard {shard_index}/{shard_count}: {len(selection.hosts) + len(selection.clouds)} of {whole} target(s)",
            err=True,
        )
    # each host's plan is made when the runner starts that host, not kept (memory bounded by the hosts in flight)
    plans = HostPlans(selection.hosts if host_checks else [], host_checks)
    check_counts = plans.check_counts()
    # an empty shard is a valid part of a sharded audit (a small fleet over many shards): it is stored
    if not cloud_checks and not any(check_counts.values()) and not (shard and not selection.hosts):
        raise UsageError(*_why_no_target(selection.hosts, limits, patterns))
    cluster = _start_cluster(executor)  # before anything is stored: a scheduler not there stores no run
    store = Store(store_dir, signing_key=signing_key)
    run = Run(
        id=new_run_id(),
        kind="audit",
        started=time.time(),
        inventory=str(inventory_path),
        inventory_digest=inv.digest,
        inventory_lines=target_lines(inv),
        version=__version__,
        # recorded before anything runs, so an interrupted run still names the targets it never reached
        planned=check_counts | {name: len(cloud_checks) for name in selection.clouds if cloud_checks},
        shard=f"{shard_index}/{shard_count}" if shard else "",
        selection=json.dumps({"limit": list(limits), "checks": list(patterns)}, sort_keys=True),
    )
    runner: AuditRunner | DaskAuditRunner
    if cluster is not None:
        from itops.executors.dask import DaskAuditRunner

        runner = DaskAuditRunner(
            run.id,
            inv.hosts,
            cluster,
            [*checks_dirs, *inv.checks_dirs],
            concurrency or inv.concurrency,
            history=store.history_for,
        )
    else:
        runner = AuditRunner(
            run.id,
            inv.hosts,
            RunOptions(
                concurrency=concurrency or inv.concurrency, tofu_file=tofu_file, local=local, history=store.history_for
            ),
        )
    cloud_jobs = [
        (name, _cloud_job(run.id, inv, name, cloud_checks, concurrency or inv.concurrency, runner))
        for name in selection.clouds
        if cloud_checks
    ]
    session = RunSession(store, run, fail_on=Severity(fail_on), waivers=waivers, stream=result_stream(fmt))
    progress = _progress(len(plans) + len(cloud_jobs), quiet=fmt != "table")
    try:
        done = session.execute(
            runner.run(plans, cloud_jobs),
            interrupt=runner.interrupt,
            on_outcome=lambda o: progress(getattr(o, "host", None) or ""),
        )
    finally:
        progress(None)
        if cluster is not None:
            cluster.close()
    for path in write_reports(store, done.run.id, report_specs, templates=templates):
        click.echo(f"wrote report {path}", err=True)
    if prom_file is not None:
        from itops.metrics import audit_registry, last_success, write_textfile

        run = done.run  # the metrics are read back from the store, one result at a time
        write_textfile(prom_file, audit_registry(run, store.iter_results(run.id), last_success(store, run)))
    # What --limit and --checks selected (before the groups' checks: narrow it): a waiver outside is not stale.
    host_ids, cloud_ids = [c.id for c in host_checks], [c.id for c in cloud_checks]  # one list shared by all targets
    planned = {h.name: host_ids for h in selection.hosts} | {name: cloud_ids for name in selection.clouds}
    assert done.waiver_usage is not None
    for warning in waivers.warnings(done.waiver_usage, planned, clouds=inv.clouds):
        click.echo(f"warning: {warning}", err=True)
    return _render(store, done, fmt, show_pass)


def _render(store: Store, done: SessionResult, fmt: str, show_pass: bool) -> ExitStatus:
    """The end of a run on the terminal: JSON was streamed already; the table is read back from the store."""
    if done.output_closed:
        raise BrokenPipeError  # the run was kept; the CLI exits 141 as for any closed pipe
    if fmt == "table":
        click.echo(render_summary(done.run, store.iter_results(done.run.id), colour=use_colour(), show_pass=show_pass))
        click.echo(f"Stored as run {done.run.id} in {store.root} (exit {int(done.status)})", err=True)
    return done.status


def _why_no_target(hosts: list[Host], limits: tuple[str, ...], patterns: tuple[str, ...]) -> tuple[str, str]:
    """Message and hint for an audit that would cover 0 targets (a usage error, never an empty pass)."""
    if not hosts:
        where = f"--limit {' '.join(limits)}" if limits else "the inventory"
        return f"nothing to audit: {where} selects no host and no cloud account", "see `itops inventory list`"
    names = ", ".join(h.name for h in hosts[:5]) + (", ..." if len(hosts) > 5 else "")
    group_patterns = sorted({p for h in hosts for p in h.checks})
    checks = f" --checks {','.join(patterns)}" if patterns else ""
    return (
        f"nothing to audit: {'--limit ' + ' '.join(limits) if limits else 'the inventory'} matched "
        f"{len(hosts)} host(s) ({names}) but their groups' checks: patterns ({', '.join(group_patterns)}) "
        f"select none of the{checks} checks",
        "change the --checks selection or the groups' checks: patterns in the inventory",
    )


def _start_cluster(executor: ExecutorSpec) -> DaskCluster | None:
    """The Dask client of ``--executor dask...`` (a LocalCluster started here, or a scheduler's), else None."""
    if not executor.is_dask:
        return None
    from itops.executors.dask import DaskCluster

    click.echo(f"executor: {executor} (starting)" if executor.address is None else f"executor: {executor}", err=True)
    return DaskCluster(executor)


def _cloud_job(
    run_id: str,
    inv: Inventory,
    name: str,
    checks: list[Check],
    concurrency: int,
    runner: AuditRunner | DaskAuditRunner,
) -> Callable[[], HostOutcome]:
    from itops.cloud import cloud_variables, inventory_coverage, run_cloud_account
    from itops.runner import HostOutcome

    def job() -> HostOutcome:
        out = run_cloud_account(
            run_id,
            name,
            inv.clouds[name],
            checks,
            cloud_variables(inv, name),
            concurrency=concurrency,
            stop=runner.stop,
            covered=inventory_coverage(inv),
        )
        account = " ".join(x for x in (out.account_id, out.caller_arn) if x)
        return HostOutcome(name, out.results, elapsed=out.elapsed, account=account)

    return job


def _progress(total: int, quiet: bool) -> ProgressFn:
    """A rich progress bar on stderr when it is a terminal; a no-op otherwise."""
    if quiet or not sys.stderr.isatty() or total < 2:
        return lambda host: None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("audit"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=Console(stderr=True),
        transient=True,
    )
    task = bar.add_task("", total=total)
    bar.start()

    def update(host: str | None) -> None:
        if host is None:
            bar.stop()
        else:
            bar.update(task, advance=1, description=host)

    return update
