"""Packages: the installed-package inventory, pending security updates, repository signing, OS end of life.

Probe commands here work on any family (they branch on which tool exists), so the
same command text is shared by every check that needs it and runs once per host.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from itops.checkapi import Probe

__all__ = [
    "PACKAGES_COMMAND",
    "SECURITY_UPDATES_COMMAND",
    "EolEntry",
    "PackageInventory",
    "PendingUpdates",
    "apt_insecure_settings",
    "apt_trusted_sources",
    "dnf_gpgcheck_problems",
    "load_eol_data",
    "lookup_eol",
    "packages_probe",
    "parse_ini",
    "parse_package_inventory",
    "parse_security_updates",
    "truthy",
]

_MARK = "@@itops-pm "

# --- installed packages ---------------------------------------------------------------------

PACKAGES_COMMAND = (
    "if command -v dpkg-query >/dev/null 2>&1; then "
    f"echo '{_MARK}dpkg'; dpkg-query -W -f='${{Package}} ${{Status}}\\n'; "
    "elif command -v rpm >/dev/null 2>&1; then "
    f"echo '{_MARK}rpm'; rpm -qa --qf '%{{NAME}}\\n'; "
    "elif command -v apk >/dev/null 2>&1; then "
    f"echo '{_MARK}apk'; apk info; "
    f"else echo '{_MARK}none'; exit 127; fi"
)


def packages_probe() -> Probe:
    """The shared probe listing installed package names (dpkg, rpm or apk)."""
    return Probe("packages", PACKAGES_COMMAND)


# dpkg "Status" states that mean the package's files are (at least partly) on disk
_DPKG_PRESENT = {"installed", "half-configured", "unpacked", "half-installed", "triggers-awaiting", "triggers-pending"}


@dataclass(frozen=True)
class PackageInventory:
    """Which package manager answered and the names of the packages present."""

    manager: str  # dpkg, rpm or apk
    installed: frozenset[str]

    def has(self, name: str) -> bool:
        return name in self.installed

    def present(self, names: Iterable[str]) -> list[str]:
        return [n for n in names if n in self.installed]


def parse_package_inventory(text: str) -> PackageInventory:
    """Parse :data:`PACKAGES_COMMAND` output; raises ValueError on garbage or an empty list."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines or not lines[0].startswith(_MARK):
        raise ValueError("package probe output lacks its manager marker")
    manager = lines[0][len(_MARK) :]
    names: set[str] = set()
    for line in lines[1:]:
        if manager == "dpkg":
            parts = line.split()
            if len(parts) != 4:
                raise ValueError(f"unexpected dpkg-query line {line[:120]!r}")
            if parts[3] in _DPKG_PRESENT:
                names.add(parts[0])
        elif manager in ("rpm", "apk"):
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9+._@-]*", line):
                raise ValueError(f"unexpected {manager} line {line[:120]!r}")
            names.add(line)
        else:
            raise ValueError(f"unknown package manager {manager!r}")
    if manager not in ("dpkg", "rpm", "apk"):
        raise ValueError(f"no supported package manager found ({manager})")
    if not names:
        raise ValueError(f"{manager} reported no installed packages")
    return PackageInventory(manager, frozenset(names))


# --- pending security updates --------------------------------------------------------------

# dist-upgrade rather than upgrade: a plain upgrade keeps back updates that need a new
# package (every Debian kernel security update does), so it would miss the most important ones.
SECURITY_UPDATES_COMMAND = (
    "if command -v apt-get >/dev/null 2>&1; then "
    f"echo '{_MARK}apt'; "
    "printf '@@itops-lists %s\\n' \"$(ls /var/lib/apt/lists 2>/dev/null | grep -c _Packages)\"; "
    "apt-get -s -o Debug::NoLocking=1 dist-upgrade; "
    "elif command -v dnf >/dev/null 2>&1; then "
    f"echo '{_MARK}dnf'; dnf -q updateinfo list --security; "
    "elif command -v yum >/dev/null 2>&1; then "
    f"echo '{_MARK}yum'; yum -q updateinfo list security; "
    f"else echo '{_MARK}none'; exit 127; fi"
)


@dataclass(frozen=True)
class PendingUpdates:
    """Security updates waiting to be installed, as ``package (version)`` or ``ADVISORY package`` strings."""

    manager: str
    security: tuple[str, ...]
    other_count: int = 0  # non-security upgrades seen (apt only)


