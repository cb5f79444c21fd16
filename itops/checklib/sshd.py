"""The effective OpenSSH server configuration, from ``sshd -T`` or rebuilt from the files.

Two probes, shared (same name, same command) by every ssh check so a host runs each once:

* :data:`SSHD_EFFECTIVE` runs ``sshd -T``: sshd's own view of its configuration, defaults
  included, keys in lowercase. It needs root and readable host keys; it fails otherwise.
* :data:`SSHD_FILES` dumps /etc/ssh/sshd_config and every file reachable through ``Include``
  (globs expanded on the host, relative paths relative to /etc/ssh, at most
  ``sshd_syntax.MAX_FILES`` files), with unambiguous markers so
  :func:`itops.checklib.sshd_syntax.build_config` can rebuild the directive order exactly as
  sshd reads it. Each file's mode/uid/gid comes along for ``ssh.sshd_config_permissions``.

Rules reproduced from OpenSSH 9.x servconf.c (checked against ``sshd -T`` of OpenSSH 9.2):

* keywords are case-insensitive; ``Keyword value``, ``Keyword=value`` and ``Keyword = value``
  are equivalent; arguments may be quoted; ``#`` at the start of an argument ends the line;
* for nearly every keyword the first value wins; Include'd content counts at the position
  of the ``Include`` line; files matched by one glob are read in sorted order;
* a ``Match`` line ends the global section; a ``Match`` inside an included file ends at the
  end of that file; ``Match all`` applies to every connection, so ``sshd -T`` shows its
  values, and they override global ones;
* keywords not set anywhere take the OpenSSH 9.x defaults in :data:`DEFAULTS`.

Known limits: both sources read the files on disk, not the running daemon (a change not yet
reloaded is judged as if it were live); a daemon started with ``-f``/``-o`` options (RHEL 8
crypto policies pass ``-oCiphers=...`` on the command line) is not seen by either; distribution
patches that change compiled-in defaults are not modelled by the file fallback (``sshd -T``
sees them). Conditional ``Match`` blocks are taken from the files only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from itops.checkapi import Facts, Probe, ProbeResult
from itops.checklib.common import first_stderr_line
from itops.checklib.fileperm import stat_lines_command
from itops.checklib.sshd_syntax import (
    MAX_FILES,
    SSH_DIR,
    Directive,
    MatchBlock,
    ParsedSshdConfig,
    SshdConfigError,
    build_config,
    normalize_value,
    parse_files_dump,
)

__all__ = [
    "ALGORITHM_KEYS",
    "DEFAULTS",
    "HOST_KEY_STATS",
    "SSHD_EFFECTIVE",
    "SSHD_FILES",
    "SSHD_PROBES",
    "EffectiveSshdConfig",
    "Setting",
    "SshdNotInstalled",
    "SshdUnavailable",
    "apply_algorithm_list",
    "effective_from_files",
    "effective_from_sshd_t",
    "files_dump_command",
    "load_sshd_config",
    "parse_duration",
    "parse_sshd_t",
]


class SshdUnavailable(Exception):
    """Neither ``sshd -T`` nor the configuration files could be read."""


class SshdNotInstalled(SshdUnavailable):
    """No sshd binary and no /etc/ssh/sshd_config: the OpenSSH server is not installed."""


# --------------------------------------------------------------------------- probes

SSHD_EFFECTIVE = Probe("sshd_effective_config", "sshd -T")

# The Include tokenizer in awk mirrors split_directive/split_args below; if the two ever
# disagree, the Python side finds an Include whose expansion the probe did not print and
# reports ERROR instead of guessing.
_INCLUDE_AWK = r"""{
  line = $0
  sub(/[ \t\r\n\f]+$/, "", line); sub(/^[ \t\r\n]+/, "", line)
  if (match(line, /[ \t"=]/)) { kw = substr(line, 1, RSTART - 1); rest = substr(line, RSTART) } else next
  if (tolower(kw) != "include") next
  sub(/^[ \t]+/, "", rest); if (substr(rest, 1, 1) == "=") rest = substr(rest, 2); sub(/^[ \t]+/, "", rest)
  n = length(rest); i = 1
  while (i <= n) {
    c = substr(rest, i, 1)
    if (c == " " || c == "\t") { i++; continue }
    if (c == "#") break
    tok = ""; q = ""
    while (i <= n) {
      c = substr(rest, i, 1)
      if (c == "\\") {
        d = substr(rest, i + 1, 1)
        if (d == "\"" || d == "'" || d == "\\" || (q == "" && d == " ")) { tok = tok d; i += 2; continue }
        tok = tok c; i++; continue
      }
      if (q == "" && (c == " " || c == "\t")) break
      if (q == "" && (c == "\"" || c == "'")) { q = c; i++; continue }
      if (q != "" && c == q) { q = ""; i++; continue }
      tok = tok c; i++
    }
    if (tok != "") print tok
  }
}"""

_FILES_TEMPLATE = """nl='
'
q="__SSH_DIR__/sshd_config$nl"; seen="$nl"; n=0; oifs=$IFS
while [ -n "$q" ]; do
  f=${q%%"$nl"*}; q=${q#*"$nl"}
  case "$seen" in *"$nl$f$nl"*) continue;; esac
  seen="$seen$f$nl"; n=$((n+1))
  if [ "$n" -gt __MAX_FILES__ ]; then printf '@LIMIT\\t%s\\n' "$f"; break; fi
  if [ ! -e "$f" ]; then printf '@MISSING\\t%s\\n' "$f"; continue; fi
  if [ -d "$f" ]; then printf '@NOTFILE\\t%s\\n' "$f"; continue; fi
  meta=$(stat -L -c '%a %u %g' -- "$f" 2>/dev/null)
  if [ ! -r "$f" ]; then printf '@UNREADABLE\\t%s\\t%s\\n' "$meta" "$f"; continue; fi
  printf '@FILE\\t%s\\t%s\\n' "$meta" "$f"
  awk '{ print "|" $0 }' "$f" || printf '@READERROR\\t%s\\n' "$f"
  printf '@ENDFILE\\t%s\\n' "$f"
  inc=$(awk '__INCLUDE_AWK__' "$f")
  IFS=$nl; set -f; set -- $inc; set +f; IFS=$oifs
  for t in "$@"; do
    case "$t" in /*|\\~*) p=$t;; *) p=__SSH_DIR__/$t;; esac
    printf '@INCLUDE\\t%s\\n' "$p"
    IFS=$nl
    for m in $p; do
      if [ -e "$m" ] || [ -h "$m" ]; then printf '@MATCH\\t%s\\n' "$m"; q="$q$m$nl"; fi
    done
    IFS=$oifs
    printf '@ENDINCLUDE\\t%s\\n' "$p"
  done
done
printf '@DONE\\n'
""".replace("__MAX_FILES__", str(MAX_FILES)).replace("__INCLUDE_AWK__", _INCLUDE_AWK.replace("'", "'\"'\"'"))


def files_dump_command(ssh_dir: str = SSH_DIR) -> str:
    """The files probe's script; another ``ssh_dir`` only serves tests on a local tree."""
    if not re.fullmatch(r"/[A-Za-z0-9_./-]*", ssh_dir):
        raise ValueError(f"unsupported ssh_dir {ssh_dir!r}")
    return _FILES_TEMPLATE.replace("__SSH_DIR__", ssh_dir)


SSHD_FILES = Probe("sshd_config_files", files_dump_command())

#: Every ssh directive check declares both; the runner dedups them per host.
SSHD_PROBES = (SSHD_EFFECTIVE, SSHD_FILES)

# --------------------------------------------------------------------------- defaults

#: OpenSSH 9.x compiled-in defaults, as ``sshd -T`` prints them (upstream, before 9.9's mlkem).
DEFAULTS: dict[str, str] = {
    "permitrootlogin": "prohibit-password",
    "passwordauthentication": "yes",
    "permitemptypasswords": "no",
    "kbdinteractiveauthentication": "yes",
    "usepam": "no",
    "pubkeyauthentication": "yes",
    "hostbasedauthentication": "no",
    "ignorerhosts": "yes",
    "gssapiauthentication": "no",
    "kerberosauthentication": "no",
    "permituserenvironment": "no",
    "maxauthtries": "6",
    "maxsessions": "10",
    "maxstartups": "10:30:100",
    "logingracetime": "120",
    "clientaliveinterval": "0",
    "clientalivecountmax": "3",
    "x11forwarding": "no",
    "disableforwarding": "no",
    "allowtcpforwarding": "yes",
    "allowagentforwarding": "yes",
    "allowstreamlocalforwarding": "yes",
    "permittunnel": "no",
    "banner": "none",
    "loglevel": "INFO",
    "authenticationmethods": "any",
    "strictmodes": "yes",
    "ciphers": "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,"
    "aes128-gcm@openssh.com,aes256-gcm@openssh.com",
    "macs": "umac-64-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-256-etm@openssh.com,"
    "hmac-sha2-512-etm@openssh.com,hmac-sha1-etm@openssh.com,umac-64@openssh.com,umac-128@openssh.com,"
    "hmac-sha2-256,hmac-sha2-512,hmac-sha1",
    "kexalgorithms": "sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,"
    "ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,diffie-hellman-group-exchange-sha256,"
    "diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group14-sha256",
}

#: Keywords whose value is a comma-separated algorithm list accepting +, - and ^ modifiers.
ALGORITHM_KEYS = frozenset({"ciphers", "macs", "kexalgorithms"})

#: Keywords where every occurrence adds to the value instead of the first one winning.
_ACCUMULATING = frozenset(
    {
        "acceptenv",
        "allowusers",
        "denyusers",
        "allowgroups",
        "denygroups",
        "hostkey",
        "hostcertificate",
        "listenaddress",
        "port",
        "subsystem",
        "setenv",
    }
)


# --------------------------------------------------------------------------- sshd -T

_T_LINE_RE = re.compile(r"^([a-z0-9]+) ?(.*)$")


def parse_sshd_t(text: str) -> dict[str, list[str]]:
    """Parse ``sshd -T`` output into key → values (one per line; repeated keys keep order)."""
    out: dict[str, list[str]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        m = _T_LINE_RE.match(line.rstrip())
        if m is None:
            raise SshdConfigError(f"unexpected line {n} in sshd -T output: {line[:120]!r}")
        out.setdefault(m[1], []).append(m[2])
    # sshd -T always prints these; without them this is not sshd -T output
    for required in ("port", "permitrootlogin", "passwordauthentication"):
        if required not in out:
            raise SshdConfigError(f"sshd -T output lacks {required!r}: not an sshd -T dump")
    return out


# --------------------------------------------------------------------------- effective view


@dataclass(frozen=True)
class Setting:
    """One effective keyword value and where it comes from (``sshd -T``, a file line, or the default)."""

    key: str
    value: str
    origin: str
    args: tuple[str, ...] = ()

    @property
    def is_default(self) -> bool:
        return self.origin == "default"

    def where(self) -> str:
        """`` (default)``, `` (/etc/ssh/sshd_config:12)`` or `` (sshd -T)`` for messages."""
        return " (OpenSSH default)" if self.is_default else f" ({self.origin})"


@dataclass(frozen=True)
class EffectiveSshdConfig:
    """The values sshd uses for a connection matching no conditional ``Match`` block (read-only: every
    ssh check of a host shares one, see :func:`load_sshd_config`).

    ``conditional`` holds the Match blocks other than ``Match all`` (from the files), so
    checks can also judge values that apply only to some users or addresses;
    ``match_note`` says why they could not be inspected when the files were unreadable.
    """

    source: str  # "sshd -T" or "sshd_config files"
    settings: Mapping[str, Setting]
    conditional: tuple[MatchBlock, ...] = ()
    match_note: str = ""
    fallback_note: str = ""

    def get(self, key: str) -> Setting | None:
        return self.settings.get(key)

    def overrides(self, key: str) -> list[tuple[MatchBlock, Setting]]:
        """The first value of ``key`` in each conditional Match block that sets it."""
        found: list[tuple[MatchBlock, Setting]] = []
        for block in self.conditional:
            for d in block.directives:
                if d.keyword == key:
                    found.append((block, _setting_from_directive(d)))
                    break
        return found


def _setting_from_directive(d: Directive) -> Setting:
    if d.keyword in ALGORITHM_KEYS:
        value = apply_algorithm_list(DEFAULTS[d.keyword], d.args[0] if d.args else "")
    else:
        value = normalize_value(d.keyword, " ".join(d.args))
    return Setting(d.keyword, value, d.origin, d.args)


def _glob_to_re(pattern: str) -> re.Pattern[str]:
    # OpenSSH match_pattern(): only * and ? are special
    return re.compile("^" + "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern) + "$")


def apply_algorithm_list(default: str, spec: str) -> str:
    """The algorithm list sshd uses for ``spec`` given the default list.

    ``+a,b`` appends, ``-pat,...`` removes entries matching the (wildcard) patterns,
    ``^a,b`` prepends; a plain list replaces the default.
    """
    base = [a for a in default.split(",") if a]
    if not spec:
        return default
    head, body = spec[0], spec[1:]
    items = [a for a in body.split(",") if a]
    if head == "+":
        return ",".join(base + [a for a in items if a not in base])
    if head == "-":
        pats = [_glob_to_re(p) for p in items]
        return ",".join(a for a in base if not any(p.match(a) for p in pats))
    if head == "^":
        return ",".join(items + [a for a in base if a not in items])
    return spec


def effective_from_files(parsed: ParsedSshdConfig) -> dict[str, Setting]:
    """First value per keyword: ``Match all`` blocks first (they override), then global, then defaults."""
    settings: dict[str, Setting] = {}
    for block in parsed.match_blocks:
        if block.matches_all:
            for d in block.directives:
                if d.keyword not in _ACCUMULATING:
                    settings.setdefault(d.keyword, _setting_from_directive(d))
    for d in parsed.global_directives:
        if d.keyword in _ACCUMULATING:
            prev = settings.get(d.keyword)
            value = " ".join(d.args) if prev is None else f"{prev.value} {' '.join(d.args)}"
            settings[d.keyword] = Setting(d.keyword, value, d.origin if prev is None else prev.origin)
        else:
            settings.setdefault(d.keyword, _setting_from_directive(d))
    for key, value in DEFAULTS.items():
        settings.setdefault(key, Setting(key, value, "default"))
    return settings


def effective_from_sshd_t(values: Mapping[str, Sequence[str]]) -> dict[str, Setting]:
    """Settings from parsed ``sshd -T`` output (repeated keys joined with a space).

    OpenSSH before 8.7 prints both challengeresponseauthentication and
    kbdinteractiveauthentication; there the former decides whether PAM may prompt
    through keyboard-interactive, so it is what the canonical key reports.
    """
    settings = {key: Setting(key, normalize_value(key, " ".join(vals)), "sshd -T") for key, vals in values.items()}
    old = settings.get("challengeresponseauthentication")
    if old is not None:
        settings["kbdinteractiveauthentication"] = Setting("kbdinteractiveauthentication", old.value, "sshd -T")
    return settings


def _usable(result: ProbeResult | None) -> bool:
    return result is not None and result.ok and not result.timed_out


def _why(result: ProbeResult | None, label: str) -> str:
    if result is None:
        return f"{label}: no probe result"
    if result.timed_out:
        return f"{label} timed out"
    if result.rc is None:
        return f"{label} did not run: {result.error or 'unknown error'}"
    if result.command_missing:
        return f"{label}: command not found"
    detail = first_stderr_line(result)
    return f"{label} exited {result.rc}" + (f" ({detail})" if detail else "")


def load_sshd_config(facts: Facts) -> EffectiveSshdConfig:
    """The effective sshd configuration from this host's probes (parsed once per host, through
    :meth:`Facts.derived`: every ssh check asks for it, and the parse is the bulk of their
    evaluation time; the value is read-only and shared by those checks).

    See :func:`_load_sshd_config` for how the two sources combine.
    """
    return facts.derived(_load_sshd_config, facts.get(SSHD_EFFECTIVE.name), facts.get(SSHD_FILES.name))


def _load_sshd_config(t_res: ProbeResult | None, f_res: ProbeResult | None) -> EffectiveSshdConfig:
    """The effective sshd configuration from this host's probes.

    ``sshd -T`` is authoritative when it worked; the files then only add the
    conditional Match blocks. Otherwise the files are parsed with OpenSSH defaults
    filled in. Raises :class:`SshdUnavailable` (→ ERROR) when neither source is usable,
    :class:`SshdNotInstalled` (→ SKIPPED) when there is no OpenSSH server at all.
    """
    parsed: ParsedSshdConfig | None = None
    files_problem = ""
    if _usable(f_res):
        assert f_res is not None
        try:
            dump = parse_files_dump(f_res.text)
            if f"{SSH_DIR}/sshd_config" in dump.missing and t_res is not None and t_res.command_missing:
                raise SshdNotInstalled("OpenSSH server not installed (no sshd command, no /etc/ssh/sshd_config)")
            parsed = build_config(dump)
        except SshdConfigError as exc:
            files_problem = str(exc)
    else:
        files_problem = _why(f_res, "reading sshd_config")

    t_problem = ""
    if _usable(t_res):
        assert t_res is not None
        try:
            t_values = parse_sshd_t(t_res.text)
        except SshdConfigError as exc:
            t_problem = str(exc)
        else:
            return EffectiveSshdConfig(
                source="sshd -T",
                settings=MappingProxyType(effective_from_sshd_t(t_values)),
                conditional=tuple(b for b in parsed.match_blocks if not b.matches_all) if parsed else (),
                match_note="" if parsed else f"Match blocks not inspected: {files_problem}",
            )
    else:
        t_problem = _why(t_res, "sshd -T")

    if parsed is not None:
        return EffectiveSshdConfig(
            source="sshd_config files",
            settings=MappingProxyType(effective_from_files(parsed)),
            conditional=tuple(b for b in parsed.match_blocks if not b.matches_all),
            fallback_note=t_problem,
        )
    raise SshdUnavailable(f"{t_problem}; and {files_problem}")


def parse_duration(text: str) -> int:
    """Seconds in an sshd time value (``90``, ``2m``, ``1h30m``); ValueError when malformed."""
    text = text.strip()
    m = re.fullmatch(r"(?:\d+[sSmMhHdDwW]?)+", text)
    if not text or m is None:
        raise ValueError(f"not a time value: {text!r}")
    units = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    return sum(int(num) * units[unit.lower()] for num, unit in re.findall(r"(\d+)([sSmMhHdDwW]?)", text))


# --------------------------------------------------------------------------- host keys

#: Stat of every host key: the HostKey files ``sshd -T`` names plus /etc/ssh/ssh_host_*_key, and their .pub.
HOST_KEY_STATS = Probe(
    "ssh_host_key_stats",
    stat_lines_command(
        # HostKey lines of the config files (not `sshd -T`: SSHD_EFFECTIVE already pays for one run)
        "{ grep -hiE '^[[:space:]]*HostKey[[:space:]]' /etc/ssh/sshd_config /etc/ssh/sshd_config.d/*.conf "
        "2>/dev/null | awk '{ print $2; print $2 \".pub\" }'; "
        "for f in /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub; do "
        'if [ -e "$f" ]; then printf \'%s\\n\' "$f"; fi; done; } | sort -u'
    ),
)
