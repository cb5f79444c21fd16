"""``itops remediate`` on a stored run (no hosts needed to write the artefacts): files, modes, selection,
risky fixes, and the plan shown before --apply asks."""

from __future__ import annotations

import stat
from pathlib import Path

import yaml
from click.testing import CliRunner

from itops.cli.main import cli
from itops.model import Evidence, Result, Run, Severity, Status
from itops.store import Store


def _store(tmp_path: Path) -> tuple[Path, Path, str]:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "hosts": {
                    "web1": {"address": "127.0.0.1", "port": 9, "vars": {"ssh_max_auth_tries": 3}},
                    "db1": {"address": "127.0.0.1", "port": 9},
                },
            }
        )
    )
    store_dir = tmp_path / "store"
    run = Run(id="20261206T000000Z-abcdef", kind="audit", started=1.0, inventory=str(inventory))
    writer = Store(store_dir).begin(run)

    def r(check_id: str, target: str, status: Status = Status.FAIL, resource: str = "") -> Result:
        return Result(
            run.id,
            check_id,
            target,
            status,
            Severity.HIGH,
            "bad",
            resource=resource,
            evidence=Evidence(source="sshd -T", observed="maxauthtries 6", expected="1 to 4"),
        )

    writer.add_many(
        [
            r("ssh.max_auth_tries_limited", "web1"),
            r("ssh.max_auth_tries_limited", "db1"),
            r("ssh.root_login_disabled", "web1"),
            r("files.shadow_permissions", "db1", resource="/etc/shadow"),
            r("ssh.x11_forwarding_disabled", "db1", Status.PASS),
        ]
    )
    writer.finish("complete", 1)
    return store_dir, inventory, run.id


def test_sh_scripts_per_host_with_host_params_and_private_mode(tmp_path: Path) -> None:
    store, _inventory, run_id = _store(tmp_path)
    out = tmp_path / "fixes"
    res = CliRunner().invoke(cli, ["remediate", run_id[:10], "--store", str(store), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["db1.sh", "web1.sh"]
    web1 = (out / "web1.sh").read_text()
    assert "itops_sshd_set MaxAuthTries 3 || return 1" in web1  # web1's own var
    assert "itops_sshd_set MaxAuthTries 4 || return 1" in (out / "db1.sh").read_text()  # the default
    assert "# left out: ssh.root_login_disabled: risk: high" in web1
    assert stat.S_IMODE((out / "web1.sh").stat().st_mode) == 0o700
    assert "web1: left out ssh.root_login_disabled" in res.stderr


def test_limit_checks_and_include_risky(tmp_path: Path) -> None:
    store, _inventory, run_id = _store(tmp_path)
    res = CliRunner().invoke(
        cli, ["remediate", run_id, "--store", str(store), "--limit", "web1", "--checks", "ssh.*", "--include-risky"]
    )
    assert res.exit_code == 0, res.output
    assert "host web1" in res.stdout and "host db1" not in res.stdout
    assert "itops_sshd_set PermitRootLogin no" in res.stdout and "files.shadow" not in res.stdout


def test_ansible_playbook_file(tmp_path: Path) -> None:
    store, _inventory, run_id = _store(tmp_path)
    book = tmp_path / "fix.yml"
    res = CliRunner().invoke(cli, ["remediate", run_id, "--store", str(store), "--format", "ansible", "-o", str(book)])
    assert res.exit_code == 0, res.output
    text = book.read_text()
    assert text.startswith(f"# itops remediation playbook from run {run_id}")
    assert "hosts: !unsafe 'db1'" in text and "ansible.builtin.file" in text


def test_apply_shows_the_plan_and_applies_nothing_when_refused(tmp_path: Path) -> None:
    store, _inventory, run_id = _store(tmp_path)
    res = CliRunner().invoke(cli, ["remediate", run_id, "--store", str(store), "--apply"], input="n\n")
    assert res.exit_code == 0, res.output
    assert "plan: 3 fix(es) on 2 host(s)" in res.stderr
    assert "web1: ssh.max_auth_tries_limited (low risk)" in res.stderr
    assert "nothing applied" in res.stderr
    assert len(Store(store).list_runs()) == 1  # no re-audit run
