"""Acceptance (issue 15.2): hosts named only by their alias in a real ~/.ssh/config are audited over real sshd.

The config gives HostName, Port, IdentityFile, UserKnownHostsFile and ProxyJump (one hop, and a chain of
two); the inventory lists nothing but the aliases. The bastions' sshd logs prove the tunnels went through them.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from audit_helpers import by_target, run_audit, write_pack
from click.testing import CliRunner

from itops.cli.main import cli


def _wait_for(path: Path, needle: str, count: int) -> str:
    deadline = time.monotonic() + 10  # a bastion's session process may still be writing its log
    while (text := path.read_text()).count(needle) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return text


def test_hosts_named_only_by_their_ssh_config_alias_are_audited(fleet_factory, tmp_path, monkeypatch):
    fleet = fleet_factory(3, log_level="DEBUG1")
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    (home / ".ssh" / "config").write_text(
        f"""\
Host app-* gateway
  User root
  IdentityFile {fleet.client_key_path}
  UserKnownHostsFile {fleet.known_hosts_path}
  ConnectTimeout 5

Host gateway
  HostName 127.0.0.1
  Port {fleet["lab1"].port}

Host app-direct
  HostName 127.0.0.1
  Port {fleet["lab3"].port}

Host app-behind
  HostName 127.0.0.1
  Port {fleet["lab2"].port}
  ProxyJump gateway

Host app-chained
  HostName 127.0.0.1
  Port {fleet["lab2"].port}
  ProxyJump gateway,app-direct
"""
    )
    inventory = tmp_path / "inv.yaml"
    inventory.write_text("version: 1\nhosts:\n  app-direct:\n  app-behind:\n  app-chained:\n")

    listed = CliRunner().invoke(cli, ["inventory", "list", str(inventory), "--format", "json"])
    assert listed.exit_code == 0, listed.output
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert (rows["app-behind"]["address"], rows["app-behind"]["port"]) == ("127.0.0.1", fleet["lab2"].port)
    assert rows["app-behind"]["jump"] == f"root@127.0.0.1:{fleet['lab1'].port}"
    assert rows["app-behind"]["identity_file"] == str(fleet.client_key_path)
    assert rows["app-chained"]["jump"] == f"root@127.0.0.1:{fleet['lab1'].port},root@127.0.0.1:{fleet['lab3'].port}"
    assert rows["app-direct"]["origins"]["port"] == f"ssh config {home / '.ssh' / 'config'}"

    code, doc, _ = run_audit(
        "-i",
        str(inventory),
        "--checks-dir",
        str(write_pack(tmp_path / "p")),
        "--checks",
        "test.path_exists",
        "--store",
        str(tmp_path / "s"),
    )
    statuses = {h: r["status"] for h, r in by_target(doc, "test.path_exists").items()}
    assert statuses == {"app-direct": "PASS", "app-behind": "PASS", "app-chained": "PASS"}, doc
    assert code == 0
    # app-behind and app-chained tunnel through the gateway (lab1); app-chained then through app-direct (lab3)
    assert _wait_for(fleet["lab1"].log_path, "direct-tcpip", 2).count("direct-tcpip") >= 2
    assert _wait_for(fleet["lab3"].log_path, "direct-tcpip", 1).count("direct-tcpip") >= 1


def test_defaults_ssh_config_points_at_the_labs_own_ssh_config(fleet_factory, tmp_path):
    """`defaults.ssh.config: PATH` reads another file: the lab's ssh_config (`ssh -F` for humans) alone says
    where lab1 and lab2 are and how to log in."""
    fleet = fleet_factory(2)
    inventory = tmp_path / "inv.yaml"
    inventory.write_text(
        f"version: 1\ndefaults: {{ssh: {{config: {fleet.write_ssh_config()}}}}}\nhosts:\n  lab1:\n  lab2:\n"
    )
    code, doc, _ = run_audit(
        "-i",
        str(inventory),
        "--checks-dir",
        str(write_pack(tmp_path / "p")),
        "--checks",
        "test.path_exists",
        "--store",
        str(tmp_path / "s"),
    )
    assert {h: r["status"] for h, r in by_target(doc, "test.path_exists").items()} == {"lab1": "PASS", "lab2": "PASS"}
    assert code == 0
