"""``umask`` commands in shell start-up files: find them and judge the mask each one sets.

Pure helpers for accounts.shell_umask_restrictive. A umask is judged against a required
mask (027 by default): the umask must keep every bit of it set. Octal values are exact;
symbolic ones (``u=rwx,g=rx,o=``, ``g-w,o-rwx``) are applied clause by clause as the shell
does, and only the bits a command explicitly sets or clears are known: a relative form
such as ``o-rwx`` cannot loosen the mask it starts from, so it is never a weakening.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

__all__ = ["UmaskCommand", "find_umask_commands", "umask_loosened_bits"]

# `umask` in command position: at the start of the line or after ; & | ( { ! or a keyword
# that starts a command (then, do, else); "echo umask 022" and "$(umask)" output are not commands.
_UMASK_RE = re.compile(r"(?:^|(?<=[;&|({!\s]))umask(?=$|[\s;&|)}])")
_COMMAND_POSITION = re.compile(r"(?:^|[;&|({!]|\bthen|\bdo|\belse|\bexec)\s*$")
_SEGMENT_END = re.compile(r"[;&|)}`]")
_OCTAL = re.compile(r"^[0-7]{1,4}$")
_CLAUSE = re.compile(r"^([ugoa]*)([-+=])([rwx]*)$")
_SHIFT = {"u": 6, "g": 3, "o": 0}
_PERM = {"r": 4, "w": 2, "x": 1}


@dataclass(frozen=True)
class UmaskCommand:
    """One ``umask VALUE`` command: where it is, what was written, and the value argument."""

    line: int
    text: str  # the command as written, for messages (``umask 002``)
    value: str  # the mask argument after the shell's quote removal


def _strip_comment(line: str) -> str:
    if line.lstrip().startswith("#"):
        return ""
    cut = re.search(r"\s#", line)
    return line[: cut.start()] if cut else line


def find_umask_commands(text: str) -> list[UmaskCommand]:
    """Every ``umask`` command with a value in ``text`` (commented lines ignored).

    ``umask`` alone, ``umask -S`` and ``umask -p`` only print the mask and are not listed.
    """
    out: list[UmaskCommand] = []
    for n, raw in enumerate(text.splitlines(), 1):
        if "umask" not in raw:
            continue  # most lines of a profile script: nothing the patterns below could match
        line = _strip_comment(raw)
        for m in _UMASK_RE.finditer(line):
            if not _COMMAND_POSITION.search(line[: m.start()]):
                continue
            rest = line[m.end() :]
            end = _SEGMENT_END.search(rest)
            segment = rest[: end.start()] if end else rest
            try:
                words = shlex.split(segment)
            except ValueError:
                words = segment.split()
            args = [w for w in words if w not in ("-S", "-p", "--")]
            if args:
                out.append(UmaskCommand(n, f"umask{segment}".strip(), args[0]))
    return out


def umask_loosened_bits(value: str, required: int) -> int | None:
    """The bits of ``required`` that ``umask VALUE`` leaves cleared (0: none); None when VALUE is not a mask.

    An octal value sets the whole mask; a symbolic one clears a mask bit for every permission it
    grants (``+`` or ``=``) and sets one for every permission it withholds (``-``, or left out of ``=``).
    """
    if _OCTAL.match(value):
        return required & ~int(value, 8) & 0o777
    cleared = 0
    for clause in value.split(","):
        m = _CLAUSE.match(clause)
        if m is None:
            return None
        who, op, perms = m.groups()
        classes = "ugo" if who in ("", "a") or "a" in who else who
        for c in dict.fromkeys(classes):
            for p, bit in _PERM.items():
                mask_bit = bit << _SHIFT[c]
                if op == "+" and p in perms:
                    cleared |= mask_bit
                elif (op == "-" and p in perms) or (op == "=" and p not in perms):
                    cleared &= ~mask_bit
                elif op == "=":
                    cleared |= mask_bit
    return required & cleared
