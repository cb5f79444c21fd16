"""Two real audits of the sshd lab, one host changed in between: diff, reports and SARIF lines."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from itops.cli.main import cli
from itops.report.jsondoc import load_schema
from itops.store import Store
from itops_lab import Fleet, plant

pytestmark = pytest.mark.integration

CHECKS = ["accounts.uid0_only_root", "ssh.*"]


def _audit(inventory: Path, store: Path) -> str:
    args = ["audit", "-i", str(inventory), "--store", str(store), "--format", "json"]
    for pattern in CHECKS:
        args += ["--checks", pattern]
    out = CliRunner().invoke(cli, args)
    assert out.exit_code in (0, 1, 3), out.output
    doc = json.loads(out.stdout)
    jsonschema.Draft202012Validator(load_schema()).validate(doc)  # audit prints the itops.run/1 document
    return str(doc["run"]["id"])


def test_diff_of_two_lab_runs_shows_the_changed_host(lab_fleet: Fleet, lab_inventory: Path, tmp_path: Path) -> None:
    store_dir = tmp_path / "store"
    root = lab_fleet["good1"].root
    assert root is not None
    passwd = (root / "etc/passwd").read_text()
    run_a = _audit(lab_inventory, store_dir)
    try:
        plant(root, "/etc/passwd", passwd + "backdoor:x:0:0:oops:/root:/bin/sh\n")
        run_b = _audit(lab_inventory, store_dir)
    finally:
        plant(root, "/etc/passwd", passwd)
    runner = CliRunner()
    out = runner.invoke(cli, ["diff", run_a, run_b, "--format", "json", "--store", str(store_dir)])
    assert out.exit_code == 0, out.output
    d = json.loads(out.stdout)
    assert [(c["target"], c["check_id"]) for c in d["regressed"]] == [("good1", "accounts.uid0_only_root")]
    assert not d["fixed"] and not d["new_failures"]
    assert ("bad1", "accounts.uid0_only_root") in {(c["target"], c["check_id"]) for c in d["still_failing"]}
    gate = runner.invoke(cli, ["diff", run_a, run_b, "--exit-code", "--store", str(store_dir)])
    assert gate.exit_code == 1 and "good1  accounts.uid0_only_root (backdoor)  PASS -> FAIL" in gate.output

    store = Store(store_dir)
    html = runner.invoke(cli, ["report", "latest", "-o", str(tmp_path / "r.html"), "--store", str(store_dir)])
    assert html.exit_code == 0, html.output
    assert "backdoor" in (tmp_path / "r.html").read_text()  # the evidence names the new UID 0 account
    sarif = json.loads(runner.invoke(cli, ["report", run_b, "-f", "sarif", "--store", str(store_dir)]).stdout)
    lines = {ln.split(":")[0].strip(): n for n, ln in enumerate(lab_inventory.read_text().splitlines(), 1)}
    good1 = [r for r in sarif["runs"][0]["results"] if r["properties"]["target"] == "good1"]
    assert good1 and all(r["locations"][0]["physicalLocation"]["region"]["startLine"] == lines["good1"] for r in good1)
    assert store.get_run(run_b).counts["FAIL"] > store.get_run(run_a).counts["FAIL"]
