"""``itops forecast``: capacity and recovery projections from the metrics stored with each run."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from itops.cli.runs_cmd import store_option
from itops.errors import UsageError
from itops.forecast import DAY, PLAN_MONTHS, ForecastReport, build_forecast, describe_days
from itops.report.data import printable
from itops.store import Store
from itops.yamlload import parse_duration


def _sites_and_limits(inventory_path: Path | None) -> tuple[dict[str, str], dict[str, float]]:
    """Target -> site, and host -> fs_usage_max_pct, from the inventory (empty without one)."""
    if inventory_path is None:
        return {}, {}
    from itops.inventory import load_inventory

    inv = load_inventory(inventory_path)
    sites = {name: host.site or "-" for name, host in inv.hosts.items()}
    limits = {
        name: float(host.vars["fs_usage_max_pct"])
        for name, host in inv.hosts.items()
        if isinstance(host.vars.get("fs_usage_max_pct"), int | float)
    }
    for name, backup in inv.backups.items():
        host = getattr(backup, "host", None)
        sites[name] = sites.get(host, "-") if host else "-"
    return sites, limits


def _when(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d", time.localtime(ts))


def _table(report: ForecastReport) -> str:
    horizon_days = report.horizon / DAY
    lines = [f"file systems (projected to the threshold; horizon {horizon_days:g} days)"]
    for f in report.filesystems:
        p = f.projection
        flag = "!!" if p.within(report.horizon) else "  "
        lines.append(
            f" {flag} {f.host:<20} {f.mount:<22} {f.what:<6} now {p.value:5.1f}% {p.fit.per_day:+6.2f}/day "
            f"-> {p.limit:g}% {describe_days(p.days_left()):<17} ({_when(p.crosses_at)}); {p.fit.quality()}"
        )
    if not report.filesystems:
        lines.append("    none with enough history yet")
    if report.short_of_history:
        lines.append(f"    {len(report.short_of_history)} file system(s) with fewer than 5 runs of history")
    lines += ["", "capacity plan per site (GB used)"]
    header = "".join(f"{f'in {m} months':>14}" for m in PLAN_MONTHS)
    lines.append(f"    {'site':<16}{'file systems':>13}{'size':>10}{'now':>10}{header}")
    for s in report.sites:
        cols = "".join(f"{v:14.1f}" for v in s.projected_gb)
        lines.append(f"    {s.site:<16}{s.filesystems:>13}{s.size_gb:10.1f}{s.used_gb:10.1f}{cols}")
    lines += ["", "backup storage growth (GB per month)"]
    for b in report.backups:
        rate = "-" if b.gb_per_month is None else f"{b.gb_per_month:+.3f}"
        lines.append(f"    {b.backup:<24} site {b.site:<12} now {b.size_gb:9.3f} GB  {rate:>10}/month")
    for site, per_month in sorted(report.backup_sites.items()):
        lines.append(f"    site {site}: {per_month:+.3f} GB per month in all")
    lines += ["", "restore duration against the RTO"]
    for r in report.restores:
        if r.projection is None:
            lines.append(f"    {r.backup:<24} now {r.seconds:.1f}s of {r.rto:g}s; not enough history ({r.points} of 5)")
            continue
        p = r.projection
        flag = "!!" if p.within(report.horizon) else "  "
        lines.append(
            f" {flag} {r.backup:<24} now {r.seconds:.1f}s of {r.rto:g}s, {p.fit.per_day:+.2f}s/day: "
            f"RTO reached {describe_days(p.days_left())}; {p.fit.quality()}"
        )
    return printable("\n".join(lines)) + "\n"


@click.command()
@store_option
@click.option("--horizon", default="30d", show_default=True, help="Flag projections crossing within this long.")
@click.option(
    "-i",
    "--inventory",
    "inventory_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Inventory for sites and per-host thresholds (fs_usage_max_pct).",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json", "html"]), default="table", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write to FILE.")
@click.pass_context
def forecast(
    ctx: click.Context, store_dir: Path | None, horizon: str, inventory_path: Path | None, fmt: str, output: Path | None
) -> None:
    """Projections from the recorded metrics: days until each file system crosses its threshold, a capacity
    plan per site (GB now, in 3/6/12 months), backup storage growth per month, restore time against the RTO.

    Exit 1 when a projection crosses within --horizon (like a FAIL), else 0.
    """
    try:
        horizon_s = parse_duration(horizon)
    except ValueError as exc:
        raise UsageError(f"--horizon {horizon!r}: {exc}", hint="e.g. --horizon 90d") from exc
    store = Store(store_dir)
    sites, limits = _sites_and_limits(inventory_path)
    report = build_forecast(
        store.metric_series(), now=time.time(), horizon=horizon_s, site_of=sites, fs_limit_of=limits
    )
    if fmt == "json":
        text = json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"
    elif fmt == "html":
        from itops import __version__
        from itops.report.html import CSP
        from itops.report.templating import render_template
        from itops.report.views import STATUS_ORDER

        text = render_template(
            "forecast.html.j2",
            None,
            report=report,
            data=report.to_dict(),
            csp=CSP,
            itops_version=__version__,
            statuses=[s.value for s in STATUS_ORDER],
            plan_months=PLAN_MONTHS,
        )
    else:
        text = _table(report)
    if output is None:
        click.echo(text, nl=False)
    else:
        from itops.report import atomic_write

        atomic_write(output, text.encode("utf-8"))
        click.echo(f"wrote {output}", err=True)
    crossing = any(f.projection.within(report.horizon) for f in report.filesystems) or any(
        r.projection is not None and r.projection.within(report.horizon) for r in report.restores
    )
    if crossing:
        from itops.exitcodes import ExitStatus

        ctx.exit(int(ExitStatus.FAILURES))
