"""One redaction step for everything that is stored or rendered (evidence, messages).

Known secret values (read from env/file sources at run time) are replaced exactly; the rest by
the shapes secrets take in the files and outputs checks read:

- assignments whose key names a secret (contains pass, pwd, secret, token, key or credential):
  ``DB_PASSWORD=x``, ``proxy_password = x``, ``password: "x"``, ``"api_token": "x"``,
  ``export API_TOKEN=x``, ``--password=x`` / ``--password x``;
- ``-pSECRET`` on a mysql/mariadb command line, ``IDENTIFIED BY '...'``, ``PASSWORD '...'``
  (SQL), ``requirepass x`` / ``masterauth x`` (Redis), ``password x`` in a netrc line;
- ``Authorization: Bearer|Basic ...`` and bare ``Bearer <token>``;
- URLs with ``user:password@``, private key blocks, AWS access key ids.

It must not corrupt findings: a key that is part of a file path (``/etc/pam.d/common-password:``),
a policy knob rather than a secret (``PASS_MAX_DAYS=90``, ``PasswordAuthentication=no``,
``password_file: /run/x``), a yes/no value, or a ``key: word`` followed by more prose
(``password: new passwords are not checked``) is left alone. An unquoted ``key: value`` in the
middle of a line is a secret only when nothing but punctuation or another ``key=`` follows it;
at the start of a line (YAML, INI, env files) the rest of the line is the value.

:func:`redact_result` also caps what a result carries (:data:`EVIDENCE_CAP`), after redaction, so a
truncation never leaves half a secret that the patterns could no longer recognise.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import replace

from itops.model import Evidence, Result

REDACTED = "[REDACTED]"
#: Characters kept of a result's host-controlled evidence (excerpt and observed together) and of
#: its message; a probe's whole output never belongs in a result (DESIGN: evidence is what decided).
EVIDENCE_CAP = 1024
MESSAGE_CAP = 1024
_TRUNCATED = " …[truncated]"

# A key that names a secret. The look-behind keeps a key inside a path or a dashed word
# ("/etc/pam.d/common-password", "x-password") from counting.
_KEY_BODY = r"(?P<key>-{0,2}[A-Za-z0-9_.-]*?(?:pass|pwd|secret|token|key|credential)[A-Za-z0-9_.-]*)"
_KEY = r"(?<![\w./\\~@-])" + _KEY_BODY
# Words of a key (split at _ - . and camelCase) that make it a policy, a location or a switch,
# never the secret itself: PASS_MAX_DAYS, PasswordAuthentication, AuthorizedKeysFile, password_env.
_NOT_SECRET_WORDS = frozenset(
    {
        "authentication", "authenticate", "algorithm", "algorithms", "max", "min", "age", "days", "warn", "len",
        "length", "file", "files", "path", "dir", "env", "type", "types", "size", "bits", "policy", "expire", "expiry",
        "history", "retry", "retries", "remember", "hash", "method", "mode", "format", "prompt", "command", "interval",
        "quality", "stack", "rounds", "enabled", "required", "change", "exchange", "passive", "bypass", "keyboard",
        "ttl", "timeout", "count", "lifetime", "complexity", "reuse", "id", "ids", "name", "names", "url",
    }
)
_KEY_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_NOT_SECRET_VALUE = re.compile(
    r"(?i)(yes|no|true|false|on|off|none|null|nil|required|optional|sufficient|requisite|enabled|disabled"
    r"|\[redacted[^\]]*\]|\*+|x|!+|\$\{?\w+\}?|<[\w -]+>|/[\w./-]*|~/[\w./-]*)"
)
# one unquoted value: ends at white space, a quote or punctuation that closes a structure
_BARE = r"(?P<value>[^\s'\",;&)}\]]++)"

_QUOTED_ASSIGN = re.compile(  # "key": "v", key = 'v', key: "v", "key" => "v"
    r"(?i)" + _KEY + r"[\"']?(?P<sep>[ \t]*(?:[:=]|=>)[ \t]*)(?P<q>[\"'])(?P<value>(?:(?!(?P=q)).)*)(?P=q)"
)
# where a line-start value ends: the end of the line, or the next key=/key: or redaction on it
_NEXT = r"[ \t]*$|[ \t]+(?:[\w.-]+[ \t]*[=:]|\[REDACTED|-----BEGIN)"
_LINE_ASSIGN = re.compile(  # at the start of a line: KEY=rest of line (env, INI, YAML)
    r"(?im)^[ \t]*(?:export[ \t]+|-[ \t]+)?[\"']?" + _KEY_BODY
    + r"[\"']?[ \t]*[:=][ \t]*(?P<value>[^\"'\s](?:(?!" + _NEXT + r")[^\r\n])*)"
)
_EQUALS_ASSIGN = re.compile(r"(?i)" + _KEY + r"[ \t]*=[ \t]*" + _BARE)  # key=value, --password=v mid-line
_COLON_ASSIGN = re.compile(  # key: value mid-line, unless prose goes on after the value
    r"(?i)" + _KEY + r":[ \t]*" + _BARE + r"(?![ \t]+[A-Za-z]+\b(?![=:]))"
)
_IDENT_SPACE = re.compile(  # DB_PASSWORD value: an identifier key (with a _) and its value after a space
    r"(?i)(?<![\w./\\~@-])(?P<key>(?=[A-Za-z0-9_.-]*?(?:pass|pwd|secret|token|key|credential))"
    r"(?=[A-Za-z0-9.-]*_)[A-Za-z0-9_.-]+)[ \t]+(?![=:])" + _BARE + r"(?![ \t]+[A-Za-z]+\b(?![=:]))"
)
_CLI_SPACE = re.compile(  # --password value (a long option whose argument is the next word)
    r"(?i)(?<!\S)(?P<key>--[A-Za-z0-9_-]*(?:pass|pwd|secret|token|key|credential)[A-Za-z0-9_-]*)"
    r"[ \t]+(?P<value>[^\s-]\S*)"
)
_QUOTED_OR_WORD = r"(?P<value>'[^'\n]*'|\"[^\"\n]*\"|[^\s;,]+)"
_SPACE_DIRECTIVES = [
    # Redis
    re.compile(r"(?i)(?P<pre>(?<![\w./-])(?:requirepass|masterauth)[ \t]+)(?P<value>[^\s#]+)"),
    # SQL: IDENTIFIED [WITH plugin] BY [PASSWORD] '...', [ENCRYPTED] PASSWORD '...'
    re.compile(r"(?i)(?P<pre>\bidentified[ \t]+(?:with[ \t]+\S+[ \t]+)?(?:by|as)[ \t]+(?:password[ \t]+)?)"
               + _QUOTED_OR_WORD),
    re.compile(r"(?i)(?P<pre>\bpassword[ \t]+)(?P<value>'[^'\n]*'|\"[^\"\n]*\")"),
    # curl -u user:password, netrc
    re.compile(r"(?P<pre>(?<!\S)(?:-u|--user|--proxy-user)[ \t]*[^\s:'\"]+:)(?P<value>[^\s@'\"]+)"),
    re.compile(r"(?i)(?P<pre>\blogin[ \t]+\S+[ \t]+password[ \t]+)(?P<value>\S+)"),
    # HTTP
    re.compile(r"(?i)(?P<pre>\bauthorization[\"']?[ \t]*[:=][ \t]*[\"']?(?:(?:bearer|basic|token|digest|negotiate)"
               r"[ \t]+)?)(?P<value>[^\s\"']+)"),
    re.compile(r"(?i)(?P<pre>\bbearer[ \t]+)(?P<value>(?=[A-Za-z0-9._~+/=-]*[0-9._~+/=-])[A-Za-z0-9._~+/=-]{8,})"),
]
_MYSQL_LINE = re.compile(r"(?i)\b(?:mysql\w*|mariadb\w*)\b")
_MYSQL_P = re.compile(r"(?P<pre>(?<!\S)-p)(?P<value>'[^']*'|\"[^\"]*\"|[^\s'\"]+)")
_URL_USERINFO = re.compile(r"(?i)(?P<pre>\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)(?P<value>[^@\s/]+)(?=@)")
_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)", re.S)
_AWS_KEY_ID = re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")

_GUARD = re.compile(r"(?i)pass|pwd|secret|token|key|credential|identified|requirepass|masterauth|bearer|authoriz"
                    r"|://|akia|asia|mysql|mariadb")

_known: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str) -> None:
    """Remember a secret value read at run time so it is redacted wherever it appears."""
    if value and len(value) >= 4:
        with _lock:
            _known.add(value)


def _is_policy_key(key: str) -> bool:
    """True for keys such as PASS_MAX_DAYS, PasswordAuthentication or sshd -T's glued ``authorizedkeysfile``."""
    words = {w.lower() for part in re.split(r"[_.-]+", key) for w in _KEY_WORD.findall(part)}
    if words & _NOT_SECRET_WORDS:
        return True
    lowered = key.lower()
    return any(len(w) >= 5 and w in lowered for w in _NOT_SECRET_WORDS)


