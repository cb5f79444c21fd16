"""Files and file systems: reading several config files in one probe, df output, /proc/mounts, mode listings.

Pure helpers for the storage, logging, kernel and software packs. Probe commands
built here quote every path; glob patterns (fixed in code, never from params) are
validated to hold nothing but ``[A-Za-z0-9_./*-]`` so they can stay unquoted and expand.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from itops.checkapi import quote

__all__ = [
    "DfRow",
    "FileDump",
    "ModeEntry",
    "Mount",
    "df_rows",
    "file_dump_command",
    "find_mount",
    "mount_table",
    "parse_df",
    "parse_file_dump",
    "parse_mode_listing",
    "parse_mounts",
    "unescape_mount_field",
]

FILE_MARK = "@@itops-file "
UNREADABLE_MARK = "@@itops-unreadable "
_GLOB_RE = re.compile(r"^/[A-Za-z0-9_./*-]+$")


# --- several files in one probe ---------------------------------------------------------


def file_dump_command(paths: Sequence[str] = (), globs: Sequence[str] = (), *, unlistable_dirs: bool = False) -> str:
    """A command printing each readable file after a marker line; unreadable ones are named, absent ones skipped.

    ``paths`` are quoted (they may come from params); ``globs`` are fixed patterns such
    as ``/etc/sysctl.d/*.conf`` that must expand, so they are validated instead.
    With ``unlistable_dirs``, a glob's directory that exists but cannot be listed (a non-root
    login, a 0700 drop-in directory) is named unreadable too, instead of looking empty.
    A trailing ``echo`` keeps a file without a final newline from gluing onto the next marker.
    """
    for g in globs:
        if not _GLOB_RE.match(g):
            raise ValueError(f"unsafe glob pattern {g!r}")
    items = " ".join([*(quote(p) for p in paths), *globs])
    if not items:
        raise ValueError("file_dump_command needs at least one path or glob")
    guard = ""
    if unlistable_dirs:
        dirs = dict.fromkeys(g.rsplit("/", 1)[0] or "/" for g in globs)
        if any("*" in d for d in dirs):
            raise ValueError("unlistable_dirs needs globs whose directory part has no wildcard")
        guard = "".join(
            f"if [ -d {d} ] && ! {{ [ -r {d} ] && [ -x {d} ]; }}; then printf '{UNREADABLE_MARK}%s\\n' {d}; fi; "
            for d in dirs
        )
    return (
        guard + f"for f in {items}; do "
        'if [ -d "$f" ]; then :; '
        f'elif [ -f "$f" ] && [ -r "$f" ]; then printf \'{FILE_MARK}%s\\n\' "$f"; cat "$f"; echo; '
        f'elif [ -e "$f" ] || [ -L "$f" ]; then printf \'{UNREADABLE_MARK}%s\\n\' "$f"; fi; '
        "done; exit 0"
    )


@dataclass(frozen=True)
class FileDump:
    """Files read by :func:`file_dump_command`: contents by path (in probe order) and unreadable paths."""

    files: dict[str, str] = field(default_factory=dict)
    unreadable: tuple[str, ...] = ()

    def matching(self, *patterns: str) -> list[tuple[str, str]]:
        """``(path, text)`` of the files whose path matches any fnmatch pattern, in probe order."""
        return [(p, t) for p, t in self.files.items() if any(fnmatch.fnmatchcase(p, pat) for pat in patterns)]

    def unreadable_matching(self, *patterns: str) -> list[str]:
        return [p for p in self.unreadable if any(fnmatch.fnmatchcase(p, pat) for pat in patterns)]


def parse_file_dump(text: str) -> FileDump:
    """Split the output of :func:`file_dump_command` back into files."""
    files: dict[str, list[str]] = {}
    unreadable: list[str] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith(FILE_MARK):
            current = files.setdefault(line[len(FILE_MARK) :], [])
        elif line.startswith(UNREADABLE_MARK):
            unreadable.append(line[len(UNREADABLE_MARK) :])
            current = None
        elif current is not None:
            current.append(line)
    return FileDump({p: "\n".join(lines) for p, lines in files.items()}, tuple(unreadable))


# --- df ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class DfRow:
    """One line of ``df -P`` / ``df -PT`` / ``df -Pi`` output (blocks or inodes)."""

    filesystem: str
    fstype: str  # "" when df was run without -T
    mount: str
    total: int | None
    used: int | None
    available: int | None
    use_pct: int | None  # None when df prints "-" (no inodes / pseudo file system)


def _int_or_none(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def parse_df(text: str) -> list[DfRow]:
    """Parse POSIX ``df`` output (with or without ``-T``, blocks or ``-i``).

    Raises ValueError when the header is missing or a data line has too few columns,
    so the caller reports ERROR instead of judging garbage.
    """
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines or not lines[0].startswith("Filesystem"):
        raise ValueError("no df header line (expected 'Filesystem ...')")
    header = lines[0].split()
    typed = len(header) > 1 and header[1] == "Type"
    ncols = 6 if typed else 5  # columns before "Mounted on"
    rows: list[DfRow] = []
    for line in lines[1:]:
        parts = line.split(None, ncols)
        if len(parts) != ncols + 1:
            raise ValueError(f"unexpected df line: {line[:120]!r}")
        fs = parts[0]
        fstype = parts[1] if typed else ""
        total, used, avail, pct = parts[ncols - 4 : ncols]
        pct_value = _int_or_none(pct.rstrip("%")) if pct.endswith("%") else None
        if pct != "-" and pct_value is None:
            raise ValueError(f"unexpected df use% {pct!r} in line {line[:120]!r}")
        rows.append(
            DfRow(fs, fstype, parts[ncols], _int_or_none(total), _int_or_none(used), _int_or_none(avail), pct_value)
        )
    return rows


def df_rows(text: str) -> tuple[DfRow, ...]:
    """:func:`parse_df` as a tuple, the immutable form ``facts.parsed`` shares between checks."""
    return tuple(parse_df(text))


# --- /proc/mounts --------------------------------------------------------------------------


@dataclass(frozen=True)
class Mount:
    """One /proc/mounts line."""

    device: str
    mountpoint: str
    fstype: str
    options: tuple[str, ...]

    def has(self, option: str) -> bool:
        return option in self.options


_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


def unescape_mount_field(text: str) -> str:
    r"""/proc/mounts escapes space, tab, newline and backslash as ``\040`` style octal."""
    return _OCTAL_ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), text)


def parse_mounts(text: str) -> list[Mount]:
    """Parse /proc/mounts (or /etc/mtab); raises ValueError on malformed lines or no root mount."""
    mounts: list[Mount] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) < 4:
            raise ValueError(f"unexpected mounts line: {line[:120]!r}")
        mounts.append(
            Mount(
                unescape_mount_field(parts[0]),
                unescape_mount_field(parts[1]),
                parts[2],
                tuple(parts[3].split(",")),
            )
        )
    if not any(m.mountpoint == "/" for m in mounts):
        raise ValueError("no root (/) mount in the mount table")
    return mounts


def mount_table(text: str) -> tuple[Mount, ...]:
    """:func:`parse_mounts` as a tuple, the immutable form ``facts.parsed`` shares between checks."""
    return tuple(parse_mounts(text))


def find_mount(mounts: Iterable[Mount], mountpoint: str) -> Mount | None:
    """The mount visible at exactly ``mountpoint``: the last one listed (it shadows earlier ones)."""
    found: Mount | None = None
    for m in mounts:
        if m.mountpoint == mountpoint:
            found = m
    return found


# --- mode listings (``stat -c '%a %n'``) ---------------------------------------------------


@dataclass(frozen=True)
class ModeEntry:
    """A path and its permission bits."""

    path: str
    mode: int

    @property
    def world_readable(self) -> bool:
        return bool(self.mode & 0o004)

    @property
    def world_writable(self) -> bool:
        return bool(self.mode & 0o002)


def parse_mode_listing(text: str) -> tuple[list[ModeEntry], list[str]]:
    """Parse ``<octal mode> <path>`` records; returns the entries and the records that did not parse.

    Records end with NUL when the output holds one (``stat --printf '%a %n\\0'``: a path may then
    hold newlines), else with a newline.
    """
    entries: list[ModeEntry] = []
    bad: list[str] = []
    for line in text.split("\0") if "\0" in text else text.split("\n"):
        if not line.strip():
            continue
        mode, _, path = line.partition(" ")
        if not path or not re.fullmatch(r"[0-7]{1,4}", mode):
            bad.append(line)
            continue
        entries.append(ModeEntry(path, int(mode, 8)))
    return entries, bad
