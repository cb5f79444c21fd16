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
from typing import Any

from itops.model import Evidence, Result

REDACTED = "[REDACTED]"
#: Characters kept of a result's host-controlled evidence (excerpt and observed together) and of
#: its message; a probe's whole output never belongs in a result (DESIGN: evidence is what decided).
EVIDENCE_CAP = 1024
MESSAGE_CAP = 1024
_TRUNCATED = " …[truncated]"

# Words of a key (split at _ - . and camelCase) that make it a policy, a location or a switch,
# never the secret itself: PASS_MAX_DAYS, PasswordAuthentication, AuthorizedKeysFile, password_env.
_NOT_SECRET_WORDS = frozenset(
    {
        "authentication",
        "authenticate",
        "algorithm",
        "algorithms",
        "max",
        "min",
        "age",
        "days",
        "warn",
        "len",
        "length",
        "file",
        "files",
        "path",
        "dir",
        "env",
        "type",
        "types",
        "size",
        "bits",
        "policy",
        "expire",
        "expiry",
        "history",
        "retry",
        "retries",
        "remember",
        "hash",
        "method",
        "mode",
        "format",
        "prompt",
        "command",
        "interval",
        "quality",
        "stack",
        "rounds",
        "enabled",
        "required",
        "change",
        "exchange",
        "passive",
        "bypass",
        "keyboard",
        "ttl",
        "timeout",
        "count",
        "lifetime",
        "complexity",
        "reuse",
        "id",
        "ids",
        "name",
        "names",
        "url",
        "nopasswd",
    }
)
_KEY_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_NOT_SECRET_VALUE = re.compile(
    r"(?i)(yes|no|true|false|on|off|none|null|nil|required|optional|sufficient|requisite|enabled|disabled"
    r"|\[redacted[^\]]*\]|\*+|x|!+|\$\{?\w+\}?|<[\w -]+>|/[\w./*?-]*|~/[\w./*?-]*"
    r"|all)"
)
# An assignment, found from its secret word (a scan that starts at a literal is fast); the rest of the
# key before the word is read back in Python. Forms: quoted value after = : or => ("key": "v"),
# key=value, key: value, and KEY value / --key value after a space.
_ASSIGN = re.compile(
    r"(?i)(?:pass|pwd|secret|token|key|credential)[A-Za-z0-9_.-]*(?P<kq>[\"']?)"
    r"(?:[ \t]*(?:[:=]|=>)[ \t]*(?P<q>[\"'])(?P<qv>(?:(?!(?P=q))[^\r\n])*)(?P=q)"
    r"|[ \t]*=[ \t]*(?P<ev>[^\s'\",;&)}\]]++)"
    r"|:[ \t]*(?P<cv>[^\s'\",;&)}\]]++)"
    r"|[ \t]+(?![=:])(?P<sv>[^\s'\",;&)}\]]++))"
)
# what may stand before a key: a key right after "/" is part of a path (/etc/pam.d/common-password),
# after "*" part of a glob (/etc/ssh/ssh_host_*_key), after "$" a variable reference
_KEY_MAY_FOLLOW = frozenset(" \t\r\n\"'`{[(,;:&?|<>")
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
# text before a key that makes it the start of a line of an env, INI or YAML file
_LINE_LEAD = re.compile(r"[ \t]*(?:export[ \t]+|-[ \t]+)?[\"']?")
# where a line-start value ends: the end of the line, or the next key=/key: or redaction on it
_LINE_VALUE_END = re.compile(r"[ \t]*(?=\r?\n|\Z)|[ \t]+(?=[\w.-]+[ \t]*[=:]|\[REDACTED|-----BEGIN)")
_NSS_SOURCE = re.compile(r"(?i)(?:files|compat|systemd|sss|ldap|nis|nisplus|winbind|db|extrausers)\b")
# after a mid-line "key: value", a plain word not followed by = or : means prose ("password: new passwords ...")
_PROSE_AFTER = re.compile(r"[ \t]+[A-Za-z]+\b(?![=:])")
_QUOTED_OR_WORD = r"(?P<value>'[^'\n]*'|\"[^\"\n]*\"|[^\s;,]+)"
_SPACE_DIRECTIVES = [
    # Redis
    re.compile(r"(?i)(?P<pre>(?<![\w./-])(?:requirepass|masterauth)[ \t]+)(?P<value>[^\s#]+)"),
    # SQL: IDENTIFIED [WITH plugin] BY [PASSWORD] '...', [ENCRYPTED] PASSWORD '...'
    re.compile(
        r"(?i)(?P<pre>\bidentified[ \t]+(?:with[ \t]+\S+[ \t]+)?(?:by|as)[ \t]+(?:password[ \t]+)?)" + _QUOTED_OR_WORD
    ),
    re.compile(r"(?i)(?P<pre>\bpassword[ \t]+)(?P<value>'[^'\n]*'|\"[^\"\n]*\")"),
    # curl -u user:password, netrc
    re.compile(r"(?P<pre>(?<!\S)(?:-u|--user|--proxy-user)[ \t]*[^\s:'\"]+:)(?P<value>[^\s@'\"]+)"),
    re.compile(r"(?i)(?P<pre>\blogin[ \t]+\S+[ \t]+password[ \t]+)(?P<value>\S+)"),
    # HTTP
    re.compile(
        r"(?i)(?P<pre>\bauthorization[\"']?[ \t]*[:=][ \t]*[\"']?(?:(?:bearer|basic|token|digest|negotiate)"
        r"[ \t]+)?)(?P<value>[^\s\"']+)"
    ),
    re.compile(r"(?i)(?P<pre>\bbearer[ \t]+)(?P<value>(?=[A-Za-z0-9._~+/=-]*[0-9._~+/=-])[A-Za-z0-9._~+/=-]{8,})"),
]
_MYSQL_LINE = re.compile(r"(?i)\b(?:mysql\w*|mariadb\w*)\b")
_MYSQL_P = re.compile(r"(?P<pre>(?<!\S)-p)(?P<value>'[^']*'|\"[^\"]*\"|[^\s'\"]+)")
_URL_USERINFO = re.compile(r"(?i)(?P<pre>\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)(?P<value>[^@\s/]+)(?=@)")
_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)", re.S)
_AWS_KEY_ID = re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")

