"""``itops remediate RUN_ID``: reviewable fix scripts from a run's FAILs, or (``--apply``) applied and re-audited."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import click

from itops.cli.checks_cmd import checks_dir_option
from itops.cli.params import tofu_option
from itops.cli.runs_cmd import signing_key_option, store_option
from itops.errors import UsageError
from itops.exitcodes import ExitStatus


@click.command()
@click.argument("run_id")
@click.option(
    "-i",
    "--inventory",
    "inventory_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Inventory (default: the one the run used); its vars give the checks' parameters.",
)
@click.option("--limit", "limits", multiple=True, help="Hosts: name-glob, group:NAME, site:NAME, tag:NAME, !excl.")
@click.option("--checks", "patterns", multiple=True, help="Check id glob(s) to fix (default: every FAIL).")
@checks_dir_option
@click.option("--format", "fmt", type=click.Choice(["sh", "ansible"]), default="sh", show_default=True)
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="sh: a folder (one HOST.sh per host; default: print to stdout); ansible: the playbook file.",
)
@click.option("--include-risky", is_flag=True, help="Also write fixes marked risk: high (accounts, packages).")
@click.option("--apply", "do_apply", is_flag=True, help="Apply the fixes over SSH, then re-audit the touched checks.")
@click.option("--yes", is_flag=True, help="With --apply: do not ask before applying.")
@store_option
@signing_key_option
@tofu_option
def remediate(
    run_id: str,
    inventory_path: Path | None,
    limits: tuple[str, ...],
    patterns: tuple[str, ...],
    checks_dirs: tuple[Path, ...],
    fmt: str,
    output: Path | None,
    include_risky: bool,
    do_apply: bool,
    yes: bool,
    store_dir: Path | None,
    signing_key: Path | None,
    tofu_file: str | None,
) -> ExitStatus:
    """Write the fixes for RUN_ID's FAIL results (nothing is applied), or apply them with --apply.

    One POSIX sh script per host (--format sh) or one Ansible playbook with a play per host
    (--format ansible); each fix is commented with its check, title, controls and what failed.
    """
    from itops.inventory import load_inventory
    from itops.registry import load_registry
    from itops.remediate.render import plan_fixes, render_ansible, render_sh, safe_comment
    from itops.store import Store

    store = Store(store_dir, signing_key=signing_key)
    run_id = store.resolve(run_id)
    run = store.get_run(run_id)
    results = store.results(run_id)
    inv_path = inventory_path or (Path(run.inventory) if run.inventory else None)
    if inv_path is None:
        raise UsageError(f"run {run_id} names no inventory", hint="give it with -i INVENTORY")
    inv = load_inventory(inv_path)
    registry = load_registry([*checks_dirs, *inv.checks_dirs])
    if limits:
        wanted = {h.name for h in inv.select(list(limits))}
        results = [r for r in results if r.target in wanted]
    if patterns:
        results = [r for r in results if any(fnmatch.fnmatchcase(r.check_id, p) for p in patterns)]
    checks = {c.id: c for c in registry.select([], target="host")}
    params_for = {
        name: {c.id: c.resolve_params(host.vars) for c in checks.values()}
        for name, host in inv.hosts.items()
        if any(r.target == name for r in results)
    }
    plans = plan_fixes(results, checks, params_for, include_risky=include_risky)
    total = sum(len(p.fixes) for p in plans)
    if not do_apply:
        if fmt == "ansible":
            text = render_ansible(plans, run_id)
            if output is None:
                click.echo(text, nl=False)
            else:
                output.write_text(text)
                click.echo(
                    f"wrote {output} ({total} fix(es) for {sum(bool(p.fixes) for p in plans)} host(s))", err=True
                )
        elif output is None:
            click.echo("\n".join(render_sh(p, run_id) for p in plans if p.fixes), nl=False)
        else:
            output.mkdir(parents=True, exist_ok=True)
            for p in plans:
                if p.fixes:
                    path = output / f"{_file_name(p.host)}.sh"
                    path.write_text(render_sh(p, run_id))
                    path.chmod(0o700)
                    click.echo(f"wrote {path} ({len(p.fixes)} fix(es))", err=True)
        for p in plans:
            for check_id, why in p.left_out:
                click.echo(f"{safe_comment(p.host)}: left out {check_id}: {safe_comment(why)}", err=True)
        return ExitStatus.OK

    from itops.remediate.apply import apply_plans, reaudit

    plans = [p for p in plans if p.fixes]
    if not plans:
        click.echo(f"nothing to apply: run {run_id} has no FAIL with an automatic fix in this selection", err=True)
        return ExitStatus.OK
    click.echo(f"plan: {total} fix(es) on {len(plans)} host(s) from run {run_id}", err=True)
    for p in plans:
        for f in p.fixes:
            click.echo(f"  {safe_comment(p.host)}: {f.check_id} ({f.risk} risk)", err=True)
    if not yes and not click.confirm("apply these fixes now?", err=True, default=False):
        click.echo("nothing applied", err=True)
        return ExitStatus.OK

    def report(done: object) -> None:
        from itops.remediate.apply import HostApplied

        assert isinstance(done, HostApplied)
        for f in done.fixes:
            state = "FAILED" if not f.ok else "changed" if f.changed else "ok"
            click.echo(f"{safe_comment(done.host)}: {f.check_id}: {state}", err=True)
            for line in f.output.splitlines()[:20]:
                click.echo(f"    {safe_comment(line)}", err=True)

    applied = apply_plans(inv, plans, run_id=run_id, progress=report, tofu_file=tofu_file)
    for a in applied:
        if a.error:
            click.echo(f"{safe_comment(a.host)}: not applied: {safe_comment(a.error)}", err=True)
    touched = {a.host: [f.check_id for f in a.fixes] for a in applied if a.fixes}
    failed = sum(a.failed for a in applied)
    if not touched:
        return ExitStatus.INCOMPLETE
    from itops.waivers import WaiverSet

    waivers = WaiverSet.load(inv, None)
    new_run, new_results = reaudit(
        store, inv, str(inv_path), registry, touched, original=run_id, tofu_file=tofu_file, waive=waivers.apply
    )
    still = sorted({(r.target, r.check_id) for r in new_results if r.status.value == "FAIL"})
    fixed = sum(len(ids) for ids in touched.values()) - len(still)
    click.echo(
        f"re-audit stored as run {new_run.id}: {fixed} fixed, {len(still)} still failing "
        f"(`itops diff {run_id} {new_run.id}`)",
        err=True,
    )
    for host, check_id in still:
        click.echo(f"  still failing: {safe_comment(host)}: {check_id}", err=True)
    return ExitStatus.FAILURES if still or failed else ExitStatus.OK


def _file_name(host: str) -> str:
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in host)
    return safe.lstrip(".") or "host"
