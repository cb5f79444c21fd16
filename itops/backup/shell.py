"""POSIX sh building blocks of the backup probes, and the parser of what they print.

Backup probes run in the host's one batch (itops.transport.batch) like audit probes do.
A probe reports through tab-separated records ``@itops<TAB>kind<TAB>field...`` on stdout,
so tool output around them cannot confuse the parser. Every value from the inventory
reaches the shell through :func:`shlex.quote`; a glob is quoted into a variable and
expanded with ``IFS`` empty (pathname expansion, no field splitting, no re-evaluation).

Secrets (restic and PostgreSQL passwords) are never part of a probe command: they are
exported at the top of the batch script, which travels on the SSH channel's stdin, so
they appear neither in the stored evidence nor in any process's argument list.
"""

from __future__ import annotations

import dataclasses
import posixpath
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from itops.transport.batch import BatchScript

q = shlex.quote
RECORD = "@itops"
_SECRET_NAME_RE = re.compile(r"^ITOPS_SECRET_[0-9]+$")


def source_dir(path: str) -> str:
    """The folder a path glob names: ``/var/backups/db/*.gz`` -> ``/var/backups/db``."""
    parts = posixpath.normpath(path).split("/")
    for i, part in enumerate(parts):
        if any(c in part for c in "*?["):
            return "/".join(parts[:i]) or "/"
    return posixpath.dirname(posixpath.normpath(path)) or "/"


def inside(path: str, folder: str) -> bool:
    """True when ``path`` is ``folder`` or below it (both normalised, absolute)."""
    path, folder = posixpath.normpath(path), posixpath.normpath(folder)
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def relative_member(path: str) -> str:
    """A path inside restored data, without leading ``/`` or ``./`` (joined under the scratch folder)."""
    rel = posixpath.normpath("/" + path).lstrip("/")
    return rel or "."


# --- snippets ---------------------------------------------------------------------------------

#: Records helper: ``_rec kind field...`` prints one record (tabs/newlines in fields become spaces).
PRELUDE = r"""_rec() {
  _o="@itops"; for _a in "$@"; do _o="$_o	$(printf '%s' "$_a" | tr '\t\n' '  ')"; done; printf '%s\n' "$_o"
}
_e=$(mktemp) || exit 97
_cleanup() { rm -f "$_e"; }
trap '_cleanup' EXIT
trap 'exit 143' TERM INT HUP
_step() {
  _name=$1; shift; "$@" >/dev/null 2>"$_e"; _rc=$?; _rec step "$_name" "$_rc" "$(head -c 600 "$_e")"; return $_rc
}
_now() { _t=$(date +%s.%N 2>/dev/null); case $_t in *N*|'') date +%s;; *) printf '%s\n' "$_t";; esac; }
"""


def select_newest(glob: str) -> str:
    """Set ``$n`` to the newest regular file matching ``glob`` (ties: the last name); record it or exit."""
    return (
        f"g={q(glob)}\n"
        "IFS=\n"
        "n=; nt=-1\n"
        'for f in $g; do [ -f "$f" ] || continue; t=$(stat -L -c %Y -- "$f") || continue; '
        'if [ "$t" -ge "$nt" ]; then nt=$t; n=$f; fi; done\n'
        "unset IFS\n"
        'if [ -z "$n" ]; then _rec none; exit 0; fi\n'
        '_rec file "$n" "$nt" "$(stat -L -c %s -- "$n")"\n'
    )


def list_files(glob: str) -> str:
    """One ``mtime size path`` line per regular file matching ``glob``; rc 3 folder missing, 4 unreadable."""
    folder = source_dir(glob)
    return (
        f"d={q(folder)}; g={q(glob)}\n"
        'if [ ! -d "$d" ]; then echo "no such folder: $d" >&2; exit 3; fi\n'
        'if [ ! -r "$d" ] || [ ! -x "$d" ]; then echo "permission denied: $d" >&2; exit 4; fi\n'
        "rc=0\nIFS=\n"
        'for f in $g; do if [ -f "$f" ]; then stat -L -c \'%Y %s %n\' -- "$f" || rc=5; fi; done\n'
        "exit $rc\n"
    )


#: ``_safe_dir DIR``: fails (message on stdout) unless DIR is a real folder owned by this user or
#: root, and writable by nobody else unless sticky (then others cannot rename or delete our entries).
_SAFE_DIR = r"""_safe_dir() {
  if [ -L "$1" ]; then echo "$1 is a symbolic link"; return 1; fi
  _st=$(stat -c '%u %f' -- "$1" 2>&1) || { echo "cannot stat $1: $_st"; return 1; }
  _o=${_st% *}; _m=${_st#* }
  if [ "$_o" != "$_me" ] && [ "$_o" != 0 ]; then
    echo "$1 is owned by uid $_o, not by uid $_me (itops) or root"; return 1; fi
  if [ $((0x$_m & 0x12)) != 0 ] && [ $((0x$_m & 0x200)) = 0 ]; then
    echo "$1 is writable by other users and not sticky (mode $(stat -c %a -- "$1"))"; return 1; fi
}
"""