_SECRET_WORD = re.compile(r"(?i)pass|pwd|secret|token|key|credential|requirepass|masterauth")


def names_secret(key: str) -> bool:
    """True when a configuration key holds a secret (``DB_PASSWORD``, ``requirepass``, ``api_key``)
    rather than a policy about secrets (``PASS_MAX_DAYS``, ``PasswordAuthentication``)."""
    return bool(_SECRET_WORD.search(key)) and not _is_policy_key(key)


def _assignment(m: re.Match[str]) -> str:
    """Redact the value of a ``key <sep> value`` match unless the key or value says it is no secret."""
    value = m.group("value").strip()
    no_secret = not value or value.startswith("[REDACTED") or _NOT_SECRET_VALUE.fullmatch(value)
    if no_secret or _is_policy_key(m.group("key")):
        return m.group(0)
    start, end = m.start("value") - m.start(0), m.end("value") - m.start(0)
    return m.group(0)[:start] + REDACTED + m.group(0)[end:]


def _value_only(m: re.Match[str]) -> str:
    value = m.group("value")
    q = value[0] if len(value) > 1 and value[0] in "'\"" and value[-1] == value[0] else ""
    return m.group("pre") + f"{q}{REDACTED}{q}"


_STEPS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (_URL_USERINFO, _value_only),
    *((p, _value_only) for p in _SPACE_DIRECTIVES),
    (_QUOTED_ASSIGN, _assignment),
    (_LINE_ASSIGN, _assignment),
    (_EQUALS_ASSIGN, _assignment),
    (_COLON_ASSIGN, _assignment),
    (_CLI_SPACE, _assignment),
    (_IDENT_SPACE, _assignment),
]


