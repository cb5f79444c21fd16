"""Small breakages a newcomer hit in the first hour (issue #18, item 4)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from audit_helpers import ITOPS
from click.testing import CliRunner

from itops.cli.main import cli


@pytest.mark.parametrize(
    "args", [["checks", "list"], ["checks", "show", "ssh.root_login_disabled"], ["checks", "list", "--format", "json"]]
)
def test_closed_stdout_pipe_ends_quietly(args):
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first write, as `| head` after its lines
    try:
        res = subprocess.run([ITOPS, *args], stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(write_end)
    assert res.returncode == 141, res.stderr
    assert res.stderr == "", res.stderr


def test_unknown_backup_from_a_template_names_the_var_and_the_option(tmp_path):
    inv = tmp_path / "inv.yaml"
    inv.write_text(
        "version: 1\nhosts:\n  lab1: {address: 127.0.0.1}\n"
        "backups:\n  files-fresh: {kind: file, host: lab1, path: /var/backups/*.tar.gz, rpo: 1d}\n"
    )
    playbooks = Path(__file__).parents[2] / "playbooks"
    res = CliRunner().invoke(
        cli,
        [
            "dr",
            "drill",
            str(playbooks / "file-restore-checksums.yaml"),
            "-i",
            str(inv),
            "--var",
            "backup=files-frsh",
            "--dry-run",
        ],
    )
    assert res.exit_code == 4, res.output
    assert "unknown backup 'files-frsh' (did you mean 'files-fresh'?)" in res.stderr
    assert "{{ backup }} is the playbook var 'backup'" in res.stderr
    assert "--var backup=VALUE" in res.stderr and "vars:" in res.stderr


def test_key_dedented_out_of_its_section_says_where_it_belongs(tmp_path):
    inv = tmp_path / "inv.yaml"
    inv.write_text(
        "version: 1\nhosts:\n  db1: {address: 127.0.0.1}\nbackups:\n  b:\n    kind: file\n"
        "    host: db1\n    path: /var/backups/*.gz\n    rpo: 1d\n    restore_test:\n"
        "      into: /var/tmp/x\n    rto: 30m\n"
    )
    res = CliRunner().invoke(cli, ["inventory", "validate", str(inv)])
    assert res.exit_code == 4, res.output
    assert f"{inv}:12: backups.b.rto: unknown key 'rto': rto belongs under restore_test:" in res.stderr
    assert "did you mean 'rpo'" not in res.stderr


def test_dr_check_without_playbooks_judges_nothing_and_says_so(tmp_path, monkeypatch):
    monkeypatch.delenv("ITOPS_PLAYBOOKS", raising=False)
    res = CliRunner().invoke(cli, ["dr", "check", "--store", str(tmp_path / "s")])
    assert res.exit_code == 2, res.output
    assert "no playbooks to judge" in res.stderr and "--playbooks DIR" in res.stderr
    assert not (tmp_path / "s" / "runs").exists() or not any((tmp_path / "s" / "runs").iterdir())
    # configured through the environment: only those playbooks are judged
    folder = tmp_path / "pb"
    folder.mkdir()
    src = Path(__file__).parents[2] / "playbooks" / "file-restore-checksums.yaml"
    (folder / "mine.yaml").write_text(src.read_text())
    monkeypatch.setenv("ITOPS_PLAYBOOKS", str(folder))
    res = CliRunner().invoke(cli, ["dr", "check", "--store", str(tmp_path / "s"), "--format", "json"])
    assert res.exit_code == 1, res.output  # never drilled: FAIL
    targets = {r["target"] for r in json.loads(res.stdout)["results"]}
    assert targets == {"file-restore-checksums"}, targets


@pytest.mark.integration
def test_readme_lab_commands_ssh_in_and_stop_a_detached_lab(tmp_path):
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert "ssh -F .lab/ssh_config lab1" in readme and "python -m itops_lab down --dir .lab" in readme
    lab = tmp_path / "lab"
    up = subprocess.run(
        [sys.executable, "-m", "itops_lab", "up", "--dir", str(lab), "--hosts", "1", "--detach"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert up.returncode == 0, up.stderr
    try:
        ssh = subprocess.run(
            ["ssh", "-F", str(lab / "ssh_config"), "lab1", "echo in-the-lab"],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        assert ssh.returncode == 0 and ssh.stdout.strip() == "in-the-lab", ssh.stderr
    finally:
        down = subprocess.run(
            [sys.executable, "-m", "itops_lab", "down", "--dir", str(lab)], capture_output=True, text=True, timeout=120
        )
    assert down.returncode == 0 and "is down" in down.stderr, down.stderr
    again = subprocess.run(
        ["ssh", "-F", str(lab / "ssh_config"), "-o", "ConnectTimeout=5", "lab1", "true"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert again.returncode != 0


def test_waivers_list_fits_the_terminal_width(tmp_path):
    inv = tmp_path / "inv.yaml"
    inv.write_text(
        "version: 1\nhosts:\n  web1: {address: 127.0.0.1}\nwaivers:\n"
        "  - check: accounts.system_accounts_no_login_shell\n"
        "    target: 'group:legacy-database-servers-frankfurt'\n"
        "    justification: Vendor appliance login needs passwords until the Q3 upgrade, which is scheduled "
        "after the audit window closes\n"
        "    approver: jane.doe.very.long.name@example.com\n    ticket: OPS-123456\n    expires: 2099-01-31\n"
    )
    res = CliRunner().invoke(cli, ["waivers", "list", str(inv)], env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    assert "OPS-123456" in res.stdout and "after the audit window closes" in res.stdout
    assert lines[0].split() == ["STATE", "EXPIRES", "LEFT", "CHECK", "TARGET", "APPROVER", "TICKET"]
    # written to a file or a pipe (no terminal, no $COLUMNS), nothing is cut
    res = CliRunner().invoke(cli, ["waivers", "list", str(inv)], env={"COLUMNS": ""})
    assert "accounts.system_accounts_no_login_shell" in res.stdout and "jane.doe.very.long.name" in res.stdout
