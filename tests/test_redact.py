"""Secrets never reach stored or rendered evidence."""

from __future__ import annotations

from itops.redact import redact, register_secret


def test_patterns_are_redacted():
    text = (
        "password=hunter2 pwd: swordfish url=https://user:s3cr3t@db.example/x "
        "key AKIAABCDEFGHIJKLMNOP aws_secret_access_key = abc/DEF+ghi "
        "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----"
    )
    out = redact(text)
    for secret in ("hunter2", "swordfish", "s3cr3t", "AKIAABCDEFGHIJKLMNOP", "abc/DEF+ghi", "AAAA"):
        assert secret not in out
    assert "[REDACTED]" in out and "[REDACTED PRIVATE KEY]" in out and "[REDACTED AWS KEY ID]" in out


def test_known_secret_values_are_redacted_anywhere():
    register_secret("correct-horse-battery")
    assert redact("Connecting with correct-horse-battery failed") == "Connecting with [REDACTED] failed"


def test_clean_text_is_untouched():
    text = "PermitRootLogin no\nPasswordAuthentication no\nMaxAuthTries 4"
    assert redact(text) == text


def test_results_built_by_any_producer_are_redacted_once_by_the_store(tmp_path):
    """Check.result (hosts, clouds, backups) does not redact; RunWriter.add_many does, for all of them."""
    import json

    from itops.model import Finding, Run
    from itops.redact import register_secret
    from itops.registry import load_registry
    from itops.store import Store

    secret = "Zq9-not-a-real-backup-passphrase"
    register_secret(secret)
    checks = [
        load_registry().get(i) for i in ("ssh.root_login_disabled", "aws.s3.bucket_acl_not_public", "backup.within_rpo")
    ]
    built = [
        c.result(
            Finding.failed(f"saw {secret}", observed=f"value {secret}"),
            run_id="r1",
            target="t",
            started=0.0,
            source=f"cmd {secret}",
            excerpt=f"out {secret}",
        )
        for c in checks
    ]
    assert all(secret in r.message for r in built)  # the builder leaves it to the store
    store = Store(tmp_path)
    writer = store.begin(Run(id="r1", kind="audit", started=0.0))
    returned = writer.add_many(built)  # what the session streams on to stdout
    stored = next(tmp_path.rglob("results.jsonl")).read_text()
    assert secret not in stored and len(stored.splitlines()) == 3
    assert all(secret not in json.dumps(r.to_dict()) for r in returned)


# --------------------------------------------------------------------------- secret shapes (issue 12)

SECRET_SHAPES = [
    ("DB_PASSWORD=Cnry-env-1", "Cnry-env-1"),
    ("export API_TOKEN=Cnry-env-2", "Cnry-env-2"),
    ("proxy_password = Cnry ini 3", "Cnry ini 3"),
    ('password: "Cnry yaml 4"', "Cnry yaml 4"),
    ("  db_password: Cnry-yaml-5", "Cnry-yaml-5"),
    ('{"api_key": "Cnry-json-6", "user": "app"}', "Cnry-json-6"),
    ("client_secret='Cnry-7'", "Cnry-7"),
    ("mysql -uroot -pCnrySQL8 appdb", "CnrySQL8"),
    ("mysqldump --password=Cnry-cli-9 appdb", "Cnry-cli-9"),
    ("tool --api-token Cnry-cli-10 -v", "Cnry-cli-10"),
    ("curl -H 'Authorization: Bearer Cnry.jwt-11'", "Cnry.jwt-11"),
    ("Authorization: Basic Q25yeTpjbnJ5MTI=", "Q25yeTpjbnJ5MTI="),
    ("token Bearer Cnry-bearer-13 sent", "Cnry-bearer-13"),
    ("CREATE USER 'app'@'%' IDENTIFIED BY 'Cnry-sql-14';", "Cnry-sql-14"),
    ("ALTER ROLE app WITH ENCRYPTED PASSWORD 'Cnry-pg-15'", "Cnry-pg-15"),
    ("requirepass Cnry-redis-16", "Cnry-redis-16"),
    ("masterauth Cnry-redis-17", "Cnry-redis-17"),
    ("backup to s3://user:Cnry-url-18@minio.example/bucket", "Cnry-url-18"),
    ("machine ftp.example login ops password Cnry-netrc-19", "Cnry-netrc-19"),
    ("/etc/app.conf: DB_PASSWORD Cnry-20 (expected unset)", "Cnry-20"),
    ("x AWS_SECRET_ACCESS_KEY=Cnry/aws+21 y", "Cnry/aws+21"),
    ("CREDENTIALS=Cnry-22", "Cnry-22"),
    ("curl -u admin:Cnry-curl-24 https://x", "Cnry-curl-24"),
    ("-----BEGIN RSA PRIVATE KEY-----\nCnryKey23\n-----END RSA PRIVATE KEY-----", "CnryKey23"),
]


def test_secret_shapes_are_redacted():
    for text, secret in SECRET_SHAPES:
        out = redact(text)
        assert secret not in out, (text, out)
        assert "REDACTED" in out and "]]" not in out, (text, out)


