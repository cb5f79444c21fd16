"""sudoers: a probe dumping /etc/sudoers and /etc/sudoers.d, and a parser that follows its includes.

The probe prints each file between markers with every content line prefixed by ``|``
(so content can never look like a marker), ``@UNREADABLE`` for files or directories it
cannot read, and ``@NOSUDOERS`` when /etc/sudoers does not exist (sudo not installed).

:func:`active_lines` walks /etc/sudoers in order, following ``@include``/``#include``
and ``@includedir``/``#includedir`` as sudo does (files in an included directory are
read in sorted order, skipping names that end in ``~`` or contain a ``.``), and yields
logical lines (backslash continuations joined, comments removed) with file and line.
An include that points somewhere the probe did not read raises, so the checks report
ERROR instead of judging a partial policy.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from itops.checkapi import Probe
from itops.checklib.common import ProbeOutputError
from itops.checklib.fileperm import stat_shell_loop

__all__ = [
    "NO_SUDOERS",
    "SUDOERS_FILES",
    "SUDOERS_STATS",
    "SudoersDump",
    "SudoersLine",
    "active_lines",
    "defaults_params",
    "parse_sudoers_dump",
    "policy_lines",
    "split_list",
]

SUDOERS = "/etc/sudoers"
SUDOERS_D = "/etc/sudoers.d"

SUDOERS_FILES = Probe(
    "sudoers_files",
    "if [ ! -e /etc/sudoers ]; then echo '@NOSUDOERS'; exit 0; fi; "
    "if [ -d /etc/sudoers.d ] && ! { [ -r /etc/sudoers.d ] && [ -x /etc/sudoers.d ]; }; then "
    "printf '@UNREADABLE\\t%s\\n' /etc/sudoers.d; fi; "
    "for f in /etc/sudoers /etc/sudoers.d/*; do "
    '[ -e "$f" ] || continue; '
    'if [ -d "$f" ]; then continue; fi; '
    'if [ ! -r "$f" ]; then printf \'@UNREADABLE\\t%s\\n\' "$f"; continue; fi; '
    'printf \'@FILE\\t%s\\n\' "$f"; awk \'{ print "|" $0 }\' "$f"; printf \'@ENDFILE\\t%s\\n\' "$f"; '
    "done; printf '@DONE\\n'",
)


#: What :data:`SUDOERS_STATS` (and :data:`SUDOERS_FILES`) print when /etc/sudoers does not exist.
NO_SUDOERS = "@NOSUDOERS"

#: A stat line (itops.checklib.fileperm format) for /etc/sudoers, /etc/sudoers.d and every entry in it
#: (a name starting with "." is skipped, as sudo skips any name containing one); ``@NOSUDOERS`` when
#: sudo is not installed. An unlistable /etc/sudoers.d exits 3 rather than look empty.
SUDOERS_STATS = Probe(
    "sudoers_stats",
    f"if [ ! -e {SUDOERS} ] && [ ! -h {SUDOERS} ]; then echo '{NO_SUDOERS}'; exit 0; fi; "
    f"if [ -d {SUDOERS_D} ] && ! {{ [ -r {SUDOERS_D} ] && [ -x {SUDOERS_D} ]; }}; then "
    f"echo '{SUDOERS_D} is not readable (run as root or enable sudo)' >&2; exit 3; fi; "
    + stat_shell_loop(f"{SUDOERS} {SUDOERS_D} {SUDOERS_D}/*"),
)


@dataclass
class SudoersDump:
    """What the probe printed."""

    installed: bool = True
    files: dict[str, list[str]] = field(default_factory=dict)
    unreadable: set[str] = field(default_factory=set)


def parse_sudoers_dump(text: str) -> SudoersDump:
    """Parse the probe output; anything outside its format raises ProbeOutputError."""
    if text.strip() == "@NOSUDOERS":
        return SudoersDump(installed=False)
    dump = SudoersDump()
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    i, done = 0, False
    while i < len(lines):
        tag, _, rest = lines[i].partition("\t")
        if tag == "@FILE":
            content: list[str] = []
            i += 1
            while i < len(lines) and lines[i] != f"@ENDFILE\t{rest}":
                if not lines[i].startswith("|"):
                    raise ProbeOutputError(f"unexpected line inside {rest} in sudoers probe output")
                content.append(lines[i][1:])
                i += 1
            if i >= len(lines):
                raise ProbeOutputError(f"sudoers probe output ends inside {rest} (truncated)")
            dump.files[rest] = content
        elif tag == "@UNREADABLE":
            dump.unreadable.add(rest)
        elif lines[i] == "@DONE":
            done = True
        elif lines[i].strip():
            raise ProbeOutputError(f"unexpected line in sudoers probe output: {lines[i][:80]!r}")
        i += 1
    if not done:
        raise ProbeOutputError("sudoers probe output is incomplete (no end marker)")
    return dump


@dataclass(frozen=True)
class SudoersLine:
    """One logical sudoers line (continuations joined, comment removed) and where it starts."""

    file: str
    line: int
    text: str

    @property
    def origin(self) -> str:
        return f"{self.file}:{self.line}"


_INCLUDE_RE = re.compile(r"^[@#](include|includedir)\s+(.+?)\s*$")
# "#" starts a comment unless it is "#include..." or a numeric uid like "#1000" / "%#1000"
_COMMENT_RE = re.compile(r"(?<!\\)#(?![0-9])")


def _strip_comment(text: str) -> str:
    m = _COMMENT_RE.search(text)
    return text[: m.start()] if m else text


def _logical_lines(path: str, raw: list[str]) -> Iterator[tuple[int, str]]:
    buf, start = "", 0
    for n, line in enumerate(raw, 1):
        if not buf:
            start = n
        stripped = line.rstrip("\r")
        if stripped.endswith("\\"):
            buf += stripped[:-1] + " "
            continue
        yield start, buf + stripped
        buf = ""
    if buf:
        yield start, buf


def _unquote(path: str) -> str:
    return path[1:-1] if len(path) >= 2 and path[0] == path[-1] == '"' else path


def active_lines(dump: SudoersDump, path: str = SUDOERS, depth: int = 0) -> Iterator[SudoersLine]:
    """Logical lines of the policy sudo reads, in order; raises ProbeOutputError where it cannot follow."""
    if depth > 128:
        raise ProbeOutputError(f"sudoers include nesting too deep at {path} (loop?)")
    if path in dump.unreadable:
        raise ProbeOutputError(f"{path} is not readable (run as root or enable sudo)")
    if path not in dump.files:
        raise ProbeOutputError(f"{path} is included but was not read by the probe")
    for n, text in _logical_lines(path, dump.files[path]):
        body = text.strip()
        m = _INCLUDE_RE.match(body)
        if m:
            kind, target = m[1], _unquote(m[2])
            if not target.startswith("/"):
                target = posixpath.join(posixpath.dirname(path), target)  # sudo 1.9.1+: relative to this file
            if kind == "include":
                yield from active_lines(dump, target, depth + 1)
            else:
                target = target.rstrip("/")
                if target != SUDOERS_D:
                    raise ProbeOutputError(f"{path}:{n} includes directory {target}, which was not read")
                if target in dump.unreadable:
                    raise ProbeOutputError(f"{target} is not readable (run as root or enable sudo)")
                names = sorted(
                    p
                    for p in (*dump.files, *dump.unreadable)
                    if posixpath.dirname(p) == target
                    and not posixpath.basename(p).endswith("~")
                    and "." not in posixpath.basename(p)
                )
                for p in names:
                    yield from active_lines(dump, p, depth + 1)
            continue
        body = _strip_comment(body).strip()
        if body:
            yield SudoersLine(path, n, body)


def policy_lines(text: str) -> tuple[SudoersLine, ...] | None:
    """The active lines of the policy in :data:`SUDOERS_FILES` output (:func:`active_lines`), None when
    sudo is not installed; ProbeOutputError as those raise it. Immutable, for ``facts.parsed``."""
    dump = parse_sudoers_dump(text)
    if not dump.installed:
        return None
    return tuple(active_lines(dump))


def split_list(text: str) -> list[str]:
    """Split a comma-separated sudoers list, honouring double quotes and backslash escapes."""
    items, buf, quote, i = [], "", False, 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            buf += text[i : i + 2]
            i += 2
            continue
        if c == '"':
            quote = not quote
        if c == "," and not quote:
            items.append(buf.strip())
            buf = ""
        else:
            buf += c
        i += 1
    items.append(buf.strip())
    return [x for x in items if x]


_DEFAULTS_RE = re.compile(r"^Defaults([:@>!]\s*\S+)?\s+(.*)$")


def defaults_params(line: SudoersLine) -> tuple[str, list[str]] | None:
    """``(scope, params)`` for a Defaults line (scope "" when global, e.g. ":bob"), else None."""
    m = _DEFAULTS_RE.match(line.text)
    if m is None:
        return None
    return (m[1] or "").replace(" ", ""), split_list(m[2])
