"""Selections that select nothing are errors, not silent passes (issue #18, items 1 and 2)."""

from __future__ import annotations

from pathlib import Path

from audit_helpers import run_audit, write_yaml
from click.testing import CliRunner

from itops.cli.main import cli

EXAMPLE = Path(__file__).parents[2] / "inventory" / "example.yaml"
WAIVER = {"justification": "test", "approver": "ops@example.com", "expires": "2099-12-31"}


def _inventory(tmp_path: Path, **extra) -> Path:
    doc = {
        "version": 1,
        "groups": {
            "db": {"hosts": ["db-a"], "checks": extra.pop("db_checks", ["ssh.*"])},
            "web": {"hosts": ["web-a"], "checks": ["ssh.*", "kernel.*"]},
        },
        "hosts": {"db-a": {"address": "127.0.0.1"}, "web-a": {"address": "127.0.0.1"}},
        **extra,
    }
    return write_yaml(tmp_path / "inv.yaml", doc)


def _invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_group_pattern_matching_no_check_is_invalid_with_did_you_mean(tmp_path):
    inv = _inventory(tmp_path, db_checks=["sshd.*", "postgres.*"])
    res = _invoke("inventory", "validate", str(inv))
    assert res.exit_code == 4, res.output
    assert "groups.db.checks[0]: 'sshd.*' matches no check (did you mean 'ssh.*'?)" in res.stderr
    assert "groups.db.checks[1]: 'postgres.*' matches no check" in res.stderr
    assert f"{inv}:" in res.stderr
    # the audit refuses the same inventory before running anything
    res = _invoke("audit", "-i", str(inv), "--limit", "db-a", "--store", str(tmp_path / "store"))
    assert res.exit_code == 4, res.output
    assert "sshd.*" in res.stderr


def test_waiver_for_a_check_that_does_not_exist_is_invalid(tmp_path):
    inv = _inventory(tmp_path, waivers=[{"check": "ssh.x11_forwarding_disable", "target": "db-a", **WAIVER}])
    res = _invoke("inventory", "validate", "-i", str(inv))
    assert res.exit_code == 4, res.output
    assert "waivers[0].check" in res.stderr
    assert "did you mean 'ssh.x11_forwarding_disabled'?" in res.stderr
    res = _invoke("waivers", "list", str(inv))  # never listed as `active`
    assert res.exit_code == 4 and "ssh.x11_forwarding_disable" in res.stderr and "active" not in res.stdout
    # and from a separate waivers file too
    good = _inventory(tmp_path)
    extra = write_yaml(tmp_path / "w.yaml", {"waivers": [{"check": "acounts.*", "target": "*", **WAIVER}]})
    res = _invoke("inventory", "validate", str(good), "--waivers", str(extra))
    assert res.exit_code == 4 and "did you mean 'accounts.*'?" in res.stderr and str(extra) in res.stderr


def test_unknown_var_is_warned_with_did_you_mean(tmp_path):
    inv = _inventory(tmp_path)
    host = "db-a:\n    address: 127.0.0.1"
    inv.write_text(inv.read_text().replace(host, host + "\n    vars: {ssh_max_auth_trys: 3}"))
    res = _invoke("inventory", "validate", str(inv))
    assert res.exit_code == 0, res.output
    assert "hosts.db-a.vars.ssh_max_auth_trys: no check reads this var" in res.stderr
    assert "did you mean 'ssh_max_auth_tries'?" in res.stderr


def test_example_inventory_uses_only_names_that_do_something():
    from itops.inventory import load_inventory
    from itops.inventory_refs import pattern_problems, unknown_var_warnings
    from itops.registry import load_registry
    from itops.waivers import WaiverSet

    inv, registry = load_inventory(EXAMPLE), load_registry()
    assert pattern_problems(inv, registry, WaiverSet.load(inv).entries) == []
    assert unknown_var_warnings(inv, registry) == []
    res = _invoke("inventory", "validate", str(EXAMPLE))
    assert res.exit_code == 0, res.output
    assert "warning" not in res.stderr, res.stderr