def test_key_and_separator_stay_readable():
    assert redact("DB_PASSWORD=x1y2z3") == "DB_PASSWORD=[REDACTED]"
    assert redact("proxy_password = two words") == "proxy_password = [REDACTED]"
    assert redact('{"password": "pw123", "user": "app"}') == '{"password": "[REDACTED]", "user": "app"}'
    assert redact("mysql -uroot -pSECRET db") == "mysql -uroot -p[REDACTED] db"
    assert redact("x=1\nDB_PASSWORD=multi word value\nnext=1") == "x=1\nDB_PASSWORD=[REDACTED]\nnext=1"
    # a word that is no assignment does not hide the assignment after it
    assert redact("password DB_PASSWORD=abc123") == "password DB_PASSWORD=[REDACTED]"
    assert redact("password stack: DB_PASSWORD hunter9") == "password stack: DB_PASSWORD [REDACTED]"


NOT_SECRETS = [
    # issue 18 item 5: the key of a path, followed by prose
    "pam_pwquality.so is not in the password stack of /etc/pam.d/common-password: new passwords are not checked",
    "/etc/pam.d/common-password: pam_unix.so without sha512",
    "/etc/pam.d/system-auth-password: 4 lines",
    "could not assess password: command not found",
    "the password: new passwords are not checked",
    "Bearer tokens are rejected by the API",
    # policy knobs and switches, not secrets
    "PASS_MAX_DAYS=99999",
    "PASS_MAX_DAYS 99999",
    "/etc/login.defs: PASS_MIN_LEN 5 (expected at least 14)",
    "PasswordAuthentication=no",
    "passwordauthentication no",
    "permitemptypasswords no",
    "authorizedkeysfile .ssh/authorized_keys .ssh/authorized_keys2",
    "pubkeyacceptedalgorithms ssh-ed25519",
    "hostkey /etc/ssh/ssh_host_ed25519_key",
    "rekeylimit default none",
    "password_file: /run/secrets/db",
    "password_env: DB_PASSWORD",
    "password requisite pam_pwquality.so retry=3 minlen=14",
    "password [success=1 default=ignore] pam_unix.so obscure use_authtok yescrypt",
    "ssh -p2222 -o BatchMode=yes host",
    "sort_keys=True",
    # found on the planted lab: a sudo tag, nsswitch, a glob in a probe command, a shell variable
    "NOPASSWD rule at /etc/sudoers.d/90-alice:1: alice ALL=(ALL:ALL) NOPASSWD: ALL",
    "passwd: files systemd",
    "for f in /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub; do",
    'echo "$DB_PASSWORD value"',
]


def test_paths_prose_and_policy_keys_are_not_redacted():
    for text in NOT_SECRETS:
        assert redact(text) == text


def test_result_evidence_is_capped_after_redaction():
    from itops.model import Evidence, Result, Severity, Status
    from itops.redact import EVIDENCE_CAP, redact_result

    register_secret("Kn0wn-secret-value")
    long = "x" * 5000 + " Kn0wn-secret-value"
    r = Result(
        run_id="r",
        check_id="c.d",
        target="t",
        status=Status.FAIL,
        severity=Severity.LOW,
        message="m",
        evidence=Evidence(source="cmd", excerpt=long, observed=long),
    )
    out = redact_result(r)
    assert len(out.evidence.excerpt) + len(out.evidence.observed) <= EVIDENCE_CAP
    assert out.evidence.excerpt.endswith("[truncated]")
    # a secret split by the cut is still gone: redaction runs before the cap
    short = Evidence(excerpt="y" * (EVIDENCE_CAP - 10) + "DB_PASSWORD=abcdefghijklmnop")
    assert "abcdefgh" not in redact_result(replace_evidence(r, short)).evidence.excerpt


def replace_evidence(r, ev):
    from dataclasses import replace

    return replace(r, evidence=ev)


def test_no_built_in_probe_command_is_taken_for_a_secret():
    """Commands are stored as evidence: redaction must leave every shipped check's probes intact."""
    from itops.registry import load_registry

    for check in load_registry([]).select([], target="host"):
        for probe in check.probes:
            command = probe.render(check.resolve_params({}))
            assert redact(command) == command, (check.id, probe.name)


def test_a_secret_registered_after_a_text_was_redacted_is_redacted_in_it_next_time():
    """redact() remembers texts it has done (they repeat across hosts); a newly registered secret
    (a host's password read mid-run) must not be served from that memory."""
    text = "login with Late-registered-pw-7731 worked"
    assert redact(text) == text  # remembered, with the secret not yet known
    register_secret("Late-registered-pw-7731")
    assert redact(text) == "login with [REDACTED] worked"


def test_redaction_memory_is_bounded():
    from itops import redact as mod

    for i in range(mod._CACHE_ENTRIES + 10):
        redact(f"line {i} of host output")
    assert len(mod._cache) <= mod._CACHE_ENTRIES
    long_text = "x" * (mod._CACHE_TEXT + 1)
    assert redact(long_text) == long_text and long_text not in mod._cache
