"""Backup metrics: a per-backup record in the run store, and the node_exporter textfile made from it.

``<store>/state/backups.json`` keeps, per backup, what the last verification saw (status,
newest copy time and size, last success, last restore). The ``--prom-file`` textfile is
written from that record for every backup still in the inventory, so a run limited to a
few backups does not drop the others' metrics. Ages are computed when the file is written.

The textfile is rendered with prometheus_client's ``generate_latest`` and written by
:func:`itops.fsutil.write_private_atomic` (mode 0600, an unpredictable temp file in the same
folder, fsync, rename: node_exporter never reads half a file, and a symlink planted at the
path or at a guessable temp name is never written through; prometheus_client's own
``write_to_textfile`` uses a predictable ``PATH.<pid>.<thread>`` temp name and follows
symlinks). It carries no client-side timestamps (node_exporter rejects textfiles that do).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from itops.backup.verify import BackupOutcome
from itops.fsutil import ensure_private_dir, write_private_atomic

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Gauge
from itops.model import Status

STATES = ("pass", "fail", "error")
LABELS = ("backup", "kind")


def state_file(state_dir: Path) -> Path:
    return state_dir / "backups.json"


def load_records(state_dir: Path | None) -> dict[str, dict[str, Any]]:
    if state_dir is None:
        return {}
    try:
        data = json.loads(state_file(state_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}


def backup_status(outcome: BackupOutcome) -> str:
    """pass, fail (a FAIL that no waiver covers) or error (not assessed)."""
    statuses = {r.status for r in outcome.results}
    if Status.FAIL in statuses:
        return "fail"
    if statuses & {Status.ERROR, Status.UNREACHABLE}:
        return "error"
    return "pass"


def update_records(
    records: dict[str, dict[str, Any]], outcomes: Iterable[BackupOutcome], verified_at: float
) -> dict[str, dict[str, Any]]:
    """Fold this run's outcomes into the per-backup records (returns ``records``)."""
    for o in outcomes:
        f = o.facts
        rec = records.setdefault(o.backup, {})
        status = backup_status(o)
        rec.update(kind=f.kind, rpo=f.rpo, status=status, last_verified=verified_at)
        if status == "pass":
            rec["last_success"] = verified_at
        newest = f.newest()
        if newest is not None:
            rec.update(newest_created=newest.created, size=newest.size, copies=len(f.copies))
        elif not f.observations.get("copies") or not f.observations["copies"].error:
            rec.update(newest_created=None, size=None, copies=0)
        r = f.restore
        if r is not None:
            rec.update(restore_ok=r.ok, restore_at=verified_at, restore_seconds=r.seconds, rto=r.rto)
    return records


def save_records(state_dir: Path, records: Mapping[str, Any]) -> None:
    ensure_private_dir(state_dir)
    write_private_atomic(state_file(state_dir), json.dumps(records, indent=2, sort_keys=True) + "\n")


def build_registry(
    records: Mapping[str, Mapping[str, Any]], now: float, only: Iterable[str] | None = None
) -> CollectorRegistry:
    """The metrics of ``records`` (restricted to the backup names in ``only``)."""
    # imported here: only --prom-file needs prometheus_client
    from prometheus_client import CollectorRegistry, Gauge
    from prometheus_client import Enum as EnumMetric

    reg = CollectorRegistry()

    def gauge(name: str, doc: str) -> Gauge:
        return Gauge(name, doc, LABELS, registry=reg)

    last_success = gauge(
        "itops_backup_last_success_timestamp_seconds", "When a verification of the backup last passed."
    )
    last_verified = gauge("itops_backup_last_verification_timestamp_seconds", "When the backup was last verified.")
    age = gauge("itops_backup_age_seconds", "Age of the newest copy of the backup.")
    rpo = gauge("itops_backup_rpo_seconds", "The backup's recovery point objective.")
    size = gauge("itops_backup_size_bytes", "Size of the newest copy of the backup.")
    copies = gauge("itops_backup_copies", "Number of copies of the backup found.")
    restore = gauge("itops_backup_restore_duration_seconds", "Duration of the last restore test.")
    restore_ok = gauge("itops_backup_restore_success", "1 when the last restore test passed, else 0.")
    rto = gauge("itops_backup_rto_seconds", "The backup's recovery time objective (restore_test.rto).")
    status = EnumMetric(
        "itops_backup_status",
        "Outcome of the last verification of the backup.",
        LABELS,
        states=list(STATES),
        registry=reg,
    )
    wanted = set(only) if only is not None else None
    for name, rec in sorted(records.items()):
        if wanted is not None and name not in wanted:
            continue
        labels = (name, str(rec.get("kind", "")))
        if rec.get("status") in STATES:
            status.labels(*labels).state(rec["status"])
        if rec.get("last_verified") is not None:
            last_verified.labels(*labels).set(float(rec["last_verified"]))
        if rec.get("last_success") is not None:
            last_success.labels(*labels).set(float(rec["last_success"]))
        if rec.get("rpo") is not None:
            rpo.labels(*labels).set(float(rec["rpo"]))
        if rec.get("newest_created") is not None:
            age.labels(*labels).set(max(0.0, now - float(rec["newest_created"])))
        if rec.get("size") is not None:
            size.labels(*labels).set(float(rec["size"]))
        if rec.get("copies") is not None:
            copies.labels(*labels).set(float(rec["copies"]))
        if rec.get("restore_seconds") is not None:
            restore.labels(*labels).set(float(rec["restore_seconds"]))
        if rec.get("restore_ok") is not None:
            restore_ok.labels(*labels).set(1.0 if rec["restore_ok"] else 0.0)
        if rec.get("rto") is not None:
            rto.labels(*labels).set(float(rec["rto"]))
    return reg


def write_prom_file(path: Path, records: Mapping[str, Mapping[str, Any]], now: float, only: Iterable[str]) -> None:
    """Write the textfile atomically, mode 0600, never through a symlink (see the module docstring)."""
    from itops.metrics import write_textfile

    write_textfile(path, build_registry(records, now, only))
