"""sshd_config syntax: lines, Include order and Match sections, as OpenSSH 9.x servconf.c reads them.

:func:`parse_files_dump` reads the output of the files probe (see :mod:`itops.checklib.sshd`)
and :func:`build_config` rebuilds the directives in the order sshd processes them:
Include'd files at the position of their ``Include`` line (glob matches in sorted order),
a ``Match`` line opening a section that lasts until the next ``Match`` or the end of the
file it is in, keywords case-insensitive, old aliases mapped to current names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = [
    "MAX_FILES",
    "MAX_INCLUDE_DEPTH",
    "ConfigFileInfo",
    "Directive",
    "FilesDump",
    "MatchBlock",
    "ParsedSshdConfig",
    "SshdConfigError",
    "build_config",
    "canonical_keyword",
    "normalize_value",
    "parse_files_dump",
    "split_args",
    "split_directive",
]

MAX_INCLUDE_DEPTH = 16  # SERVCONF_MAX_DEPTH in servconf.c
MAX_FILES = 64  # files the probe dumps at most
SSH_DIR = "/etc/ssh"


class SshdConfigError(ValueError):
    """The configuration (or the probe output describing it) cannot be interpreted."""


#: Old keyword names that set the same option as the canonical one.
_ALIASES = {
    "challengeresponseauthentication": "kbdinteractiveauthentication",
    "pubkeyacceptedkeytypes": "pubkeyacceptedalgorithms",
    "hostbasedacceptedkeytypes": "hostbasedacceptedalgorithms",
}

#: Values sshd -T prints under another spelling.
_VALUE_ALIASES = {("permitrootlogin", "without-password"): "prohibit-password"}


def canonical_keyword(keyword: str) -> str:
    """Lowercase keyword with old aliases mapped to the name ``sshd -T`` prints."""
    k = keyword.lower()
    return _ALIASES.get(k, k)


def normalize_value(key: str, value: str) -> str:
    """Map value spellings that mean the same thing onto one (``without-password``)."""
    return _VALUE_ALIASES.get((key, value.lower()), value)


# --------------------------------------------------------------------------- line syntax

_WS = " \t\r\n"


def split_args(text: str) -> list[str]:
    """Split arguments like OpenSSH's argv_split(..., terminate_on_comment=1).

    Double or single quotes group, backslash escapes a quote, backslash or (unquoted)
    space, and an unquoted ``#`` at the start of an argument ends the line.
    """
    args: list[str] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in " \t":
            i += 1
            continue
        if c == "#":
            break
        tok: list[str] = []
        quote = ""
        while i < n:
            c = text[i]
            if c == "\\":
                nxt = text[i + 1] if i + 1 < n else ""
                if nxt in ("'", '"', "\\") or (not quote and nxt == " "):
                    tok.append(nxt)
                    i += 2
                    continue
                tok.append(c)
                i += 1
                continue
            if not quote and c in " \t":
                break
            if not quote and c in "\"'":
                quote = c
            elif quote and c == quote:
                quote = ""
            else:
                tok.append(c)
            i += 1
        if quote:
            raise SshdConfigError("unterminated quote")
        args.append("".join(tok))
    return args


def split_directive(line: str) -> tuple[str, list[str]] | None:
    """``(keyword, args)`` of one config line, or None for blank lines and comments.

    The keyword ends at whitespace, ``"`` or ``=``; one ``=`` (with any whitespace around
    it) may separate it from the arguments, as in servconf.c's strdelim().
    """
    line = line.rstrip(_WS + "\f").lstrip(_WS)
    if not line or line.startswith("#"):
        return None
    m = re.search(r'[ \t\r\n"=]', line)
    if m is None:
        raise SshdConfigError(f"no argument after keyword {line[:40]!r}")
    keyword, rest = line[: m.start()], line[m.start() :]
    if not keyword:
        raise SshdConfigError(f"cannot parse {line[:60]!r}")
    rest = rest.lstrip(" \t")
    if rest.startswith("="):
        rest = rest[1:].lstrip(" \t")
    args = split_args(rest)
    if not args:
        raise SshdConfigError(f"no argument after keyword {keyword!r}")
    return keyword, args


# --------------------------------------------------------------------------- files dump


@dataclass(frozen=True)
class ConfigFileInfo:
    """One file of the configuration: its path, lines, and stat (None when stat failed)."""

    path: str
    lines: tuple[str, ...]
    mode: int | None = None
    uid: int | None = None
    gid: int | None = None


@dataclass
class FilesDump:
    """What the files probe printed: file contents, glob expansions, files it could not read."""

    files: dict[str, ConfigFileInfo] = field(default_factory=dict)
    includes: dict[str, list[str]] = field(default_factory=dict)  # resolved pattern -> matches
    missing: set[str] = field(default_factory=set)
    unreadable: set[str] = field(default_factory=set)
    unreadable_stat: dict[str, tuple[int, int, int]] = field(default_factory=dict)  # path -> mode, uid, gid
    not_files: set[str] = field(default_factory=set)
    limit_hit: str = ""


_META_RE = re.compile(r"^([0-7]{1,5}) (\d+) (\d+)$")


def parse_files_dump(text: str) -> FilesDump:
    """Parse the :data:`SSHD_FILES` probe output; anything not in its format raises SshdConfigError."""
    dump = FilesDump()
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    i = 0
    done = False
    while i < len(lines):
        line = lines[i]
        tag, _, rest = line.partition("\t")
        if tag == "@FILE":
            meta, sep, path = rest.partition("\t")
            if not sep or not path:
                raise SshdConfigError(f"malformed file header in probe output: {line[:120]!r}")
            end, read_error = f"@ENDFILE\t{path}", f"@READERROR\t{path}"
            try:
                stop = lines.index(end, i + 1)
            except ValueError:
                raise SshdConfigError(f"probe output ends inside {path} (truncated)") from None
            block = lines[i + 1 : stop]
            content = [body[1:] for body in block if body[:1] == "|"]
            if len(content) != len(block):  # the probe's other lines: a read error, or garbage
                for body in block:
                    if body == read_error:
                        dump.unreadable.add(path)
                    elif body[:1] != "|":
                        raise SshdConfigError(f"unexpected line inside {path} in probe output: {body[:120]!r}")
            i = stop
            m = _META_RE.match(meta)
            mode, uid, gid = (int(m[1], 8), int(m[2]), int(m[3])) if m else (None, None, None)
            dump.files[path] = ConfigFileInfo(path, tuple(content), mode, uid, gid)
        elif tag == "@INCLUDE":
            pattern = rest
            matches: list[str] = []
            i += 1
            while i < len(lines) and lines[i] != f"@ENDINCLUDE\t{pattern}":
                mtag, _, mpath = lines[i].partition("\t")
                if mtag != "@MATCH" or not mpath:
                    raise SshdConfigError(f"unexpected line in include expansion: {lines[i][:120]!r}")
                matches.append(mpath)
                i += 1
            if i >= len(lines):
                raise SshdConfigError(f"probe output ends inside the expansion of {pattern} (truncated)")
            dump.includes[pattern] = matches
        elif tag == "@MISSING":
            dump.missing.add(rest)
        elif tag == "@UNREADABLE":
            meta, _, path = rest.partition("\t")
            dump.unreadable.add(path)
            um = _META_RE.match(meta)
            if um:
                dump.unreadable_stat[path] = (int(um[1], 8), int(um[2]), int(um[3]))
        elif tag == "@NOTFILE":
            dump.not_files.add(rest)
        elif tag == "@LIMIT":
            dump.limit_hit = rest
        elif line == "@DONE":
            done = True
        elif line.strip():
            raise SshdConfigError(f"unexpected line in sshd config probe output: {line[:120]!r}")
        i += 1
    if not done:
        raise SshdConfigError("sshd config probe output is incomplete (no end marker)")
    return dump


@dataclass(frozen=True)
class Directive:
    """One keyword line as sshd reads it, with where it came from."""

    keyword: str  # canonical lowercase
    args: tuple[str, ...]
    file: str
    line: int

    @property
    def origin(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class MatchBlock:
    """A ``Match`` section: its criteria and the directives under it (Include'd ones too)."""

    criteria: str
    file: str
    line: int
    directives: tuple[Directive, ...] = ()

    @property
    def matches_all(self) -> bool:
        return self.criteria.strip().lower() == "all"

    @property
    def label(self) -> str:
        return f"Match {self.criteria}"


@dataclass
class ParsedSshdConfig:
    """Directives in sshd's reading order: global ones, Match blocks, and the files read."""

    global_directives: list[Directive] = field(default_factory=list)
    match_blocks: list[MatchBlock] = field(default_factory=list)
    files: list[ConfigFileInfo] = field(default_factory=list)


def _resolve_include(token: str, ssh_dir: str) -> str:
    # servconf.c: paths not starting with / or ~ are relative to SSHDIR; ~ is not expanded
    return token if token.startswith(("/", "~")) else f"{ssh_dir}/{token}"


def build_config(dump: FilesDump, ssh_dir: str = SSH_DIR) -> ParsedSshdConfig:
    """Rebuild the directive order sshd sees from a files dump.

    Raises SshdConfigError when the main file or any included file could not be read,
    or when the configuration itself would make sshd refuse to start.
    """
    main = f"{ssh_dir}/sshd_config"
    if main in dump.missing:
        raise SshdConfigError(f"{main} does not exist")
    if main in dump.unreadable:
        raise SshdConfigError(f"{main} is not readable (run as root or enable sudo)")
    if main not in dump.files:
        raise SshdConfigError(f"{main} is not in the probe output")
    parsed = ParsedSshdConfig()
    seen_files: set[str] = set()
    # each Match block as it is read: criteria, file, line, and its directives so far
    blocks: list[tuple[str, str, int, list[Directive]]] = []

    def walk(path: str, block: list[Directive] | None, depth: int) -> None:
        if depth > MAX_INCLUDE_DEPTH:
            raise SshdConfigError(f"Include nesting deeper than {MAX_INCLUDE_DEPTH} at {path} (loop?)")
        info = dump.files[path]
        if path not in seen_files:
            seen_files.add(path)
            parsed.files.append(info)
        current = block
        for lineno, raw in enumerate(info.lines, 1):
            try:
                split = split_directive(raw)
            except SshdConfigError as exc:
                raise SshdConfigError(f"{path}:{lineno}: {exc}") from exc
            if split is None:
                continue
            keyword, args = split
            key = canonical_keyword(keyword)
            if key == "match":
                current = []
                blocks.append((" ".join(args), path, lineno, current))
                continue
            if key == "include":
                for token in args:
                    pattern = _resolve_include(token, ssh_dir)
                    if pattern not in dump.includes:
                        raise SshdConfigError(f"{path}:{lineno}: Include {token} was not expanded by the probe")
                    for target in dump.includes[pattern]:
                        if target in dump.unreadable:
                            raise SshdConfigError(
                                f"{target} (included from {path}:{lineno}) is not readable (run as root or enable sudo)"
                            )
                        if target in dump.not_files:
                            raise SshdConfigError(f"{target} (included from {path}:{lineno}) is not a file")
                        if target not in dump.files:
                            if dump.limit_hit:
                                raise SshdConfigError(f"more than {MAX_FILES} included files; stopped at {target}")
                            raise SshdConfigError(f"{target} (included from {path}:{lineno}) missing from probe output")
                        walk(target, current, depth + 1)
                continue
            directive = Directive(key, tuple(args), path, lineno)
            if current is None:
                parsed.global_directives.append(directive)
            else:
                current.append(directive)

    walk(main, None, 0)
    parsed.match_blocks = [MatchBlock(criteria, file, line, tuple(ds)) for criteria, file, line, ds in blocks]
    return parsed
