"""/etc/os-release: its KEY=value lines, and the OS family they name (re-exported by itops.checkapi)."""

from __future__ import annotations

import shlex
from collections.abc import Mapping

__all__ = ["os_family", "parse_os_release"]


def parse_os_release(text: str) -> dict[str, str]:
    """Parse /etc/os-release (shell-style KEY=value lines) into a dict."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        out[key.strip()] = _os_release_value(value)
    return out


#: Characters that make shlex do more than take a value as it is (or a quoted one without them).
_SHELL_SPECIAL = frozenset("\"'\\ \t\r\n")


def _os_release_value(value: str) -> str:
    """The first shell word of ``value`` as ``shlex.split`` gives it (the value unquoted)."""
    # the common shapes without shlex (a fifth of a host's evaluation went to it): a bare word, and a
    # word in double or single quotes holding no quote or backslash; shlex gives exactly these
    if value and _SHELL_SPECIAL.isdisjoint(value):
        return value
    if (
        len(value) >= 2
        and value[0] == value[-1]
        and value[0] in "\"'"
        and _SHELL_SPECIAL.isdisjoint(value[1:-1].replace(" ", "").replace("\t", ""))
    ):
        return value[1:-1]
    try:
        parts = shlex.split(value)
    except ValueError:
        parts = [value.strip("\"'")]
    return parts[0] if parts else ""


_FAMILIES = {
    "debian": ("debian", "ubuntu", "raspbian", "linuxmint", "kali"),
    "rhel": ("rhel", "centos", "fedora", "rocky", "almalinux", "ol", "amzn"),
    "suse": ("suse", "opensuse", "sles", "opensuse-leap"),
    "alpine": ("alpine",),
    "arch": ("arch",),
}


def os_family(os_release: Mapping[str, str]) -> str:
    """The OS family (debian, rhel, suse, alpine, arch) from parsed os-release; "" when unknown."""
    ids = [os_release.get("ID", "").lower(), *os_release.get("ID_LIKE", "").lower().split()]
    for family, members in _FAMILIES.items():
        if any(i in members for i in ids if i):
            return family
    return ""
