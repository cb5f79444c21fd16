"""``itops checks``: what checks exist and what each verifies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from itops import frameworks as fw_catalogues
from itops.checkapi import Check
from itops.model import frameworks_doc
from itops.registry import Registry, load_registry

checks_dir_option = click.option(
    "--checks-dir",
    "checks_dirs",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Extra folder of user checks (repeatable).",
)


def check_to_dict(check: Check) -> dict[str, Any]:
    meta = check.meta
    return {
        "id": meta.id,
        "title": meta.title,
        "severity": meta.severity.value,
        "target": meta.target,
        "os_families": list(meta.os_families),
        "rationale": meta.rationale,
        "remediation": check.remediation_for(),  # with the default parameters
        "frameworks": frameworks_doc(meta.frameworks),
        "params": meta.params,
        "probes": [{"name": p.name, "command": p.render(meta.params)} for p in check.probes],
        "collections": list(check.collections),
        "iam_actions": list(meta.iam_actions),
        "description": check.description,
        "source": check.source,
        "fix": _fix_dict(check),
    }


def _digest_note(command: str) -> str:
    """For a probe that results name by digest (itops.runner.probe_source), that digest."""
    from itops.runner import probe_digest, probe_source

    return f" ({probe_digest(command)})" if probe_source("", command) != command else ""


def _fix_dict(check: Check) -> dict[str, Any] | None:
    """The check's automatic fix: its kind (auto, auto (risky), manual) and the sh it writes with default params."""
    fix = check.meta.fix
    if fix is None:
        return None
    from itops.remediate.render import example_sh

    return {
        "kind": fix.summary(),
        "risk": fix.risk,
        "manual": fix.manual,
        "note": fix.note,
        "sh": [] if fix.manual else example_sh(check),
    }


def _load(checks_dirs: tuple[Path, ...]) -> Registry:
    registry = load_registry(checks_dirs)
    for w in registry.warnings:
        click.echo(f"warning: {w}", err=True)
    return registry


@click.group()
def checks() -> None:
    """List and describe checks."""


@checks.command("list")
@checks_dir_option
@click.option(
    "--target", type=click.Choice(["host", "aws", "backup", "dr"]), default=None, help="Only this target kind."
)
@click.option(
    "--framework",
    type=click.Choice(fw_catalogues.CHOICES),
    default=None,
    help="Only checks mapped to it (cis: every CIS catalogue); show the catalogue, version and ids.",
)
@click.option("--checks", "patterns", multiple=True, help="Glob(s) of check ids.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
def list_checks(
    checks_dirs: tuple[Path, ...], target: str | None, framework: str | None, patterns: tuple[str, ...], fmt: str
) -> None:
    """Every loaded check (built-in packs, --checks-dir folders, plugins)."""
    registry = _load(checks_dirs)
    registry.require_matches(list(patterns))
    chosen = registry.select(list(patterns), target)

    def refs_of(c: Check) -> list[str]:
        return [
            f"{fw_catalogues.label(k)}: {', '.join(v)}"
            for k, v in c.meta.frameworks.items()
            if v and fw_catalogues.matches(k, framework)
        ]

    if framework:
        chosen = [c for c in chosen if refs_of(c)]
    if fmt == "json":
        click.echo(json.dumps([check_to_dict(c) for c in chosen], indent=2))
        return
    width = max([len(c.id) for c in chosen] + [2])
    for c in chosen:
        refs = f"  [{'; '.join(refs_of(c))}]" if framework else ""
        # a host check with no fix declared is fixed by hand (its remediation), like a declared manual one
        fix = c.meta.fix.summary() if c.meta.fix else "manual" if c.meta.target == "host" else "-"
        click.echo(f"{c.id:<{width}}  {c.meta.severity.value:<8}  {c.meta.target:<6}  {fix:<12}  {c.meta.title}{refs}")
    click.echo(f"{len(chosen)} check(s)", err=True)


@checks.command("show")
@click.argument("check_id")
@checks_dir_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def show_check(check_id: str, checks_dirs: tuple[Path, ...], fmt: str) -> None:
    """Everything about one check: rationale, fix, framework controls, params, probes."""
    d = check_to_dict(_load(checks_dirs).get(check_id))
    if fmt == "json":
        click.echo(json.dumps(d, indent=2))
        return
    out = [
        f"{d['id']}: {d['title']}",
        f"  severity:    {d['severity']}",
        f"  target:      {d['target']}" + (f" ({', '.join(d['os_families'])})" if d["os_families"] else ""),
        "  frameworks:  " + "; ".join(f"{fw_catalogues.label(k)}: {', '.join(v)}" for k, v in d["frameworks"].items()),
        "",
        "Rationale:",
        "  " + d["rationale"].strip(),
        "",
        "Remediation:",
        *("  " + line for line in d["remediation"].strip().splitlines()),
    ]
    if d["fix"]:
        fix = d["fix"]
        out += ["", f"Automatic fix ({fix['kind']}; `itops remediate RUN_ID` writes it):"]
        out += [f"  manual: {fix['manual']}"] if fix["manual"] else [f"  {line}" for line in fix["sh"]]
        out += [f"  note: {fix['note']}"] if fix["note"] else []
    if d["params"]:
        out += ["", "Parameters (override with inventory vars of the same name):"]
        out += [f"  {k} = {json.dumps(v)}" for k, v in d["params"].items()]
    if d["probes"]:
        out += ["", "Probes (run in one batched script per host):"]
        out += [f"  {p['name']}{_digest_note(p['command'])}: {p['command']}" for p in d["probes"]]
    if d["iam_actions"]:
        out += ["", f"AWS API collections: {', '.join(d['collections'])}", "IAM actions needed (read-only):"]
        out += [f"  {a}" for a in d["iam_actions"]]
    out += ["", f"Source: {d['source']}"]
    click.echo("\n".join(out))