def test_misspelled_checks_term_is_a_usage_error(tmp_path):
    inv = _inventory(tmp_path)
    res = _invoke("audit", str(inv), "--checks", "ssh.root_login_disabled,acounts.*", "--store", str(tmp_path / "s"))
    assert res.exit_code == 2, res.output
    assert "'acounts.*' matches no check (did you mean 'accounts.*'?)" in res.stderr
    assert not (tmp_path / "s" / "runs").exists() or not any((tmp_path / "s" / "runs").iterdir())
    res = _invoke("checks", "list", "--checks", "sshd.*")
    assert res.exit_code == 2 and "did you mean 'ssh.*'?" in res.stderr


def test_audit_of_zero_targets_is_a_usage_error_saying_why(tmp_path):
    inv = _inventory(tmp_path)
    res = _invoke(
        "audit", "-i", str(inv), "--limit", "db-a", "--checks", "kernel.*", "--local", "--store", str(tmp_path / "s")
    )
    assert res.exit_code == 2, res.output
    assert "0 target(s)" not in res.output
    assert "--limit db-a matched 1 host(s) (db-a)" in res.stderr
    assert "ssh.*" in res.stderr


def test_stale_waiver_warnings_only_inside_the_selection(tmp_path):
    waivers = [
        {"check": "ssh.root_login_disabled", "target": "web-a", **WAIVER},  # outside --limit db-a
        {"check": "kernel.*", "target": "db-a", **WAIVER},  # outside --checks
        {"check": "ssh.root_login_disabled", "target": "group:db", **WAIVER},  # inside: matches results
        {"check": "ssh.root_login_disabled", "target": "legacy-*", **WAIVER},  # inside, names no host: stale
    ]
    inv = _inventory(tmp_path, waivers=waivers)
    _code, doc, err = run_audit(
        "-i",
        str(inv),
        "--limit",
        "db-a",
        "--checks",
        "ssh.root_login_disabled",
        "--local",
        "--store",
        str(tmp_path / "s"),
    )
    assert doc["results"], err
    stale = [line for line in err.splitlines() if "stale" in line]
    assert len(stale) == 1 and "legacy-*" in stale[0], err
    # unfiltered, the waiver naming no host is stale, and so is kernel.* on db-a (its group runs ssh.* only)
    _code, doc, err = run_audit("-i", str(inv), "--local", "--store", str(tmp_path / "s"))
    stale = sorted(line for line in err.splitlines() if "stale" in line)
    assert len(stale) == 2 and "kernel.* on db-a" in stale[0] and "legacy-*" in stale[1], err


def test_backup_verify_refuses_a_waiver_for_no_check(tmp_path):
    inv = _inventory(
        tmp_path,
        waivers=[{"check": "backup.within_rp", "target": "*", **WAIVER}],
        backups={"b": {"kind": "file", "host": "db-a", "path": "/var/backups/*.gz", "rpo": "1d"}},
    )
    res = _invoke("backup", "verify", str(inv), "--store", str(tmp_path / "s"))
    assert res.exit_code == 4, res.output
    assert "waiver 'backup.within_rp' matches no check (did you mean 'backup.within_rpo'?)" in res.stderr


def test_var_used_by_a_playbook_template_is_not_warned(tmp_path):
    inv = _inventory(tmp_path)
    host = "db-a:\n    address: 127.0.0.1"
    inv.write_text(inv.read_text().replace(host, host + "\n    vars: {pg_data_dir: /srv/pg}"))
    pb = tmp_path / "pb"
    pb.mkdir()
    (pb / "restore.yaml").write_text("steps:\n  - {run: 'ls {{ hosts.db-a.vars.pg_data_dir }}', host: db-a}\n")
    res = _invoke("inventory", "validate", str(inv))
    assert "hosts.db-a.vars.pg_data_dir: no check reads this var" in res.stderr
    res = _invoke("inventory", "validate", str(inv), "--playbooks", str(pb))
    assert res.exit_code == 0 and "warning" not in res.stderr, res.stderr