_known: set[str] = set()
_known_longest_first: tuple[str, ...] = ()
_lock = threading.Lock()
#: texts already redacted under the current known secrets (messages, commands, expected values and
#: many outputs repeat across the hosts of a run, and each result is redacted when stored and again
#: when rendered); a text redaction leaves as it is maps to "" (a redaction is never empty), so the
#: caller gets its own text object back. Bounded: at most _CACHE_ENTRIES texts of at most _CACHE_TEXT
#: characters and _CACHE_CHARS characters in all, dropped whole when full or when a secret is
#: registered (a cached answer may then be stale).
_cache: dict[str, str] = {}
_cache_chars = 0
_CACHE_ENTRIES = 8192
_CACHE_TEXT = 8192  # long probe commands (2 KB and more) repeat on every host too
_CACHE_CHARS = 4_000_000


def register_secret(value: str) -> None:
    """Remember a secret value read at run time so it is redacted wherever it appears."""
    if value and len(value) >= 4:
        global _known_longest_first, _cache, _cache_chars
        with _lock:
            if value in _known:
                return
            _known.add(value)
            _known_longest_first = tuple(sorted(_known, key=len, reverse=True))
            _cache = {}
            _cache_chars = 0


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


def _value_only(m: re.Match[str]) -> str:
    value = m.group("value")
    q = value[0] if len(value) > 1 and value[0] in "'\"" and value[-1] == value[0] else ""
    return m.group("pre") + f"{q}{REDACTED}{q}"


def _redact_assignments(text: str) -> str:
    out: list[str] = []
    pos = done = 0
    while (m := _ASSIGN.search(text, pos)) is not None:
        start = m.start()
        while start > 0 and text[start - 1] in _KEY_CHARS:
            start -= 1
        key = text[start : m.end("kq") - len(m.group("kq"))]
        lead_end = start - 1 if start > 0 and text[start - 1] in "\"'" else start
        line_start = text.rfind("\n", 0, lead_end) + 1
        at_line_start = _LINE_LEAD.fullmatch(text, line_start, lead_end) is not None
        span = _value_span(text, m, key, at_line_start, start)
        if span is None:
            pos = m.end("kq") if m.end("kq") > m.start() else m.start() + 1
            continue
        out += [text[done : span[0]], REDACTED]
        done = pos = span[1]
    return "".join(out) + text[done:] if out else text


