"""The command line as a user drives it: exit codes, output formats, run history, interrupts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
from audit_helpers import ITOPS, run_cli_process, write_pack, write_yaml
from click.testing import CliRunner

from itops.cli.main import cli

BAD_INVENTORIES = {
    "unknown key": ("hosts:\n  web1: {address: 10.0.0.1, prot: 22}\n", 3, "hosts.web1.prot"),
    "duplicate key": ("hosts:\n  web1: {address: 10.0.0.1}\n  web1: {address: 10.0.0.2}\n", 4, "web1"),
    "wrong type": ("hosts:\n  web1: {address: 10.0.0.1, port: many}\n", 3, "hosts.web1.port"),
    "bad duration": ("defaults:\n  ssh: {connect_timeout: 5 parsecs}\nhosts: {}\n", 3, "connect_timeout"),
    "bad size": (
        "hosts:\n  db1: {address: 10.0.0.1}\nbackups:\n  b: {kind: file, host: db1, path: /x/*.gz,"
        " rpo: 1h, min_size: 10 bananas}\n",
        5,
        "min_size",
    ),
    "unknown group": ("hosts:\n  web1: {address: 10.0.0.1, groups: [nope]}\n", 3, "groups"),
    "unknown site": ("hosts:\n  web1: {address: 10.0.0.1, site: mars}\n", 3, "site"),
    "unknown jump": ("hosts:\n  web1: {address: 10.0.0.1, jump: bastion9}\n", 3, "jump"),
    "group cycle": ("groups:\n  a: {children: [b]}\n  b: {children: [a]}\nhosts: {}\n", None, "cycle"),
}


@pytest.mark.parametrize("case", sorted(BAD_INVENTORIES))
def test_bad_inventory_exits_4_with_file_and_line(case, tmp_path):
    body, line, needle = BAD_INVENTORIES[case]
    path = tmp_path / "inv.yaml"
    path.write_text("version: 1\n" + body)
    res = CliRunner().invoke(cli, ["inventory", "validate", str(path)])
    assert res.exit_code == 4, res.output
    expected_loc = f"{path}:{line}" if line else f"{path}:"
    assert expected_loc in res.stderr, res.stderr
    assert needle in res.stderr


def test_bad_inventory_audit_runs_nothing(tmp_path):
    path = tmp_path / "inv.yaml"
    path.write_text("version: 1\nhosts:\n  web1: {address: 10.0.0.1, port: 70000}\n")
    store = tmp_path / "store"
    res = CliRunner().invoke(cli, ["audit", "-i", str(path), "--store", str(store)])
    assert res.exit_code == 4
    assert f"{path}:3" in res.stderr and "port" in res.stderr
    assert not (store / "runs").exists() or not any((store / "runs").iterdir())


def test_inventory_list_limit_forms():
    inv = str(Path(__file__).parents[2] / "inventory" / "example.yaml")
    res = CliRunner().invoke(cli, ["inventory", "list", inv, "--format", "json"])
    assert res.exit_code == 0, res.output
    everything = {h["name"] for h in json.loads(res.stdout)}
    assert len(everything) >= 4
    for limit in ("group:web", "web*", "site:dc1", "tag:pci"):
        res = CliRunner().invoke(cli, ["inventory", "list", inv, "--limit", limit, "--format", "json"])
        assert res.exit_code == 0, (limit, res.output)
        chosen = {h["name"] for h in json.loads(res.stdout)}
        assert chosen and chosen <= everything, limit
    res = CliRunner().invoke(cli, ["inventory", "list", inv, "--limit", "group:no-such-group"])
    assert res.exit_code == 2 and "no-such-group" in res.stderr


def test_checks_list_json_and_show():
    res = CliRunner().invoke(cli, ["checks", "list", "--format", "json"])
    assert res.exit_code == 0
    checks = json.loads(res.stdout)
    ids = {c["id"] for c in checks}
    assert "ssh.root_login_disabled" in ids
    assert all(c["remediation"] and c["frameworks"] for c in checks)
    res = CliRunner().invoke(cli, ["checks", "show", "ssh.root_login_disabled"])
    assert res.exit_code == 0
    assert "Remediation:" in res.stdout and "nist-800-53" in res.stdout
    res = CliRunner().invoke(cli, ["checks", "show", "ssh.no_such_check"])
    assert res.exit_code == 2 and "no check named" in res.stderr


def test_broken_user_check_is_skipped_with_a_warning(tmp_path):
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "broken_import.py").write_text("from itops.checkapi import host_check\nraise RuntimeError('boom')\n")
    (pack / "bad_meta.py").write_text(
        textwrap.dedent("""
        from itops.checkapi import host_check, Finding, Severity
        @host_check(id="Bad Id", title="x", severity=Severity.LOW, rationale="r", remediation="", frameworks={},
                    probes=[])
        def f(facts, params):
            return Finding.passed("ok")
    """)
    )
    write_pack(pack)
    res = CliRunner().invoke(cli, ["checks", "list", "--checks-dir", str(pack), "--format", "json"])
    assert res.exit_code == 0
    ids = {c["id"] for c in json.loads(res.stdout)}
    assert "test.path_exists" in ids and "ssh.root_login_disabled" in ids
    assert "broken_import.py" in res.stderr and "boom" in res.stderr
    assert "bad_meta.py" in res.stderr and "invalid check metadata" in res.stderr


@pytest.mark.integration
def test_audit_json_is_pure_and_runs_are_stored(lab_inventory, tmp_path):
    store = tmp_path / "store"
    proc = run_cli_process(
        "audit",
        "-i",
        str(lab_inventory),
        "--checks",
        "ssh.*",
        "--store",
        str(store),
        "--format",
        "json",
        env={**os.environ, "FORCE_COLOR": "1"},
    )
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(proc.stdout)  # nothing but JSON on stdout
    assert "\x1b[" not in proc.stdout
    run_id = doc["run"]["id"]
    assert doc["run"]["state"] == "complete"
    assert set(doc["run"]["host_keys"]) == {"good1", "bad1", "plain1"}
    listed = run_cli_process("runs", "list", "--store", str(store))
    assert run_id in listed.stdout
    shown = run_cli_process("runs", "show", run_id[:12], "--store", str(store), "--format", "json")
    assert json.loads(shown.stdout)["results"] == doc["results"]
    table = run_cli_process("runs", "show", "latest", "--store", str(store))
    assert "FAILURES" in table.stdout and "bad1" in table.stdout and "fix:" in table.stdout


@pytest.mark.integration
def test_fail_on_threshold_changes_exit_code(lab_inventory, tmp_path):
    args = [
        "audit",
        "-i",
        str(lab_inventory),
        "--checks-dir",
        str(write_pack(tmp_path / "p")),
        "--checks",
        "test.shadow_mode",
        "--store",
        str(tmp_path / "s"),
    ]
    assert run_cli_process(*args).returncode == 1  # a low FAIL counts at --fail-on low
    assert run_cli_process(*args, "--fail-on", "high").returncode == 0


def _has_ancestor(pid: int, ancestors: set[int], depth: int = 32) -> bool:
    """Whether one of ``ancestors`` is a parent, grandparent ... of ``pid`` (bounded walk of /proc)."""
    for _ in range(depth):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])
        if pid in ancestors:
            return True
        if pid <= 1:
            return False
    return False


@pytest.mark.integration
def test_sigterm_stops_the_run_and_keeps_results(fleet_factory, tmp_path):
    fleet = fleet_factory(3)
    pack = write_pack(tmp_path / "p")
    inv = write_yaml(
        tmp_path / "inv.yaml",
        fleet.inventory({"defaults": {"ssh": {"command_timeout": 100}}, "hosts": {"lab1": {"vars": {}}}}),
    )
    store = tmp_path / "store"
    proc = subprocess.Popen(
        [
            ITOPS,
            "audit",
            "-i",
            str(inv),
            "--checks-dir",
            str(pack),
            "--checks",
            "test.*",
            "--store",
            str(store),
            "--format",
            "json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # wait (bounded) until the batches are running: the hanging probe's `sleep 120` exists on this
    # machine (the fleet has no chroot), so the earlier probes of each batch have already finished.
    # Only sleeps under this fleet's sshd count: other runs on the machine may have their own.
    fleet_pids = {h.process.pid for h in fleet.hosts.values() if h.process is not None}
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        sleeps = subprocess.run(["pgrep", "-f", "^sleep 120$"], capture_output=True, text=True).stdout.split()
        probes = [pid for pid in sleeps if _has_ancestor(int(pid), fleet_pids)]
        if len(probes) >= 3:
            break
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 3, err
    doc = json.loads(out)
    assert doc["run"]["state"] == "interrupted"
    # the probes that finished before the stop are kept
    assert {r["status"] for r in doc["results"] if r["check_id"] == "test.path_exists"} == {"PASS"}
    runs = json.loads(run_cli_process("runs", "list", "--store", str(store), "--format", "json").stdout)
    assert runs[0]["state"] == "interrupted"


@pytest.mark.parametrize("framework", ["cis", "nist-800-53", "iso-27001"])
def test_checks_list_filters_by_framework_and_shows_control_ids(framework):
    res = CliRunner().invoke(cli, ["checks", "list", "--target", "host", "--framework", framework])
    assert res.exit_code == 0, res.output
    lines = [ln for ln in res.stdout.splitlines() if ln.strip()]
    assert len(lines) >= (40 if framework == "cis" else 60)
    assert all(f"[{framework}" in ln for ln in lines)  # cis: [cis-debian-12 v1.1.0: 5.1.20]
    everything = json.loads(CliRunner().invoke(cli, ["checks", "list", "--target", "host", "--format", "json"]).stdout)
    mapped = {c["id"] for c in everything if any(k.startswith(framework) and v for k, v in c["frameworks"].items())}
    assert {ln.split()[0] for ln in lines} == mapped


def test_table_output_shows_host_control_characters_as_visible_escapes():
    """Host-controlled text (a file name, a config line) cannot clear the screen or rewrite a line (issue 12)."""
    from itops.cli.output import render_summary
    from itops.model import Evidence, Result, Run, Severity, Status

    hostile = "/etc/sudoers.d/x\x1b[2J\rFAKE OK\x07\x9b"
    r = Result(
        run_id="r",
        check_id="accounts.sudoers_no_nopasswd",
        target="web1",
        status=Status.FAIL,
        severity=Severity.MEDIUM,
        message=f"NOPASSWD rule at {hostile}:1: bob ALL=(ALL)\tNOPASSWD: ALL",
        resource=hostile,
        evidence=Evidence(),
    )
    out = render_summary(Run(id="r", kind="audit", started=0.0, finished=1.0), [r], colour=False)
    assert not any(c in out for c in "\x1b\r\x07\x9b\t")
    assert "x\\x1b[2J\\x0dFAKE OK\\x07\\x9b" in out and "\\x09NOPASSWD" in out
