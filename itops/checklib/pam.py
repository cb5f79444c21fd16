"""PAM stacks and libpwquality settings: parse /etc/pam.d files and work out pam_pwquality's effective settings.

Pure helpers for accounts.password_quality_enforced. The pwquality model follows
libpwquality (settings.c, 1.4.x) and pam_pwquality:

* the built-in defaults apply first (minlen 8, enforcing 1);
* ``/etc/security/pwquality.conf.d/*.conf`` are read FIRST, in byte order of their names,
  and ``/etc/security/pwquality.conf`` LAST, so the main file overrides the drop-ins;
* in a file, ``#`` starts a comment, the setting name runs to the first blank and one ``=``
  may separate it from the value (``minlen = 14``, ``minlen 14``; ``minlen=14`` is an unknown
  setting named "minlen=14"); a line libpwquality rejects stops ALL further reading;
* ``NAME=VALUE`` arguments on the pam_pwquality.so line override every file (a bad one is ignored);
* minlen below 6 counts as 6.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

__all__ = [
    "PWQUALITY_CONF",
    "PWQUALITY_CONF_D_GLOB",
    "PamLine",
    "PwqSetting",
    "PwqualitySettings",
    "effective_pwquality",
    "find_module",
    "parse_pam_stack",
    "pwquality_file_order",
]

PWQUALITY_CONF = "/etc/security/pwquality.conf"
PWQUALITY_CONF_D_GLOB = "/etc/security/pwquality.conf.d/*.conf"
_DEFAULTS = {"minlen": 8, "enforcing": 1}
_BASE_MIN_LENGTH = 6
_INT_RE = re.compile(r"^\s*[+-]?\d+$")


@dataclass(frozen=True)
class PamLine:
    """One rule of a PAM service file."""

    line: int
    type: str  # auth, account, password, session (a leading "-" dropped, lower-cased)
    control: str  # requisite, required, sufficient, optional, include, substack or "[...]"
    module: str  # as written: pam_pwquality.so or a full path
    args: tuple[str, ...]

    @property
    def module_name(self) -> str:
        return posixpath.basename(self.module)

    def describe(self) -> str:
        return " ".join([self.type, self.control, self.module, *self.args])


def _bracketed(tokens: list[str], i: int) -> tuple[str, int]:
    """Join ``[...]`` spread over several blank-separated tokens, starting at ``tokens[i]``."""
    if not tokens[i].startswith("[") or tokens[i].endswith("]"):
        return tokens[i], i + 1
    j = i
    while j < len(tokens) - 1 and not tokens[j].endswith("]"):
        j += 1
    return " ".join(tokens[i : j + 1]), j + 1


def parse_pam_stack(text: str) -> list[PamLine]:
    """The rules of a /etc/pam.d service file (comments, blank and ``@include`` lines skipped;
    backslash continuation lines joined). Malformed lines are skipped, as libpam skips them."""
    out: list[PamLine] = []
    pending = ""
    start = 0
    for n, raw in enumerate(text.splitlines(), 1):
        if not pending:
            start = n
        line = raw.split("#", 1)[0]
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        line, pending = pending + line, ""
        tokens = line.split()
        if len(tokens) < 3 or tokens[0].startswith("@"):
            continue
        control, i = _bracketed(tokens, 1)
        if i >= len(tokens):
            continue
        args: list[str] = []
        j = i + 1
        while j < len(tokens):
            arg, j = _bracketed(tokens, j)
            args.append(arg)
        out.append(PamLine(start, tokens[0].lstrip("-").lower(), control, tokens[i], tuple(args)))
    return out


def find_module(lines: Iterable[PamLine], module: str, type_: str) -> PamLine | None:
    """The first ``type_`` rule calling ``module`` (by file name), or None."""
    return next((ln for ln in lines if ln.type == type_ and ln.module_name == module), None)


@dataclass(frozen=True)
class PwqSetting:
    value: int
    source: str  # "PATH:LINE", "pam_pwquality.so argument (PATH:LINE)" or "libpwquality default"


@dataclass
class PwqualitySettings:
    """The settings pam_pwquality ends up with, each with where it came from."""

    minlen: PwqSetting
    enforcing: PwqSetting
    stopped_at: str = ""  # "PATH:LINE `text`" where libpwquality stopped reading its files
    files_read: list[str] = field(default_factory=list)


def pwquality_file_order(paths: Collection[str]) -> list[str]:
    """The order libpwquality reads ``paths`` in: pwquality.conf.d/*.conf by name, then pwquality.conf.

    A drop-in is read only when its name's first ".conf" ends it (libpwquality's filter).
    """
    names = {p: posixpath.basename(p) for p in paths if p != PWQUALITY_CONF}
    dropins = sorted(
        (p for p, name in names.items() if name.find(".conf") == len(name) - 5), key=lambda p: names[p].encode()
    )
    return [*dropins, *([PWQUALITY_CONF] if PWQUALITY_CONF in paths else [])]


def _int_setting(name: str, value: str) -> int | None:
    if not _INT_RE.match(value):
        return None
    number = int(value)
    return max(number, _BASE_MIN_LENGTH) if name == "minlen" else number


def effective_pwquality(
    files: Sequence[tuple[str, str]], pam_line: PamLine | None = None, pam_file: str = ""
) -> PwqualitySettings:
    """minlen and enforcing from ``files`` (``(path, text)`` in any order) and the pam_pwquality.so line."""
    values = {k: PwqSetting(v, "libpwquality default") for k, v in _DEFAULTS.items()}
    texts = dict(files)
    stopped = ""
    read: list[str] = []
    for path in pwquality_file_order(texts):
        if stopped:
            break
        read.append(path)
        for n, raw in enumerate(texts[path].splitlines(), 1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            name, *rest = line.split(None, 1)
            value = rest[0] if rest else ""
            if value.startswith("="):
                value = value[1:].strip()
            key = name.lower()
            if "=" in name:
                stopped = f"{path}:{n} `{line}`"  # an unknown setting: libpwquality gives up here
                break
            if key in values:
                number = _int_setting(key, value)
                if number is None:
                    stopped = f"{path}:{n} `{line}`"
                    break
                values[key] = PwqSetting(number, f"{path}:{n}")
    if pam_line is not None:
        for arg in pam_line.args:
            key, sep, value = arg.partition("=")
            key = key.lower()
            if sep and key in values:
                number = _int_setting(key, value)
                if number is not None:  # pam_pwquality logs and ignores a broken option
                    values[key] = PwqSetting(number, f"pam_pwquality.so argument ({pam_file}:{pam_line.line})")
    return PwqualitySettings(values["minlen"], values["enforcing"], stopped, read)
