"""One redaction step for everything that is stored or rendered (evidence, messages).

Known secret values (read from env/file sources at run time) are replaced exactly;
AWS key ids, private key blocks and ``password=``-style assignments by pattern.
"""

from __future__ import annotations

import re
import threading

_PATTERNS = [
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.S),
     "[REDACTED PRIVATE KEY]"),
    (re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"), "[REDACTED AWS KEY ID]"),
    (re.compile(r"(?i)\b(aws_secret_access_key|secret_?key)\b(\s*[:=]\s*)\S+"), r"\1\2[REDACTED]"),
    (re.compile(r"(?i)\b(password|passwd|pwd|secret|token|api_?key)\b(\s*[:=]\s*)([^\s'\";,&]+)"),
     r"\1\2[REDACTED]"),
    (re.compile(r"(?i)(://[^/\s:@]+:)([^@\s/]+)(@)"), r"\1[REDACTED]\3"),
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
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text