def _value_span(text: str, m: re.Match[str], key: str, at_line_start: bool, key_start: int) -> tuple[int, int] | None:
    """Where the secret value of assignment ``m`` is, or None when it is no secret assignment."""
    if key_start > 0 and text[key_start - 1] not in _KEY_MAY_FOLLOW:  # a path, a glob, a $VARIABLE
        return None
    form = next(g for g in ("qv", "ev", "cv", "sv") if m.group(g) is not None)
    start, end = m.span(form)
    if form == "sv" and (m.group("kq") or not ("_" in key.lstrip("-") or key.startswith("--"))):
        return None  # "password stack": a word, not a KEY_NAME or --option
    if form == "cv" and key.lower() in ("passwd", "shadow", "gshadow") and _NSS_SOURCE.match(text, start):
        return None  # nsswitch.conf: "passwd: files systemd"
    if form in ("ev", "cv") and at_line_start:  # env/INI/YAML line: the rest of the line is the value
        stop = _LINE_VALUE_END.search(text, end)
        end = stop.start() if stop is not None and stop.start() >= end else end
    elif form in ("cv", "sv") and _PROSE_AFTER.match(text, end):
        return None
    value = text[start:end].strip()
    if not value or value.startswith("[REDACTED") or _NOT_SECRET_VALUE.fullmatch(value):
        return None
    if _is_policy_key(key.lstrip("-")):
        return None
    if form == "sv" and key.startswith("--") and value.startswith("-"):
        return None
    return start, end


# (lowercase guard substrings, pattern): a pattern runs only when one of its guards is in the text
_STEPS: list[tuple[tuple[str, ...], re.Pattern[str]]] = [
    (("://",), _URL_USERINFO),
    (("requirepass", "masterauth"), _SPACE_DIRECTIVES[0]),
    (("identified",), _SPACE_DIRECTIVES[1]),
    (("password",), _SPACE_DIRECTIVES[2]),
    (("-u", "--user", "--proxy-user"), _SPACE_DIRECTIVES[3]),
    (("login",), _SPACE_DIRECTIVES[4]),
    (("authorization",), _SPACE_DIRECTIVES[5]),
    (("bearer",), _SPACE_DIRECTIVES[6]),
]
_SECRET_WORDS = ("pass", "pwd", "secret", "token", "key", "credential")


def redact(text: str) -> str:
    """Return ``text`` with known secrets and secret-looking patterns replaced."""
    if not text:
        return text
    if len(text) > _CACHE_TEXT:
        return _redact(text, _known_longest_first)
    cache = _cache  # the dict of the current secrets: register_secret replaces it, never edits it
    done = cache.get(text)
    if done is None:
        known = _known_longest_first
        redacted = _redact(text, known)
        done = "" if redacted == text else redacted
        global _cache_chars
        with _lock:
            if cache is _cache and known is _known_longest_first:  # no secret registered meanwhile
                size = len(text) + len(done)
                if len(cache) >= _CACHE_ENTRIES or _cache_chars + size > _CACHE_CHARS:
                    cache.clear()
                    _cache_chars = 0
                cache[text] = done
                _cache_chars += size
    return done or text


def _redact(text: str, known: tuple[str, ...]) -> str:
    for value in known:
        if value in text:
            text = text.replace(value, REDACTED)
    if "PRIVATE KEY" in text:
        text = _PRIVATE_KEY.sub("[REDACTED PRIVATE KEY]", text)
    lowered = text.lower()
    if "akia" in lowered or "asia" in lowered:
        text = _AWS_KEY_ID.sub("[REDACTED AWS KEY ID]", text)
    for guards, pattern in _STEPS:
        for guard in guards:
            if guard in lowered:
                text = pattern.sub(_value_only, text)
                break
    for word in _SECRET_WORDS:
        if word in lowered:
            text = _redact_assignments(text)
            break
    if "mysql" in lowered or "mariadb" in lowered:
        text = "\n".join(
            _MYSQL_P.sub(_value_only, line) if _MYSQL_LINE.search(line) else line for line in text.split("\n")
        )
    return text


