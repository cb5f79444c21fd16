"""`sources: [{ansible: PATH}]` with Ansible's own parser: an INI inventory with groups, children,
host_vars/group_vars folders and a ProxyJump argument, audited over real sshd (one host behind a
jump host) with the same targets a real `ansible -m ping` reaches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from audit_helpers import by_target, run_audit, write_pack
from click.testing import CliRunner

from itops.cli.main import cli
from itops.errors import InventoryError
from itops.inventory import load_inventory
from itops.sources.ansible import convert, proxy_jump

BIN = Path(sys.executable).parent


def ansible_tree(folder: Path, fleet) -> Path:
    """An Ansible inventory of the fleet: lab1 bastion, lab2 web, lab3 db behind lab1 (ProxyJump)."""
    cfg = fleet.write_ssh_config()  # Host lab1 ... for the jump hop, as a user's ~/.ssh/config would
    kh = fleet.known_hosts_path
    (folder / "group_vars").mkdir(parents=True)
    (folder / "host_vars").mkdir()
    (folder / "hosts.ini").write_text(
        textwrap.dedent(f"""\
        [bastions]
        lab1 ansible_host=127.0.0.1 ansible_port={fleet["lab1"].port}

        [web]
        lab2 ansible_host=127.0.0.1 ansible_port={fleet["lab2"].port}

        [db]
        lab3

        [prod:children]
        web
        db

        [prod:vars]
        tier=prod
    """)
    )
    (folder / "group_vars" / "all.yml").write_text(
        yaml.safe_dump(
            {
                "ansible_user": "root",
                "ansible_ssh_private_key_file": str(fleet.client_key_path),
                "ansible_ssh_common_args": f"-F {cfg} -o UserKnownHostsFile={kh} -o StrictHostKeyChecking=yes",
                "ansible_python_interpreter": "/usr/bin/python3",
                "site_owner": "infra",
            }
        )
    )
    (folder / "group_vars" / "web.yml").write_text("max_auth_tries: 4\nansible_become: false\n")
    (folder / "host_vars" / "lab3.yml").write_text(
        yaml.safe_dump(
            {
                "ansible_host": "127.0.0.1",
                "ansible_port": fleet["lab3"].port,
                "ansible_ssh_common_args": f"-F {cfg} -o UserKnownHostsFile={kh} -o StrictHostKeyChecking=yes -J lab1",
                "role": "database",
            }
        )
    )
    return folder / "hosts.ini"


@pytest.mark.integration
def test_ansible_inventory_is_audited_with_the_targets_ansible_uses(fleet_factory, tmp_path):
    fleet = fleet_factory(3, log_level="DEBUG1")
    hosts_ini = ansible_tree(tmp_path / "ansible", fleet)
    inv_path = tmp_path / "itops.yaml"
    inv_path.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "defaults": {"ssh": {"known_hosts": [str(fleet.known_hosts_path)], "connect_timeout": 5}},
                "sources": [{"ansible": "ansible/hosts.ini"}],  # relative to the inventory file
                "groups": {"web": {"vars": {"max_auth_tries": 3}}},  # the file's own entries win
            }
        )
    )
    inv = load_inventory(inv_path)
    assert list(inv.hosts) == ["lab1", "lab2", "lab3"]
    assert set(inv.groups["prod"].hosts) == {"lab2", "lab3"} and inv.groups["prod"].children == ("web", "db")
    lab3 = inv.hosts["lab3"]
    assert (lab3.address, lab3.ssh.port, lab3.ssh.user, lab3.jump) == ("127.0.0.1", fleet["lab3"].port, "root", "lab1")
    assert lab3.ssh.identity_file == str(fleet.client_key_path)
    assert dict(lab3.vars) == {"site_owner": "infra", "tier": "prod", "role": "database"}  # no ansible_* copied
    assert inv.hosts["lab2"].vars["max_auth_tries"] == 3 and inv.hosts["lab2"].ssh.sudo is False

    # the same effective targets as Ansible: address, port, user per host from ansible-inventory --host
    for name, host in inv.hosts.items():
        proc = subprocess.run(
            [str(BIN / "ansible-inventory"), "-i", str(hosts_ini), "--host", name],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        hv = json.loads(proc.stdout)
        assert (host.address, host.ssh.port, host.ssh.user) == (
            hv["ansible_host"],
            hv["ansible_port"],
            hv["ansible_user"],
        )
        assert (host.jump == "lab1") == ("-J lab1" in hv["ansible_ssh_common_args"])

    # a real `ansible -m ping` reaches all three (lab3 through lab1) ...
    env = dict(
        os.environ,
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"),
        ANSIBLE_REMOTE_TEMP="/tmp/.ansible-itops-test",
    )
    ping = subprocess.run(
        [str(BIN / "ansible"), "-i", str(hosts_ini), "all", "-m", "ping", "-o"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert all(f"{h} | SUCCESS" in ping.stdout for h in ("lab1", "lab2", "lab3")), ping.stdout
    # ... and so does the itops audit of the same inventory
    before = fleet["lab1"].log_path.read_text().count("direct-tcpip")
    code, doc, err = run_audit(
        "-i",
        str(inv_path),
        "--checks-dir",
        str(write_pack(tmp_path / "p")),
        "--checks",
        "test.path_exists",
        "--store",
        str(tmp_path / "s"),
    )
    assert code == 0, err
    assert {h: r["status"] for h, r in by_target(doc, "test.path_exists").items()} == dict.fromkeys(
        ("lab1", "lab2", "lab3"), "PASS"
    )
    deadline = time.monotonic() + 10
    while fleet["lab1"].log_path.read_text().count("direct-tcpip") <= before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fleet["lab1"].log_path.read_text().count("direct-tcpip") > before  # lab3 was reached through lab1

    # `itops inventory import ansible` prints an equivalent inventory
    res = CliRunner().invoke(cli, ["inventory", "import", "ansible", str(hosts_ini)])
    assert res.exit_code == 0, res.output
    converted = yaml.safe_load(res.stdout)
    assert converted["hosts"]["lab3"]["jump"] == "lab1" and converted["groups"]["prod"]["children"] == ["web", "db"]
    (tmp_path / "converted.yaml").write_text(res.stdout)
    again = load_inventory(tmp_path / "converted.yaml")
    assert {n: (h.address, h.ssh.port, h.jump) for n, h in again.hosts.items()} == {
        n: (h.address, h.ssh.port, h.jump) for n, h in inv.hosts.items()
    }


def test_without_ansible_core_the_error_names_the_extra(tmp_path, monkeypatch):
    (tmp_path / "hosts.ini").write_text("web1\n")
    (tmp_path / "inv.yaml").write_text("version: 1\nsources:\n  - ansible: hosts.ini\n")
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))  # no ansible-inventory beside it
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(InventoryError) as err:
        load_inventory(tmp_path / "inv.yaml")
    text = str(err.value) + str(err.value.problems)
    assert "ansible-inventory not found" in text and "itops[ansible]" in text and "sources[0]" in text


def test_an_unparseable_inventory_is_an_error_not_an_empty_source(tmp_path):
    (tmp_path / "hosts.ini").write_text("[web\nweb1 ansible_port=oops=2\n")
    (tmp_path / "inv.yaml").write_text("version: 1\nsources:\n  - ansible: hosts.ini\n")
    with pytest.raises(InventoryError) as err:
        load_inventory(tmp_path / "inv.yaml")
    assert "ansible-inventory -i" in str(err.value.problems) and "failed" in str(err.value.problems)


@pytest.mark.parametrize(
    ("args", "jump"),
    [
        ("-o ProxyJump=bastion", "bastion"),
        ("-o 'ProxyJump ops@bastion:2222'", "bastion"),
        ("-oProxyJump=bastion -o StrictHostKeyChecking=no", "bastion"),
        ("-J ops@[10.0.0.5]:22", "10.0.0.5"),
        ("-Jbastion", "bastion"),
        ("-o ProxyJump=none", None),
        ("-o ServerAliveInterval=5", None),
    ],
)
def test_proxy_jump_forms(args, jump):
    assert proxy_jump(args, "host x") == jump


def test_proxycommand_and_chains_are_refused_with_the_reason():
    from itops.sources import SourceError

    with pytest.raises(SourceError, match="ProxyCommand is not supported"):
        proxy_jump("-o ProxyCommand='ssh -W %h:%p b'", "host x")
    with pytest.raises(SourceError, match="chain of jump hosts"):
        proxy_jump("-J a,b", "host x")


def test_group_precedence_follows_ansible_depth_and_priority():
    """Connection vars resolve as Ansible's sort_groups: depth, then ansible_group_priority, then name."""
    doc = {
        "_meta": {"hostvars": {"h1": {}, "h2": {"ansible_user": "own"}, "local": {"ansible_connection": "local"}}},
        "all": {"children": ["ungrouped", "a", "b"], "vars": {"ansible_user": "all", "ansible_port": "2200"}},
        "a": {"hosts": ["h1", "h2"], "children": ["deep"], "vars": {"ansible_user": "a", "ansible_group_priority": 5}},
        "b": {"hosts": ["h1"], "vars": {"ansible_user": "b"}},
        "deep": {"hosts": ["h1"], "vars": {"ansible_become": "yes"}},
        "ungrouped": {"hosts": ["local"]},
    }
    data = convert(doc, "test")
    assert data.hosts["h1"] == {"address": "h1", "port": 2200, "user": "a", "sudo": True}  # priority 5 beats b
    assert data.hosts["h2"]["user"] == "own"
    assert "local" not in data.hosts  # not reached over SSH
    assert set(data.groups) == {"a", "b", "deep"}  # all (no own vars) and ungrouped are implicit


