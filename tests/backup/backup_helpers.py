"""Helpers of the backup tests: inventories, running the verifier (API and CLI), reading results."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from itops.backup.options import backup_options
from itops.backup.verify import BackupOutcome, BackupVerifier, VerifyOptions, select_backups
from itops.cli.main import cli
from itops.inventory import load_inventory
from itops.model import Status
from itops.registry import load_registry
from itops_lab import Fleet

_REGISTRY = None


def write_inventory(path: Path, fleet: Fleet | None, backups: dict[str, Any], **extra: Any) -> Path:
    """The fleet's inventory (or a bare one) with ``backups`` and ``extra`` top-level sections."""
    doc: dict[str, Any] = fleet.inventory() if fleet is not None else {"version": 1}
    doc["backups"] = backups
    doc.update(extra)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def backup_checks() -> list[Any]:
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = load_registry(entry_point_packs=False)
    return _REGISTRY.select(None, target="backup")


def verify(inventory: Path, limits: Sequence[str] = (), **opts: Any) -> dict[str, BackupOutcome]:
    """Run the verifier in-process on an inventory; outcomes by backup name."""
    inv = load_inventory(inventory)
    options = backup_options(inv)
    verifier = BackupVerifier(
        "test-run", inv, select_backups(inv, list(limits)), backup_checks(), options, VerifyOptions(**opts)
    )
    return {o.backup: o for o in verifier.run()}


def by_check(outcome: BackupOutcome) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for r in outcome.results:
        out.setdefault(r.check_id, []).append(r)
    return out


#: Checks judged over earlier runs (forecasts): one verification of a fresh store has no history for them.
FORECAST_CHECKS = frozenset(
    c.id for c in load_registry(entry_point_packs=False).select(None, target="backup") if c.meta.history
)


def statuses(outcome: BackupOutcome) -> dict[str, set[str]]:
    """Statuses per check of one verification; forecast checks (no history yet) are checked apart."""
    by = by_check(outcome)
    for cid in FORECAST_CHECKS & set(by):
        assert all(r.status.value == "SKIPPED" and r.message.startswith("not enough history") for r in by[cid]), by[cid]
    return {cid: {r.status.value for r in rs} for cid, rs in by.items() if cid not in FORECAST_CHECKS}


def failures(outcomes: dict[str, BackupOutcome]) -> dict[tuple[str, str], str]:
    """(backup, check) -> message of every FAIL."""
    return {(r.target, r.check_id): r.message for o in outcomes.values() for r in o.results if r.status is Status.FAIL}


def not_assessed(outcomes: dict[str, BackupOutcome]) -> list[str]:
    return [
        f"{r.target} {r.check_id}: {r.status.value} {r.message}"
        for o in outcomes.values()
        for r in o.results
        if r.status in (Status.ERROR, Status.UNREACHABLE)
    ]


def run_cli(*args: str) -> tuple[int, dict[str, Any], str, str]:
    """``itops backup verify ... `` in-process; (exit code, JSON doc or {}, stdout, stderr)."""
    res = CliRunner().invoke(cli, ["backup", "verify", *args], catch_exceptions=False)
    out = res.stdout
    doc = json.loads(out) if out.strip().startswith("{") else {}
    return res.exit_code, doc, out, res.stderr