def redact_data(data: Any) -> Any:
    """``data`` (JSON-shaped: dicts, lists, strings ...) with every string redacted, for side files a run
    keeps beside its results (a drill's step log, a job's stderr)."""
    if isinstance(data, str):
        return redact(data)
    if isinstance(data, dict):
        return {k: redact_data(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [redact_data(v) for v in data]
    return data


def cap(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marked when cut."""
    if len(text) <= limit:
        return text
    if len(text) > _CACHE_TEXT:
        return text[: max(0, limit - len(_TRUNCATED))] + _TRUNCATED
    # the same long probe command is cut on every host; the marker's "…" makes each cut a wider copy
    key = (text, limit)
    done = _cuts.get(key)
    if done is None:
        if len(_cuts) >= _CUTS_ENTRIES:
            _cuts.clear()
        done = _cuts[key] = text[: max(0, limit - len(_TRUNCATED))] + _TRUNCATED
    return done


#: texts already cut by cap(), by (text, limit): at most _CUTS_ENTRIES of at most _CACHE_TEXT characters
_cuts: dict[tuple[str, int], str] = {}
_CUTS_ENTRIES = 512


def redact_result(r: Result, memo: dict[str, str] | None = None) -> Result:
    """``r`` with its message, resource and every evidence field redacted, then capped.

    ``memo`` caches redactions across the results of one run (commands, expected values
    and many outputs repeat); use one memo per call, as the known secrets may change. Without
    it, :func:`redact`'s own bounded memory serves (texts repeat across the hosts of a run).
    The observed value keeps its room first; the excerpt (the deciding lines) gets what is left
    of :data:`EVIDENCE_CAP`. A result with nothing to redact or cap is returned as it is.
    """
    ev = r.evidence
    observed, source, excerpt, expected, message, resource = _clean(
        (ev.observed, ev.source, ev.excerpt, ev.expected, r.message, r.resource), memo
    )
    # this runs for every stored result: caps are tested inline, cap() called only to cut
    if len(observed) > _HALF_CAP:
        observed = cap(observed, _HALF_CAP)
    if len(source) > EVIDENCE_CAP:
        source = cap(source, EVIDENCE_CAP)
    if len(excerpt) > EVIDENCE_CAP - len(observed):
        excerpt = cap(excerpt, EVIDENCE_CAP - len(observed))
    if len(expected) > _HALF_CAP:
        expected = cap(expected, _HALF_CAP)
    if len(message) > MESSAGE_CAP:
        message = cap(message, MESSAGE_CAP)
    # _clean hands back the very text it was given when redaction leaves it as it is, so identity
    # tells what changed (a probe command over the cap is the common change: one copy, not two)
    if observed is ev.observed and source is ev.source and excerpt is ev.excerpt and expected is ev.expected:
        if message is r.message and resource is r.resource:
            return r
        evidence = ev
    else:
        evidence = Evidence(source=source, excerpt=excerpt, observed=observed, expected=expected)
    return r.evolve(message=message, evidence=evidence, resource=resource)


_HALF_CAP = EVIDENCE_CAP // 2


def _clean(texts: tuple[str, ...], memo: dict[str, str] | None) -> list[str]:
    """Each of ``texts`` redacted; the text itself (the same object) when redaction leaves it as it is.

    Remembered texts (``memo``, else :func:`redact`'s memory) are looked up here, without a call per
    text: an unchanged text maps to "" (a redaction is never empty), so a text equal to one seen
    before but another object (the same command on the next host) is still handed back as itself.
    """
    seen = _cache if memo is None else memo
    out = []
    for text in texts:
        if text:
            done = seen.get(text)
            if done is None:
                done = redact(text)
                if memo is not None:
                    memo[text] = "" if done is text else done
                text = done
            elif done:
                text = done
        out.append(text)
    return out
