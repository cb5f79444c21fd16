"""The ssh, accounts and files packs against the real sshd lab fleet (good1 hardened, bad1 weak).

Runs ``itops audit`` end to end (SSH, batched probes, runner) and checks the verdicts match
what tests/lab_hosts.py planted. The slow filesystem scans are left out.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from lab_hosts import LAB_HOSTS

pytestmark = pytest.mark.integration

CHECKS = "ssh.*,accounts.*,files.*_permissions"


@pytest.fixture(scope="module")
def lab_results(lab_inventory: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], list[dict]]:
    store = tmp_path_factory.mktemp("store")
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from itops.cli.main import main; main()",
            "audit",
            "-i",
            str(lab_inventory),
            "--checks",
            CHECKS,
            "--limit",
            "good1,bad1",
            "--format",
            "json",
            "--store",
            str(store),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert proc.returncode in (0, 1, 3), proc.stderr
    doc = json.loads(proc.stdout)
    by_key: dict[tuple[str, str], list[dict]] = {}
    for r in doc["results"]:
        by_key.setdefault((r["target"], r["check_id"]), []).append(r)
    return by_key


def statuses(results, host, check_id):
    return sorted({r["status"] for r in results[(host, check_id)]})


PLANTED = {
    "ssh.root_login_disabled": ("PASS", "FAIL"),
    "ssh.password_auth_disabled": ("PASS", "FAIL"),
    "ssh.empty_passwords_disabled": ("PASS", "FAIL"),
    "ssh.max_auth_tries_limited": ("PASS", "FAIL"),
    "ssh.x11_forwarding_disabled": ("PASS", "FAIL"),
    "accounts.uid0_only_root": ("PASS", "FAIL"),
    "accounts.shadow_no_empty_passwords": ("PASS", "FAIL"),
    "files.shadow_permissions": ("PASS", "FAIL"),
    "files.passwd_permissions": ("PASS", "PASS"),
}


@pytest.mark.parametrize("check_id", list(PLANTED))
def test_planted_weaknesses_found_and_hardening_recognised(lab_results, check_id):
    good, bad = PLANTED[check_id]
    assert statuses(lab_results, "good1", check_id) == [good], lab_results[("good1", check_id)]
    assert statuses(lab_results, "bad1", check_id) == [bad], lab_results[("bad1", check_id)]


def test_offenders_are_named(lab_results):
    uid0 = {r["resource"] for r in lab_results[("bad1", "accounts.uid0_only_root")]}
    assert uid0 == set(LAB_HOSTS["bad1"].uid0_accounts) - {"root"}
    empty = {r["resource"] for r in lab_results[("bad1", "accounts.shadow_no_empty_passwords")]}
    assert empty == set(LAB_HOSTS["bad1"].empty_password_accounts)


def test_nothing_unassessable_on_a_root_login(lab_results):
    """Probes run as root on the lab hosts, so every check can reach a verdict (no ERROR)."""
    errors = [(k, r["message"]) for k, rs in lab_results.items() for r in rs if r["status"] == "ERROR"]
    assert not errors
