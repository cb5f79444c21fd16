"""The restore proof report (``itops report --restore-proof``): every restore test of a period, for auditors.

For each restore test in the stored backup runs of the window: when, which backup, what was restored
and verified (files, checksums, SQL queries, as the verifier recorded them), how long it took against
the RTO, and — for a failure — the follow-up run in which the same backup's restore passed again (or
that none did yet). Each entry names its run's manifest digest and whether the run verified, so the
reader can check the evidence was not edited (``itops runs verify``).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from itops.model import Run, Status
from itops.report.data import Integrity, check_integrity, printable
from itops.report.templating import md_inline
from itops.store import Store

RESTORE_CHECK = "backup.restore_test_passed"
RTO_CHECK = "backup.restore_within_rto"


@dataclass
class RestoreTest:
    """One backup's restore test in one run."""

    run_id: str
    started: float
    backup: str
    status: str
    message: str
    verified: str = ""
    duration: str = ""
    rto: str = ""
    rto_status: str = ""
    follow_up: str | None = None  # run id where this backup's restore passed again
    follow_up_started: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "started": self.started,
            "backup": self.backup,
            "status": self.status,
            "message": self.message,
            "verified": self.verified,
            "duration": self.duration,
            "rto": self.rto,
            "rto_status": self.rto_status,
            "follow_up": self.follow_up,
            "follow_up_started": self.follow_up_started,
        }


@dataclass
class RestoreProof:
    since: float
    generated: float
    tests: list[RestoreTest] = field(default_factory=list)
    runs: dict[str, Integrity] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "since": self.since,
            "generated": self.generated,
            "tests": [t.to_dict() for t in self.tests],
            "runs": {rid: i.to_dict() for rid, i in self.runs.items()},
            "passed": sum(1 for t in self.tests if t.status == Status.PASS.value),
            "failed": sum(1 for t in self.tests if t.status != Status.PASS.value),
        }


def collect_restore_proof(store: Store, since: float, now: float | None = None) -> RestoreProof:
    """Every restore test of the backup runs started at or after ``since``, oldest first."""
    proof = RestoreProof(since=since, generated=time.time() if now is None else now)
    runs: list[Run] = sorted(
        (r for r in store.list_runs(limit=100_000, kind="backup") if r.started >= since),
        key=lambda r: (r.started, r.id),
    )
    for run in runs:
        tests: dict[str, RestoreTest] = {}
        for result in store.iter_results(run.id):
            if result.check_id == RESTORE_CHECK and result.status is not Status.SKIPPED:
                tests[result.target] = RestoreTest(
                    run_id=run.id,
                    started=run.started,
                    backup=result.target,
                    status=result.status.value,
                    message=result.message,
                    verified=result.evidence.observed,
                )
            elif result.check_id == RTO_CHECK:
                test = tests.setdefault(
                    result.target, RestoreTest(run.id, run.started, result.target, "", result.message)
                )
                test.duration = result.evidence.observed
                test.rto = result.evidence.expected
                test.rto_status = result.status.value
        kept = [t for t in tests.values() if t.status]
        if kept:
            proof.tests.extend(sorted(kept, key=lambda t: t.backup))
            proof.runs[run.id] = check_integrity(store, run.id)
    # A failure's follow-up: the next run where the same backup's restore test passed.
    for i, test in enumerate(proof.tests):
        if test.status == Status.PASS.value:
            continue
        later = next(
            (t for t in proof.tests[i + 1 :] if t.backup == test.backup and t.status == Status.PASS.value), None
        )
        if later is not None:
            test.follow_up, test.follow_up_started = later.run_id, later.started
    return proof


def _when(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts))


def render_restore_proof_markdown(proof: RestoreProof) -> str:
    doc = proof.to_dict()
    lines = [
        "# Restore proof",
        "",
        f"Restore tests from {_when(proof.since)} to {_when(proof.generated)}: "
        f"{doc['passed']} passed, {doc['failed']} failed.",
        "",
        "| When | Backup | Result | Verified | Duration | RTO | Follow-up | Run (manifest) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for t in proof.tests:
        integrity = proof.runs.get(t.run_id)
        seal = "not verifiable"
        if integrity is not None:
            state = "verified" if integrity.verified else "NOT VERIFIED"
            seal = f"{state} {integrity.manifest_digest}".strip()
        follow = (
            "" if t.status == Status.PASS.value else (f"passed again in {t.follow_up}" if t.follow_up else "none yet")
        )
        verdict = t.status if t.status == Status.PASS.value else f"{t.status}: {t.message}"
        cells = [
            _when(t.started),
            t.backup,
            verdict,
            t.verified,
            t.duration,
            f"{t.rto} {t.rto_status}".strip(),
            follow,
            f"{t.run_id} ({seal})",
        ]
        lines.append("| " + " | ".join(str(md_inline(printable(c) or "-")) for c in cells) + " |")
    if not proof.tests:
        lines.append("| - | no restore tests in the period | | | | | | |")
    lines.append("")
    return "\n".join(lines)


def render_restore_proof_json(proof: RestoreProof) -> str:
    return json.dumps({"schema": "itops.restore-proof/1", **proof.to_dict()}, indent=2, ensure_ascii=False) + "\n"


def render_restore_proof_html(proof: RestoreProof) -> str:
    from itops import __version__
    from itops.report.html import CSP
    from itops.report.templating import render_template
    from itops.report.views import STATUS_ORDER

    return render_template(
        "restore_proof.html.j2",
        None,
        proof=proof,
        data=proof.to_dict(),
        csp=CSP,
        itops_version=__version__,
        statuses=[s.value for s in STATUS_ORDER],
    )


def render_restore_proof(proof: RestoreProof, fmt: str) -> str:
    """``fmt``: md, json or html."""
    if fmt == "json":
        return render_restore_proof_json(proof)
    if fmt == "html":
        return render_restore_proof_html(proof)
    return render_restore_proof_markdown(proof)
