"""Auditing as a non-root SSH user through `sudo -n`, over real sshd with real sudo (Debian roots).

One module-scoped fleet of two chrooted Debian hosts:
``sudo-main`` has three login users (``ops`` with NOPASSWD sudo, ``pwops`` whose sudo needs a
password, ``nosudo`` with no sudoers entry) and ``sudo-absent`` has ``ops`` but no sudo binary.
Each test writes an inventory whose host entries point at these sshds under the user it needs.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from audit_helpers import run_cli_process, write_yaml

from itops_lab import HARDENED, Fleet, HostRoots, LabHostSpec, RootKind, start_fleet
from itops_lab.netutil import LOCALHOST
from itops_lab.users import LabUser, add_user, expose_users

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

OPS = LabUser("ops", 2101, sudoers="ops ALL=(ALL) NOPASSWD: ALL")
PWOPS = LabUser("pwops", 2102, sudoers="pwops ALL=(ALL) ALL")  # sudo asks for the password
NOSUDO = LabUser("nosudo", 2103)  # no sudoers entry at all

#: Checks that read what only root may read (/etc/shadow, /etc/sudoers, root's login PATH): as a
#: non-root user without sudo none of them may PASS (or FAIL).
ROOT_ONLY_CHECKS = (
    "accounts.shadow_no_empty_passwords",
    "accounts.password_max_days_limited",
    "accounts.root_path_sane",
    "accounts.sudoers_no_nopasswd",
    "accounts.sudoers_authenticate_required",
)
#: ssh checks read `sshd -T`, which needs root (host keys); without it they fall back to the files
SSHD_T_CHECKS = ("ssh.root_login_disabled", "ssh.password_auth_disabled", "ssh.ciphers_strong")
#: What cases 1-5 audit: root-only checks plus ones any user can evaluate (files.*_permissions: stat).
CHECKS = "ssh.*,accounts.*,files.shadow_permissions,files.passwd_permissions"
AUDIT_TIMEOUT = 90  # seconds; a sudo password prompt would hang until this kills the run


@pytest.fixture(scope="module")
def sudo_fleet(lab_roots: HostRoots) -> Iterator[Fleet]:
    """sudo-main (ops, pwops, nosudo) and sudo-absent (ops, no sudo binary), running."""
    main = lab_roots.create("sudo-main", RootKind.DEBIAN, HARDENED)
    absent = lab_roots.create("sudo-absent", RootKind.DEBIAN, HARDENED)
    for user in (OPS, PWOPS, NOSUDO):
        add_user(main, user)
    add_user(absent, OPS)
    (absent / "usr/bin/sudo").unlink()  # only this root's link: the cached base keeps its sudo
    # sshd reads the shared authorized_keys as the login user: the fleet's directory must be
    # traversable by others, which pytest's tmp_path (under a 0700 directory) is not
    workdir = Path(tempfile.mkdtemp(prefix="itops-sudo-lab-"))
    os.chmod(workdir, 0o755)  # holds no secret but the lab's own client key, itself 0600
    try:
        specs = [LabHostSpec("sudo-main", root=main), LabHostSpec("sudo-absent", root=absent)]
        with start_fleet(workdir, specs, startup_timeout=30) as fleet:
            expose_users(fleet["sudo-main"], [OPS, PWOPS, NOSUDO], workdir, fleet.authorized_keys_path)
            expose_users(fleet["sudo-absent"], [OPS], workdir, fleet.authorized_keys_path)
            yield fleet
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def audit(
    fleet: Fleet, tmp_path: Path, hosts: dict[str, dict[str, Any]], fail_on: str = "critical"
) -> tuple[int, dict[str, dict[str, Any]]]:
    """Audit ``hosts`` (alias -> {"on": lab host, ssh keys...}) as a process, bounded in time.

    Returns the exit code and, per alias, ``{check_id: result}``. HARDENED hosts FAIL some low and
    medium checks, so with the default ``fail_on`` an ERROR anywhere makes the exit code 3.
    """
    doc = fleet.inventory()
    doc["hosts"] = {
        alias: {"address": LOCALHOST, "port": fleet[spec.pop("on")].port, "site": "lab", **spec}
        for alias, spec in ((a, dict(s)) for a, s in hosts.items())
    }
    inventory = write_yaml(tmp_path / "inventory.yaml", doc)
    started = time.monotonic()
    proc = run_cli_process(
        "audit",
        "-i",
        str(inventory),
        "--checks",
        CHECKS,
        "--store",
        str(tmp_path / "store"),
        "--format",
        "json",
        "--fail-on",
        fail_on,
        timeout=AUDIT_TIMEOUT,
    )
    assert time.monotonic() - started < AUDIT_TIMEOUT
    assert proc.stdout.strip().startswith("{"), proc.stderr[-2000:]
    results: dict[str, dict[str, Any]] = {alias: {} for alias in hosts}
    for r in json.loads(proc.stdout)["results"]:
        results[r["target"]][r["check_id"]] = r
    assert all(results.values()), f"a host has no results: {proc.stderr[-2000:]}"
    return proc.returncode, results


def statuses(results: dict[str, Any]) -> dict[str, str]:
    return {check: r["status"] for check, r in results.items()}


def assert_all_error(results: dict[str, Any], *needles: str) -> None:
    """Every check ERROR (never PASS or FAIL) with a message holding every needle."""
    assert set(statuses(results).values()) == {"ERROR"}, statuses(results)
    for r in results.values():
        for needle in needles:
            assert needle in r["message"], r["message"]


def test_passwordless_sudo_gives_the_same_verdicts_as_root(sudo_fleet, tmp_path):
    code, res = audit(
        sudo_fleet,
        tmp_path,
        {
            "as-root": {"on": "sudo-main", "user": "root"},
            "as-ops": {"on": "sudo-main", "user": "ops", "sudo": True},
        },
    )
    as_root, as_ops = statuses(res["as-root"]), statuses(res["as-ops"])
    errors = {c: res["as-root"][c]["message"] for c, s in as_root.items() if s == "ERROR"}
    assert not errors, errors
    assert as_ops == as_root, {
        c: (as_root.get(c), s, res["as-ops"][c]["message"]) for c, s in as_ops.items() if as_root.get(c) != s
    }
    # same messages too: e.g. the ssh checks read `sshd -T` as root did, not the non-root file fallback
    for check in (*ROOT_ONLY_CHECKS, *SSHD_T_CHECKS):
        assert res["as-ops"][check]["message"] == res["as-root"][check]["message"], check
        assert res["as-ops"][check]["status"] in ("PASS", "FAIL"), check
    # ops exists in the root's own files, and its NOPASSWD rule was read through sudo
    assert as_ops["accounts.sudoers_no_nopasswd"] == "FAIL"
    assert "ops" in res["as-ops"]["accounts.sudoers_no_nopasswd"]["message"]
    assert code == 0  # no ERROR made the run incomplete (and no critical FAIL)


def test_sudo_needing_a_password_is_an_error_naming_sudo_n_and_the_run_completes(sudo_fleet, tmp_path):
    code, res = audit(
        sudo_fleet,
        tmp_path,
        {
            "pw-sudo": {"on": "sudo-main", "user": "pwops", "sudo": True},
            "as-ops": {"on": "sudo-main", "user": "ops", "sudo": True},
        },
    )
    assert_all_error(res["pw-sudo"], "sudo", "password", "sudo -n", "pwops", "NOPASSWD")
    assert "ERROR" not in statuses(res["as-ops"]).values()
    assert code == 3


def test_user_without_sudo_rights_is_an_error_saying_it_may_not_run_sudo(sudo_fleet, tmp_path):
    code, res = audit(
        sudo_fleet,
        tmp_path,
        {
            "no-sudoers": {"on": "sudo-main", "user": "nosudo", "sudo": True},
            "as-root": {"on": "sudo-main", "user": "root"},
        },
    )
    assert_all_error(res["no-sudoers"], "nosudo may not run sudo", "sudo -n", "NOPASSWD")
    assert "ERROR" not in statuses(res["as-root"]).values()
    assert code == 3


def test_non_root_user_without_sudo_never_passes_root_only_checks(sudo_fleet, tmp_path):
    code, res = audit(
        sudo_fleet,
        tmp_path,
        {
            "plain-ops": {"on": "sudo-main", "user": "ops"},
            "as-root": {"on": "sudo-main", "user": "root"},
        },
    )
    plain, as_root = res["plain-ops"], statuses(res["as-root"])
    for check in ROOT_ONLY_CHECKS:
        assert plain[check]["status"] == "ERROR", (check, plain[check]["status"], plain[check]["message"])
        message = plain[check]["message"].lower()
        assert "root" in message or "not readable" in message or "permission denied" in message, (check, message)
    # whatever a non-root user can evaluate (stat, a 0644 sshd_config) agrees with root: no other verdict
    wrong = {
        c: (as_root[c], r["status"], r["message"]) for c, r in plain.items() if r["status"] not in (as_root[c], "ERROR")
    }
    assert not wrong, wrong
    assert plain["files.passwd_permissions"]["status"] == "PASS"  # stat needs no privilege
    assert code == 3


def test_missing_sudo_binary_is_an_error_naming_sudo(sudo_fleet, tmp_path):
    code, res = audit(
        sudo_fleet,
        tmp_path,
        {
            "no-sudo-binary": {"on": "sudo-absent", "user": "ops", "sudo": True},
            "as-root": {"on": "sudo-absent", "user": "root"},
        },
    )
    assert_all_error(res["no-sudo-binary"], "sudo", "not found", "not installed")
    assert "ERROR" not in statuses(res["as-root"]).values()
    assert code == 3


def test_host_whose_sudo_is_refused_is_one_line_in_the_table(sudo_fleet, tmp_path):
    """Issue #18: every check ERROR for one shared reason is one table line, not one line per check."""
    audit(
        sudo_fleet,
        tmp_path,
        {
            "no-sudoers": {"on": "sudo-main", "user": "nosudo", "sudo": True},
            "as-root": {"on": "sudo-main", "user": "root"},
        },
    )
    table = run_cli_process("runs", "show", "latest", "--store", str(tmp_path / "store")).stdout
    lines = [ln for ln in table.splitlines() if "no-sudoers" in ln]
    shown = json.loads(
        run_cli_process("runs", "show", "latest", "--store", str(tmp_path / "store"), "--format", "json").stdout
    )
    errors = [r for r in shown["results"] if r["target"] == "no-sudoers"]
    as_root = {r["check_id"] for r in shown["results"] if r["target"] == "as-root"}
    assert {r["check_id"] for r in errors} == as_root and {r["status"] for r in errors} == {"ERROR"}  # every check
    assert len(lines) == 1, table
    assert f"ERROR ({len(errors)} checks not assessed): could not assess:" in lines[0]
    assert "nosudo may not run sudo" in lines[0]
