"""Drills against real sshd lab hosts (itops_lab): success, failure at step k with rollback, manual steps,
dry run, timings. The lab hosts have no chroot, so their files are this machine's: the tests check the
state a drill left by looking at those files."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from itops.cli.main import cli
from itops.store import Store

pytestmark = pytest.mark.integration


def drill(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["dr", "drill", *args])
    return result.exit_code, result.stdout, result.stderr


def playbook(tmp_path: Path, steps: str, name: str = "lab-drill", rto: str = "5m") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        name: {name}
        description: a drill against the lab
        systems: [lab1, lab2]
        rto: {rto}
        rpo: 1h
        owner: tests
        vars: {{dir: "{tmp_path / "state"}"}}
        steps:
    """)
        + textwrap.indent(textwrap.dedent(steps), "  ")
    )
    return path


@pytest.fixture
def lab(fleet_factory, tmp_path):
    fleet = fleet_factory(2)
    (tmp_path / "state").mkdir()
    return fleet


def test_successful_drill_is_a_run_with_step_timings_and_achieved_rto(lab, tmp_path):
    port = lab["lab1"].port
    pb = playbook(
        tmp_path,
        f"""\
        - name: write on lab1
          run: echo primary > {{{{ dir }}}}/lab1.txt && hostname
          host: lab1
        - name: copy on lab2
          run: cat {{{{ dir }}}}/lab1.txt > {{{{ dir }}}}/lab2.txt
          host: lab2
        - name: lab2 has it
          check: {{command: "cat {{{{ dir }}}}/lab2.txt", host: lab2, expect_output: "^primary$"}}
        - name: lab1 sshd port
          wait_for: {{tcp: {{host: lab1, port: {port}}}}}
          timeout: 10s
        - name: confirm
          manual: Is the lab fine?
        - name: pause
          local: sleep 0.3
    """,
    )
    store = tmp_path / "store"
    code, out, err = drill(
        str(pb), "-i", str(lab.inventory_path), "--store", str(store), "--answer", "confirm=looks good"
    )
    assert code == 0, out + err
    assert (tmp_path / "state" / "lab2.txt").read_text() == "primary\n"
    assert "Drill of lab-drill: SUCCESS" in out and "Achieved RTO" in out and ": met" in out
    run = Store(store).get_run("latest")
    assert run.kind == "drill" and run.state == "complete" and run.exit_code == 0
    results = Store(store).results(run.id)
    steps = [r for r in results if r.check_id == "dr.step"]
    assert [r.status.value for r in steps] == ["PASS"] * 6
    assert "lab1 (root@127.0.0.1:" in steps[0].evidence.source and steps[0].evidence.excerpt.strip() == "lab1"
    assert steps[4].evidence.observed == "'looks good' (from --answer)"
    assert steps[5].duration >= 0.3
    (rto,) = [r for r in results if r.check_id == "dr.rto_met"]
    assert rto.status.value == "PASS" and "within the RTO of 5m00s" in rto.message
    meta = json.loads((Store(store).run_dir(run.id) / "drill.json").read_text())
    assert meta["playbook"] == "lab-drill" and meta["success"] and meta["rto"] == 300
    assert meta["achieved_rto"] >= sum(s["seconds"] for s in meta["steps"]) * 0.9
    assert all(s["started"] > 0 for s in meta["steps"])
    assert set(run.host_keys) == {"lab1", "lab2"}
    hist = CliRunner().invoke(cli, ["dr", "history", "--store", str(store)])
    assert "lab-drill" in hist.stdout and "success" in hist.stdout and "LAST SUCCESSFUL DRILL" in hist.stdout


