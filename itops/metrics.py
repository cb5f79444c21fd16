"""Prometheus textfile metrics of audits and DR drills (node_exporter's textfile collector).

Built with prometheus_client's own exposition (a :class:`CollectorRegistry` of gauges rendered
by ``generate_latest``) and written like :mod:`itops.backup.metrics` does for backups, through
:func:`write_textfile` (temp file beside the target, then rename: node_exporter never reads half a
file; mode 0600). No client-side timestamps: node_exporter rejects textfiles that carry them.

prometheus_client is imported inside the functions: only ``--prom-file`` needs it.

Audit metrics describe one run (``itops audit --prom-file``) plus the last successful run of
the same inventory from the store; drill metrics describe the newest drill of every playbook
in the store's drill history, so one file serves a host that drills several playbooks.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from itops.model import Result, Run, Severity, Status

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from itops.playbook.drill import DrillRecord
    from itops.store import Store

#: How many stored runs are searched for the last successful one (bounded work per write).
HISTORY_LOOKBACK = 1000


def write_textfile(path: Path, registry: CollectorRegistry) -> None:
    """Write ``registry`` in the text exposition format to ``path``: atomically, mode 0600, never
    through a symlink (:func:`itops.fsutil.write_private_atomic`; prometheus_client's own
    ``write_to_textfile`` uses a predictable temp name and follows symlinks)."""
    from prometheus_client import generate_latest

    from itops.fsutil import write_private_atomic

    write_private_atomic(path, generate_latest(registry))


def last_success(store: Store, run: Run) -> float | None:
    """When the newest complete run of ``run``'s kind and inventory exited 0 (this one included)."""
    for r in store.list_runs(limit=HISTORY_LOOKBACK, kind=run.kind):
        if r.inventory == run.inventory and r.state == "complete" and r.exit_code == 0:
            return r.finished or r.started
    return None


def audit_registry(run: Run, results: Iterable[Result], last_success_at: float | None) -> CollectorRegistry:
    """The metrics of one audit run.

    ``itops_audit_control_pass_ratio`` is PASS / (PASS + FAIL + WAIVED) of the results that cite a
    control, as the run report's score and ``itops trends`` (a waived failure is an accepted risk,
    not a pass), as a 0-1 ratio; skipped and not-assessed results are left out (they are in
    ``itops_audit_results``).
    """
    from prometheus_client import CollectorRegistry, Gauge

    reg = CollectorRegistry()
    by_status = Gauge(
        "itops_audit_results",
        "Results of the last audit run by status and severity.",
        ["status", "severity"],
        registry=reg,
    )
    failing = Gauge(
        "itops_audit_failing_checks",
        "Checks failing (not waived) on each target in the last audit run.",
        ["target"],
        registry=reg,
    )
    ratio = Gauge(
        "itops_audit_control_pass_ratio",
        "Share of passing results among passing and failing ones, per framework control.",
        ["framework", "control"],
        registry=reg,
    )
    duration = Gauge("itops_audit_run_duration_seconds", "Duration of the last audit run.", registry=reg)
    last_run = Gauge("itops_audit_last_run_timestamp_seconds", "When the last audit run finished.", registry=reg)

    counts: dict[tuple[str, str], int] = {(s.value, v.value): 0 for s in Status for v in Severity}
    fails: dict[str, set[tuple[str, str]]] = {}
    controls: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for r in results:
        counts[(r.status.value, r.severity.value)] += 1
        fails.setdefault(r.target, set())
        if r.status is Status.FAIL:
            fails[r.target].add((r.check_id, r.resource))
        if r.status in (Status.PASS, Status.FAIL, Status.WAIVED):
            for framework, refs in r.frameworks.items():
                for control in refs:
                    controls[(framework, control)][r.status is Status.PASS] += 1
    for (status, severity), n in counts.items():
        by_status.labels(status, severity).set(n)
    for target, failed in sorted(fails.items()):
        failing.labels(target).set(len({check for check, _ in failed}))
    for (framework, control), (failed_n, passed_n) in sorted(controls.items()):
        ratio.labels(framework, control).set(passed_n / (passed_n + failed_n))
    finished = run.finished or run.started
    duration.set(max(0.0, finished - run.started))
    last_run.set(finished)
    # a label-less gauge always exposes a sample: register these only with a value (0 would read as 1970)
    if run.exit_code is not None:
        Gauge(
            "itops_audit_exit_code", "Exit code of the last audit run (0 ok, 1 failures, 3 incomplete).", registry=reg
        ).set(run.exit_code)
    if last_success_at is not None:
        Gauge(
            "itops_audit_last_success_timestamp_seconds",
            "When an audit of this inventory last finished with exit code 0.",
            registry=reg,
        ).set(last_success_at)
    return reg


def drill_registry(records: Iterable[DrillRecord]) -> CollectorRegistry:
    """The metrics of the newest drill of each playbook (``records`` newest first, as drill_history)."""
    from prometheus_client import CollectorRegistry, Gauge

    reg = CollectorRegistry()
    labels = ["playbook"]
    ok = Gauge(
        "itops_drill_success", "1 when the newest drill of the playbook succeeded, else 0.", labels, registry=reg
    )
    achieved = Gauge(
        "itops_drill_rto_achieved_seconds",
        "Recovery time the newest drill achieved (none: it stopped).",
        labels,
        registry=reg,
    )
    target = Gauge("itops_drill_rto_target_seconds", "The playbook's recovery time objective.", labels, registry=reg)
    met = Gauge("itops_drill_rto_met", "1 when the newest drill achieved the RTO target, else 0.", labels, registry=reg)
    duration = Gauge("itops_drill_duration_seconds", "Duration of the newest drill.", labels, registry=reg)
    last_run = Gauge(
        "itops_drill_last_run_timestamp_seconds", "When the newest drill of the playbook started.", labels, registry=reg
    )
    last_ok = Gauge(
        "itops_drill_last_success_timestamp_seconds",
        "When a drill of the playbook last succeeded.",
        labels,
        registry=reg,
    )
    seen: set[str] = set()
    succeeded: set[str] = set()
    for rec in records:
        name = rec.playbook
        if name not in seen:
            seen.add(name)
            ok.labels(name).set(1 if rec.success else 0)
            last_run.labels(name).set(rec.started)
            if rec.finished is not None:
                duration.labels(name).set(max(0.0, rec.finished - rec.started))
            if rec.rto is not None:
                target.labels(name).set(rec.rto)
            if rec.achieved_rto is not None:
                achieved.labels(name).set(rec.achieved_rto)
            met.labels(name).set(
                1 if rec.achieved_rto is not None and rec.rto is not None and rec.achieved_rto <= rec.rto else 0
            )
        if rec.success and name not in succeeded:
            succeeded.add(name)
            last_ok.labels(name).set(rec.finished or rec.started)
    return reg
