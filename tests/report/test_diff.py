"""``itops diff``: every category, from two runs written through the real Store."""

from __future__ import annotations

import json
import time
from dataclasses import replace

from click.testing import CliRunner
from report_helpers import WAIVER, result, store_run

from itops.cli.main import cli
from itops.model import Run, Status
from itops.report.diff import diff_runs
from itops.store import Store


def _two_runs(store: Store) -> tuple[Run, Run]:
    now = time.time()
    a = [
        result("web1", "ssh.a_b", Status.PASS),  # -> FAIL: regressed
        result("web1", "ssh.c_d", Status.FAIL),  # -> FAIL: still failing
        result("web1", "ssh.e_f", Status.FAIL),  # -> PASS: fixed
        result("web2", "ssh.a_b", Status.PASS),  # -> UNREACHABLE: newly unreachable
        result("web2", "ssh.c_d", Status.PASS),  # -> ERROR: new error
        result("db1", "ssh.c_d", Status.FAIL),  # -> WAIVED: newly waived
        result("db1", "ssh.e_f", Status.WAIVED, waiver=WAIVER),  # -> FAIL: waiver gone
        result("db1", "ssh.g_h", Status.ERROR),  # -> FAIL: new failure (was not assessed)
        result("old1", "ssh.a_b", Status.FAIL),  # gone in B: removed
        result("web1", "ssh.same_pass", Status.PASS),  # unchanged: in no category
    ]
    b = [
        result("web1", "ssh.a_b", Status.FAIL),
        result("web1", "ssh.c_d", Status.FAIL),
        result("web1", "ssh.e_f", Status.PASS),
        result("web2", "ssh.a_b", Status.UNREACHABLE),
        result("web2", "ssh.c_d", Status.ERROR),
        result("db1", "ssh.c_d", Status.WAIVED, waiver=WAIVER),
        result("db1", "ssh.e_f", Status.FAIL),
        result("db1", "ssh.g_h", Status.FAIL),
        result("new1", "ssh.a_b", Status.FAIL),  # new target failing: new failure
        result("web1", "ssh.same_pass", Status.PASS),
    ]
    return store_run(store, a, started=now - 60), store_run(store, b, started=now)


def _keys(changes: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return sorted((c.current.target, c.current.check_id) for c in changes)


def test_diff_puts_each_change_in_one_category(store: Store) -> None:
    run_a, run_b = _two_runs(store)
    d = diff_runs(store, run_a.id, run_b.id)
    c = d.changes
    assert _keys(c["regressed"]) == [("web1", "ssh.a_b")]
    assert _keys(c["still_failing"]) == [("web1", "ssh.c_d")]
    assert _keys(c["fixed"]) == [("web1", "ssh.e_f")]
    assert _keys(c["newly_unreachable"]) == [("web2", "ssh.a_b")]
    assert _keys(c["new_errors"]) == [("web2", "ssh.c_d")]
    assert _keys(c["new_failures"]) == [("db1", "ssh.g_h"), ("new1", "ssh.a_b")]
    notes = {(ch.current.target, ch.current.check_id): ch.note for ch in c["waiver_changes"]}
    assert notes == {
        ("db1", "ssh.c_d"): "newly waived",
        ("db1", "ssh.e_f"): "waiver no longer applies (expired or removed)",
    }
    assert _keys(c["removed"]) == [("old1", "ssh.a_b")]
    assert d.worse


def test_changed_waiver_is_a_waiver_change(store: Store) -> None:
    a = store_run(store, [result("db1", "ssh.c_d", Status.WAIVED, waiver=WAIVER)], started=time.time() - 5)
    b = store_run(store, [result("db1", "ssh.c_d", Status.WAIVED, waiver=replace(WAIVER, expires="2100-01-01"))])
    d = diff_runs(store, a.id, b.id)
    assert [ch.note for ch in d.changes["waiver_changes"]] == ["waiver changed"]
    assert not d.worse


def test_diff_cli_formats_and_exit_code(store: Store) -> None:
    run_a, run_b = _two_runs(store)
    runner = CliRunner()
    base = ["diff", run_a.id, "latest", "--store", str(store.root)]
    table = runner.invoke(cli, base)
    assert table.exit_code == 0, table.output
    assert "REGRESSED (PASS -> FAIL) (1)" in table.output and "web1  ssh.a_b  PASS -> FAIL" in table.output
    doc = json.loads(runner.invoke(cli, [*base, "--format", "json"]).output)
    assert doc["schema"] == "itops.diff/1" and doc["summary"]["new_failures"] == 2
    assert doc["regressed"][0]["before"] == "PASS" and doc["regressed"][0]["after"] == "FAIL"
    md = runner.invoke(cli, [*base, "--format", "md"]).output
    assert "## Newly unreachable (1)" in md and "| web2 | ssh.a\\_b | PASS | UNREACHABLE |" in md
    assert runner.invoke(cli, [*base, "--exit-code"]).exit_code == 1
    same = runner.invoke(cli, ["diff", run_b.id, run_b.id, "--exit-code", "--store", str(store.root)])
    assert same.exit_code == 0
    assert runner.invoke(cli, ["diff", "nope", "latest", "--store", str(store.root)]).exit_code == 2


def test_a_new_resource_is_compared_with_the_same_check_and_target(store: Store) -> None:
    passing = result("web1", "accounts.uid0_only_root", Status.PASS, message="only root has UID 0")
    failing = result("web1", "accounts.uid0_only_root", Status.FAIL, resource="backdoor", message="backdoor has UID 0")
    a = store_run(store, [passing], started=time.time() - 10)
    b = store_run(store, [failing])
    worse = diff_runs(store, a.id, b.id)
    assert [(c.before.status, c.after.status) for c in worse.changes["regressed"]] == [(Status.PASS, Status.FAIL)]
    assert not worse.changes["new_failures"] and not worse.changes["removed"]
    better = diff_runs(store, b.id, a.id)
    assert [c.current.resource for c in better.changes["fixed"]] == [""]
    assert not better.changes["removed"]


def test_diff_table_shows_host_control_characters_as_escapes(store: Store) -> None:
    """A file name from a host (CR, ESC) cannot rewrite the diff table on the operator's terminal."""
    hostile = "/etc/x\x1b[2J\rOK"
    run_a = store_run(store, [result("web1", "files.x_y", Status.PASS, resource=hostile, message="fine")])
    store_run(store, [result("web1", "files.x_y", Status.FAIL, resource=hostile, message=f"{hostile}\tworld-writable")])
    out = CliRunner().invoke(cli, ["diff", run_a.id, "latest", "--store", str(store.root)]).output
    assert "\x1b" not in out and "\r" not in out and "\t" not in out
    assert "/etc/x\\x1b[2J\\x0dOK" in out and "\\x09world-writable" in out
