"""Local accounts: probes and parsers for /etc/passwd, /etc/group, /etc/shadow, login.defs, root's PATH.

Only the local files are read (not NSS/LDAP/SSSD, which ``getent`` would add): the
CIS controls these checks implement are about the local account database.

/etc/shadow never leaves the host: the shadow probe prints, per account, only
whether the password field is empty, locked or set, plus the (non-secret) aging
fields. Reading it needs root; otherwise the probe exits 3 with a message that the
checks turn into ERROR ("could not assess: /etc/shadow not readable ...").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from itops.checkapi import Facts, Probe, ProbeResult
from itops.checklib.common import ProbeOutputError, is_login_shell, probe_error
from itops.checklib.fileperm import (
    STAT_RECORD_END,
    FileStat,
    stat_lines_command,
    stat_map,
    stat_record,
    stat_shell_loop,
)
from itops.model import Finding

__all__ = [
    "AUTHORIZED_KEYS_FILES",
    "FORBIDDEN_DOT_FILES",
    "GROUP",
    "HOME_DIR_STATS",
    "HOME_DOT_FILE_STATS",
    "LOGIN_DEFS",
    "NETRC",
    "PASSWD",
    "ROOT_PATH",
    "SHADOW_HASH_SCHEMES",
    "SHADOW_STATUS",
    "SSH_DIR_STATS",
    "GroupEntry",
    "HashScheme",
    "PasswdEntry",
    "RootPath",
    "ShadowEntry",
    "duplicates",
    "home_dirs_stat_command",
    "home_prefix",
    "load_group",
    "load_login_defs",
    "load_passwd",
    "load_shadow",
    "login_defs_int",
    "login_users",
    "parse_group",
    "parse_login_defs",
    "parse_passwd",
    "parse_root_path",
    "parse_shadow_schemes",
    "parse_shadow_status",
    "read_probe",
    "ssh_dir_of",
    "uid_min",
]

PASSWD = Probe("etc_passwd", "cat /etc/passwd")
GROUP = Probe("etc_group", "cat /etc/group")
LOGIN_DEFS = Probe("etc_login_defs", "cat /etc/login.defs")

#: Per account, only the NAME of the password hash scheme (never the hash): ``name:kind`` where kind is
#: empty, locked (``!``/``*`` prefix), ``$ID`` (the crypt id, e.g. ``$6``, ``$y``, ``$1``), des (13
#: characters of the DES alphabet), bsdi (``_`` + 19) or invalid (nothing crypt(3) accepts).
SHADOW_HASH_SCHEMES = Probe(
    "shadow_hash_schemes",
    "if [ ! -e /etc/shadow ]; then echo '/etc/shadow does not exist' >&2; exit 4; fi; "
    "if [ ! -r /etc/shadow ]; then echo '/etc/shadow not readable (run as root or enable sudo)' >&2; exit 3; fi; "
    'awk -F: \'{ p = $2; if (p == "") s = "empty"; else if (p ~ /^[!*]/) s = "locked"; '
    'else if (p ~ /^[$][0-9a-z]+[$]/) { s = substr(p, 2); sub(/[$].*/, "", s); s = "$" s } '
    'else if (length(p) == 13 && p ~ /^[.\\/0-9A-Za-z]+$/) s = "des"; '
    'else if (length(p) == 20 && p ~ /^_/) s = "bsdi"; else s = "invalid"; '
    'print $1 ":" s }\' /etc/shadow',
)

SHADOW_STATUS = Probe(
    "shadow_status",
    "if [ ! -e /etc/shadow ]; then echo '/etc/shadow does not exist' >&2; exit 4; fi; "
    "if [ ! -r /etc/shadow ]; then echo '/etc/shadow not readable (run as root or enable sudo)' >&2; exit 3; fi; "
    # the password field is reduced to empty/locked/set here, so no hash is ever transmitted
    'awk -F: \'{ p = $2; if (p == "") s = "empty"; else if (p ~ /^[!*]/) s = "locked"; else s = "set"; '
    'print $1 ":" s ":" $3 ":" $4 ":" $5 ":" $6 ":" $7 ":" $8 ":" NF }\' /etc/shadow',
)

#: Root's login PATH as a login shell builds it (the way CIS audits it with `sudo -Hiu root env`),
#: then a stat line for every entry. Root's profile scripts run, with stdin closed, under the probe timeout.
ROOT_PATH = Probe(
    "root_login_path",
    'if [ "$(id -u)" != 0 ]; then echo \'root PATH not assessable: not running as root (run as root or enable '
    "sudo)' >&2; exit 3; fi; "
    "rs=$(awk -F: '$1 == \"root\" { print $7; exit }' /etc/passwd); "
    'case "$rs" in \'\'|*/nologin|*/false) rs=/bin/sh;; esac; [ -x "$rs" ] || rs=/bin/sh; '
    'p=$(cd /root 2>/dev/null; env -i HOME=/root USER=root LOGNAME=root SHELL="$rs" TERM=dumb "$rs" -l -c '
    "'printf \"\\n@ITOPS_PATH=%s\\n\" \"$PATH\"' </dev/null 2>/dev/null | sed -n 's/^@ITOPS_PATH=//p' | tail -n 1); "
    "printf 'SHELL=%s\\n' \"$rs\"; "
    'if [ -z "$p" ]; then echo "root PATH not assessable: $rs -l printed no PATH" >&2; exit 5; fi; '
    "printf 'PATH=%s\\n' \"$p\"; "
    "oifs=$IFS; IFS=:; set -f; set -- $p; set +f; IFS=$oifs; " + stat_shell_loop('"$@"'),
)

#: A stat line for every home directory named in /etc/passwd.
HOME_DIR_STATS = Probe("home_dir_stats", stat_lines_command("awk -F: '$6 != \"\" { print $6 }' /etc/passwd | sort -u"))

#: The key files sshd reads by default (AuthorizedKeysFile .ssh/authorized_keys .ssh/authorized_keys2).
AUTHORIZED_KEYS_FILES = ("authorized_keys", "authorized_keys2")


def home_dirs_stat_command(per_home: str, *, cannot_enter: str, listing: bool = False) -> str:
    """A probe command visiting every distinct absolute home in /etc/passwd, then statting what it collected.

    ``per_home`` runs with ``$h`` set to the home (one trailing slash dropped, so ``/`` is empty)
    and appends the paths to stat to the positional parameters (``set -- "$@" ...``); all of them
    go to ONE ``stat`` at the end (itops.checklib.fileperm line format). A home that exists but
    that the probe may not enter (search permission; also read permission with ``listing``, for
    probes that glob inside it) runs ``cannot_enter`` instead, which prints ``E|`` lines for what
    lies below: an unreadable home is "could not assess", never "nothing there" (print them with
    :func:`itops.checklib.fileperm.stat_record`, so they end like the stat records).
    """
    blocked = '{ [ ! -x "$h" ] || [ ! -r "$h" ]; }' if listing else '[ ! -x "$h" ]'
    return (
        "if [ ! -r /etc/passwd ]; then echo '/etc/passwd not readable' >&2; exit 3; fi; "
        + STAT_RECORD_END
        + "awk -F: '$6 ~ /^\\// { print $6 }' /etc/passwd | sort -u | { set --; "
        "while IFS= read -r h; do h=${h%/}; "
        f'if [ -d "$h" ] && {blocked}; then {cannot_enter}; continue; fi; '
        f"{per_home} done; "
        'if [ "$#" -gt 0 ]; then ' + stat_shell_loop('"$@"', setup=False) + "; fi; }"
    )


#: A stat line for HOME/.ssh and its authorized_keys files, for every absolute home in /etc/passwd.
#: Where the probe cannot look inside a home or .ssh (not root), it prints an ``E|`` line for what
#: lies below, so an unreadable directory is "could not assess", never "no keys".
SSH_DIR_STATS = Probe(
    "ssh_dir_stats",
    home_dirs_stat_command(
        'd="$h/.ssh"; set -- "$@" "$d"; '
        'if [ -d "$d" ] && [ ! -x "$d" ]; then '
        + stat_record("E", "".join(f' "$d/{name}"' for name in AUTHORIZED_KEYS_FILES).strip())
        + "; continue; fi; "
        'set -- "$@"' + "".join(f' "$d/{name}"' for name in AUTHORIZED_KEYS_FILES) + ";",
        cannot_enter=stat_record("E", '"$h/.ssh"'),
    ),
)

#: Dot files sshd and mail delivery trust, or that hold credentials (CIS 7.2.10).
FORBIDDEN_DOT_FILES = (".rhosts", ".shosts", ".forward")
NETRC = ".netrc"

#: For every absolute home in /etc/passwd: a stat line for the home itself and for each of its top-level
#: dot files that is a regular file (symlinks followed; a dangling one or one to /dev/null is not a
#: file anyone can write through). A home the probe cannot list (not root) gets ``E|HOME``.
HOME_DOT_FILE_STATS = Probe(
    "home_dot_file_stats",
    home_dirs_stat_command(
        'set -- "$@" "${h:-/}"; if [ -d "$h/" ]; then for f in "$h"/.[!.]* "$h"/..?*; do '
        'if [ -f "$f" ]; then set -- "$@" "$f"; fi; done; fi;',
        cannot_enter=stat_record("E", '"${h:-/}"'),
        listing=True,
    ),
)


def ssh_dir_of(home: str) -> str:
    """HOME/.ssh exactly as :data:`SSH_DIR_STATS` spells it (one trailing slash of the home dropped)."""
    return home_prefix(home) + "/.ssh"


def home_prefix(home: str) -> str:
    """The home as the home-visiting probes spell ``$h`` (one trailing slash dropped; ``/`` becomes "")."""
    return home[:-1] if home.endswith("/") else home


def read_probe(facts: Facts, probe: Probe, label: str) -> ProbeResult | Finding:
    """The probe's result when it ran cleanly (rc 0), else an ERROR finding naming ``label``."""
    result = facts.get(probe.name)
    if result is None or not result.ok or result.timed_out:
        return probe_error(result, label)
    return result