_APT_INST = re.compile(r"^Inst (\S+)(?: \[([^\]]*)\])? \((\S+) (.*)\)")
_APT_SUMMARY = re.compile(r"^\d+ (upgraded|packages upgraded), \d+ newly installed")
_ADVISORY = re.compile(r"^[A-Z][A-Za-z0-9]*(-[A-Za-z0-9]+)*-\d{4}[-:][A-Za-z0-9:._-]+$")
_DNF_NOISE = re.compile(
    r"^(Last metadata expiration check|updateinfo list done|Loaded plugins|Loading mirror speeds|"
    r"Updating Subscription Management|This system is|Name\s+Type\s+Severity)",
)


def _is_security_origin(origins: str) -> bool:
    return "-security" in origins or "Debian-Security" in origins


def parse_security_updates(text: str) -> PendingUpdates:
    """Parse :data:`SECURITY_UPDATES_COMMAND` output; raises ValueError when it is not recognisable."""
    lines = text.splitlines()
    first = next((ln.strip() for ln in lines if ln.strip()), "")
    if not first.startswith(_MARK):
        raise ValueError("update probe output lacks its manager marker")
    manager = first[len(_MARK) :]
    body = lines[lines.index(next(ln for ln in lines if ln.strip() == first)) + 1 :]
    if manager == "apt":
        return _parse_apt(body)
    if manager in ("dnf", "yum"):
        return _parse_updateinfo(manager, body)
    raise ValueError(f"no supported package manager found ({manager})")


def _parse_apt(lines: list[str]) -> PendingUpdates:
    security: list[str] = []
    other = 0
    summary = False
    for line in lines:
        if line.startswith("@@itops-lists ") and line.split()[-1] == "0":
            # without downloaded lists apt knows of no update at all: "0 upgraded" would be a false PASS
            raise ValueError("no apt package lists in /var/lib/apt/lists (run apt-get update)")
        if _APT_SUMMARY.match(line.strip()):
            summary = True
        m = _APT_INST.match(line.strip())
        if not m:
            continue
        name, new_version, origins = m[1], m[3], m[4]
        if _is_security_origin(origins):
            security.append(f"{name} ({new_version})")
        else:
            other += 1
    if not summary:
        raise ValueError("apt-get simulation printed no 'N upgraded, N newly installed' summary")
    return PendingUpdates("apt", tuple(security), other)


def _parse_updateinfo(manager: str, lines: list[str]) -> PendingUpdates:
    found: list[str] = []
    unknown: list[str] = []
    for line in lines:
        text = line.strip()
        if not text or _DNF_NOISE.match(text):
            continue
        parts = text.split()
        if len(parts) >= 3 and _ADVISORY.match(parts[0]):
            # dnf4/yum: ADVISORY SEVERITY/Sec. PACKAGE; dnf5: ADVISORY security SEVERITY PACKAGE DATE TIME
            package = parts[3] if parts[1] == "security" and len(parts) >= 4 else parts[2]
            found.append(f"{parts[0]} {package}")
        else:
            unknown.append(text)
    if unknown and not found:
        raise ValueError(f"unrecognised {manager} updateinfo output: {unknown[0][:120]!r}")
    return PendingUpdates(manager, tuple(found))


# --- repository signature checking ----------------------------------------------------------

_TRUE = {"1", "yes", "true", "on"}
_FALSE = {"0", "no", "false", "off"}


def truthy(value: str) -> bool | None:
    """dnf/yum boolean: True, False, or None when it is not a boolean."""
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    return None


def parse_ini(text: str) -> dict[str, dict[str, str]]:
    """Minimal ini reader (dnf/yum/systemd style): ``[section]`` then ``key=value``; later keys win."""
    sections: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1].strip(), {})
            continue
        if current is None or "=" not in line:
            continue
        key, _, value = line.partition("=")
        current[key.strip()] = value.strip()
    return sections


