"""`itops trends` on stores made of real runs: audits of this machine (``--local``) whose state changes
between runs, so findings appear, persist and get fixed."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import textwrap
import time
from pathlib import Path

from audit_helpers import run_audit, write_yaml
from click.testing import CliRunner

from itops.cli.main import cli
from itops.store import Store
from itops.trends import compute_trends, ratio

PACK = textwrap.dedent(
    """
    from itops.checkapi import Finding, Probe, Severity, host_check, quote

    META = dict(rationale="test-only check for trends", remediation="remove the file",
                frameworks={"nist-800-53": ["CM-6"], "iso-27001": ["A.8.9"]})

    @host_check(id="test.flag_absent", title="The flag file is absent", severity=Severity.HIGH,
                probes=[Probe("flag", lambda p: "test -e " + quote(p["flag"]) + " && echo present || echo absent")],
                params={"flag": "/nonexistent"}, **META)
    def flag_absent(facts, params):
        r = facts["flag"]
        if not r.ok:
            return Finding.error(r.problem())
        return Finding.failed("flag present") if "present" in r.text else Finding.passed("flag absent")

    @host_check(id="test.always_fails", title="Always fails (waived)", severity=Severity.LOW,
                probes=[Probe("t", "true")], **META)
    def always_fails(facts, params):
        return Finding.failed("fails by design")
    """
)


def _inventory(tmp_path: Path, flags: dict[str, Path], expires: str) -> Path:
    return write_yaml(
        tmp_path / "inv.yaml",
        {
            "version": 1,
            "hosts": {name: {"address": "127.0.0.1", "vars": {"flag": str(path)}} for name, path in flags.items()},
            "waivers": [
                {
                    "check": "test.always_fails",
                    "target": "*",
                    "justification": "accepted for the test",
                    "approver": "ciso",
                    "ticket": "SEC-1",
                    "expires": expires,
                }
            ],
        },
    )


def _audit(tmp_path: Path, inv: Path, store: Path) -> None:
    code, doc, err = run_audit(
        "-i", str(inv), "--local", "--checks-dir", str(tmp_path / "pack"), "--checks", "test.*", "--store", str(store)
    )
    assert code in (0, 1), err
    assert doc["results"]


def test_findings_first_seen_fixed_on_mttr_and_waiver_debt_from_real_runs(tmp_path: Path) -> None:
    (tmp_path / "pack").mkdir()
    (tmp_path / "pack" / "trend_checks.py").write_text(PACK)
    flag_a, flag_b = tmp_path / "flag-a", tmp_path / "flag-b"
    soon = (dt.date.today() + dt.timedelta(days=10)).isoformat()
    inv = _inventory(tmp_path, {"alpha": flag_a, "beta": flag_b}, soon)
    store = tmp_path / "store"

    flag_a.write_text("x")  # run 1: alpha fails, beta passes
    _audit(tmp_path, inv, store)
    time.sleep(1.1)
    flag_b.write_text("x")  # run 2: both fail
    _audit(tmp_path, inv, store)
    time.sleep(1.1)
    flag_a.unlink()  # run 3: alpha fixed, beta still failing
    _audit(tmp_path, inv, store)

    runs = sorted(Store(store).list_runs(), key=lambda r: r.started)
    trends = compute_trends(Store(store), since=time.time() - 3600)
    assert [r.id for r in trends.runs] == [r.id for r in runs]
    flag = next(s for s in trends.checks if s.key == "test.flag_absent")
    assert flag.points == [50.0, 0.0, 50.0] and flag.title == "The flag file is absent"
    # A waived failure is not a pass: test.always_fails stays at 0 %.
    assert next(s for s in trends.checks if s.key == "test.always_fails").points == [0.0, 0.0, 0.0]
    control = next(s for s in trends.controls if s.key == "nist-800-53:CM-6")
    assert control.points == [ratio(1, 4), ratio(0, 4), ratio(1, 4)]
    by_key = {(f.check_id, f.target): f for f in trends.findings}
    alpha, beta = by_key[("test.flag_absent", "alpha")], by_key[("test.flag_absent", "beta")]
    assert (alpha.first_seen, alpha.fixed_on) == (runs[0].started, runs[2].started)
    assert (beta.first_seen, beta.fixed_on) == (runs[1].started, None)
    assert trends.mttr_days == round((runs[2].started - runs[0].started) / 86400, 2)
    assert trends.waivers.expiring == 1 and trends.waivers.active == 0  # one rule, expires in 10 days
    assert trends.waivers.items[0]["results"] == 2 and trends.waivers.items[0]["ticket"] == "SEC-1"

    res = CliRunner().invoke(cli, ["trends", "--store", str(store), "--format", "json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert doc["open_findings"] == 3 and doc["fixed_findings"] == 1  # beta flag, 2 x waived always_fails

    table = CliRunner().invoke(cli, ["trends", "--store", str(store), "--framework", "nist"])
    assert table.exit_code == 0, table.output
    assert "nist-800-53:CM-6" in table.stdout and "iso-27001" not in table.stdout
    assert "1 fixed in the window" in table.stdout and "1 expiring within 30d" in table.stdout

    limited = CliRunner().invoke(cli, ["trends", "--store", str(store), "--limit", "beta", "--format", "json"])
    assert {f["target"] for f in json.loads(limited.stdout)["findings"]} == {"beta"}

    # An expired waiver stops applying: with the inventory, it shows as expired debt.
    expired_inv = _inventory(tmp_path, {"alpha": flag_a, "beta": flag_b}, "2020-01-01")
    res = CliRunner().invoke(cli, ["trends", "--store", str(store), "-i", str(expired_inv), "--format", "json"])
    assert json.loads(res.stdout)["waivers"]["expired"] == 1

    out = tmp_path / "trends.html"
    res = CliRunner().invoke(cli, ["trends", "--store", str(store), "--format", "html", "-o", str(out)])
    assert res.exit_code == 0, res.output
    html = out.read_text()
    assert html.count("<svg") >= 3 and "<script" not in html and "test.flag_absent" in html


def test_trends_of_a_store_from_before_read_its_whole_line_rows(tmp_path: Path) -> None:
    """Stores written before 2026-12-07 had no run_checks table: titles, frameworks and waivers were
    read from each row's whole result line (results.data). Such a store gives the same trends."""
    (tmp_path / "pack").mkdir()
    (tmp_path / "pack" / "trend_checks.py").write_text(PACK)
    flag = tmp_path / "flag"
    flag.write_text("x")
    inv = _inventory(tmp_path, {"alpha": flag}, (dt.date.today() + dt.timedelta(days=10)).isoformat())
    store = tmp_path / "store"
    _audit(tmp_path, inv, store)

    def trends() -> dict:
        doc = json.loads(CliRunner().invoke(cli, ["trends", "--store", str(store), "--format", "json"]).stdout)
        doc.pop("generated")
        return doc

    expected = trends()
    text = json.dumps(expected)
    assert "The flag file is absent" in text and "nist-800-53:CM-6" in text and "SEC-1" in text

    with sqlite3.connect(store / "history.db") as db:  # as an older itops wrote it
        db.execute("ALTER TABLE results ADD COLUMN data TEXT NOT NULL DEFAULT ''")
        (run_id,) = db.execute("SELECT id FROM runs").fetchone()
        lines = (store / "runs" / run_id / "results.jsonl").read_text().splitlines()
        for seq, line in enumerate(lines):
            db.execute("UPDATE results SET data = ?, waiver = NULL WHERE seq = ?", (line, seq))
        db.execute("DELETE FROM run_checks")
    assert trends() == expected


def test_no_runs_is_a_usage_error(tmp_path: Path) -> None:
    res = CliRunner().invoke(cli, ["trends", "--store", str(tmp_path / "empty")])
    assert res.exit_code == 2 and "no finished audit runs" in res.stderr