def test_failure_at_step_k_stops_and_rolls_back_newest_first(lab, tmp_path):
    state = tmp_path / "state"
    pb = playbook(
        tmp_path,
        """\
        - name: create a
          run: touch {{ dir }}/a
          host: lab1
          rollback:
            - {name: remove a, run: "rm {{ dir }}/a && echo a >> {{ dir }}/rollback.log", host: lab1}
        - name: create b
          run: touch {{ dir }}/b
          host: lab2
          rollback:
            - {name: remove b, run: "rm {{ dir }}/b && echo b >> {{ dir }}/rollback.log", host: lab2}
        - name: service answers
          check: {command: "test -e {{ dir }}/service.up", host: lab2}
          retries: 2
          interval: 0.1s
        - name: never reached
          run: touch {{ dir }}/c
          host: lab1
    """,
    )
    store = tmp_path / "store"
    code, out, err = drill(str(pb), "-i", str(lab.inventory_path), "--store", str(store))
    assert code == 1, out + err
    assert not (state / "a").exists() and not (state / "b").exists() and not (state / "c").exists()
    assert (state / "rollback.log").read_text() == "b\na\n"  # newest first
    assert "RTO not achieved: the drill stopped at step 3 service answers; 2 rollback step(s) ran" in out
    results = Store(store).results("latest")
    by = {(r.check_id, r.resource): r for r in results}
    failed = by[("dr.step", "step 3: service answers")]
    assert failed.status.value == "FAIL" and "after 3 attempts" in failed.message
    assert by[("dr.step", "step 4: never reached")].status.value == "SKIPPED"
    assert [r.status.value for r in results if r.check_id == "dr.rollback"] == ["PASS", "PASS"]
    assert by[("dr.rto_met", "")].status.value == "SKIPPED"
    meta = json.loads((Store(store).run_dir(Store(store).resolve("latest")) / "drill.json").read_text())
    assert meta["failed_step"] == "3 service answers" and not meta["success"]
    assert [r["index"] for r in meta["rollbacks"]] == ["2.rollback.1", "1.rollback.1"]


def test_manual_step_needs_an_answer_when_unattended(lab, tmp_path):
    pb = playbook(
        tmp_path,
        """\
        - {name: first, run: "touch {{ dir }}/x", host: lab1,
           rollback: [{name: undo, run: "rm {{ dir }}/x", host: lab1}]}
        - {name: confirm, manual: "Did the standby take over?"}
    """,
    )
    store = tmp_path / "store"
    code, out, _ = drill(str(pb), "-i", str(lab.inventory_path), "--store", str(store))
    assert code == 3  # no terminal, no --yes, no --answer: not assessable
    assert "no operator answer" in out or "no operator answer" in Store(store).results("latest")[1].message
    assert not (tmp_path / "state" / "x").exists()  # rolled back
    code, out, _ = drill(str(pb), "-i", str(lab.inventory_path), "--store", str(store), "--answer", "confirm=no")
    assert code == 1 and "operator answered 'no'" in out
    code, out, _ = drill(str(pb), "-i", str(lab.inventory_path), "--store", str(store), "--yes")
    assert code == 0 and (tmp_path / "state" / "x").exists()
    bad = CliRunner().invoke(cli, ["dr", "drill", str(pb), "-i", str(lab.inventory_path), "--answer", "nope=yes"])
    assert bad.exit_code == 2 and "--answer names no step" in bad.stderr


def test_dry_run_prints_the_resolved_plan_and_touches_nothing(lab, tmp_path):
    pb = playbook(
        tmp_path,
        """\
        - {name: write, run: "echo {{ msg }} > {{ dir }}/dry.txt", host: lab2,
           rollback: [{name: undo, run: "rm -f {{ dir }}/dry.txt", host: lab2}]}
        - {name: port, wait_for: {tcp: {host: lab1, port: "{{ hosts.lab1.port }}"}}}
        - {name: ok, manual: "Fine?"}
    """,
    )
    store = tmp_path / "store"
    result = CliRunner().invoke(
        cli,
        [
            "dr",
            "drill",
            str(pb),
            "-i",
            str(lab.inventory_path),
            "--dry-run",
            "--store",
            str(store),
            "--var",
            "msg=it's; here",
        ],
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "DRY RUN of playbook lab-drill" in out
    assert f"on lab2 (root@127.0.0.1:{lab['lab2'].port}): echo 'it'\"'\"'s; here' > " in out
    assert f"tcp lab1 (127.0.0.1:{lab['lab1'].port}) open" in out
    assert "on a later failure: 1.rollback.1. undo" in out and "answer: asked at the prompt" in out
    assert not (tmp_path / "state" / "dry.txt").exists()
    assert not (store / "history.db").exists() or Store(store).list_runs() == []


def test_unreachable_host_stops_the_drill(lab, tmp_path):
    lab.stop_host("lab2")
    pb = playbook(
        tmp_path,
        """\
        - {name: one, run: "touch {{ dir }}/one", host: lab1,
           rollback: [{name: undo, run: "rm {{ dir }}/one", host: lab1}]}
        - {name: two, run: "true", host: lab2}
    """,
    )
    code, out, _ = drill(str(pb), "-i", str(lab.inventory_path), "--store", str(tmp_path / "store"))
    assert code == 3 and "UNREACHABLE" in out and "could not reach the host" in out
    assert not (tmp_path / "state" / "one").exists()
