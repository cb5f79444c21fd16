"""known_hosts parsing (markers, hashes, wildcards, negations) and verification against real sshd."""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os

import paramiko
import pytest
from audit_helpers import by_target, lab_target, run_audit, write_pack, write_yaml

from itops.errors import HostKeyRejected
from itops.transport.known_hosts import KnownHosts, load_file, match_host_patterns
from itops.transport.ssh import SSHConnection
from itops_lab.netutil import generate_ed25519


def hashed(name: str, salt: bytes = b"0123456789abcdefghij") -> str:
    digest = hmac.new(salt, name.encode(), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


def key_line(hosts: str, key: paramiko.PKey, marker: str = "") -> str:
    return f"{marker + ' ' if marker else ''}{hosts} {key.get_name()} {key.get_base64()} comment\n"


@pytest.fixture
def other_key(tmp_path):
    return generate_ed25519(tmp_path / "other_key", "other")


# ----------------------------------------------------------------------- pure parsing and matching


@pytest.mark.parametrize(
    ("patterns", "name", "expected"),
    [
        ("host1,host2", "host2", True),
        ("HOST1", "host1", True),  # case-insensitive, as OpenSSH
        ("*.example.com", "web.example.com", True),
        ("*.example.com", "example.com", False),
        ("web?.example.com", "web1.example.com", True),
        ("web?.example.com", "web12.example.com", False),
        ("*.example.com,!db.example.com", "db.example.com", False),
        ("!db.example.com,*.example.com", "db.example.com", False),  # a negation wins wherever it stands
        ("*.example.com,!db.example.com", "web.example.com", True),
        ("!db.example.com", "web.example.com", False),  # a negation alone matches nothing
        ("[127.0.0.1]:2222", "[127.0.0.1]:2222", True),  # brackets are literal, not a character class
        ("[127.0.0.1]:2222", "1", False),
        ("[127.0.0.1]:2222", "127.0.0.1", False),
        ("[127.0.0.?]:*", "[127.0.0.1]:2222", True),
    ],
)
def test_host_patterns_match_as_openssh_does(patterns, name, expected):
    assert match_host_patterns(patterns, name) is expected


def test_every_kind_of_line_is_parsed_and_bad_ones_are_skipped_with_a_warning(tmp_path, other_key, caplog):
    kh = tmp_path / "known_hosts"
    kh.write_text(
        "# a comment\n"
        "\n"
        + key_line("*.example.com", other_key, "@cert-authority")
        + key_line("old.example.com", other_key, "@revoked")
        + key_line(hashed("[10.0.0.1]:2222"), other_key)
        + "justonefield\n"
        + "host ssh-ed25519 not-base64!!\n"
        + f"host ssh-rsa {other_key.get_base64()}\n"  # the blob says ssh-ed25519
        + "@bogus host ssh-ed25519 AAAA\n"
        + "|1|nothash host-key\n"
        + key_line("plain.example.com", other_key)
    )
    with caplog.at_level(logging.WARNING):
        lines = load_file(str(kh))
    assert [(e.line, e.marker) for e in lines] == [(4, "@revoked"), (5, ""), (11, "")]
    warnings = [r.getMessage() for r in caplog.records]
    for n in (6, 7, 8, 9, 10):
        assert sum(f"{kh}:{n}:" in w for w in warnings) == 1, (n, warnings)
    ca = [w for w in warnings if "@cert-authority" in w]
    assert len(ca) == 1 and str(kh) in ca[0] and "line 3" in ca[0]
    assert lines[1].matches("[10.0.0.1]:2222") and not lines[1].matches("10.0.0.1")


def test_a_binary_file_as_known_hosts_gives_bounded_warnings_and_no_crash(tmp_path, caplog):
    kh = tmp_path / "known_hosts"
    kh.write_bytes(os.urandom(20000) + b"\n" * 50 + b"a b c\n" * 100)
    with caplog.at_level(logging.WARNING):
        assert load_file(str(kh)) == []
    assert len(caplog.records) <= 12


def test_revoked_key_is_refused_even_when_also_listed_as_known(tmp_path, other_key):
    kh = tmp_path / "known_hosts"
    kh.write_text(key_line("h1", other_key) + key_line("h1,h2", other_key, "@revoked"))
    known = KnownHosts([str(kh)])
    with pytest.raises(HostKeyRejected, match=rf"host key of h1 .* is marked @revoked in {kh}:2"):
        known.verify("h1", other_key)
    assert known.known_types("h1") == ["ssh-ed25519"]


def test_indexed_lookup_keeps_file_order_and_openssh_matching(tmp_path, other_key):
    # plain names are looked up by name; wildcards, negations and hashes are matched line by line:
    # either way a name gets exactly the lines OpenSSH would apply, in file order
    third = generate_ed25519(tmp_path / "third", "third")
    kh = tmp_path / "known_hosts"
    kh.write_text(
        key_line("*.example.com,!db.example.com", third)
        + key_line("Web.Example.com,other", other_key)
        + key_line(hashed("web.example.com"), third, "@revoked")
        + key_line("db.example.com", other_key)
        + key_line("web?.example.com", other_key)
    )
    known = KnownHosts([str(kh)])
    assert [e.line for e in known._matching("web.example.com")] == [1, 2, 3]
    assert [e.line for e in known._matching("db.example.com")] == [4]
    assert [e.line for e in known._matching("web1.example.com")] == [1, 5]
    assert known._matching("nowhere") == []
    with pytest.raises(HostKeyRejected, match="marked @revoked"):
        known.verify("web.example.com", third)
    known.verify("WEB.example.com", other_key)  # names compare case-insensitively, as OpenSSH does
    with pytest.raises(HostKeyRejected, match="unknown host key"):
        known.verify("other.example.org", other_key)


def test_a_fleet_sized_known_hosts_is_not_scanned_per_host(tmp_path, other_key, monkeypatch):
    # 5,000 hosts and a 5,000-line known_hosts: each lookup matches only the lines that need matching
    kh = tmp_path / "known_hosts"
    kh.write_text("".join(key_line(f"[10.0.{i // 250}.{i % 250}]:22", other_key) for i in range(5000)))
    known = KnownHosts([str(kh)])
    calls = []
    real = type(known.lines[0]).matches
    monkeypatch.setattr(type(known.lines[0]), "matches", lambda self, name: calls.append(name) or real(self, name))
    for i in range(5000):
        name = f"[10.0.{i // 250}.{i % 250}]:22"
        assert known.known_types(name) == ["ssh-ed25519"]
        known.verify(name, other_key)
    assert calls == []


def test_a_key_recorded_on_first_use_is_found_by_the_next_lookup(tmp_path, other_key):
    tofu = tmp_path / "tofu_known_hosts"
    known = KnownHosts([], str(tofu))
    known.verify("[127.0.0.1]:2200", other_key)  # recorded
    assert known.known_types("[127.0.0.1]:2200") == ["ssh-ed25519"]
    third = generate_ed25519(tmp_path / "third", "third")
    with pytest.raises(HostKeyRejected, match="CHANGED"):
        known.verify("[127.0.0.1]:2200", third)


# ----------------------------------------------------------------------- against real sshd


def connect(fleet, kh_path) -> SSHConnection:
    target = lab_target(fleet, "lab1", kh_path)
    return SSHConnection(target, KnownHosts(target.known_hosts))


@pytest.mark.integration
def test_run_with_marker_hashed_and_malformed_lines_passes_and_warns_once(fleet_factory, tmp_path, other_key, caplog):
    fleet = fleet_factory(2)
    lab1, lab2 = fleet["lab1"], fleet["lab2"]
    kh = tmp_path / "known_hosts"
    kh.write_text(
        "# site CA and a revoked old key, as every certificate-using site has\n"
        + key_line("*.corp.example.com,[127.0.0.1]:*", other_key, "@cert-authority")
        + key_line("*", other_key, "@revoked")
        + "garbage line\n"
        + key_line(hashed(f"[127.0.0.1]:{lab1.port}"), lab1.host_key)
        + key_line(f"[127.0.0.1]:{lab2.port}", lab2.host_key)
    )
    path = write_yaml(tmp_path / "inv.yaml", fleet.inventory({"defaults": {"ssh": {"known_hosts": [str(kh)]}}}))
    with caplog.at_level(logging.WARNING):
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
    res = by_target(doc, "test.path_exists")
    assert {h: r["status"] for h, r in res.items()} == {"lab1": "PASS", "lab2": "PASS"}, res
    assert code == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert sum(f"{kh}:4:" in w for w in warnings) == 1, warnings
    assert sum("@cert-authority" in w for w in warnings) == 1, warnings


@pytest.mark.integration
def test_revoked_own_key_is_rejected_naming_the_line_and_other_hosts_run(fleet_factory, tmp_path, other_key):
    fleet = fleet_factory(2)
    lab1, lab2 = fleet["lab1"], fleet["lab2"]
    kh = tmp_path / "known_hosts"
    kh.write_text(
        key_line(f"[127.0.0.1]:{lab1.port}", lab1.host_key)
        + key_line(f"[127.0.0.1]:{lab2.port}", lab2.host_key)
        + key_line("[127.0.0.1]:*", lab1.host_key, "@revoked")
    )
    path = write_yaml(tmp_path / "inv.yaml", fleet.inventory({"defaults": {"ssh": {"known_hosts": [str(kh)]}}}))
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
    res = by_target(doc, "test.path_exists")
    assert res["lab2"]["status"] == "PASS"
    assert res["lab1"]["status"] == "UNREACHABLE"
    assert f"host key of [127.0.0.1]:{lab1.port}" in res["lab1"]["message"]
    assert f"is marked @revoked in {kh}:3" in res["lab1"]["message"]
    assert code == 3


@pytest.mark.integration
def test_wildcards_negations_and_changed_keys_against_sshd(fleet_factory, tmp_path, other_key):
    fleet = fleet_factory(1)
    lab1 = fleet["lab1"]
    kh = tmp_path / "known_hosts"

    kh.write_text(key_line(f"[127.0.0.?]:{lab1.port}", lab1.host_key))
    connect(fleet, kh).close()
    kh.write_text(key_line("[127.0.0.*]:*", lab1.host_key))
    connect(fleet, kh).close()

    # the negation excludes this host: its key is then unknown
    kh.write_text(key_line(f"[127.0.0.*]:*,![127.0.0.1]:{lab1.port}", lab1.host_key))
    with pytest.raises(HostKeyRejected, match="unknown host key"):
        connect(fleet, kh)

    # the same name listed with another key of the type the server offers: changed
    kh.write_text(key_line(f"[127.0.0.1]:{lab1.port}", other_key))
    with pytest.raises(HostKeyRejected, match=rf"CHANGED.*\({kh}:1\)"):
        connect(fleet, kh)

    # a revocation of another key does not touch this host; of its own key, it does
    kh.write_text(key_line("*", other_key, "@revoked") + key_line(f"[127.0.0.1]:{lab1.port}", lab1.host_key))
    connect(fleet, kh).close()
    kh.write_text(key_line(f"[127.0.0.1]:{lab1.port}", lab1.host_key) + key_line("*", lab1.host_key, "@revoked"))
    with pytest.raises(HostKeyRejected, match=rf"marked @revoked in {kh}:2"):
        connect(fleet, kh)


def test_a_file_is_parsed_and_warned_about_once_while_unchanged(tmp_path, other_key, caplog):
    # the runner, playbooks and backup checks each merge ~/.ssh/known_hosts with their own files
    kh = tmp_path / "known_hosts"
    kh.write_text(key_line("*", other_key, "@cert-authority") + key_line("h1", other_key))
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            assert KnownHosts([str(kh)]).known_types("h1") == ["ssh-ed25519"]
    assert sum("@cert-authority" in r.getMessage() for r in caplog.records) == 1
    kh.write_text(key_line("h2", other_key, "@revoked") + key_line("h1,h2", other_key) + "# changed\n")
    known = KnownHosts([str(kh)])
    with pytest.raises(HostKeyRejected, match="@revoked"):
        known.verify("h2", other_key)
    known.verify("h1", other_key)
