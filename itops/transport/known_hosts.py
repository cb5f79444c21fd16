"""known_hosts files read the way OpenSSH reads them, line by line, never failing a run.

paramiko's ``HostKeys.load`` raises on a marker line (``@cert-authority``, ``@revoked``: every
site using SSH certificates has them), which turned every host of a run into "internal error",
and it ignores revocations. This module parses each file itself:

* ``host1,host2 keytype base64 [comment]``; patterns with ``*`` and ``?`` wildcards and ``!``
  negations (a negated match excludes the line whatever else matches), case-insensitive;
  ``[host]:port`` for a non-standard port; hashed names ``|1|salt|hmac-sha1``;
* ``@revoked patterns keytype base64``: that key is refused for the hosts it names, even when
  another line lists it as known;
* ``@cert-authority ...``: host certificates are not verified by this client (paramiko offers no
  client-side host certificate validation), so these lines are skipped with one warning per file;
  a host whose plain key is not listed is then an unknown host, as with no such line;
* blank lines and ``#`` comments are skipped; a malformed line is skipped with a warning naming
  ``FILE:LINE``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
import struct
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import paramiko

from itops.errors import HostKeyRejected

log = logging.getLogger(__name__)

USER_KNOWN_HOSTS = "~/.ssh/known_hosts"
SYSTEM_KNOWN_HOSTS = "/etc/ssh/ssh_known_hosts"
REVOKED = "@revoked"
CERT_AUTHORITY = "@cert-authority"
_MARKERS = (REVOKED, CERT_AUTHORITY)
#: a file with more malformed lines than this gets one summary warning for the rest
MAX_LINE_WARNINGS = 10


@dataclass(frozen=True)
class HostKeyLine:
    """One usable line of a known_hosts file."""

    file: str
    line: int
    marker: str  # "", REVOKED or CERT_AUTHORITY
    hosts: str  # the host field as written (patterns, or one hashed name)
    key_type: str
    blob: bytes  # the decoded public key

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    def matches(self, name: str) -> bool:
        """Whether this line applies to ``name`` (``host`` or ``[host]:port``), as OpenSSH decides."""
        if self.hosts.startswith("|"):
            return _hashed_matches(self.hosts, name)
        return match_host_patterns(self.hosts, name)


def match_host_patterns(patterns: str, name: str) -> bool:
    """OpenSSH's ``match_hostfile_names``: a comma-separated pattern list against one name.

    True when some positive pattern matches and no negated (``!pattern``) one does.
    """
    positive = False
    for raw in patterns.split(","):
        negated = raw.startswith("!")
        pattern = raw[1:] if negated else raw
        if not pattern:
            continue
        if _pattern_regex(pattern.lower()).fullmatch(name.lower()):
            if negated:
                return False
            positive = True
    return positive


#: names whose matching lines a KnownHosts remembers (more are forgotten all at once)
_MATCHES_KEPT = 4096
_SPECIAL = frozenset("*?!|")


def _plain_names(patterns: str) -> list[str] | None:
    """The names of a host field made only of plain names (lowercased), or None when any pattern is a
    wildcard, a negation or a hash: such a line must be matched against each name."""
    names = patterns.split(",")
    if any(not n or _SPECIAL.intersection(n) for n in names):
        return None
    return [n.lower() for n in names]


@lru_cache(maxsize=1024)
def _pattern_regex(pattern: str) -> re.Pattern[str]:
    # only * and ? are special (unlike fnmatch, whose [...] would swallow "[127.0.0.1]:2222")
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern), re.S)


def _hashed_matches(field: str, name: str) -> bool:
    _, _, salt_b64, hash_b64 = field.split("|", 3)
    salt, digest = base64.b64decode(salt_b64), base64.b64decode(hash_b64)
    return hmac.compare_digest(hmac.new(salt, name.encode(), "sha1").digest(), digest)


def _check_hashed(field: str) -> str:
    """Why a ``|1|salt|hash`` field is malformed, or ""."""
    parts = field.split("|")
    if len(parts) != 4 or parts[1] != "1":
        return "hashed host name is not |1|salt|hash"
    try:
        salt, digest = base64.b64decode(parts[2], validate=True), base64.b64decode(parts[3], validate=True)
    except ValueError:  # binascii.Error, or characters that are not ASCII
        return "hashed host name is not valid base64"
    if len(digest) != 20 or not salt:  # an HMAC-SHA1
        return "hashed host name has a wrong salt or hash length"
    return ""


def _blob_type(blob: bytes) -> str | None:
    """The key type named at the start of an SSH public key blob (None when it has none)."""
    if len(blob) < 4:
        return None
    (n,) = struct.unpack(">I", blob[:4])
    if n > 64 or len(blob) < 4 + n:
        return None
    try:
        return blob[4 : 4 + n].decode("ascii")
    except UnicodeDecodeError:
        return None


def parse_line(text: str) -> tuple[str, str, str, bytes] | str:
    """``(marker, hosts, key_type, blob)`` of one non-blank, non-comment line, or why it is malformed."""
    fields = text.split()
    marker = ""
    if fields and fields[0].startswith("@"):
        marker = fields.pop(0)
        if marker not in _MARKERS:
            return f"unknown marker {marker[:40]!r}"
    if len(fields) < 3:
        return "expected: [marker] hosts keytype key [comment]"
    hosts, key_type, key_b64 = fields[:3]
    if hosts.startswith("|"):
        problem = _check_hashed(hosts)
        if problem:
            return problem
    try:
        blob = base64.b64decode(key_b64, validate=True)
    except ValueError:  # binascii.Error, or characters that are not ASCII
        return f"the {key_type[:40]} key is not valid base64"
    if _blob_type(blob) != key_type:
        return f"the key is not a {key_type[:40]} key"
    return marker, hosts, key_type, blob


_parsed: dict[str, tuple[tuple[int, int, int, int], list[HostKeyLine]]] = {}
_parsed_lock = threading.Lock()


def load_file(path: str) -> list[HostKeyLine]:
    """The usable lines of one known_hosts file; problems are logged as warnings, never raised
    (an unreadable file gives a warning and no lines).

    A file is parsed (and warned about) once per process while it stays unchanged: the runner,
    playbooks and backup checks each merge the user's and system's files with their own.
    """
    try:
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            version = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
            with _parsed_lock:
                cached = _parsed.get(path)
            if cached is not None and cached[0] == version:
                return list(cached[1])
            data = fh.read()
    except OSError as exc:
        log.warning("cannot read known_hosts file %s: %s", path, exc.strerror or exc)
        return []
    lines = _parse_file(path, data)
    with _parsed_lock:
        _parsed[path] = (version, lines)
    return list(lines)


def _parse_file(path: str, data: bytes) -> list[HostKeyLine]:
    lines: list[HostKeyLine] = []
    malformed = 0
    cert_authority_lines: list[int] = []
    for n, raw in enumerate(data.split(b"\n"), 1):
        text = raw.decode("utf-8", "replace").strip()
        if not text or text.startswith("#"):
            continue
        parsed = parse_line(text)
        if isinstance(parsed, str):
            malformed += 1
            if malformed <= MAX_LINE_WARNINGS:
                log.warning("known_hosts %s:%d: skipped a malformed line (%s)", path, n, parsed)
            continue
        marker, hosts, key_type, blob = parsed
        if marker == CERT_AUTHORITY:
            cert_authority_lines.append(n)
            continue
        lines.append(HostKeyLine(path, n, marker, hosts, key_type, blob))
    if malformed > MAX_LINE_WARNINGS:
        log.warning("known_hosts %s: %d more malformed lines skipped", path, malformed - MAX_LINE_WARNINGS)
    if cert_authority_lines:
        shown = ", ".join(str(n) for n in cert_authority_lines[:5]) + (", ..." if len(cert_authority_lines) > 5 else "")
        log.warning(
            "known_hosts %s: %d @cert-authority line(s) skipped (line %s): itops does not verify SSH host "
            "certificates, so hosts known only through a certificate authority are unknown hosts; list "
            "their plain host keys (ssh-keyscan) to audit them",
            path,
            len(cert_authority_lines),
            shown,
        )
    return lines


def fingerprint_of(blob: bytes) -> str:
    """OpenSSH-style SHA256 fingerprint of a public key blob."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