def test_the_inventory_digest_covers_what_the_source_contributed(tmp_path):
    """A run records the inventory digest: a change in the Ansible inventory must change it."""
    (tmp_path / "hosts.ini").write_text("[web]\nweb1 ansible_host=10.0.0.1\n")
    (tmp_path / "inv.yaml").write_text("version: 1\nsources:\n  - ansible: hosts.ini\nhosts:\n  db1: {address: x}\n")
    first = load_inventory(tmp_path / "inv.yaml")
    (tmp_path / "hosts.ini").write_text("[web]\nweb1 ansible_host=10.0.0.2\n")
    second = load_inventory(tmp_path / "inv.yaml")
    assert first.hosts["web1"].address == "10.0.0.1" and second.hosts["web1"].address == "10.0.0.2"
    assert first.digest != second.digest
    # a problem in an entry the source made names the source
    (tmp_path / "hosts.ini").write_text("[web]\nweb1 ansible_host=10.0.0.1 ansible_ssh_common_args='-J nowhere'\n")
    with pytest.raises(InventoryError) as err:
        load_inventory(tmp_path / "inv.yaml")
    (problem,) = err.value.problems
    assert problem.path == "hosts.web1.jump" and problem.line == 3
    assert "unknown host 'nowhere'" in problem.message and "(from sources[0]: ansible hosts.ini)" in problem.message


def test_vars_from_the_source_are_not_warned_about_the_files_own_are(tmp_path):
    """An Ansible inventory's vars serve its playbooks: no 'no check reads this var' warning for them."""
    (tmp_path / "hosts.ini").write_text("[web]\nweb1 ansible_host=10.0.0.1 nginx_workers=4\n[web:vars]\ntier=prod\n")
    (tmp_path / "inv.yaml").write_text(
        "version: 1\nsources:\n  - ansible: hosts.ini\nhosts:\n  web1: {vars: {ssh_max_auth_trys: 3}}\n"
    )
    res = CliRunner().invoke(cli, ["inventory", "validate", str(tmp_path / "inv.yaml")])
    assert res.exit_code == 0, res.output
    assert "hosts.web1.vars.ssh_max_auth_trys: no check reads this var" in res.stderr
    assert "nginx_workers" not in res.stderr and "tier" not in res.stderr
