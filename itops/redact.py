"""One redaction step for everything that is stored or rendered (evidence, messages).

Known secret values (read from env/file sources at run time) are replaced exactly;
AWS key ids, private key blocks and ``password=``-style assignments by pattern.
"""

from __future__ import annotations

import re
import threading
from dataclasses import replace

from itops.model import Evidence, Result

# (guard substrings, pattern, replacement): a pattern only runs when one of its guards occurs in the
# lowercased text, which keeps redaction cheap on the common case of thousands of clean results.
_PATTERNS = [
    (("private key",),
     re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.S),
     "[REDACTED PRIVATE KEY]"),
    (("akia", "asia"), re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"), "[REDACTED AWS KEY ID]"),
    (("secret",), re.compile(r"(?i)\b(aws_secret_access_key|secret_?key)\b(\s*[:=]\s*)\S+"), r"\1\2[REDACTED]"),
    (("pass", "pwd", "secret", "token", "key"),
     re.compile(r"(?i)\b(password|passwd|pwd|secret|token|api_?key)\b(\s*[:=]\s*)([^\s'\";,&]+)"),
     r"\1\2[REDACTED]"),
    (("://",), re.compile(r"(?i)(://[^/\s:@]+:)([^@\s/]+)(@)"), r"\1[REDACTED]\3"),
]

_known: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str) -> None:
    """Remember a secret value read at run time so it is redacted wherever it appears."""
    if value and len(value) >= 4:
        with _lock:
            _known.add(value)


def redact(text: str) -> str:
    """Return ``text`` with known secrets and secret-looking patterns replaced."""
    if not text:
        return text
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for value in known:
        text = text.replace(value, "[REDACTED]")
    lowered = text.lower()
    for guards, pattern, repl in _PATTERNS:
        if any(g in lowered for g in guards):
            text = pattern.sub(repl, text)
    return text


def redact_result(r: Result, memo: dict[str, str] | None = None) -> Result:
    """``r`` with its message and every evidence field passed through :func:`itops.redact.redact`.

    ``memo`` caches redactions across the results of one run (commands, expected values
    and many outputs repeat); use one memo per call, as the known secrets may change.
    """

    def clean(text: str) -> str:
        if not text:
            return text
        if memo is None:
            return redact(text)
        done = memo.get(text)
        if done is None:
            done = memo[text] = redact(text)
        return done

    ev = r.evidence
    evidence = Evidence(
        source=clean(ev.source), excerpt=clean(ev.excerpt), observed=clean(ev.observed), expected=clean(ev.expected)
    )
    message = clean(r.message)
    if evidence == ev and message == r.message:
        return r
    return replace(r, message=message, evidence=evidence)
