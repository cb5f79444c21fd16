"""DR readiness: `dr.drill_recent` fails when the last successful drill of a playbook is too old (or missing)."""

from __future__ import annotations

import json
import textwrap
import time

from click.testing import CliRunner

from itops.checkapi import CheckMeta, Status
from itops.cli.main import cli
from itops.playbook.drill import DrillRecord
from itops.playbook.readiness import DrillFacts, load_dr_check, readiness_results
from itops.store import Store

DAY = 86400.0
NOW = time.time()


def record(playbook: str, age_days: float, success: bool = True, failed_step: str | None = None) -> DrillRecord:
    t = NOW - age_days * DAY
    return DrillRecord(
        f"run-{playbook}-{age_days}",
        playbook,
        t - 60,
        t,
        "complete",
        0 if success else 1,
        success,
        60.0 if success else None,
        600.0,
        failed_step,
    )


def test_check_metadata_is_complete():
    meta, _ = load_dr_check()
    assert isinstance(meta, CheckMeta) and meta.id == "dr.drill_recent"
    assert meta.frameworks["nist-800-53"] and meta.frameworks["iso-27001"] and len(meta.remediation) > 15


def test_drill_recent_pass_fail_and_never():
    _, evaluate = load_dr_check()
    ok = evaluate(DrillFacts("pb", "pb.yaml", NOW, 30 * DAY, record("pb", 3), record("pb", 3)), {})
    assert [f.status for f in ok] == [Status.PASS] and "3d" in ok[0].message
    old = evaluate(DrillFacts("pb", "pb.yaml", NOW, 30 * DAY, record("pb", 45), record("pb", 1, False, "2 x")), {})
    assert old[0].status is Status.FAIL and "45d" in old[0].message and "allowed 30d" in old[0].message
    never = evaluate(DrillFacts("pb", "pb.yaml", NOW, 30 * DAY, None, record("pb", 1, False, "2 restore")), {})
    assert never[0].status is Status.FAIL and "never drilled successfully" in never[0].message
    assert "failed at 2 restore" in never[0].message


def _pb(folder, name: str, extra: str = "") -> None:
    (folder / f"{name}.yaml").write_text(
        textwrap.dedent(f"""\
        name: {name}
        description: d
        systems: [x]
        rto: 1m
        rpo: 1h
        owner: o
        {extra}
        steps: [{{name: s, local: "true"}}]
    """)
    )


def test_readiness_results_use_the_newest_success_and_each_playbooks_max_age(tmp_path):
    _pb(tmp_path, "monthly", "max_drill_age: 30d")
    _pb(tmp_path, "quarterly")
    (tmp_path / "broken.yaml").write_text("name: broken\n")
    records = [record("monthly", 40), record("monthly", 10, success=False), record("quarterly", 40)]
    files = sorted(tmp_path.glob("*.yaml"))
    got = {r.target: r for r in readiness_results("r1", files, records, now=NOW)}
    assert got["monthly"].status is Status.FAIL  # 40d > its own 30d
    assert got["quarterly"].status is Status.PASS  # 40d < the default 90d
    assert got["broken"].status is Status.ERROR and "invalid" in got["broken"].message
    strict = {r.target: r for r in readiness_results("r2", files, records, max_age=7 * DAY, now=NOW)}
    assert strict["quarterly"].status is Status.FAIL


def test_dr_check_cli_after_a_real_drill(tmp_path):
    folder = tmp_path / "playbooks"
    folder.mkdir()
    _pb(folder, "alpha")
    _pb(folder, "beta")
    store = tmp_path / "store"
    result = CliRunner().invoke(cli, ["dr", "drill", str(folder / "alpha.yaml"), "--store", str(store)])
    assert result.exit_code == 0, result.output
    check = CliRunner().invoke(
        cli, ["dr", "check", "--playbooks", str(folder), "--store", str(store), "--format", "json"]
    )
    assert check.exit_code == 1  # beta was never drilled
    doc = json.loads(check.stdout)
    status = {r["target"]: r["status"] for r in doc["results"]}
    assert status == {"alpha": "PASS", "beta": "FAIL"}
    assert doc["run"]["kind"] == "audit" and Store(store).get_run(doc["run"]["id"]).exit_code == 1
    hist = CliRunner().invoke(cli, ["dr", "history", "--store", str(store), "--format", "json"])
    data = json.loads(hist.stdout)
    assert data["last_success"]["alpha"]["age"] < 600 and data["drills"][0]["playbook"] == "alpha"
    bad = CliRunner().invoke(
        cli, ["dr", "check", "--playbooks", str(folder), "--store", str(store), "--max-age", "soon"]
    )
    assert bad.exit_code == 2