class KnownHosts:
    """The merged known_hosts files (inventory's, the user's, the system's); read-only
    except for an explicit trust-on-first-use file, to which new keys are appended."""

    def __init__(self, files: Sequence[str], tofu_file: str | None = None) -> None:
        self.lines: list[HostKeyLine] = []
        self.files: list[str] = []
        for f in [*files, *([tofu_file] if tofu_file else []), USER_KNOWN_HOSTS, SYSTEM_KNOWN_HOSTS]:
            path = os.path.expanduser(f)
            if path in self.files or not os.path.isfile(path):
                continue
            self.lines.extend(load_file(path))
            self.files.append(path)
        self.tofu_file = os.path.expanduser(tofu_file) if tofu_file else None
        self._lock = threading.Lock()
        # Lookups are indexed, so a fleet of N hosts with an N-line known_hosts costs O(N), not O(N^2):
        # a line whose patterns are all plain names (no wildcard, negation or hash) is filed under each
        # name; only the other lines are matched one by one, and a name's matches are remembered.
        self._by_name: dict[str, list[int]] = {}
        self._scanned: list[int] = []
        self._matches: dict[str, list[HostKeyLine]] = {}
        for index in range(len(self.lines)):
            self._index(index)

    def _index(self, index: int) -> None:
        names = _plain_names(self.lines[index].hosts)
        if names is None:
            self._scanned.append(index)
        else:
            for name in names:
                self._by_name.setdefault(name, []).append(index)
        self._matches.clear()

    def _matching(self, name: str) -> list[HostKeyLine]:
        """Every line (any marker) that applies to ``name``, in file order."""
        found = self._matches.get(name)
        if found is None:
            indices = set(self._by_name.get(name.lower(), ()))
            indices.update(i for i in self._scanned if self.lines[i].matches(name))
            found = [self.lines[i] for i in sorted(indices)]
            if len(self._matches) >= _MATCHES_KEPT:
                self._matches.clear()
            self._matches[name] = found
        return found

    def _entries(self, name: str, marker: str = "") -> list[HostKeyLine]:
        return [e for e in self._matching(name) if e.marker == marker]

    def known_types(self, name: str) -> list[str]:
        """The key types listed (not revoked) for ``name``, in file order, each once."""
        with self._lock:
            return list(dict.fromkeys(e.key_type for e in self._entries(name)))

    def verify(self, name: str, key: paramiko.PKey) -> None:
        """Raise HostKeyRejected unless ``key`` is a known, unrevoked key for ``name`` (or TOFU records it)."""
        key_type, blob = key.get_name(), key.asbytes()
        offered = f"{key_type} {fingerprint_of(blob)}"
        with self._lock:
            for e in self._entries(name, REVOKED):
                if e.blob == blob:
                    raise HostKeyRejected(
                        f"host key of {name} ({offered}) is marked @revoked in {e.where}",
                        hint="the key was revoked on purpose: have the host's key replaced, then list the new "
                        "key in known_hosts",
                    )
            entries = self._entries(name)
            if any(e.blob == blob for e in entries):
                return
            same_type = [e for e in entries if e.key_type == key_type]
            if same_type:
                known = ", ".join(f"{fingerprint_of(e.blob)} ({e.where})" for e in same_type[:3])
                raise HostKeyRejected(
                    f"host key for {name} has CHANGED: server offers {offered}, "
                    f"known_hosts has {known} — possible man-in-the-middle",
                    hint="if the host was really reinstalled, verify the new fingerprint out of band and "
                    "replace its line in known_hosts (ssh-keygen -R)",
                )
            if entries:
                raise HostKeyRejected(
                    f"host key for {name} is of type {key_type} ({fingerprint_of(blob)}), "
                    f"but known_hosts only has {', '.join(dict.fromkeys(e.key_type for e in entries))}",
                    hint="verify the fingerprint and add the key to known_hosts",
                )
            if self.tofu_file:
                self._record(name, key)
                return
            raise HostKeyRejected(
                f"unknown host key for {name}: {offered} is not in known_hosts "
                f"({', '.join(self.files) or 'no known_hosts file found'})",
                hint="verify the fingerprint out of band, then add it (ssh-keyscan) or run once with "
                "--trust-on-first-use FILE",
            )

    def _record(self, name: str, key: paramiko.PKey) -> None:
        assert self.tofu_file
        self.lines.append(HostKeyLine(self.tofu_file, 0, "", name, key.get_name(), key.asbytes()))
        self._index(len(self.lines) - 1)
        Path(self.tofu_file).parent.mkdir(parents=True, exist_ok=True)
        with open(self.tofu_file, "a", encoding="ascii") as fh:
            fh.write(f"{name} {key.get_name()} {key.get_base64()}\n")
        log.warning(
            "TRUST ON FIRST USE: recorded NEW host key for %s (%s %s) in %s — verify it out of band",
            name,
            key.get_name(),
            fingerprint_of(key.asbytes()),
            self.tofu_file,
        )
