"""File mode and ownership: one ``stat`` probe for many paths, its parser, and the verdict.

The probe prints one record per path, so a missing file never shifts the others:

* ``S|<mode>|<uid>|<user>|<gid>|<group>|<type>|<path>``: stat succeeded (symlinks followed),
* ``M|<path>``: the path does not exist,
* ``E|<path>``: it exists but ``stat`` failed (its message is on stderr).

The path comes last so a ``|`` inside a file name cannot shift the other fields. Records end
with a NUL byte where ``stat`` has ``--printf`` (GNU coreutils), so a file name holding a newline
(which any user can create in their home or /tmp) stays one record; busybox's ``stat`` has only
``-c``, whose records end with a newline (a name with a newline then spoils the output, which the
parser reports as unexpected).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from itops.checkapi import Facts, Probe, quote
from itops.checklib.common import (
    ProbeOutputError,
    first_stderr_line,
    format_mode,
    mode_excess,
    parse_mode,
    probe_error,
)
from itops.model import Finding

__all__ = [
    "FIND_LIMIT",
    "STAT_RECORD_END",
    "SYSTEM_FILES",
    "SYSTEM_FILE_PATHS",
    "FileRule",
    "FileStat",
    "FindOutput",
    "StatState",
    "evaluate_file_rule",
    "evaluate_file_rules",
    "find_command",
    "parse_find_output",
    "parse_max_mode",
    "parse_stat_output",
    "parse_stat_records",
    "stat_lines_command",
    "stat_map",
    "stat_paths_command",
    "stat_probe",
    "stat_record",
    "stat_records",
    "stat_shell_loop",
]

StatState = Literal["ok", "missing", "error"]


@dataclass(frozen=True)
class FileStat:
    """What ``stat -L`` said about one path."""

    path: str
    state: StatState
    mode: int = 0
    uid: int = -1
    user: str = ""
    gid: int = -1
    group: str = ""
    kind: str = ""  # "regular file", "directory", ...

    def describe(self) -> str:
        return f"{format_mode(self.mode)} {self.user or self.uid}:{self.group or self.gid}"


_STAT_FORMAT = "'S|%a|%u|%U|%g|%G|%F|%n'"
_STAT_FORMAT_NUL = "'S|%a|%u|%U|%g|%G|%F|%n\\0'"
#: Sets ``$_z`` to the record end the stat probes use: NUL (as printf's ``\0``) where ``stat``
#: has ``--printf``, else a newline. :func:`stat_shell_loop` runs it; a probe printing records of
#: its own before calling that (:func:`stat_record`) runs it first and passes ``setup=False``.
STAT_RECORD_END = "if stat --printf '' -- / >/dev/null 2>&1; then _z='\\0'; else _z='\\n'; fi; "


_F = '"$f"'


def stat_record(tag: str, words: str) -> str:
    """A shell command printing one ``tag|<path>`` record per word of ``words`` (already quoted),
    each ended by ``$_z`` (see :data:`STAT_RECORD_END`)."""
    return f'printf "{tag}|%s$_z" {words}'


def stat_shell_loop(paths_expr: str, *, setup: bool = True) -> str:
    """Stat every path of ``paths_expr`` (a shell word list, already quoted) with ONE ``stat`` process.

    Missing paths (M) and dangling symlinks (E) are found with shell builtins; every other path
    goes to a single ``stat -L`` call, so a probe costs one process however many files it covers
    (a path that exists but that stat still cannot read simply has no line: the parser's caller
    treats an absent entry as not assessable). A path whose directory exists but may not be
    searched (a non-root login looking into /root) is not called missing: ``[ -e ]`` cannot see
    it, so it gets no line either. Records end as :data:`STAT_RECORD_END` decides (run here
    unless ``setup`` is False because the caller ran it already).
    """
    return (
        (STAT_RECORD_END if setup else "") + f'for f in {paths_expr}; do if [ -e "$f" ]; then :; '
        f'elif [ -h "$f" ]; then {stat_record("E", _F)}; '
        'elif [ -d "${f%/*}" ] && [ ! -x "${f%/*}" ]; then :; '
        f"else {stat_record('M', _F)}; fi; done; "
        f"if [ \"$_z\" = '\\0' ]; then stat -L --printf {_STAT_FORMAT_NUL} -- {paths_expr} 2>/dev/null; "
        f"else stat -L -c {_STAT_FORMAT} -- {paths_expr} 2>/dev/null; fi; true"
    )


def stat_paths_command(paths: Sequence[str]) -> str:
    """The probe command that stats exactly ``paths`` (each shell-quoted)."""
    if not paths:
        raise ValueError("no paths to stat")
    return stat_shell_loop(" ".join(quote(p) for p in paths))


def stat_probe(name: str, paths: Sequence[str]) -> Probe:
    """A probe statting a fixed list of paths; checks sharing it share one execution."""
    return Probe(name, stat_paths_command(paths))


def stat_lines_command(producer: str) -> str:
    """Stat every path ``producer`` prints, one per line (for globbed or computed lists)."""
    collect = 'set --; while IFS= read -r f; do set -- "$@" "$f"; done'
    return f'{producer} | {{ {collect}; if [ "$#" -gt 0 ]; then {stat_shell_loop(chr(34) + "$@" + chr(34))}; fi; }}'


def stat_records(text: str) -> list[str]:
    """The records of a stat probe's output: NUL-ended when it holds a NUL, else newline-ended."""
    return text.split("\0") if "\0" in text else text.split("\n")


