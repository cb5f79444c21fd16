"""checks/ssh/sshd_files.py: sshd_config and host key permissions."""

from __future__ import annotations

import pytest
from helpers import files_dump, make_facts, not_found, overall, run_check, timed_out

from itops.model import Status

MAIN = "/etc/ssh/sshd_config"
DROPIN = "/etc/ssh/sshd_config.d/50-cloud.conf"


def dump(main_meta="600 0 0", dropin_meta="600 0 0"):
    return files_dump(
        {MAIN: "Include /etc/ssh/sshd_config.d/*.conf\n", DROPIN: "PasswordAuthentication no\n"},
        {"/etc/ssh/sshd_config.d/*.conf": [DROPIN]},
        meta={MAIN: main_meta, DROPIN: dropin_meta},
    )


def cfg_facts(spec):
    return make_facts({"sshd_config_files": spec})


def test_config_permissions_pass():
    findings = run_check("ssh.sshd_config_permissions", cfg_facts((0, dump())))
    assert [(f.status, f.resource) for f in findings] == [(Status.PASS, MAIN), (Status.PASS, DROPIN)]


def test_config_permissions_fail_per_file():
    findings = run_check("ssh.sshd_config_permissions", cfg_facts((0, dump("644 0 0", "600 1000 0"))))
    assert [f.status for f in findings] == [Status.FAIL, Status.FAIL]
    assert "mode 0644 allows 0044 beyond 0600" in findings[0].message
    assert "owned by uid 1000" in findings[1].message


def test_config_permissions_var_override():
    facts = cfg_facts((0, dump("644 0 0")))
    assert overall(run_check("ssh.sshd_config_permissions", facts, ssh_config_max_mode="0644")) is Status.PASS
    with pytest.raises(ValueError, match="octal string"):
        run_check("ssh.sshd_config_permissions", facts, ssh_config_max_mode="rw-r--r--")


def test_config_permissions_unreadable_file_still_judged_from_stat():
    facts = cfg_facts((0, files_dump({}, unreadable={MAIN: "600 0 0"})))
    assert [f.status for f in run_check("ssh.sshd_config_permissions", facts)] == [Status.PASS]


@pytest.mark.parametrize(
    "spec",
    [
        (0, "garbage\n"),
        timed_out(),
        not_found("awk"),
        (0, files_dump({}, unreadable={MAIN: ""})),
        (0, files_dump({MAIN: "Port 22\n"}, meta={MAIN: ""})),
    ],
    ids=["garbage", "timeout", "missing-command", "no-stat", "stat-failed"],
)
def test_config_permissions_error(spec):
    findings = run_check("ssh.sshd_config_permissions", cfg_facts(spec))
    assert overall(findings) is Status.ERROR and Status.PASS not in [f.status for f in findings]


def test_config_permissions_skipped_without_sshd():
    facts = cfg_facts((0, files_dump({}, missing=(MAIN,))))
    assert [f.status for f in run_check("ssh.sshd_config_permissions", facts)] == [Status.SKIPPED]


def keys(*lines):
    return make_facts({"ssh_host_key_stats": (0, "".join(line + "\n" for line in lines))})


PRIV = "S|600|0|root|0|root|regular file|/etc/ssh/ssh_host_ed25519_key"
PUB = "S|644|0|root|0|root|regular file|/etc/ssh/ssh_host_ed25519_key.pub"


def test_host_keys_pass():
    assert [f.status for f in run_check("ssh.host_private_keys_permissions", keys(PRIV, PUB))] == [Status.PASS]
    assert [f.status for f in run_check("ssh.host_public_keys_permissions", keys(PRIV, PUB))] == [Status.PASS]


def test_host_private_key_rhel_ssh_keys_group():
    rhel = "S|640|0|root|996|ssh_keys|regular file|/etc/ssh/ssh_host_ecdsa_key"
    assert overall(run_check("ssh.host_private_keys_permissions", keys(rhel))) is Status.PASS
    other_group = "S|640|0|root|4|adm|regular file|/etc/ssh/ssh_host_ecdsa_key"
    assert overall(run_check("ssh.host_private_keys_permissions", keys(other_group))) is Status.FAIL


def test_host_keys_fail():
    bad_priv = "S|644|0|root|0|root|regular file|/etc/ssh/ssh_host_rsa_key"
    bad_pub = "S|666|1000|alice|0|root|regular file|/etc/ssh/ssh_host_rsa_key.pub"
    [f] = run_check("ssh.host_private_keys_permissions", keys(PRIV, bad_priv))[1:]
    assert f.status is Status.FAIL and f.resource == "/etc/ssh/ssh_host_rsa_key"
    [g] = run_check("ssh.host_public_keys_permissions", keys(bad_pub))
    assert g.status is Status.FAIL and "owner alice" in g.message


@pytest.mark.parametrize(
    "spec",
    [
        (0, ""),
        (0, "M|/etc/ssh/ssh_host_rsa_key\n"),
        (0, "what?\n"),
        timed_out(),
        not_found("stat"),
        (0, "E|/etc/ssh/ssh_host_rsa_key\n"),
    ],
    ids=["empty", "only-missing", "garbage", "timeout", "missing-command", "stat-error"],
)
def test_host_keys_error(spec):
    facts = make_facts({"ssh_host_key_stats": spec})
    for check_id in ("ssh.host_private_keys_permissions", "ssh.host_public_keys_permissions"):
        findings = run_check(check_id, facts)
        assert Status.PASS not in [f.status for f in findings] and overall(findings) is Status.ERROR
