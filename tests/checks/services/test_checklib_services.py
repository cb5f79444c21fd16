"""itops/checklib/services.py: service snapshot, listening sockets and firewall parsing (commands run for real)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from services_canned import NFT_FIREWALLD, NFT_INET_DROP, PROC_NET, snapshot

from itops.checklib import services
from itops.checklib.services import Listener


def sh(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True)


def test_service_probe_runs_and_parses_here():
    out = sh(services.services_probe().render({}))
    assert out.returncode == 0
    snap = services.parse_service_snapshot(out.stdout)
    assert snap.pid1
    assert snap.processes  # at least this shell


def test_service_command_rejects_bad_unit_names():
    with pytest.raises(ValueError):
        services.service_state_command(["cron; reboot"])


def test_snapshot_parsing():
    snap = services.parse_service_snapshot(snapshot({"cron": ("active", "enabled")}, procs=("chronyd",)))
    assert snap.systemd and snap.unit("cron").is_active and snap.unit("cron").is_enabled
    assert snap.unit("auditd").is_disabled  # not installed
    assert snap.running(["chronyd", "ntpd"]) == ["chronyd"]
    with pytest.raises(ValueError):
        services.parse_service_snapshot("unit cron active enabled\n")


def test_listening_probe_runs_here():
    out = sh(services.LISTENING_COMMAND)
    if out.returncode != 0:
        pytest.skip(f"cannot list sockets here: {out.stderr}")
    assert isinstance(services.parse_listeners(out.stdout), list)


def test_proc_net_decoding():
    listeners = services.parse_listeners(PROC_NET)
    assert Listener("tcp", "0.0.0.0", 22) in listeners
    assert Listener("tcp", "127.0.0.1", 631) in listeners
    assert Listener("tcp", "::", 8080) in listeners
    assert Listener("udp", "127.0.0.53", 53) in listeners
    assert len(listeners) == 4  # the ESTABLISHED connection is not a listener


def test_loopback_detection():
    assert Listener("tcp", "127.0.0.1", 1).loopback_only
    assert Listener("tcp", "::1", 1).loopback_only
    assert Listener("tcp", "::ffff:127.0.0.1", 1).loopback_only
    assert not Listener("tcp", "*", 1).loopback_only
    assert not Listener("tcp", "0.0.0.0", 1).loopback_only


def test_firewall_probe_runs_here():
    out = sh(services.FIREWALL_COMMAND)
    assert out.returncode == 0
    state = services.parse_firewall(out.stdout)
    assert set(state.tools) == {"nft", "iptables", "ip6tables"}
    if shutil.which("nft") is None:
        assert state.tools["nft"].missing


def test_nft_parsing():
    assert services.nft_input_deny_families(NFT_INET_DROP) == {"inet"}
    assert services.nft_input_deny_families(NFT_FIREWALLD) == {"inet"}
    assert (
        services.nft_input_deny_families(
            "table ip6 f {\n chain c {\n type filter hook output priority 0; policy drop;\n }\n}\n"
        )
        == set()
    )
    assert services.nft_input_deny_families("") == set()


def test_iptables_parsing():
    assert services.iptables_input_denies("-P INPUT DROP\n")
    assert services.iptables_input_denies("-P INPUT ACCEPT\n-A INPUT -j REJECT --reject-with icmp-host-prohibited\n")
    assert not services.iptables_input_denies("-P INPUT ACCEPT\n-A INPUT -s 10.0.0.0/8 -j DROP\n")
    assert not services.iptables_input_denies("")


def test_journald_storage_resolution():
    assert services.journald_storage([]) == "auto"
    files = [
        ("/etc/systemd/journald.conf", "[Journal]\nStorage=volatile\n"),
        ("/usr/lib/systemd/journald.conf.d/10-a.conf", "[Journal]\nStorage=persistent\n"),
    ]
    assert services.journald_storage(files) == "persistent"
    assert services.journald_storage([("/etc/systemd/journald.conf", "[Other]\nStorage=none\n")]) == "auto"