def parse_stat_output(text: str) -> dict[str, FileStat]:
    """Parse the probe's records into path → :class:`FileStat`; anything else raises ProbeOutputError.

    Records end with NUL when the output has one (file names may then hold newlines, tabs or any
    other character but NUL and are kept exactly), else with a newline (busybox, canned output).
    """
    out: dict[str, FileStat] = {}
    for n, line in enumerate(stat_records(text), 1):
        if not line.strip():
            continue
        tag, sep, rest = line.partition("|")
        if not sep:
            raise ProbeOutputError(f"unexpected stat output line {n}: {line[:120]!r}")
        if tag == "M":
            out[rest] = FileStat(rest, "missing")
        elif tag == "E":
            out[rest] = FileStat(rest, "error")
        elif tag == "S":
            parts = rest.split("|", 6)
            if len(parts) != 7:
                raise ProbeOutputError(f"unexpected stat output line {n}: {line[:120]!r}")
            mode_s, uid_s, user, gid_s, group, kind, path = parts
            try:
                mode = parse_mode(mode_s)
                uid, gid = int(uid_s), int(gid_s)
            except ValueError as exc:
                raise ProbeOutputError(f"unexpected stat output line {n}: {line[:120]!r}") from exc
            out[path] = FileStat(path, "ok", mode, uid, user, gid, group, kind)
        else:
            raise ProbeOutputError(f"unexpected stat output line {n}: {line[:120]!r}")
    return out


def parse_stat_records(text: str) -> Mapping[str, FileStat]:
    """:func:`parse_stat_output` as a read-only mapping, the form :func:`stat_map` shares between checks."""
    return MappingProxyType(parse_stat_output(text))


def stat_map(facts: Facts, probe: Probe | str) -> Mapping[str, FileStat]:
    """The parsed output of a stat probe, parsed once per host however many checks read it
    (:meth:`Facts.parsed`); ProbeOutputError as :func:`parse_stat_output` raises it. The caller
    checks first that the probe ran cleanly."""
    return facts.parsed(probe, parse_stat_records)


@dataclass(frozen=True)
class FileRule:
    """What a file must look like: at most ``max_mode``, owned by uid 0, group among ``groups``.

    ``groups`` empty means any group; otherwise a group not listed fails unless
    ``group_ok_without_access`` and the mode grants the group nothing.
    ``missing`` says what an absent file means: "pass" where absence is harmless
    (a backup file, an optional config), "error" where the file must exist.
    """

    max_mode: int
    groups: tuple[str, ...] = ("root",)
    owner_uid: int = 0
    missing: Literal["pass", "error", "fail"] = "error"
    missing_note: str = ""
    kind: str = ""  # required %F prefix ("regular", "directory"); "" accepts any
    group_ok_without_access: bool = False

    def expected(self) -> str:
        grp = "|".join(self.groups) if self.groups else "any group"
        return f"mode {format_mode(self.max_mode)} or stricter, owner root, group {grp}"


