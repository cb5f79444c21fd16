"""Secrets never reach stored or rendered evidence."""

from __future__ import annotations

from itops.redact import redact, register_secret


def test_patterns_are_redacted():
    text = ("password=hunter2 pwd: swordfish url=https://user:s3cr3t@db.example/x "
            "key AKIAABCDEFGHIJKLMNOP aws_secret_access_key = abc/DEF+ghi "
            "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----")
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
    checks = [load_registry().get(i) for i in ("ssh.root_login_disabled", "aws.s3.bucket_acl_not_public",
                                               "backup.within_rpo")]  # fmt: skip
    built = [c.result(Finding.failed(f"saw {secret}", observed=f"value {secret}"), run_id="r1", target="t",
                      started=0.0, source=f"cmd {secret}", excerpt=f"out {secret}") for c in checks]  # fmt: skip
    assert all(secret in r.message for r in built)  # the builder leaves it to the store
    store = Store(tmp_path)
    writer = store.begin(Run(id="r1", kind="audit", started=0.0))
    writer.add_many(built)
    stored = next(tmp_path.rglob("results.jsonl")).read_text()
    assert secret not in stored and len(stored.splitlines()) == 3
    assert all(secret not in json.dumps(r.to_dict()) for r in writer.results)
