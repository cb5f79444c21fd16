"""The run session (issue #13, part 1): one lifecycle fed by any iterable of target outcomes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from itops.exitcodes import ExitStatus
from itops.model import Result, Run, Severity, Status
from itops.report.jsondoc import JsonLinesStream, JsonRunStream
from itops.session import RunSession
from itops.store import Store


@dataclass
class Outcome:
    """What an executor hands the session: a target's results and what it showed of itself."""

    host: str
    results: list[Result]
    host_key: str = ""
    account: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def _result(target: str, status: Status, check: str = "t.check_holds") -> Result:
    return Result(
        run_id="r",
        check_id=check,
        target=target,
        resource="",
        status=status,
        severity=Severity.HIGH,
        title="t",
        message=f"{status.value} on {target}",
    )


def _run(planned: dict[str, int] | None = None) -> Run:
    return Run(id="r", kind="audit", started=0.0, planned=planned or {})


def test_outcomes_from_any_iterable_are_stored_streamed_and_counted(tmp_path):
    out: list[str] = []
    store = Store(tmp_path)
    session = RunSession(store, _run({"a": 2, "b": 1, "c": 1}), stream=JsonLinesStream(out.append))
    outcomes = iter(
        [
            Outcome("a", [_result("a", Status.PASS), _result("a", Status.FAIL, "t.other_holds")], host_key="SHA256:x"),
            Outcome("b", [_result("b", Status.UNREACHABLE)], account="123456789012"),
        ]
    )
    done = session.execute(outcomes)
    assert done.status is ExitStatus.FAILURES
    assert done.run.state == "complete" and done.run.exit_code == 1
    assert done.run.host_keys == {"a": "SHA256:x"} and done.run.accounts == {"b": "123456789012"}
    assert done.tally.counts["FAIL"] == 1 and done.tally.total == 3 and done.tally.not_audited(done.run) == {"c": 1}
    lines = [json.loads(line) for line in "".join(out).splitlines()]
    assert [x["target"] for x in lines[:-1]] == ["a", "a", "b"]
    assert lines[-1]["summary"]["not_audited"] == ["c"] and lines[-1]["counts"] == done.run.counts
    assert [r.target for r in store.iter_results("r")] == ["a", "a", "b"]


def test_an_interrupted_clean_run_is_incomplete(tmp_path):
    session = RunSession(Store(tmp_path), _run())

    def outcomes():
        yield Outcome("a", [_result("a", Status.PASS)])
        session.interrupted = True  # as the SIGINT handler records it

    done = session.execute(outcomes())
    assert done.status is ExitStatus.INCOMPLETE and done.run.state == "interrupted"


def test_a_crash_mid_run_records_the_run_as_failed_and_still_closes_the_json(tmp_path):
    out: list[str] = []
    store = Store(tmp_path)

    def outcomes():
        yield Outcome("a", [_result("a", Status.PASS)])
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError):
        RunSession(store, _run(), stream=JsonRunStream(out.append)).execute(outcomes())
    run = store.get_run("r")
    assert run.state == "failed" and run.exit_code == ExitStatus.INTERNAL
    doc = json.loads("".join(out))
    assert doc["run"]["state"] == "failed" and len(doc["results"]) == 1


def test_waivers_apply_before_the_store_and_their_use_is_counted(tmp_path):
    from datetime import date

    from itops.inventory import WaiverRule
    from itops.waivers import WaiverEntry, WaiverSet

    def rule(target: str) -> WaiverRule:
        return WaiverRule(
            check="t.check_holds", target=target, justification="accepted", approver="me", expires=date(2999, 1, 1)
        )

    waivers = WaiverSet([WaiverEntry(rule("a"), "inv.yaml"), WaiverEntry(rule("zzz"), "inv.yaml")])
    done = RunSession(Store(tmp_path), _run(), waivers=waivers).execute([Outcome("a", [_result("a", Status.FAIL)])])
    assert done.status is ExitStatus.OK and done.run.counts["WAIVED"] == 1
    assert done.waiver_usage is not None
    warnings = waivers.warnings(done.waiver_usage)
    assert len(warnings) == 1 and "zzz" in warnings[0] and "stale" in warnings[0]


def test_a_run_collects_garbage_in_fewer_passes_and_restores_the_settings(tmp_path):
    """While a run is recorded, the young-generation threshold is raised and the startup state is
    frozen out of collections (itops.gctune); afterwards, and after a failed run, both are as before."""
    import gc

    from itops.gctune import RUN_THRESHOLD0, batch_gc

    before = gc.get_threshold()
    seen: list[tuple[tuple[int, ...], int]] = []

    def outcomes():
        seen.append((gc.get_threshold(), gc.get_freeze_count()))
        yield Outcome("a", [_result("a", Status.PASS)])
        with batch_gc():  # nested (a job of the scheduler in the same process): one setting
            seen.append((gc.get_threshold(), gc.get_freeze_count()))
        seen.append((gc.get_threshold(), gc.get_freeze_count()))

    RunSession(Store(tmp_path), _run()).execute(outcomes())
    assert [t[0] for t, _ in seen] == [max(RUN_THRESHOLD0, before[0])] * 3 and all(n > 0 for _, n in seen)
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0

    def crashing():
        yield Outcome("a", [_result("a", Status.PASS)])
        raise RuntimeError("executor bug")

    with pytest.raises(RuntimeError):
        RunSession(Store(tmp_path / "2"), _run()).execute(crashing())
    assert gc.get_threshold() == before and gc.get_freeze_count() == 0
