"""``itops aws``: AWS helpers; ``itops aws policy`` prints the audit's minimal read-only IAM policy."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click

from itops.checkapi import Check
from itops.cli.checks_cmd import checks_dir_option
from itops.errors import UsageError
from itops.registry import load_registry

#: Always needed: the preflight of every account.
PREFLIGHT_ACTIONS = ("sts:GetCallerIdentity",)
#: What a read-only action's name starts with (GenerateCredentialReport only builds a report to read).
READ_ONLY_PREFIXES = ("Get", "List", "Describe", "GenerateCredentialReport")


def policy_document(checks: Iterable[Check]) -> dict[str, Any]:
    """A minimal IAM policy allowing exactly the read actions of ``checks`` plus the preflight."""
    actions = sorted({*PREFLIGHT_ACTIONS, *(a for c in checks for a in c.meta.iam_actions)})
    return {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "ItopsAuditReadOnly", "Effect": "Allow", "Action": actions, "Resource": "*"}],
    }


def is_read_only(action: str) -> bool:
    """True for ``service:Get*/List*/Describe*`` and GenerateCredentialReport."""
    _, _, name = action.partition(":")
    return name.startswith(READ_ONLY_PREFIXES)


@click.group()
def aws() -> None:
    """AWS audit helpers."""


@aws.command("policy")
@checks_dir_option
@click.option("--checks", "patterns", multiple=True, help="Check id glob(s), e.g. 'aws.s3.*' (default: all aws).")
def policy(checks_dirs: tuple[Path, ...], patterns: tuple[str, ...]) -> None:
    """Print the minimal read-only IAM policy the selected AWS checks need (JSON on stdout)."""
    registry = load_registry(checks_dirs)
    for w in registry.warnings:
        click.echo(f"warning: {w}", err=True)
    chosen = registry.select(list(patterns), target="aws")
    if not chosen:
        raise UsageError(
            f"no aws check matches {', '.join(patterns) or '*'}", hint="see `itops checks list --target aws`"
        )
    doc = policy_document(chosen)
    writes = [a for a in doc["Statement"][0]["Action"] if not is_read_only(a)]
    for action in writes:  # only a user pack can bring these; say so rather than hide it
        click.echo(f"warning: {action} is not a read-only action (from a user check)", err=True)
    click.echo(json.dumps(doc, indent=2))
    click.echo(f"{len(chosen)} check(s), {len(doc['Statement'][0]['Action'])} action(s)", err=True)