def _problems(st: FileStat, rule: FileRule) -> list[str]:
    problems: list[str] = []
    if rule.kind and not st.kind.startswith(rule.kind):
        problems.append(f"is a {st.kind or 'file of unknown type'} (expected {rule.kind})")
    excess = mode_excess(st.mode, rule.max_mode)
    if excess:
        problems.append(f"mode {format_mode(st.mode)} allows {format_mode(excess)} beyond {format_mode(rule.max_mode)}")
    if st.uid != rule.owner_uid:
        problems.append(f"owner {st.user or st.uid} (expected root)")
    if rule.groups and st.group not in rule.groups:
        group_bits = st.mode & 0o070
        if not (rule.group_ok_without_access and not group_bits):
            problems.append(f"group {st.group or st.gid} (expected {' or '.join(rule.groups)})")
    return problems


def evaluate_file_rule(
    facts: Facts,
    probe: Probe,
    path: str,
    rule: FileRule,
    *,
    stats: Mapping[str, FileStat] | None = None,
) -> Finding:
    """One finding for ``path`` judged by ``rule`` from ``probe``'s output (``stats`` if pre-parsed)."""
    result = facts.get(probe.name)
    if stats is None:
        if result is None or not result.ok or result.timed_out:
            return probe_error(result, f"stat {path}", resource=path)
        try:
            stats = stat_map(facts, probe)
        except ProbeOutputError as exc:
            return Finding.error(f"could not assess: {exc}", resource=path)
    st = stats.get(path)
    if st is None:
        return Finding.error(
            f"could not assess: the stat probe did not report {path} (truncated output?)", resource=path
        )
    expected = rule.expected()
    if st.state == "missing":
        note = f": {rule.missing_note}" if rule.missing_note else ""
        if rule.missing == "pass":
            return Finding.passed(f"{path} does not exist{note}", observed="absent", expected=expected, resource=path)
        if rule.missing == "fail":
            return Finding.failed(f"{path} does not exist{note}", observed="absent", expected=expected, resource=path)
        return Finding.error(f"could not assess: {path} does not exist{note}", observed="absent", resource=path)
    if st.state == "error":
        detail = first_stderr_line(result) if result is not None else ""
        return Finding.error(f"could not assess: stat {path} failed" + (f": {detail}" if detail else ""), resource=path)
    problems = _problems(st, rule)
    observed = st.describe()
    if problems:
        return Finding.failed(f"{path}: " + "; ".join(problems), observed=observed, expected=expected, resource=path)
    return Finding.passed(f"{path} is {observed} ({expected})", observed=observed, expected=expected, resource=path)


def evaluate_file_rules(facts: Facts, probe: Probe, rules: Iterable[tuple[str, FileRule]]) -> list[Finding]:
    """Findings for several paths from one stat probe (the output is parsed once)."""
    items = list(rules)
    result = facts.get(probe.name)
    if result is None or not result.ok or result.timed_out:
        return [probe_error(result, f"stat {path}", resource=path) for path, _ in items]
    try:
        stats = stat_map(facts, probe)
    except ProbeOutputError as exc:
        return [Finding.error(f"could not assess: {exc}", resource=path) for path, _ in items]
    return [evaluate_file_rule(facts, probe, path, rule, stats=stats) for path, rule in items]


def parse_max_mode(value: str | int, name: str) -> int:
    """A mode param (``"0600"``) as int; ValueError naming the param when it is not octal."""
    if isinstance(value, int):
        raise ValueError(f'{name} must be an octal string like "0600", got the number {value}')
    try:
        return parse_mode(value)
    except ValueError as exc:
        raise ValueError(f'{name} must be an octal string like "0600", got {value!r}') from exc


# --------------------------------------------------------------------------- well-known system files

