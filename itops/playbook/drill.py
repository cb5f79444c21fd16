"""A DR drill: run a playbook's steps in order, stop at the first failure, roll back, record it as a run.

The drill is an ordinary run of kind ``drill`` in the run store: one result per step
(``dr.step``; rollback steps ``dr.rollback``; steps never reached SKIPPED) with its timing
and evidence, then ``dr.rto_met``: the achieved recovery time (first step start to last
step end, operator waits included, as in a real recovery) against the playbook's RTO.
``drill.json`` beside ``results.jsonl`` keeps the playbook's name, path, digest and targets
for ``itops dr history`` and the ``dr.drill_recent`` check.

When step k fails, the rollback steps of the completed steps k-1 .. 1 run, newest first: a
rollback undoes a step that completed (the failed step's own rollback does not run). A
rollback that fails is recorded and the remaining rollbacks still run; rollbacks also run
when the drill is interrupted (SIGTERM/SIGINT), since they make the systems safe again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from itops import __version__
from itops.exitcodes import ExitStatus
from itops.fsutil import write_private_atomic
from itops.inventory import Inventory, target_lines
from itops.model import Evidence, Result, Run, Severity, Status
from itops.playbook.schema import Playbook, Step
from itops.playbook.steps import StepResult, StepRunner
from itops.redact import redact_data
from itops.session import ResultStream, RunSession
from itops.store import Store, new_run_id

FRAMEWORKS = {"nist-800-53": ("CP-4", "CP-10"), "iso-27001": ("A.5.30", "A.8.14")}
DRILL_FILE = "drill.json"


@dataclass
class StepRecord:
    index: str
    name: str
    action: str
    status: str
    message: str
    started: float
    seconds: float
    attempts: int

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


@dataclass
class DrillOutcome:
    """A finished drill: the stored run (its results are in the store), step records, the verdict."""

    run: Run
    steps: list[StepRecord]
    rollbacks: list[StepRecord]
    achieved_rto: float | None
    failed_step: str | None
    exit_code: ExitStatus
    interrupted: bool = False
    meta: dict[str, Any] = field(default_factory=dict)
    output_closed: bool = False  # the reader of --format json went away (the CLI exits 141)

    @property
    def success(self) -> bool:
        return self.exit_code is ExitStatus.OK


def _result(run_id: str, pb: Playbook, check_id: str, step: Step | None, res: StepResult, title: str) -> Result:
    resource = f"step {step.index}: {step.name}" if step is not None else ""
    return Result(
        run_id=run_id,
        check_id=check_id,
        target=pb.name,
        resource=resource,
        status=res.status,
        severity=Severity.HIGH,
        title=title,
        message=res.message,
        evidence=Evidence(source=res.source, excerpt=res.output, observed=res.observed, expected=res.expected),
        frameworks=FRAMEWORKS,
        remediation=f"Fix what made this step fail, then drill {pb.path.name} again (owner: {pb.owner}).",
        started=res.started,
        duration=res.seconds,
    )


def _record(step: Step, res: StepResult) -> StepRecord:
    return StepRecord(
        step.index,
        step.name,
        step.action,
        res.status.value,
        res.message,
        res.started,
        round(res.seconds, 3),
        res.attempts,
    )


class Drill:
    """One drill of one playbook; :meth:`run` executes it and records the run."""

    def __init__(
        self,
        playbook: Playbook,
        inventory: Inventory | None,
        runner: StepRunner,
        store: Store,
        *,
        inventory_path: Path | None = None,
        on_step: Callable[[Step, StepResult | None], None] | None = None,
    ) -> None:
        self.pb = playbook
        self.inv = inventory
        self.runner = runner
        self.store = store
        self.inventory_path = inventory_path
        self.on_step = on_step or (lambda step, res: None)
        self.run_id = new_run_id()

    def interrupt(self) -> None:
        self.runner.interrupt()

    def run(self, stream: ResultStream | None = None) -> DrillOutcome:
        """Run the drill as a :class:`~itops.session.RunSession` (SIGINT/SIGTERM roll back and record it
        as interrupted); ``stream`` receives the results as they are stored (``--format json``)."""
        pb = self.pb
        run = Run(
            id=self.run_id,
            kind="drill",
            started=time.time(),
            inventory=str(self.inventory_path or ""),
            inventory_digest=self.inv.digest if self.inv else "",
            inventory_lines=target_lines(self.inv) if self.inv else {},
            version=__version__,
        )
        # every FAIL counts, whatever its severity; host keys are the step runner's, filled as it connects
        session = RunSession(self.store, run, fail_on=Severity.INFO, stream=stream, host_keys=self.runner.host_keys)
        steps: list[StepRecord] = []
        rollbacks: list[StepRecord] = []
        failed: Step | None = None
        done: list[Step] = []
        t_start = time.monotonic()
        t_end = t_start
        try:
            with session.recording(self.interrupt, "rolling back"):
                for i, step in enumerate(pb.steps):
                    if self.runner.stop.is_set():  # interrupted between two steps
                        failed = step
                        self._skip_rest(session, pb.steps[i:], step, "the drill was interrupted before it")
                        break
                    self.on_step(step, None)
                    res = self.runner.run(step)
                    t_end = time.monotonic()
                    self.on_step(step, res)
                    session.add([_result(run.id, pb, "dr.step", step, res, f"{step.action} step")])
                    steps.append(_record(step, res))
                    if res.status is not Status.PASS:
                        failed = step
                        self._skip_rest(session, pb.steps[i + 1 :], step)
                        break
                    done.append(step)
                if failed is not None:
                    rollbacks = self._roll_back(session, done, failed)
                achieved = (t_end - t_start) if failed is None else None
                session.add([self._rto_result(run.id, achieved, failed)])
        finally:
            self.runner.close()
        # stopped by a signal or not: the runner's stop flag says whether the drill ran to its end
        session.interrupted = interrupted = self.runner.stop.is_set()
        # an interrupted drill proves nothing either way: INCOMPLETE even with a failed step; one that
        # stopped at a failed step is never OK
        code = ExitStatus.INCOMPLETE if interrupted else session.status(incomplete=failed is not None)
        meta = {
            "schema": "itops.drill/1",
            "playbook": pb.name,
            "path": str(pb.path.resolve()),
            "digest": pb.digest,
            "description": pb.description,
            "systems": list(pb.systems),
            "owner": pb.owner,
            "rto": pb.rto,
            "rpo": pb.rpo,
            "achieved_rto": round(achieved, 3) if achieved is not None else None,
            "success": code is ExitStatus.OK,
            "failed_step": failed.label if failed is not None else None,
            "steps": [s.to_dict() for s in steps],
            "rollbacks": [r.to_dict() for r in rollbacks],
        }
        path = self.store.run_dir(run.id) / DRILL_FILE
        write_private_atomic(path, json.dumps(redact_data(meta), indent=2))  # step messages quote outputs
        finished = session.finish(code)
        return DrillOutcome(
            finished.run,
            steps,
            rollbacks,
            achieved,
            failed.label if failed is not None else None,
            code,
            interrupted,
            meta,
            output_closed=finished.output_closed,
        )

    def _skip_rest(self, session: RunSession, rest: Sequence[Step], failed: Step, why: str = "") -> None:
        for step in rest:
            reason = why or f"the drill stopped at step {failed.label}"
            res = StepResult(Status.SKIPPED, f"not run: {reason}", started=time.time())
            session.add([_result(session.run.id, self.pb, "dr.step", step, res, f"{step.action} step")])

    def _roll_back(self, session: RunSession, done: Sequence[Step], failed: Step) -> list[StepRecord]:
        records: list[StepRecord] = []
        stopped = self.runner.stop.is_set()
        self.runner.stop.clear()  # rollbacks make the systems safe again: they run even when interrupted
        for step in reversed(done):
            for rb in step.rollback:
                self.on_step(rb, None)
                res = self.runner.run(rb)
                res.message = f"{res.message} [undoing step {step.label} after step {failed.label} failed]"
                self.on_step(rb, res)
                session.add([_result(session.run.id, self.pb, "dr.rollback", rb, res, f"rollback {rb.action}")])
                records.append(_record(rb, res))
        if stopped:
            self.runner.stop.set()
        return records

    def _rto_result(self, run_id: str, achieved: float | None, failed: Step | None) -> Result:
        pb = self.pb
        expected = f"<= {_dur(pb.rto)}"
        if achieved is None:
            assert failed is not None
            res = StepResult(
                Status.SKIPPED,
                f"RTO not measured: the drill stopped at step {failed.label}",
                expected=expected,
                started=time.time(),
            )
        elif achieved <= pb.rto:
            res = StepResult(
                Status.PASS,
                f"recovered in {_dur(achieved)}, within the RTO of {_dur(pb.rto)}",
                observed=_dur(achieved),
                expected=expected,
                started=time.time(),
            )
        else:
            res = StepResult(
                Status.FAIL,
                f"recovered in {_dur(achieved)}, over the RTO of {_dur(pb.rto)}",
                observed=_dur(achieved),
                expected=expected,
                started=time.time(),
            )
        result = _result(run_id, pb, "dr.rto_met", None, res, "The drill recovered within the RTO")
        return result


def _dur(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{sec:02d}s" if hours else f"{minutes}m{sec:02d}s"


# --- the plan (dry run) ----------------------------------------------------------------------------


def render_plan(pb: Playbook, runner: StepRunner) -> str:
    """What a drill would do, step by step, with hosts and commands resolved; touches nothing."""
    lines = [
        f"DRY RUN of playbook {pb.name} ({pb.path}): nothing is run, no connection is made",
        f"  {pb.description}",
        f"  systems: {', '.join(pb.systems)}; RTO {_dur(pb.rto)}, RPO {_dur(pb.rpo)}; owner {pb.owner}",
        "",
    ]
    for step in pb.steps:
        lines += _plan_step(step, runner, "")
        for rb in step.rollback:
            lines += _plan_step(rb, runner, "      on a later failure: ")
    return "\n".join(lines)


def _plan_step(step: Step, runner: StepRunner, prefix: str) -> list[str]:
    s = step.spec
    head = f"{prefix}{step.index}. {step.name} [{step.action}, timeout {_dur(step.timeout)}]"
    pad = " " * (len(prefix) + 5)
    if s.run is not None:
        assert s.host is not None
        return [head, f"{pad}on {runner.describe(s.host)}: {step.shown(s.run)}"]
    if s.local is not None:
        return [head, f"{pad}here: {step.shown(s.local)}"]
    if s.manual is not None:
        answer = runner.answers.get(step.name) or s.answer or ("yes (--yes)" if runner.yes else "asked at the prompt")
        return [head, f"{pad}prompt: {s.manual}", f"{pad}answer: {answer}"]
    if s.restore is not None:
        r = s.restore
        how = (
            f"extract the newest copy into {r.into}"
            if r.into
            else f"restore the newest dump into database {r.database}"
            if r.database
            else "restore test (scratch, verify, remove)"
        )
        return [head, f"{pad}backup {r.backup}: {how}"]
    cond = s.check or s.wait_for
    assert cond is not None
    tries = (
        f"up to {step.retries + 1} attempt(s) every {_dur(step.interval)}"
        if s.check
        else (f"poll every {_dur(step.interval)} for up to {_dur(step.timeout)}")
    )
    if cond.command is not None:
        where = f"on {runner.describe(cond.host)}" if cond.host else "here"
        want = f"rc {cond.expect_rc}" + (f", output /{cond.expect_output}/" if cond.expect_output else "")
        return [head, f"{pad}{where}: {step.shown(cond.command)}", f"{pad}expect {want}; {tries}"]
    if cond.tcp is not None:
        where = f"{cond.tcp.host} ({runner.address(cond.tcp.host)}:{cond.tcp.port})"
        return [head, f"{pad}tcp {where} {cond.tcp.state}; {tries}"]
    assert cond.http is not None
    return [head, f"{pad}HTTP GET {cond.http.url} -> {cond.http.status}; {tries}"]


# --- history -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DrillRecord:
    run_id: str
    playbook: str
    started: float
    finished: float | None
    state: str
    exit_code: int | None
    success: bool
    achieved_rto: float | None
    rto: float | None
    failed_step: str | None

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def drill_history(store: Store, limit: int = 200) -> list[DrillRecord]:
    """Past drills, newest first (bounded by ``limit``)."""
    out = []
    for run in store.list_runs(limit=limit, kind="drill"):
        try:
            meta = json.loads((store.run_dir(run.id) / DRILL_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            meta = {"playbook": "?", "success": False}
        success = bool(meta.get("success")) and run.state == "complete" and run.exit_code == 0
        out.append(
            DrillRecord(
                run.id,
                str(meta.get("playbook", "?")),
                run.started,
                run.finished,
                run.state,
                run.exit_code,
                success,
                meta.get("achieved_rto"),
                meta.get("rto"),
                meta.get("failed_step"),
            )
        )
    return out


def last_success(records: Iterable[DrillRecord]) -> dict[str, DrillRecord]:
    """The newest successful drill per playbook name."""
    best: dict[str, DrillRecord] = {}
    for r in records:
        if r.success and (r.playbook not in best or r.started > best[r.playbook].started):
            best[r.playbook] = r
    return best


def playbook_ages(records: Sequence[DrillRecord], names: Iterable[str], now: float) -> Mapping[str, float | None]:
    """Age in seconds of the last successful drill of each playbook (None: never)."""
    best = last_success(records)
    return {n: (now - (best[n].finished or best[n].started)) if n in best else None for n in names}
