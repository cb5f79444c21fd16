"""SSH daemon cryptography: only strong ciphers, MACs and key-exchange algorithms are offered.

The allow-lists follow the CIS Debian 12 / RHEL 9 benchmarks: CBC ciphers, 3DES/arcfour,
SHA-1 and 64-bit-tag MACs, and SHA-1 or 1024-bit DH key exchanges are weak. Algorithms
an OpenSSH release adds later (e.g. mlkem768x25519-sha256 in 9.9) are listed where known;
extend the list through the inventory var if a newer strong one is reported.
"""

from __future__ import annotations

from itops.checkapi import Facts, Finding, Params, Severity, host_check
from itops.checklib.sshd import SSHD_PROBES
from itops.checklib.sshd_rules import APPLY_SSHD_CHANGE, algorithms_allowed, evaluate_sshd

STRONG_CIPHERS = [
    "chacha20-poly1305@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
]
STRONG_MACS = [
    "hmac-sha2-512-etm@openssh.com",
    "hmac-sha2-256-etm@openssh.com",
    "umac-128-etm@openssh.com",
    "hmac-sha2-512",
    "hmac-sha2-256",
    "umac-128@openssh.com",
]
STRONG_KEX = [
    "mlkem768x25519-sha256",
    "sntrup761x25519-sha512",
    "sntrup761x25519-sha512@openssh.com",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group-exchange-sha256",
    "diffie-hellman-group14-sha256",
    "ecdh-sha2-nistp256",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp521",
]


@host_check(
    id="ssh.ciphers_strong",
    fix={"sshd": {"Ciphers": "{ssh_ciphers_allowed}"}},
    title="SSH offers only strong ciphers",
    severity=Severity.HIGH,
    rationale="CBC-mode, 3DES and arcfour ciphers have practical attacks (plaintext recovery, SWEET32); a client "
    "or attacker can negotiate down to any cipher the server still offers.",
    remediation="Set `Ciphers "
    + ",".join(STRONG_CIPHERS)
    + "`."
    + APPLY_SSHD_CHANGE
    + " On RHEL use `update-crypto-policies` or a policy module rather than editing sshd_config.",
    frameworks={"cis-debian-12": ["5.1.6"], "nist-800-53": ["SC-8(1)", "SC-13"], "iso-27001": ["A.8.24"]},
    probes=SSHD_PROBES,
    params={"ssh_ciphers_allowed": list(STRONG_CIPHERS)},
)
def ciphers_strong(facts: Facts, params: Params) -> list[Finding]:
    """Every cipher sshd offers is in ssh_ciphers_allowed; the others are named."""
    return evaluate_sshd(
        facts,
        params,
        ["ciphers"],
        algorithms_allowed("ciphers", "Ciphers", params["ssh_ciphers_allowed"]),
        "only ciphers from ssh_ciphers_allowed",
    )


@host_check(
    id="ssh.macs_strong",
    fix={"sshd": {"MACs": "{ssh_macs_allowed}"}},
    title="SSH offers only strong MAC algorithms",
    severity=Severity.MEDIUM,
    rationale="MD5, SHA-1 and 64-bit-tag MACs (umac-64) are weak integrity protection; the OpenSSH default list "
    "still includes some of them for compatibility.",
    remediation="Set `MACs " + ",".join(STRONG_MACS) + "`." + APPLY_SSHD_CHANGE,
    frameworks={"cis-debian-12": ["5.1.15"], "nist-800-53": ["SC-8(1)", "SC-13"], "iso-27001": ["A.8.24"]},
    probes=SSHD_PROBES,
    params={"ssh_macs_allowed": list(STRONG_MACS)},
)
def macs_strong(facts: Facts, params: Params) -> list[Finding]:
    """Every MAC sshd offers is in ssh_macs_allowed; the others are named."""
    return evaluate_sshd(
        facts,
        params,
        ["macs"],
        algorithms_allowed("macs", "MACs", params["ssh_macs_allowed"]),
        "only MACs from ssh_macs_allowed",
    )


@host_check(
    id="ssh.kex_strong",
    fix={
        "sshd": {
            "KexAlgorithms": (
                "curve25519-sha256,curve25519-sha256@libssh.org,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group-exchange-sha256"
            ),
        },
    },
    title="SSH offers only strong key-exchange algorithms",
    severity=Severity.MEDIUM,
    rationale="SHA-1 based and 1024-bit Diffie-Hellman key exchanges (group1, group14-sha1, group-exchange-sha1) "
    "are within reach of well-funded attackers and allow downgrade of the session keys.",
    remediation="Set `KexAlgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256,"
    "curve25519-sha256@libssh.org,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,"
    "diffie-hellman-group-exchange-sha256`." + APPLY_SSHD_CHANGE,
    frameworks={"cis-debian-12": ["5.1.12"], "nist-800-53": ["SC-8(1)", "SC-13"], "iso-27001": ["A.8.24"]},
    probes=SSHD_PROBES,
    params={"ssh_kex_allowed": list(STRONG_KEX)},
)
def kex_strong(facts: Facts, params: Params) -> list[Finding]:
    """Every key exchange sshd offers is in ssh_kex_allowed; the others are named."""
    return evaluate_sshd(
        facts,
        params,
        ["kexalgorithms"],
        algorithms_allowed("kexalgorithms", "KexAlgorithms", params["ssh_kex_allowed"]),
        "only key exchanges from ssh_kex_allowed",
    )