#: Files and directories whose mode the files pack audits; one probe stats them all.
SYSTEM_FILE_PATHS: tuple[str, ...] = (
    "/etc/passwd",
    "/etc/passwd-",
    "/etc/group",
    "/etc/group-",
    "/etc/shadow",
    "/etc/shadow-",
    "/etc/gshadow",
    "/etc/gshadow-",
    "/etc/shells",
    "/etc/security/opasswd",
    "/etc/crontab",
    "/etc/cron.hourly",
    "/etc/cron.daily",
    "/etc/cron.weekly",
    "/etc/cron.monthly",
    "/etc/cron.d",
)
SYSTEM_FILES = stat_probe("system_file_stats", SYSTEM_FILE_PATHS)


# --------------------------------------------------------------------------- bounded find

FIND_LIMIT = 1000


def find_command(paths: Sequence[str], expression: str, exclude: Sequence[str] = (), limit: int = FIND_LIMIT) -> str:
    """A ``find`` over ``paths`` (each on its own filesystem, -xdev) printing at most ``limit`` matches.

    ``expression`` is a fixed find expression written by the check (never user input);
    every path comes from params and is quoted. Start paths that do not exist or are
    symlinks (/bin -> usr/bin on merged-/usr systems) are skipped so nothing is scanned
    twice. The output ends with ``@TOTAL=<matches>`` and ``@FINDRC=<find's exit status>``.

    One match per line, whatever its name holds: find prints NUL-ended names and ``tr`` swaps
    NUL and newline, so a newline inside a name travels as a NUL (awk counts lines; mawk and gawk
    keep NULs) and :func:`parse_find_output` turns it back.
    """
    if not paths:
        raise ValueError("no search paths")
    start = " ".join(quote(p) for p in paths)
    prune = " -o ".join(f"-path {quote(p)}" for p in exclude)
    prune_expr = f"\\( {prune} \\) -prune -o " if prune else ""
    return (
        f'set --; for p in {start}; do if [ -e "$p" ] && [ ! -h "$p" ]; then set -- "$@" "$p"; fi; done; '
        "if [ $# -eq 0 ]; then echo 'none of the search paths exist' >&2; exit 3; fi; "
        f'{{ find "$@" -xdev {prune_expr}{expression} -print0; printf \'@FINDRC=%s\\0\' "$?"; }} | '
        "tr '\\n\\0' '\\0\\n' | "
        f"awk -v max={int(limit)} '/^@FINDRC=/ {{ rc = $0; next }} {{ n++; if (n <= max) print }} "
        'END { print "@TOTAL=" n + 0; print rc }\''
    )


@dataclass(frozen=True)
class FindOutput:
    """Matches a bounded find printed, how many there were in all, and whether the scan was complete."""

    paths: tuple[str, ...]
    total: int
    rc: int
    benign_errors: int = 0  # files that vanished during the scan

    @property
    def truncated(self) -> bool:
        return self.total > len(self.paths)


def parse_find_output(stdout: str, stderr: str) -> FindOutput:
    """Parse :func:`find_command` output; ProbeOutputError when the scan was incomplete or the output cut.

    find exits 1 on any error; errors that only say a file vanished mid-scan (normal under
    /var) are tolerated, anything else (permission denied, I/O error) means the scan
    missed files, so it cannot support a PASS.
    """
    lines = stdout.split("\n")
    while lines and lines[-1] == "":
        lines.pop()
    if len(lines) < 2 or not lines[-2].startswith("@TOTAL=") or not lines[-1].startswith("@FINDRC="):
        raise ProbeOutputError("find output is incomplete (no totals): the scan did not finish")
    try:
        total = int(lines[-2][len("@TOTAL=") :])
        rc = int(lines[-1][len("@FINDRC=") :])
    except ValueError as exc:
        raise ProbeOutputError("find output totals are malformed") from exc
    paths = tuple(line.replace("\0", "\n") for line in lines[:-2])
    benign = 0
    if rc != 0:
        errors = [e for e in stderr.splitlines() if e.strip()]
        serious = [e for e in errors if "No such file or directory" not in e]
        if serious or not errors:
            first = serious[0][:200] if serious else f"find exited {rc}"
            raise ProbeOutputError(f"the scan was incomplete: {first}")
        benign = len(errors)
    return FindOutput(paths, total, rc, benign)
