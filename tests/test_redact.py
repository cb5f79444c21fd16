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