def dnf_gpgcheck_problems(main_conf: str, repo_files: Mapping[str, str]) -> list[str]:
    """Why dnf/yum would install unsigned packages: [main] gpgcheck off/unset, or an enabled repo with it off.

    dnf's built-in default for gpgcheck is False, so an unset [main] gpgcheck counts as off;
    a repository without its own setting inherits [main].
    """
    problems: list[str] = []
    main = parse_ini(main_conf).get("main", {})
    main_value = main.get("gpgcheck", main.get("pkg_gpgcheck"))
    main_on = truthy(main_value) if main_value is not None else False
    if main_value is None:
        problems.append("[main] gpgcheck is not set (dnf defaults to no signature check)")
    elif main_on is not True:
        problems.append(f"[main] gpgcheck={main_value}")
    for path, text in repo_files.items():
        for section, keys in parse_ini(text).items():
            if truthy(keys.get("enabled", "1")) is False:
                continue
            value = keys.get("gpgcheck", keys.get("pkg_gpgcheck"))
            if value is not None and truthy(value) is not True:
                problems.append(f"{path} [{section}] gpgcheck={value}")
    return problems


_TRUSTED_OPTION = re.compile(r"\[[^\]]*\btrusted=yes\b[^\]]*\]")
_DEB822_TRUSTED = re.compile(r"^\s*Trusted:\s*yes\s*$", re.I | re.M)
_APT_INSECURE = re.compile(
    r"\b(AllowUnauthenticated|AllowInsecureRepositories|AllowDowngradeToInsecureRepositories|AllowWeakRepositories)"
    r"\b\s*\"?(true|yes|on|1)\"?",
    re.I,
)


def apt_trusted_sources(files: Mapping[str, str]) -> list[str]:
    """``path: line`` of every apt source that skips signature checks (``[trusted=yes]`` / ``Trusted: yes``)."""
    found: list[str] = []
    for path, text in files.items():
        if path.endswith(".sources"):
            found += [f"{path}: {m.group(0).strip()}" for m in _DEB822_TRUSTED.finditer(text)]
            continue
        for line in text.splitlines():
            stripped = line.strip()
            if stripped.startswith("#"):
                continue
            if stripped.startswith("deb") and _TRUSTED_OPTION.search(stripped):
                found.append(f"{path}: {stripped[:160]}")
    return found


def apt_insecure_settings(files: Mapping[str, str]) -> list[str]:
    """``path: setting`` of apt.conf settings that accept unsigned or insecure repositories."""
    found: list[str] = []
    for path, text in files.items():
        for line in text.splitlines():
            code = re.sub(r"(//|#).*$", "", line).strip()
            m = _APT_INSECURE.search(code)
            if m:
                found.append(f"{path}: {code[:160]}")
    return found


# --- OS end of life ---------------------------------------------------------------------------

_EOL_FILE = Path(__file__).resolve().parent / "data" / "os_eol.yaml"


@dataclass(frozen=True)
class EolEntry:
    """Support dates of one OS release."""

    os_id: str
    release: str
    name: str
    eol: dt.date  # end of free security support
    extended: dt.date | None = None  # end of paid extended support (ESM, ELS), when offered


@cache
def load_eol_data(path: str = str(_EOL_FILE)) -> dict[str, Any]:
    """The end-of-life table (itops/checklib/data/os_eol.yaml), validated lightly."""
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of OS ids")
    for os_id, spec in data.items():
        if not isinstance(spec, dict) or spec.get("match") not in ("major", "major_minor", "full"):
            raise ValueError(f"{path}: {os_id}: needs match: major|major_minor|full")
        for rel, entry in (spec.get("releases") or {}).items():
            if not isinstance(rel, str):
                raise ValueError(f"{path}: {os_id}: quote release {rel!r} (YAML reads 20.10 as the number 20.1)")
            if not isinstance(entry, dict) or not isinstance(entry.get("eol"), dt.date):
                raise ValueError(f"{path}: {os_id} {rel}: needs an eol date (YYYY-MM-DD)")
    return data


def _release_key(version_id: str, match: str) -> str:
    parts = version_id.split(".")
    if match == "major":
        return parts[0]
    if match == "major_minor":
        return ".".join(parts[:2])
    return version_id


def lookup_eol(os_release: Mapping[str, str], data: Mapping[str, Any] | None = None) -> EolEntry | None:
    """The support dates for the release described by parsed /etc/os-release, or None when unknown."""
    table = data if data is not None else load_eol_data()
    os_id = os_release.get("ID", "").lower()
    version = os_release.get("VERSION_ID", "")
    spec = table.get(os_id)
    if not spec or not version:
        return None
    key = _release_key(version, spec["match"])
    entry = (spec.get("releases") or {}).get(key)
    if not isinstance(entry, dict):
        return None
    return EolEntry(os_id, key, str(entry.get("name", "")), entry["eol"], entry.get("extended"))
