"""SSH password authentication (``password_env`` / ``password_file``) against real sshd.

One module-scoped fleet of two chrooted hosts, each with the login users ``pwuser`` and ``kbduser``
whose shadow entries hold a real SHA-512 crypt hash of :data:`PASSWORD`:

* ``pw-host``: ``PasswordAuthentication yes`` (``UsePAM no``: sshd checks the bind-mounted shadow).
* ``kbd-host``: what Debian ships, ``UsePAM yes`` + ``KbdInteractiveAuthentication yes`` +
  ``PasswordAuthentication no``, with the lab's pam_unix-only stack (:func:`expose_pam`): the
  password can only be typed into PAM's "Password:" keyboard-interactive prompt.

The fleet's one shared authorized_keys authorises the lab client key for every user, so "no key"
means the inventory offers a STRANGER key (not authorised), with no ssh-agent and an empty HOME
(no default identities), and the password has to do the work.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from audit_helpers import ITOPS, write_yaml

from itops.errors import AuthFailed
from itops.transport.ssh import PasswordPromptAnswers, is_password_prompt, read_password_file
from itops_lab import Fleet, HostRoots, LabHostSpec, RootKind, start_fleet
from itops_lab.netutil import LOCALHOST, generate_ed25519
from itops_lab.users import LabUser, add_user, expose_pam, expose_users, sha512_crypt

PASSWORD = "Corr3ct-Horse-7731"
WRONG = "Wr0ng-Battery-4419"
PW_USER = LabUser("pwuser", 2201)
KBD_USER = LabUser("kbduser", 2202)
CHECKS = "files.passwd_permissions,files.shadow_permissions"
AUDIT_TIMEOUT = 60


# ------------------------------------------------------------------ pure: the prompt handler


def test_only_the_login_password_prompt_with_echo_off_gets_the_password():
    for prompt in ("Password: ", "pwuser@host's password: ", "Password for ops@EXAMPLE.COM: ", "Passwort: "):
        assert is_password_prompt(prompt), prompt
    for prompt in (
        "New password: ",
        "Retype new password: ",
        "Verification code: ",
        "One-time password: ",
        "Enter PASSCODE: ",
        "Token: ",
        "Duo two-factor login",
    ):
        assert not is_password_prompt(prompt), prompt
    answers = PasswordPromptAnswers(PASSWORD)
    assert answers("", "", [("Password: ", True)]) == [""]  # echo ON: would show the password
    assert answers("", "", []) == []  # an empty round (some servers send one) is answered empty
    assert answers("", "", [("Verification code: ", False)]) == [""]
    assert answers("", "", [("Password: ", False)]) == [PASSWORD]
    assert answers("", "", [("Password: ", False)]) == [""]  # asked again: the first was wrong
    outcome = answers.outcome()
    assert "Verification code" in outcome and "rejected" in outcome and PASSWORD not in outcome
    assert PasswordPromptAnswers(PASSWORD).outcome() == "the server asked for no password"


def test_password_file_readable_by_others_is_refused_and_0600_is_read(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    os.chmod(secret, 0o600)
    assert read_password_file(str(secret)) == PASSWORD
    link = tmp_path / "link"
    link.symlink_to(secret)
    assert read_password_file(str(link)) == PASSWORD  # judged by the file it points to
    for mode in (0o640, 0o604, 0o620):
        os.chmod(secret, mode)
        with pytest.raises(AuthFailed) as err:
            read_password_file(str(secret))
        assert f"{mode:04o}" in str(err.value) and "chmod 600" in err.value.hint
        assert PASSWORD not in str(err.value)
    with pytest.raises(AuthFailed, match="cannot read password_file"):
        read_password_file(str(tmp_path / "missing"))


# ------------------------------------------------------------------ real sshd


@pytest.fixture(scope="module")
def pw_fleet(lab_roots: HostRoots, lab_root_kind: RootKind) -> Iterator[Fleet]:
    """pw-host (password auth, no PAM) and kbd-host (keyboard-interactive through PAM only)."""
    hashed = sha512_crypt(PASSWORD)
    users = [LabUser(u.name, u.uid, password_hash=hashed) for u in (PW_USER, KBD_USER)]
    specs = []
    for name, options in (
        ("pw-host", ("PasswordAuthentication yes",)),
        ("kbd-host", ("UsePAM yes", "KbdInteractiveAuthentication yes")),
    ):
        root = lab_roots.create(name, lab_root_kind)
        for user in users:
            add_user(root, user)
        specs.append(LabHostSpec(name, root=root, sshd_options=options))
    # sshd reads the shared authorized_keys as the login user: see itops_lab.users
    workdir = Path(tempfile.mkdtemp(prefix="itops-pw-lab-"))
    os.chmod(workdir, 0o755)
    try:
        with start_fleet(workdir, specs, startup_timeout=30) as fleet:
            for host in fleet:
                expose_users(host, users, workdir, fleet.authorized_keys_path)
            expose_pam(fleet["kbd-host"], workdir)
            yield fleet
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def client_home() -> Iterator[Path]:
    """An empty HOME for the audit process (no ~/.ssh default identities) and a stranger key."""
    home = Path(tempfile.mkdtemp(prefix="itops-pw-home-"))
    generate_ed25519(home / "stranger_ed25519", "not-authorised-anywhere")
    yield home
    shutil.rmtree(home, ignore_errors=True)


def audit(
    fleet: Fleet,
    home: Path,
    tmp_path: Path,
    hosts: dict[str, dict[str, Any]],
    env: dict[str, str] | None = None,
    debug: bool = False,
) -> tuple[Any, dict[str, dict[str, Any]]]:
    """Run `itops audit` as a process over ``hosts`` (alias -> {"on": lab host, ssh keys...}).

    Returns the finished process and, per alias, ``{check_id: result}``.
    """
    doc = fleet.inventory()
    doc["hosts"] = {
        alias: {
            "address": LOCALHOST,
            "port": fleet[spec.pop("on")].port,
            "site": "lab",
            "identity_file": str(home / "stranger_ed25519"),
            **spec,
        }
        for alias, spec in ((a, dict(s)) for a, s in hosts.items())
    }
    inventory = write_yaml(tmp_path / "inventory.yaml", doc)
    run_env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    run_env.update(HOME=str(home), NO_COLOR="1", **(env or {}))
    started = time.monotonic()
    proc = subprocess.run(
        [
            ITOPS,
            *(["--debug"] if debug else []),
            "audit",
            "-i",
            str(inventory),
            "--checks",
            CHECKS,
            "--store",
            str(tmp_path / "store"),
            "--format",
            "json",
        ],
        capture_output=True,
        text=True,
        timeout=AUDIT_TIMEOUT,
        env=run_env,
        check=False,
    )
    assert time.monotonic() - started < AUDIT_TIMEOUT
    assert proc.stdout.strip().startswith("{"), proc.stderr[-2000:]
    results: dict[str, dict[str, Any]] = {alias: {} for alias in hosts}
    for r in json.loads(proc.stdout)["results"]:
        results[r["target"]][r["check_id"]] = r
    assert all(results.values()), f"a host has no results: {proc.stderr[-2000:]}"
    return proc, results


def assert_checks_ran(results: dict[str, Any]) -> None:
    statuses = {c: (r["status"], r["message"]) for c, r in results.items()}
    assert statuses["files.passwd_permissions"][0] == "PASS", statuses
    assert all(s != "UNREACHABLE" for s, _ in statuses.values()), statuses


@pytest.mark.integration
@pytest.mark.timeout(180)
@pytest.mark.parametrize(("host", "user"), [("pw-host", "pwuser"), ("kbd-host", "kbduser")])
def test_password_env_logs_in_without_a_usable_key(pw_fleet, client_home, tmp_path, host, user):
    _, res = audit(
        pw_fleet,
        client_home,
        tmp_path,
        {"by-env": {"on": host, "user": user, "password_env": "ITOPS_TEST_PW"}},
        env={"ITOPS_TEST_PW": PASSWORD},
    )
    assert_checks_ran(res["by-env"])
    # the stranger key was really offered first and refused: the password did the work
    log = pw_fleet[host].log_tail(200)
    method = "password" if host == "pw-host" else "keyboard-interactive/pam"
    assert f"Accepted {method} for {user}" in log, log


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_password_file_0600_logs_in(pw_fleet, client_home, tmp_path):
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    os.chmod(secret, 0o600)
    _, res = audit(
        pw_fleet,
        client_home,
        tmp_path,
        {
            "by-file": {"on": "pw-host", "user": "pwuser", "password_file": str(secret)},
            "by-file-kbd": {"on": "kbd-host", "user": "kbduser", "password_file": str(secret)},
        },
    )
    assert_checks_ran(res["by-file"])
    assert_checks_ran(res["by-file-kbd"])


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_password_file_readable_by_others_is_refused_end_to_end(pw_fleet, client_home, tmp_path):
    secret = tmp_path / "pw"
    secret.write_text(PASSWORD + "\n")
    os.chmod(secret, 0o644)
    _, res = audit(
        pw_fleet,
        client_home,
        tmp_path,
        {
            "open-file": {"on": "pw-host", "user": "pwuser", "password_file": str(secret)},
        },
    )
    for r in res["open-file"].values():
        assert r["status"] == "UNREACHABLE" and "0644" in r["message"], r


@pytest.mark.integration
@pytest.mark.timeout(180)
@pytest.mark.parametrize(("host", "user"), [("pw-host", "pwuser"), ("kbd-host", "kbduser")])
def test_wrong_password_is_unreachable_naming_auth_and_never_leaks(pw_fleet, client_home, tmp_path, host, user):
    proc, res = audit(
        pw_fleet,
        client_home,
        tmp_path,
        {"wrong": {"on": host, "user": user, "password_env": "ITOPS_TEST_PW"}},
        env={"ITOPS_TEST_PW": WRONG},
        debug=True,
    )
    for r in res["wrong"].values():
        assert r["status"] == "UNREACHABLE", r
        assert "auth failed" in r["message"] and "password" in r["message"], r["message"]
        assert "rejected" in r["message"], r["message"]
    assert proc.returncode != 0
    store = tmp_path / "store"
    report_env = {k: v for k, v in os.environ.items() if k != "SSH_AUTH_SOCK"}
    reports = [
        subprocess.run(
            [ITOPS, "report", "latest", "--store", str(store), "-f", fmt],
            capture_output=True,
            text=True,
            timeout=60,
            env=report_env,
            check=False,
        )
        for fmt in ("html", "json", "md")
    ]
    for rep in reports:
        assert rep.returncode == 0 and "wrong" in rep.stdout, rep.stderr[-2000:]
    stored = list(store.rglob("*"))
    assert any(p.name == "results.jsonl" for p in stored) and any(p.suffix in (".db", ".sqlite") for p in stored), (
        stored
    )
    for db in (p for p in stored if p.suffix in (".db", ".sqlite")):
        with sqlite3.connect(db) as conn:  # a WAL not yet checkpointed is read through SQLite
            for (table,) in conn.execute("select name from sqlite_master where type='table'").fetchall():
                assert WRONG not in repr(conn.execute(f"select * from {table}").fetchall()), table
    texts = {
        "stdout": proc.stdout,
        "stderr": proc.stderr,
        **{f"report {i}": r.stdout for i, r in enumerate(reports)},
        **{str(p): p.read_bytes().decode("utf-8", "replace") for p in stored if p.is_file()},
    }
    leaked = [where for where, text in texts.items() if WRONG in text]
    assert not leaked, leaked


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_an_authorised_key_is_tried_before_a_wrong_password(pw_fleet, client_home, tmp_path):
    _, res = audit(
        pw_fleet,
        client_home,
        tmp_path,
        {
            "key-first": {
                "on": "pw-host",
                "user": "pwuser",
                "identity_file": str(pw_fleet.client_key_path),
                "password_env": "ITOPS_TEST_PW",
            },
        },
        env={"ITOPS_TEST_PW": WRONG},
    )
    assert_checks_ran(res["key-first"])
    log = pw_fleet["pw-host"].log_tail(200)
    assert "Accepted publickey for pwuser" in log, log


def test_sshd_options_replace_the_lab_default_and_no_options_change_nothing(tmp_path):
    from itops_lab.fleet import LabHost
    from itops_lab.sshd import sshd_config

    def config(*options: str) -> list[str]:
        host = LabHost(LabHostSpec("h", sshd_options=options), 2222, None, tmp_path)  # type: ignore[arg-type]
        return sshd_config(host, tmp_path / "authorized_keys", "INFO").splitlines()

    default = config()
    assert "PasswordAuthentication no" in default and "UsePAM no" in default
    changed = config("PasswordAuthentication yes", "usepam yes", "MaxAuthTries 3")
    # replaced in place (sshd keeps the first value it reads), new keywords appended
    assert "PasswordAuthentication no" not in changed and "UsePAM no" not in changed
    assert changed[default.index("PasswordAuthentication no")] == "PasswordAuthentication yes"
    assert changed[default.index("UsePAM no")] == "usepam yes"
    assert changed[-1] == "MaxAuthTries 3" and len(changed) == len(default) + 1
