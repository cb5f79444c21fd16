"""``itops trends``: posture over time from the run store."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from itops.cli.runs_cmd import store_option
from itops.errors import UsageError
from itops.report.data import printable
from itops.store import Store
from itops.trends import EXPIRING_DAYS, Series, Trends, WaiverDebt, compute_trends
from itops.yamlload import parse_duration


def _since(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return time.time() - parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"--since {text!r}: {exc}", hint="e.g. --since 90d") from exc


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}%"


def _spark(points: list[float | None], width: int = 12) -> str:
    """The last ``width`` ratios as a row of block characters (' ' for not evaluated)."""
    blocks = " ▁▂▃▄▅▆▇█"
    return "".join(" " if p is None else blocks[1 + min(7, int(p / 100 * 7.999))] for p in points[-width:])


def _table(trends: Trends, top: int) -> str:
    lines = [
        f"{len(trends.runs)} run(s) from "
        f"{time.strftime('%Y-%m-%d', time.localtime(trends.runs[0].started))} to "
        f"{time.strftime('%Y-%m-%d', time.localtime(trends.runs[-1].started))}"
    ]
    lines.append(
        f"overall pass ratio: {_pct(trends.overall[0])} -> {_pct(trends.overall[-1])}  {_spark(trends.overall)}"
    )
    data = trends.to_dict()
    mttr = trends.mttr_days
    lines.append(
        f"findings: {data['open_findings']} open, {data['fixed_findings']} fixed in the window; "
        f"mean time to remediate: {'-' if mttr is None else f'{mttr:.1f} days'}"
    )
    w = trends.waivers
    lines.append(f"waiver debt: {w.active} active, {w.expiring} expiring within {EXPIRING_DAYS}d, {w.expired} expired")

    def block(title: str, series: list[Series]) -> None:
        moved = sorted(series, key=lambda s: ((s.latest or 0) - (s.first or 0), s.key))[:top]
        if not moved:
            return
        lines.append("")
        lines.append(f"{title} (lowest change first; first -> latest)")
        for s in moved:
            label = f"{s.key}  {s.title}".strip()
            lines.append(f"  {_pct(s.first):>5} -> {_pct(s.latest):>5}  {_spark(s.points)}  {label[:90]}")

    block("framework controls", trends.controls)
    block("checks", trends.checks)
    open_findings = sorted(
        (f for f in trends.findings if f.fixed_on is None), key=lambda f: -f.age_days(trends.generated)
    )
    if open_findings:
        lines.append("")
        lines.append("oldest open findings")
        for f in open_findings[:top]:
            seen = time.strftime("%Y-%m-%d", time.localtime(f.first_seen))
            waived = " (waived)" if f.waived else ""
            resource = f"  {f.resource}" if f.resource else ""
            age = f.age_days(trends.generated)
            lines.append(f"  {age:7.1f}d  since {seen}  {f.severity:<8} {f.check_id}  {f.target}{resource}{waived}")
    return printable("\n".join(lines))


def _inventory_waivers(inventory_path: Path, debt_now: float) -> WaiverDebt:
    from itops.inventory import load_inventory
    from itops.waivers import WaiverSet

    ws = WaiverSet.load(load_inventory(inventory_path))
    debt = WaiverDebt()
    for use in (u for group in ws.report([]).values() for u in group):
        rule = use.entry.rule
        if use.state == "expired":
            state = "expired"
            debt.expired += 1
        elif use.days_left <= EXPIRING_DAYS:
            state = "expiring"
            debt.expiring += 1
        else:
            state = "active"
            debt.active += 1
        debt.items.append(
            {
                "check": rule.check,
                "target": rule.target,
                "expires": rule.expires.isoformat(),
                "approver": rule.approver,
                "ticket": rule.ticket,
                "state": state,
            }
        )
    return debt


@click.command()
@store_option
@click.option("--since", default="90d", show_default=True, help="Runs started within this long ago (e.g. 30d).")
@click.option(
    "--framework",
    default=None,
    help="Controls of one framework catalogue (cis-debian-12, nist-800-53, ...) or family (cis).",
)
@click.option("--limit", "limits", multiple=True, help="Targets: name globs; a leading ! excludes (repeatable).")
@click.option("--kind", type=click.Choice(["audit", "backup"]), default="audit", show_default=True)
@click.option(
    "-i",
    "--inventory",
    "inventory_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Take waiver debt from this inventory's waivers (expired ones included).",
)
@click.option("--top", default=15, show_default=True, help="Rows per section in the table.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "html"]), default="table", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write to FILE.")
def trends(
    store_dir: Path | None,
    since: str,
    framework: str | None,
    limits: tuple[str, ...],
    kind: str,
    inventory_path: Path | None,
    top: int,
    fmt: str,
    output: Path | None,
) -> None:
    """Posture over time: pass ratio per control and check per run, finding ages, time to remediate,
    waiver debt."""
    result = compute_trends(Store(store_dir), kind=kind, since=_since(since), framework=framework, limits=limits)
    if not result.runs:
        raise UsageError(f"no finished {kind} runs in the store since {since}", hint="itops runs list")
    if inventory_path is not None:
        result.waivers = _inventory_waivers(inventory_path, result.generated)
    if fmt == "json":
        text = json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n"
    elif fmt == "html":
        from itops.report.trends_html import render_trends_html

        text = render_trends_html(result, framework=framework)
    else:
        text = _table(result, top) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        from itops.report import atomic_write

        atomic_write(output, text.encode("utf-8"))
        click.echo(f"wrote {output}", err=True)