def make_scratch(parent: str) -> str:
    """Create a private scratch folder ``$s`` (mktemp -d, mode 0700) in ``parent``; removed on exit.

    ``parent`` and every folder above it must be safe (:data:`_SAFE_DIR`): a folder another user
    owns or may rename entries in would let them swap the scratch folder or what is checked in it.
    Missing folders are created after their existing ancestors were found safe. ``$s`` is the
    resolved path (no symbolic link in it), which :func:`check_paths` relies on.
    """
    refuse = (
        '{ _rec error "restore folder refused: $_why (set restore_test.into to a folder only itops can change)"; '
        "exit 0; }"
    )
    return (
        _SAFE_DIR
        + f"base={q(parent)}; _me=$(id -u)\n"
        # the existing part of the path, from the top, before anything is created in it
        + '_a=$base; while [ ! -e "$_a" ] && [ ! -L "$_a" ]; do _a=$(dirname -- "$_a"); done\n'
        + f'_d=$_a; while :; do _why=$(_safe_dir "$_d") || {refuse}; [ "$_d" = / ] && break; '
        + '_d=$(dirname -- "$_d"); done\n'
        + '[ -d "$base" ] || mkdir -p -m 0700 -- "$base" 2>"$_e" || '
        '{ _rec error "cannot create $base: $(head -c 300 "$_e")"; exit 0; }\n'
        + f'_why=$(_safe_dir "$base") || {refuse}\n'
        + 's=$(mktemp -d "$base/itops-restore.XXXXXX" 2>"$_e") || '
        '{ _rec error "cannot create a scratch folder in $base: $(head -c 300 "$_e")"; exit 0; }\n'
        '_cleanup() { cd / || true; rm -rf -- "$s" "$_e"; '
        'if [ -e "$s" ]; then _rec cleanup failed; else _rec cleanup ok; fi; }\n'
        '_rec scratch "$s"\n'
        's=$(readlink -f "$s") || exit 0\n'
    )


def check_paths(root: str, expect: Sequence[str], checksums: Sequence[str]) -> str:
    """Records for ``expect`` and ``checksums`` (sha256), paths below ``root``.

    A path counts only as a regular file inside ``root`` once every symbolic link on the way is
    resolved (``readlink -f``): a restored ``etc/hostname -> /etc/hostname`` is reported as
    ``escapes`` and never read, so the live file cannot stand in for a missing backup. Records:
    ``exists``, ``missing``, ``notfile`` (a folder, device...), ``escapes`` PATH TARGET, ``sum`` PATH SHA256.
    """
    out = [
        f'_root=$(readlink -f "{root}")\n'
        '_resolve() { _t=$(readlink -f "$_root/$1") || { _rec missing "$1"; return 1; }; '
        'case $_t in "$_root"/*) ;; *) _rec escapes "$1" "$_t"; return 1;; esac; '
        'if [ -f "$_t" ]; then return 0; fi; '
        'if [ -e "$_t" ]; then _rec notfile "$1"; else _rec missing "$1"; fi; return 1; }\n'
    ]
    if expect:
        items = " ".join(q(relative_member(p)) for p in expect)
        out.append(f'for p in {items}; do if _resolve "$p"; then _rec exists "$p"; fi; done\n')
    if checksums:
        items = " ".join(q(relative_member(p)) for p in checksums)
        out.append(
            f'for p in {items}; do if _resolve "$p"; then '
            '_rec sum "$p" "$(sha256sum < "$_t" | cut -d" " -f1)"; fi; done\n'
        )
    return "".join(out)


def timed(command: str) -> str:
    """Run ``command`` (stderr to ``$_e``) between two clock readings; record ``restore rc t0 t1 err``."""
    return (
        "_t0=$(_now)\n"
        f'{command} 2>"$_e"\n'
        "_rc=$?\n"
        "_t1=$(_now)\n"
        '_rec restore "$_rc" "$_t0" "$_t1" "$(head -c 600 "$_e")"\n'
    )


def script(*parts: str) -> str:
    """A whole probe: the prelude, the parts, and ``exit 0`` (outcomes travel in records, not the rc)."""
    return PRELUDE + "".join(parts) + "exit 0\n"


# --- parsing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    kind: str
    fields: tuple[str, ...]

    def get(self, i: int, default: str = "") -> str:
        return self.fields[i] if i < len(self.fields) else default


def records(text: str) -> list[Record]:
    """The ``@itops`` records a probe printed, in order."""
    out = []
    for line in text.splitlines():
        if line.startswith(RECORD + "\t"):
            parts = line.split("\t")
            out.append(Record(parts[1] if len(parts) > 1 else "", tuple(parts[2:])))
    return out


def first(recs: Iterable[Record], kind: str) -> Record | None:
    return next((r for r in recs if r.kind == kind), None)


def elapsed(t0: str, t1: str) -> float | None:
    """Seconds between two ``_now`` readings; None when either is unreadable."""
    try:
        return max(0.0, float(t1) - float(t0))
    except ValueError:
        return None


def strip_tool_prefix(message: str, path: str = "") -> str:
    """``gzip: /x/y.gz: unexpected end of file`` -> ``unexpected end of file``."""
    text = " ".join(message.split())
    if path:
        text = text.replace(f"{path}: ", "").replace(path, posixpath.basename(path))
    return re.sub(r"^(?:/\S+/)?(gzip|tar|zstd|pg_restore|psql|restic|sha256sum|stat):\s*", "", text)


# --- secrets ------------------------------------------------------------------------------------


def with_secrets(batch: BatchScript, secrets: Mapping[str, str]) -> BatchScript:
    """The batch with ``secrets`` exported at its top (the script goes over stdin, never argv)."""
    if not secrets:
        return batch
    lines = []
    for name, value in sorted(secrets.items()):
        if not _SECRET_NAME_RE.match(name):
            raise ValueError(f"bad secret variable name {name!r}")
        lines.append(f"{name}={q(value)}; export {name}\n")
    return dataclasses.replace(batch, script="".join(lines).encode() + batch.script)