def redact(text: str) -> str:
    """Return ``text`` with known secrets and secret-looking patterns replaced."""
    if not text:
        return text
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for value in known:
        text = text.replace(value, REDACTED)
    if "PRIVATE KEY" in text:
        text = _PRIVATE_KEY.sub("[REDACTED PRIVATE KEY]", text)
    if not _GUARD.search(text):
        return text
    text = _AWS_KEY_ID.sub("[REDACTED AWS KEY ID]", text)
    for pattern, repl in _STEPS:
        text = pattern.sub(repl, text)
    if _MYSQL_LINE.search(text):
        text = "\n".join(_MYSQL_P.sub(_value_only, line) if _MYSQL_LINE.search(line) else line
                         for line in text.split("\n"))  # fmt: skip
    return text


def cap(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marked when cut."""
    return text if len(text) <= limit else text[: max(0, limit - len(_TRUNCATED))] + _TRUNCATED


def redact_result(r: Result, memo: dict[str, str] | None = None) -> Result:
    """``r`` with its message, resource and every evidence field redacted, then capped.

    ``memo`` caches redactions across the results of one run (commands, expected values
    and many outputs repeat); use one memo per call, as the known secrets may change.
    The observed value keeps its room first; the excerpt (the deciding lines) gets what is left
    of :data:`EVIDENCE_CAP`.
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
    observed = cap(clean(ev.observed), EVIDENCE_CAP // 2)
    evidence = Evidence(
        source=cap(clean(ev.source), EVIDENCE_CAP),
        excerpt=cap(clean(ev.excerpt), EVIDENCE_CAP - len(observed)),
        observed=observed,
        expected=cap(clean(ev.expected), EVIDENCE_CAP // 2),
    )
    message = cap(clean(r.message), MESSAGE_CAP)
    resource = clean(r.resource)
    if evidence == ev and message == r.message and resource == r.resource:
        return r
    return replace(r, message=message, evidence=evidence, resource=resource)