def read_stats(facts: Facts, probe: Probe, label: str) -> Mapping[str, FileStat] | Finding:
    """The parsed output of a stat probe that ran cleanly (read-only, parsed once per host), else an
    ERROR finding naming ``label``."""
    result = read_probe(facts, probe, label)
    if isinstance(result, Finding):
        return result
    try:
        return stat_map(facts, probe)
    except ProbeOutputError as exc:
        return Finding.error(f"could not assess: {exc}")


# --------------------------------------------------------------------------- passwd / group


@dataclass(frozen=True)
class PasswdEntry:
    name: str
    password: str  # "x" when the hash lives in /etc/shadow
    uid: int
    gid: int
    gecos: str
    home: str
    shell: str
    line: int


@dataclass(frozen=True)
class GroupEntry:
    name: str
    gid: int
    members: tuple[str, ...]
    line: int


def _records(text: str, nfields: int, what: str) -> Iterable[tuple[int, list[str]]]:
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\r")
        if not line.strip() or line.startswith("#"):
            continue
        if line[0] in "+-":
            continue  # NIS compat entries ("+::::::", "+@netgroup"), not local accounts
        fields = line.split(":")
        if len(fields) != nfields:
            raise ProbeOutputError(f"{what} line {n} has {len(fields)} fields, expected {nfields}: {line[:80]!r}")
        yield n, fields


