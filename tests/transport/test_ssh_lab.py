"""Issue 2 acceptance over real sshd: host keys, unreachable hosts, timeouts, auth, quoting."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from audit_helpers import by_target, lab_target, run_audit, write_pack, write_yaml

from itops_lab import LabHostSpec
from itops_lab.netutil import closed_port, silent_port

pytestmark = pytest.mark.integration


def test_same_check_passes_on_one_host_and_fails_on_another(lab_inventory, tmp_path):
    code, doc, _ = run_audit(
        "-i",
        str(lab_inventory),
        "--checks-dir",
        str(write_pack(tmp_path / "pack")),
        "--checks",
        "test.shadow_mode",
        "--store",
        str(tmp_path / "store"),
    )
    res = by_target(doc, "test.shadow_mode")
    assert res["good1"]["status"] == "PASS", res["good1"]
    assert res["bad1"]["status"] == "FAIL", res["bad1"]
    assert code == 1


def test_unknown_host_key_is_rejected_and_other_hosts_still_run(fleet_factory, tmp_path):
    fleet = fleet_factory([LabHostSpec("known1"), LabHostSpec("stranger", known=False)])
    code, doc, _ = run_audit(
        "-i",
        str(fleet.inventory_path),
        "--checks-dir",
        str(write_pack(tmp_path / "p")),
        "--checks",
        "test.path_exists",
        "--store",
        str(tmp_path / "s"),
    )
    res = by_target(doc, "test.path_exists")
    assert res["known1"]["status"] == "PASS"
    assert res["stranger"]["status"] == "UNREACHABLE"
    assert "unknown host key" in res["stranger"]["message"]
    assert fleet["stranger"].fingerprint in res["stranger"]["message"]
    assert code == 3


def test_changed_host_key_is_rejected(fleet_factory, tmp_path):
    fleet = fleet_factory(2)
    fleet.rotate_host_key("lab2")  # known_hosts keeps the old key
    code, doc, _ = run_audit(
        "-i",
        str(fleet.inventory_path),
        "--checks-dir",
        str(write_pack(tmp_path / "p")),
        "--checks",
        "test.path_exists",
        "--store",
        str(tmp_path / "s"),
    )
    assert code == 3, code
    res = by_target(doc, "test.path_exists")
    assert res["lab1"]["status"] == "PASS"
    assert res["lab2"]["status"] == "UNREACHABLE"
    assert "host key" in res["lab2"]["message"] and "CHANGED" in res["lab2"]["message"]


def test_trust_on_first_use_records_unknown_key_but_never_a_changed_one(fleet_factory, tmp_path, caplog):
    fleet = fleet_factory([LabHostSpec("new1", known=False)])
    tofu = tmp_path / "tofu_known_hosts"
    args = [
        "-i",
        str(fleet.inventory_path),
        "--checks-dir",
        str(write_pack(tmp_path / "p")),
        "--checks",
        "test.path_exists",
        "--store",
        str(tmp_path / "s"),
        "--trust-on-first-use",
        str(tofu),
    ]
    code, doc, _ = run_audit(*args)
    assert code == 0, code
    assert by_target(doc, "test.path_exists")["new1"]["status"] == "PASS"
    assert "TRUST ON FIRST USE" in caplog.text  # loudly, on stderr via logging
    assert fleet["new1"].host_key.get_base64() in tofu.read_text()
    fleet.rotate_host_key("new1")
    code, doc, _ = run_audit(*args)
    assert code == 3, code
    assert by_target(doc, "test.path_exists")["new1"]["status"] == "UNREACHABLE"


def test_closed_and_silent_ports_are_unreachable_within_the_timeout(fleet_factory, tmp_path):
    fleet = fleet_factory(1)
    with silent_port() as silent:
        inv = fleet.inventory(
            {
                "defaults": {"ssh": {"connect_timeout": 2}},
                "hosts": {
                    "closed": {"address": "127.0.0.1", "port": closed_port()},
                    "silent": {"address": "127.0.0.1", "port": silent},
                },
            }
        )
        path = write_yaml(tmp_path / "inv.yaml", inv)
        t0 = time.monotonic()
        code, doc, _ = run_audit(
            "-i",
            str(path),
            "--checks-dir",
            str(write_pack(tmp_path / "p")),
            "--checks",
            "test.path_exists",
            "--store",
            str(tmp_path / "s"),
        )
        elapsed = time.monotonic() - t0
    res = by_target(doc, "test.path_exists")
    assert res["lab1"]["status"] == "PASS"
    assert res["closed"]["status"] == "UNREACHABLE" and "refused" in res["closed"]["message"]
    assert res["silent"]["status"] == "UNREACHABLE" and "banner" in res["silent"]["message"]
    assert elapsed < 15, elapsed  # banner timeout 2s, not a hang
    assert code == 3


def test_hung_probe_is_error_after_command_timeout_and_run_completes(fleet_factory, tmp_path):
    fleet = fleet_factory(2)
    path = write_yaml(tmp_path / "inv.yaml", fleet.inventory({"defaults": {"ssh": {"command_timeout": 2}}}))
    t0 = time.monotonic()
    code, doc, _ = run_audit(
        "-i",
        str(path),
        "--checks-dir",
        str(write_pack(tmp_path / "p")),
        "--checks",
        "test.*",
        "--store",
        str(tmp_path / "s"),
    )
    assert time.monotonic() - t0 < 30
    hang = by_target(doc, "test.probe_hangs")
    assert {r["status"] for r in hang.values()} == {"ERROR"}
    assert all("timed out" in r["message"] for r in hang.values())
    # the other probes of the same batch still produced verdicts
    assert {r["status"] for r in by_target(doc, "test.path_exists").values()} == {"PASS"}
    assert code == 3


def test_wrong_client_key_is_unreachable_auth_failed(fleet_factory, tmp_path):
    fleet = fleet_factory(1)
    wrong = tmp_path / "wrong_key"
    os.system(f"ssh-keygen -q -t ed25519 -N '' -f {wrong}")
    path = write_yaml(tmp_path / "inv.yaml", fleet.inventory({"defaults": {"ssh": {"identity_file": str(wrong)}}}))
    code, doc, _ = run_audit(
        "-i",
        str(path),
        "--checks-dir",
        str(write_pack(tmp_path / "p")),
        "--checks",
        "test.path_exists",
        "--store",
        str(tmp_path / "s"),
    )
    assert code == 3, code
    r = by_target(doc, "test.path_exists")["lab1"]
    assert r["status"] == "UNREACHABLE"
    assert r["message"].startswith("auth failed")


def test_shell_metacharacters_from_inventory_reach_the_host_quoted(fleet_factory, tmp_path):
    fleet = fleet_factory(1)  # no chroot: the host's /tmp is ours, so we can look for the marker
    marker = Path(f"/tmp/itops-pwned-{uuid.uuid4().hex}")
    evil = f"x; touch {marker}"
    inv = fleet.inventory({"hosts": {"lab1": {"vars": {"test_path": evil}}}})
    path = write_yaml(tmp_path / "inv.yaml", inv)
    code, doc, _ = run_audit(
        "-i",
        str(path),
        "--checks-dir",
        str(write_pack(tmp_path / "p")),
        "--checks",
        "test.path_exists",
        "--store",
        str(tmp_path / "s"),
    )
    assert code == 1, code
    r = by_target(doc, "test.path_exists")["lab1"]
    assert not marker.exists(), "the inventory value was executed by the remote shell"
    assert r["status"] == "FAIL"  # stat was asked about the literal path 'x; touch ...'
    assert evil in r["message"]


def test_one_connection_and_one_exec_per_host(fleet_factory, tmp_path):
    fleet = fleet_factory(1, log_level="DEBUG1")
    write_pack(tmp_path / "p")
    code, doc, _ = run_audit(
        "-i",
        str(fleet.inventory_path),
        "--checks-dir",
        str(tmp_path / "p"),
        "--checks",
        "test.path_exists,test.shadow_mode",
        "--store",
        str(tmp_path / "s"),
    )
    assert code in (0, 1) and {r["status"] for r in doc["results"]} <= {"PASS", "FAIL"}, doc["results"]
    log = fleet["lab1"].log_path.read_text()
    assert log.count("Accepted publickey") == 1
    # at DEBUG1 sshd logs each exec request on a session channel
    execs = [ln for ln in log.splitlines() if "request exec" in ln]
    assert len(execs) == 1, execs


def test_default_identity_file_is_used_when_none_is_configured(fleet_factory, tmp_path, monkeypatch):
    fleet = fleet_factory(1)
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    (home / ".ssh" / "id_ed25519").write_bytes(fleet.client_key_path.read_bytes())
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    inv = fleet.inventory()
    del inv["defaults"]["ssh"]["identity_file"]
    path = write_yaml(tmp_path / "inv.yaml", inv)
    code, doc, _ = run_audit(
        "-i",
        str(path),
        "--checks-dir",
        str(write_pack(tmp_path / "p")),
        "--checks",
        "test.path_exists",
        "--store",
        str(tmp_path / "s"),
    )
    assert code == 0, code
    assert by_target(doc, "test.path_exists")["lab1"]["status"] == "PASS"


def test_ssh_agent_key_authenticates_when_no_identity_file_is_set(fleet_factory, tmp_path, monkeypatch):
    fleet = fleet_factory(1)
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        env = {**os.environ, "SSH_AUTH_SOCK": str(sock)}
        subprocess.run(["ssh-add", str(fleet.client_key_path)], env=env, check=True, capture_output=True, timeout=10)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        inv = fleet.inventory()
        del inv["defaults"]["ssh"]["identity_file"]
        path = write_yaml(tmp_path / "inv.yaml", inv)
        code, doc, _ = run_audit(
            "-i",
            str(path),
            "--checks-dir",
            str(write_pack(tmp_path / "p")),
            "--checks",
            "test.path_exists",
            "--store",
            str(tmp_path / "s"),
        )
        assert code == 0, code
        assert by_target(doc, "test.path_exists")["lab1"]["status"] == "PASS"
        # and without the agent (and no default ~/.ssh/id_* identity) the same inventory cannot log in
        monkeypatch.delenv("SSH_AUTH_SOCK")
        monkeypatch.setenv("HOME", str(tmp_path))
        code, doc, _ = run_audit(
            "-i",
            str(path),
            "--checks-dir",
            str(tmp_path / "p"),
            "--checks",
            "test.path_exists",
            "--store",
            str(tmp_path / "s"),
        )
        assert code == 3, code
        assert by_target(doc, "test.path_exists")["lab1"]["message"].startswith("auth failed")
    finally:
        agent.terminate()
        agent.wait(timeout=10)


def test_jump_host_tunnels_the_connection(fleet_factory, tmp_path):
    fleet = fleet_factory(3, log_level="DEBUG1")
    inv = fleet.inventory({"hosts": {"lab2": {"jump": "lab1"}, "lab3": {"jump": "lab1"}}})
    path = write_yaml(tmp_path / "inv.yaml", inv)
    code, doc, _ = run_audit(
        "-i",
        str(path),
        "--checks-dir",
        str(write_pack(tmp_path / "p")),
        "--checks",
        "test.path_exists",
        "--limit",
        "lab2,lab3",
        "--store",
        str(tmp_path / "s"),
    )
    assert code == 0, code
    assert {h: r["status"] for h, r in by_target(doc, "test.path_exists").items()} == {"lab2": "PASS", "lab3": "PASS"}
    deadline = time.monotonic() + 10  # the bastion's session process may still be writing its log
    while fleet["lab1"].log_path.read_text().count("direct-tcpip") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    bastion_log = fleet["lab1"].log_path.read_text()
    assert bastion_log.count("direct-tcpip") >= 2  # both tunnels went through the bastion
    assert bastion_log.count("Accepted publickey") == 1  # over one shared connection
    # a jump host that cannot be reached makes the target UNREACHABLE, naming the cause
    fleet.stop_host("lab1")
    code, doc, _ = run_audit(
        "-i",
        str(path),
        "--checks-dir",
        str(tmp_path / "p"),
        "--checks",
        "test.path_exists",
        "--limit",
        "lab2",
        "--store",
        str(tmp_path / "s"),
    )
    assert code == 3, code
    r = by_target(doc, "test.path_exists")["lab2"]
    assert r["status"] == "UNREACHABLE" and "refused" in r["message"]


def test_closing_a_connection_whose_jump_host_died_never_raises(fleet_factory):
    """The run keeps its results when a bastion's session dies under a tunnelled connection."""
    import signal

    from itops.inventory import load_inventory
    from itops.runner import target_for
    from itops.transport.ssh import KnownHosts, SSHConnection
    from itops_lab.procs import descendants

    fleet = fleet_factory(2)
    inv_path = fleet.write_inventory(extra={"hosts": {"lab2": {"jump": "lab1"}}})
    inv = load_inventory(inv_path)
    target = target_for(inv.hosts["lab2"], inv.hosts)
    conn = SSHConnection(target, KnownHosts(target.known_hosts))
    assert conn.transport.is_active()
    sessions = descendants([fleet["lab1"].pid])  # the bastion's per-connection sshd serving our tunnel
    assert sessions
    for pid in sessions:
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)  # the bastion's TCP reset arrives; paramiko's reader threads may not have seen it yet
    conn.close()  # must not raise, whatever state the tunnel and the jump transport are in
    conn.close()  # and closing twice is harmless


def test_aes_gcm_is_negotiated_when_offered_and_ctr_still_works_when_not(fleet_factory):
    from itops.transport.known_hosts import KnownHosts
    from itops.transport.ssh import SSHConnection

    fleet = fleet_factory(
        [LabHostSpec("default"), LabHostSpec("ctronly", sshd_options=("Ciphers aes256-ctr,aes128-ctr",))]
    )
    negotiated = {}
    for name in ("default", "ctronly"):
        target = lab_target(fleet, name, connect_timeout=10)
        conn = SSHConnection(target, KnownHosts(target.known_hosts))
        try:
            negotiated[name] = (conn.transport.remote_cipher, conn.transport.local_cipher)
        finally:
            conn.close()
    assert negotiated == {
        "default": ("aes128-gcm@openssh.com", "aes128-gcm@openssh.com"),
        "ctronly": ("aes128-ctr", "aes128-ctr"),
    }
