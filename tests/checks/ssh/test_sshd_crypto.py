"""checks/ssh/sshd_crypto.py: effective algorithm lists against the allow-lists."""

from __future__ import annotations

import pytest
from helpers import SSHD_T_NEEDS_ROOT, files_dump, overall, run_check, sshd_facts, sshd_t

from itops.checklib.sshd import DEFAULTS
from itops.model import Status

CASES = [
    ("ssh.ciphers_strong", "ciphers", "aes256-gcm@openssh.com,aes128-ctr", "aes256-ctr,aes128-cbc,3des-cbc"),
    (
        "ssh.macs_strong",
        "macs",
        "hmac-sha2-512-etm@openssh.com,umac-128-etm@openssh.com",
        "hmac-sha2-256,hmac-sha1,umac-64@openssh.com",
    ),
    (
        "ssh.kex_strong",
        "kexalgorithms",
        "curve25519-sha256,diffie-hellman-group16-sha512",
        "curve25519-sha256,diffie-hellman-group14-sha1,diffie-hellman-group1-sha1",
    ),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize(("check_id", "key", "good", "bad"), CASES, ids=IDS)
def test_pass(check_id, key, good, bad):
    assert [f.status for f in run_check(check_id, sshd_facts(t=(0, sshd_t(**{key: good}))))] == [Status.PASS]


@pytest.mark.parametrize(("check_id", "key", "good", "bad"), CASES, ids=IDS)
def test_fail_names_weak_algorithms(check_id, key, good, bad):
    [f] = run_check(check_id, sshd_facts(t=(0, sshd_t(**{key: bad}))))
    assert f.status is Status.FAIL
    weak = bad.split(",")[1:]
    assert all(w in f.message for w in weak), f.message
    assert bad.split(",")[0] not in f.observed


@pytest.mark.parametrize(("check_id", "key", "good", "bad"), CASES, ids=IDS)
def test_error_when_unknown(check_id, key, good, bad):
    facts = sshd_facts(t=(0, "not sshd\n"), files=(0, "@@@\n"))
    assert [f.status for f in run_check(check_id, facts)] == [Status.ERROR]
    empty = sshd_facts(t=(0, sshd_t(**{key: ","})))
    assert [f.status for f in run_check(check_id, empty)] == [Status.ERROR]


def test_openssh_default_macs_are_not_all_strong():
    facts = sshd_facts(t=(0, sshd_t(macs=DEFAULTS["macs"])))
    [f] = run_check("ssh.macs_strong", facts)
    assert f.status is Status.FAIL
    assert "hmac-sha1" in f.message and "umac-64@openssh.com" in f.message


def test_default_ciphers_and_kex_pass_via_files():
    facts = sshd_facts(t=SSHD_T_NEEDS_ROOT, files=(0, files_dump({"/etc/ssh/sshd_config": "Port 22\n"})))
    assert overall(run_check("ssh.ciphers_strong", facts)) is Status.PASS
    assert overall(run_check("ssh.kex_strong", facts)) is Status.PASS


@pytest.mark.parametrize(
    ("line", "status"),
    [
        ("Ciphers +aes128-cbc", Status.FAIL),
        ("Ciphers -chacha20*", Status.PASS),
        ("Ciphers ^3des-cbc", Status.FAIL),
        ("Ciphers aes256-gcm@openssh.com", Status.PASS),
    ],
)
def test_algorithm_list_modifiers_in_files(line, status):
    facts = sshd_facts(t=SSHD_T_NEEDS_ROOT, files=(0, files_dump({"/etc/ssh/sshd_config": line + "\n"})))
    assert overall(run_check("ssh.ciphers_strong", facts)) is status


def test_allow_list_var_override():
    facts = sshd_facts(t=(0, sshd_t(ciphers="aes128-ctr,aes128-cbc")))
    assert overall(run_check("ssh.ciphers_strong", facts)) is Status.FAIL
    assert (
        overall(run_check("ssh.ciphers_strong", facts, ssh_ciphers_allowed=["aes128-ctr", "aes128-cbc"])) is Status.PASS
    )


def test_pseudo_algorithms_ignored():
    facts = sshd_facts(t=(0, sshd_t(kexalgorithms="curve25519-sha256,ext-info-s,kex-strict-s-v00@openssh.com")))
    assert overall(run_check("ssh.kex_strong", facts)) is Status.PASS
