"""`sudo: true` on this machine (``--local``) with stand-in sudo programs, and the failure messages.

The real-sudo, real-sshd cases are in test_ssh_sudo.py; these run in milliseconds and pin down how a
batch that never started (sudo refused, sudo missing) is explained.
"""

from __future__ import annotations

import pytest
from audit_helpers import run_audit, write_pack, write_yaml

from itops.errors import TransportError
from itops.redact import redact
from itops.transport.base import STREAM_ENDED, explain_unstarted_batch, stream_end_problem
from itops.transport.batch import FrameParser, build_script
from itops.transport.local import LocalConnection

SUDO_WANTS_PASSWORD = """#!/bin/sh
echo "sudo: unable to resolve host lab1: Name or service not known" >&2
echo "sudo: a password is required" >&2
exit 1
"""
SUDO_PASSES_THROUGH = """#!/bin/sh
[ "$1" = -n ] || { echo "sudo: called without -n" >&2; exit 1; }
shift
exec "$@"
"""


@pytest.fixture
def fake_path(tmp_path, monkeypatch):
    """A PATH holding only what the test puts there (plus sh): ``fake_path("sudo", script)``."""
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "sh").symlink_to("/bin/sh")
    monkeypatch.setenv("PATH", str(folder))

    def put(name: str, script: str) -> None:
        (folder / name).write_text(script)
        (folder / name).chmod(0o755)

    return put


def run_local(sudo: bool, commands=("echo hello",)):
    batch = build_script(list(commands), [10] * len(commands))
    return LocalConnection(sudo=sudo).run_batch(batch, idle_timeout=10, total_timeout=30)


def test_missing_sudo_is_a_transport_error_naming_sudo_not_a_crash(fake_path):
    with pytest.raises(TransportError) as err:
        run_local(sudo=True)
    assert "sudo not found" in str(err.value) and "not installed" in str(err.value)


def test_sudo_wanting_a_password_is_explained_from_its_stderr(fake_path):
    fake_path("sudo", SUDO_WANTS_PASSWORD)
    with pytest.raises(TransportError) as err:
        run_local(sudo=True)
    message = str(err.value)
    assert "may not run sudo without" in message and "sudo -n" in message and "NOPASSWD" in message
    assert "sudo: a password is required" in message
    assert "unable to resolve host" not in message  # sudo's noise is left out when it said more
    assert STREAM_ENDED not in message


def test_batch_runs_through_sudo_n(fake_path):
    fake_path("sudo", SUDO_PASSES_THROUGH)
    out = run_local(sudo=True)
    assert out.complete and out.results[0].stdout == b"hello\n"


def test_audit_with_refusing_sudo_gives_every_check_that_error_and_exit_3(fake_path, tmp_path):
    fake_path("sudo", SUDO_WANTS_PASSWORD)
    inv = write_yaml(tmp_path / "inv.yaml", {"version": 1, "hosts": {"here": {"address": "127.0.0.1", "sudo": True}}})
    code, doc, _ = run_audit(
        "-i",
        str(inv),
        "--local",
        "--checks-dir",
        str(write_pack(tmp_path / "pack")),
        "--checks",
        "test.path_exists,test.shadow_mode",
        "--store",
        str(tmp_path / "s"),
    )
    assert {r["status"] for r in doc["results"]} == {"ERROR"}
    assert all("may not run sudo without" in r["message"] for r in doc["results"]), doc["results"]
    assert code == 3


@pytest.mark.parametrize(
    ("exit_status", "stderr", "expected"),
    [
        (127, b"bash: line 1: sudo: command not found\n", "sudo not found"),
        (127, b"sh: 1: sudo: not found\n", "sudo not found"),
        (1, b"sudo: sorry, you must have a tty to run sudo\n", "Defaults:ops !requiretty"),
        (1, b"sudo: account validation failure, is your account locked?\n", "sudo refused"),
    ],
)
def test_sudo_failures_are_named(exit_status, stderr, expected):
    message = explain_unstarted_batch(exit_status, stderr, user="ops", sudo=True)
    assert expected in message
    assert stderr.decode().strip() in message
    assert redact(message) == message  # nothing in it looks like `password: SECRET` to the store


def test_password_message_survives_redaction():
    # the store redacts `password: WORD` / `password=WORD`; the message must not lose the user name
    message = explain_unstarted_batch(1, b"sudo: a password is required\n", user="ops", sudo=True)
    assert redact(message) == message


def test_without_sudo_an_unstarted_script_names_exit_status_and_output():
    message = explain_unstarted_batch(98, b"mkdir: cannot create directory\n", user="ops", sudo=False)
    assert "exit 98" in message and "temporary directory" in message and "mkdir: cannot create" in message
    login_shell = explain_unstarted_batch(1, b"", b"This account is currently not available.\n", user="x", sudo=False)
    assert "This account is currently not available." in login_shell


def test_stream_ending_after_some_probes_keeps_them_and_names_the_exit_status():
    batch = build_script(["a", "b"], [5, 5])
    m = f"\n@@ITOPS:{batch.nonce}@@ ".encode()
    parser = FrameParser(batch)
    parser.feed(m + b"OUT 0\nout" + m + b"ERR 0\n" + m + b"RC 0 0\n")
    problem = stream_end_problem(parser, 137, b"Killed\n", user="ops", sudo=True)
    assert problem == f"{STREAM_ENDED} (exit 137: Killed)"
    with pytest.raises(TransportError):
        stream_end_problem(FrameParser(batch), 1, b"sudo: a password is required\n", user="ops", sudo=True)