def _int(value: str, what: str, n: int) -> int:
    v = value.strip()
    if not v.isdigit():
        raise ProbeOutputError(f"{what} line {n}: {value!r} is not a number")
    return int(v)


def _parse_passwd(text: str) -> tuple[PasswdEntry, ...]:
    """Parse /etc/passwd; a malformed line raises ProbeOutputError (the checks report ERROR)."""
    out = []
    for n, f in _records(text, 7, "/etc/passwd"):
        out.append(
            PasswdEntry(f[0], f[1], _int(f[2], "/etc/passwd", n), _int(f[3], "/etc/passwd", n), f[4], f[5], f[6], n)
        )
    if not out:
        raise ProbeOutputError("/etc/passwd is empty")
    return tuple(out)


def _parse_group(text: str) -> tuple[GroupEntry, ...]:
    """Parse /etc/group; a malformed line raises ProbeOutputError."""
    out = []
    for n, f in _records(text, 4, "/etc/group"):
        members = tuple(m for m in f[3].split(",") if m)
        out.append(GroupEntry(f[0], _int(f[2], "/etc/group", n), members, n))
    if not out:
        raise ProbeOutputError("/etc/group is empty")
    return tuple(out)


def duplicates(items: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """key → names for every key that more than one name shares (in first-seen order)."""
    seen: dict[str, list[str]] = {}
    for key, name in items:
        seen.setdefault(key, []).append(name)
    return {k: v for k, v in seen.items() if len(v) > 1}


# --------------------------------------------------------------------------- login.defs


def _parse_login_defs(text: str) -> Mapping[str, str]:
    """KEY → value from login.defs; like shadow-utils, a later line overrides an earlier one."""
    out: dict[str, str] = {}
    # most of a login.defs is comments: they are dropped in one pass, the settings parsed one by one
    for line in [s for s in map(str.strip, text.splitlines()) if s and s[0] != "#"]:
        parts = line.split(None, 1)
        value = parts[1].strip().strip('"') if len(parts) > 1 else ""
        out[parts[0]] = value
    return MappingProxyType(out)


def login_defs_int(defs: Mapping[str, str], key: str) -> int | None:
    """The integer value of ``key``; None when unset; ValueError when set but not a number."""
    if key not in defs:
        return None
    value = defs[key].split("#", 1)[0].strip()
    try:
        return int(value, 0) if value.lower().startswith(("0x", "0o")) else int(value)
    except ValueError:
        raise ValueError(f"{key} is {defs[key]!r}, not a number") from None


def uid_min(defs: Mapping[str, str]) -> int:
    """UID_MIN from login.defs (1000 when unset, the shadow-utils default)."""
    value = login_defs_int(defs, "UID_MIN")
    return 1000 if value is None else value


# --------------------------------------------------------------------------- shadow


@dataclass(frozen=True)
class ShadowEntry:
    name: str
    state: Literal["empty", "locked", "set"]
    last_change: int | None
    min_days: int | None
    max_days: int | None
    warn_days: int | None
    line: int


def _opt_int(value: str, n: int) -> int | None:
    v = value.strip()
    if not v:
        return None
    try:
        return int(v)
    except ValueError:
        raise ProbeOutputError(f"/etc/shadow line {n}: aging field {value!r} is not a number") from None


def _parse_shadow_status(text: str) -> tuple[ShadowEntry, ...]:
    """Parse the shadow probe (name:state:lastchg:min:max:warn:inactive:expire:NF)."""
    out: list[ShadowEntry] = []
    for n, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        f = raw.split(":")
        if len(f) != 9 or f[1] not in ("empty", "locked", "set"):
            raise ProbeOutputError(f"unexpected shadow probe line {n}: {raw[:80]!r}")
        if f[0].startswith(("+", "-")):
            continue
        if f[8] != "9":
            raise ProbeOutputError(f"/etc/shadow line {n} ({f[0]}) has {f[8]} fields, expected 9")
        state: Literal["empty", "locked", "set"] = f[1]  # type: ignore[assignment]
        out.append(
            ShadowEntry(f[0], state, _opt_int(f[2], n), _opt_int(f[3], n), _opt_int(f[4], n), _opt_int(f[5], n), n)
        )
    if not out:
        raise ProbeOutputError("/etc/shadow is empty")
    return tuple(out)


#: crypt(3) ids (the text between the first two ``$``) and the scheme names used in params and messages.
_CRYPT_IDS = {
    "y": "yescrypt",
    "gy": "gost-yescrypt",
    "7": "scrypt",
    "6": "sha512crypt",
    "5": "sha256crypt",
    "2a": "bcrypt",
    "2b": "bcrypt",
    "2y": "bcrypt",
    "2x": "bcrypt-2x",
    "1": "md5crypt",
    "3": "nthash",
    "sha1": "sha1crypt",
    "md5": "sunmd5",
}


@dataclass(frozen=True)
class HashScheme:
    """One /etc/shadow account's password state: empty, locked, invalid, or the scheme of its hash."""

    account: str
    kind: Literal["empty", "locked", "invalid", "hash"]
    scheme: str = ""  # for kind "hash": yescrypt, sha512crypt, md5crypt, descrypt, ... or "unknown ($9$)"
    line: int = 0


def parse_shadow_schemes(text: str) -> list[HashScheme]:
    """Parse :data:`SHADOW_HASH_SCHEMES` output; anything else raises ProbeOutputError."""
    out: list[HashScheme] = []
    for n, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        name, sep, kind = raw.rpartition(":")
        if not sep or not name:
            raise ProbeOutputError(f"unexpected shadow scheme line {n}: {raw[:80]!r}")
        if name.startswith(("+", "-")):
            continue  # NIS compat entries, not local accounts
        if kind in ("empty", "locked", "invalid"):
            out.append(HashScheme(name, kind, line=n))  # type: ignore[arg-type]
        elif kind == "des":
            out.append(HashScheme(name, "hash", "descrypt", n))
        elif kind == "bsdi":
            out.append(HashScheme(name, "hash", "bsdicrypt", n))
        elif kind.startswith("$") and kind[1:].isalnum():
            out.append(HashScheme(name, "hash", _CRYPT_IDS.get(kind[1:], f"unknown ({kind}$)"), n))
        else:
            raise ProbeOutputError(f"unexpected shadow scheme line {n}: {raw[:80]!r}")
    if not out:
        raise ProbeOutputError("/etc/shadow is empty")
    return out


# --------------------------------------------------------------------------- root PATH


@dataclass(frozen=True)
class RootPath:
    shell: str
    path: str
    entries: tuple[str, ...]  # PATH split on ":" (empty strings kept: they mean the current directory)


def parse_root_path(text: str) -> tuple[RootPath, str]:
    """``(RootPath, stat_text)`` from the root PATH probe; ProbeOutputError when its header is missing."""
    # split at newlines only: the stat records after the header may hold any other character
    lines = text.split("\n", 2)
    if len(lines) < 2 or not lines[0].startswith("SHELL=") or not lines[1].startswith("PATH="):
        raise ProbeOutputError("root PATH probe output lacks its SHELL=/PATH= header")
    path = lines[1][len("PATH=") :]
    return RootPath(lines[0][len("SHELL=") :], path, tuple(path.split(":"))), lines[2] if len(lines) > 2 else ""


def login_users(entries: Sequence[PasswdEntry]) -> list[PasswdEntry]:
    """Accounts with a shell that allows an interactive login."""
    return [e for e in entries if is_login_shell(e.shell)]


# --------------------------------------------------------------------------- loading for checks


def load_passwd(facts: Facts) -> list[PasswdEntry] | Finding:
    """Parsed /etc/passwd, or the ERROR finding explaining why it is not available."""
    res = read_probe(facts, PASSWD, "/etc/passwd")
    if isinstance(res, Finding):
        return res
    try:
        return list(facts.parsed(PASSWD, _parse_passwd))
    except ProbeOutputError as exc:
        return Finding.error(f"could not assess: {exc}")


def load_group(facts: Facts) -> list[GroupEntry] | Finding:
    """Parsed /etc/group, or the ERROR finding explaining why it is not available."""
    res = read_probe(facts, GROUP, "/etc/group")
    if isinstance(res, Finding):
        return res
    try:
        return list(facts.parsed(GROUP, _parse_group))
    except ProbeOutputError as exc:
        return Finding.error(f"could not assess: {exc}")


def load_login_defs(facts: Facts) -> dict[str, str] | Finding:
    """Parsed /etc/login.defs, or the ERROR finding explaining why it is not available."""
    res = read_probe(facts, LOGIN_DEFS, "/etc/login.defs")
    if isinstance(res, Finding):
        return res
    return dict(facts.parsed(LOGIN_DEFS, _parse_login_defs))


def load_shadow(facts: Facts) -> list[ShadowEntry] | Finding:
    """Parsed shadow status, or ERROR ("could not assess: /etc/shadow not readable ...")."""
    res = read_probe(facts, SHADOW_STATUS, "/etc/shadow")
    if isinstance(res, Finding):
        return res
    try:
        return list(facts.parsed(SHADOW_STATUS, _parse_shadow_status))
    except ProbeOutputError as exc:
        return Finding.error(f"could not assess: {exc}")


# The load_* helpers above parse each probe once per host (Facts.parsed: every accounts check of a
# host reads the same probes) and give each caller its own list/dict of the shared immutable parse.


def parse_passwd(text: str) -> list[PasswdEntry]:
    """Parse /etc/passwd; a malformed line raises ProbeOutputError (the checks report ERROR)."""
    return list(_parse_passwd(text))


def parse_group(text: str) -> list[GroupEntry]:
    """Parse /etc/group; a malformed line raises ProbeOutputError."""
    return list(_parse_group(text))


def parse_shadow_status(text: str) -> list[ShadowEntry]:
    """Parse the shadow probe (name:state:lastchg:min:max:warn:inactive:expire:NF)."""
    return list(_parse_shadow_status(text))


def parse_login_defs(text: str) -> dict[str, str]:
    """KEY → value from login.defs; like shadow-utils, a later line overrides an earlier one."""
    return dict(_parse_login_defs(text))
