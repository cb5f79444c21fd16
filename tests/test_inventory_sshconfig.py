"""The user's OpenSSH client config in the inventory (issue 15.2): resolution, precedence, origins, errors.

Canned config files and no network: the lab test (tests/transport/test_ssh_config_lab.py) audits real sshd
hosts named only by their alias.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from itops.cli.main import cli
from itops.errors import InventoryError
from itops.inventory import load_inventory
from itops.runner import target_for
from itops.sshconfig import Hop, SSHConfigProblem, parse_jump

CONFIG = """\
Host web-*
  User deploy
  IdentityFile ~/.ssh/fleet_key
  UserKnownHostsFile ~/.ssh/fleet_known_hosts
  ConnectTimeout 4

Host web-one
  HostName 10.0.0.11
  Port 2222
  ProxyJump admin@bastion:2200

Host web-two
  HostName 10.0.0.12
  ProxyJump bastion,inner

Host bastion
  HostName 192.0.2.1
  User jumper

Host inner
  HostName 10.0.0.2

Host loop-a
  ProxyJump loop-b
Host loop-b
  ProxyJump loop-a
"""


def _write(tmp_path: Path, inventory: str, config: str = CONFIG) -> Path:
    (tmp_path / "ssh_config").write_text(config)
    path = tmp_path / "inv.yaml"
    path.write_text(textwrap.dedent(inventory))
    return path


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    return home


def test_a_host_named_only_by_its_alias_is_resolved_as_ssh_would(tmp_path: Path, _home: Path) -> None:
    path = _write(tmp_path, "version: 1\ndefaults: {ssh: {config: ssh_config}}\nhosts:\n  web-one: {}\n")
    host = load_inventory(path).hosts["web-one"]
    assert (host.address, host.ssh.port, host.ssh.user) == ("10.0.0.11", 2222, "deploy")
    assert host.ssh.identity_file == str(_home / ".ssh/fleet_key")
    assert host.ssh.known_hosts == (str(_home / ".ssh/fleet_known_hosts"),)
    assert host.ssh.connect_timeout == 4.0
    assert host.jump is None and host.via is not None
    # the hop is resolved through the config too, its user@ and :port written in ProxyJump winning
    assert (host.via.address, host.via.ssh.user, host.via.ssh.port) == ("192.0.2.1", "admin", 2200)
    assert host.jump_text == "admin@192.0.2.1:2200"
    where = f"ssh config {tmp_path / 'ssh_config'}"
    assert host.origins == {
        "address": where,
        "port": where,
        "user": where,
        "identity_file": where,
        "known_hosts": where,
        "connect_timeout": where,
        "jump": where,
    }
    target = target_for(host, {})
    assert target.jump is not None and (target.jump.address, target.jump.port) == ("192.0.2.1", 2200)


def test_inventory_values_win_over_the_config(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """\
        version: 1
        defaults: {ssh: {config: ssh_config, user: ops}}
        hosts:
          web-one: {address: 10.9.9.9, port: 22, jump: gw}
          gw: {address: 10.0.0.1}
        """,
    )
    host = load_inventory(path).hosts["web-one"]
    assert (host.address, host.ssh.port, host.ssh.user, host.jump) == ("10.9.9.9", 22, "ops", "gw")
    assert host.origins["address"] == "hosts.web-one" and host.origins["user"] == "defaults.ssh"
    assert host.origins["identity_file"].startswith("ssh config")  # what the inventory leaves out still applies


def test_a_chained_proxyjump_reaches_the_last_hop_through_the_first(tmp_path: Path) -> None:
    path = _write(tmp_path, "version: 1\ndefaults: {ssh: {config: ssh_config}}\nhosts:\n  web-two: {}\n")
    host = load_inventory(path).hosts["web-two"]
    assert host.via is not None and host.via.address == "10.0.0.2"  # inner
    assert host.via.via is not None and host.via.via.address == "192.0.2.1"  # bastion, in front of inner
    assert host.jump_text == "jumper@192.0.2.1:22,root@10.0.0.2:22"
    target = target_for(host, {})
    assert target.jump.address == "10.0.0.2" and target.jump.jump.address == "192.0.2.1"


def test_a_proxyjump_naming_an_inventory_host_uses_that_host(tmp_path: Path) -> None:
    config = "Host app\n  HostName 10.0.0.5\n  ProxyJump gw\n"
    path = _write(
        tmp_path,
        "version: 1\ndefaults: {ssh: {config: ssh_config}}\nhosts:\n  app: {}\n"
        "  gw: {address: 10.0.0.1, user: bastion}\n",
        config,
    )
    inv = load_inventory(path)
    assert inv.hosts["app"].jump == "gw" and inv.hosts["app"].via is None
    assert target_for(inv.hosts["app"], inv.hosts).jump.user == "bastion"


def test_default_is_home_ssh_config_when_it_exists_and_false_turns_it_off(tmp_path: Path, _home: Path) -> None:
    inv = "version: 1\nhosts:\n  web-one: {}\n"
    path = _write(tmp_path, inv)
    assert load_inventory(path).hosts["web-one"].address == "web-one"  # no ~/.ssh/config yet
    (_home / ".ssh" / "config").write_text(CONFIG)
    assert load_inventory(path).hosts["web-one"].address == "10.0.0.11"
    off = _write(tmp_path, "version: 1\ndefaults: {ssh: {config: false}}\nhosts:\n  web-one: {}\n")
    host = load_inventory(off).hosts["web-one"]
    assert (host.address, host.ssh.port, host.ssh.user, host.via) == ("web-one", 22, "root", None)
    assert host.origins["address"] == "host name" and host.origins["port"] == "built-in"


def test_config_problems_are_inventory_problems(tmp_path: Path) -> None:
    missing = _write(tmp_path, "version: 1\ndefaults: {ssh: {config: nowhere}}\nhosts:\n  a: {}\n")
    with pytest.raises(InventoryError, match="ssh config file not found"):
        load_inventory(missing)
    cycle = _write(tmp_path, "version: 1\ndefaults: {ssh: {config: ssh_config}}\nhosts:\n  loop-a: {}\n")
    with pytest.raises(InventoryError, match="is a cycle or longer than 8 hops"):
        load_inventory(cycle)
    bad_port = _write(
        tmp_path, "version: 1\ndefaults: {ssh: {config: ssh_config}}\nhosts:\n  x: {}\n", "Host x\n  Port lots\n"
    )
    with pytest.raises(InventoryError, match="Port 'lots' is not a number"):
        load_inventory(bad_port)


def test_parse_jump() -> None:
    assert parse_jump("admin@bastion:2200,[2001:db8::1]:22,inner") == [
        Hop("bastion", "admin", 2200),
        Hop("2001:db8::1", None, 22),
        Hop("inner"),
    ]
    with pytest.raises(SSHConfigProblem):
        parse_jump("a b")


def test_inventory_list_json_shows_effective_values_and_their_origin(tmp_path: Path) -> None:
    path = _write(tmp_path, "version: 1\ndefaults: {ssh: {config: ssh_config}}\nhosts:\n  web-one: {}\n")
    res = CliRunner().invoke(cli, ["inventory", "list", str(path), "--format", "json"])
    assert res.exit_code == 0, res.output
    row = json.loads(res.stdout)[0]
    assert (row["address"], row["port"], row["user"], row["jump"]) == (
        "10.0.0.11",
        2222,
        "deploy",
        "admin@192.0.2.1:2200",
    )
    assert row["identity_file"].endswith("/.ssh/fleet_key")
    assert row["origins"]["address"] == f"ssh config {tmp_path / 'ssh_config'}"
