"""The user's OpenSSH client config (``~/.ssh/config``), read as ``ssh NAME`` reads it.

Parsed and matched by paramiko's :class:`~paramiko.config.SSHConfig` (``Host`` patterns with ``!``
negation, ``Match``, first value wins, ``%h``/``%p``/``%r``/``~`` tokens). The keys itops honours:
``HostName``, ``Port``, ``User``, ``IdentityFile`` (the first one that exists, else the first),
``ProxyJump`` (a chain ``a,b``: b is reached through a), ``UserKnownHostsFile`` and
``ConnectTimeout``. Everything else (``Include``, which paramiko does not follow, ``ProxyCommand``,
``IdentitiesOnly``, ...) is ignored. The inventory's own values win over the config
(:mod:`itops.inventory` applies the layers and records where each effective value came from).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

#: Read when ``defaults.ssh.config`` is not set and the file exists.
DEFAULT_PATH = "~/.ssh/config"
_HOP_RE = re.compile(r"^(?:(?P<user>[^@\s]+)@)?(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:@\s\[\]]+))(?::(?P<port>\d+))?$")


class SSHConfigProblem(ValueError):
    """The config file cannot be read or a value in it makes no sense (reported with the inventory's problems)."""


@dataclass(frozen=True)
class ConfigEntry:
    """What the config says for one name; None where it says nothing."""

    hostname: str | None = None
    port: int | None = None
    user: str | None = None
    identity_file: str | None = None
    known_hosts: tuple[str, ...] | None = None
    connect_timeout: float | None = None
    proxy_jump: str | None = None


@dataclass(frozen=True)
class Hop:
    """One host of a ``ProxyJump`` chain: ``[user@]host[:port]``."""

    host: str
    user: str | None = None
    port: int | None = None


class ClientConfig:
    """One parsed OpenSSH client config file."""

    def __init__(self, path: Path) -> None:
        import paramiko  # only when a config is read: importing the CLI stays fast (tests/cli/test_startup.py)

        self.path = path
        try:
            self._config = paramiko.SSHConfig.from_path(str(path))
        except (OSError, UnicodeDecodeError, paramiko.ssh_exception.ConfigParseError) as exc:
            raise SSHConfigProblem(f"cannot read the ssh config {path}: {exc}") from None

    def lookup(self, name: str) -> ConfigEntry:
        """The settings ``ssh NAME`` would use (paramiko matches the ``Host``/``Match`` blocks)."""
        try:
            found = self._config.lookup(name)
        except Exception as exc:  # paramiko raises bare exceptions for bad Match lines and missing invoke
            raise SSHConfigProblem(f"ssh config {self.path}: looking up {name!r}: {exc}") from None
        where = f"ssh config {self.path} (Host {name})"
        hostname = found.get("hostname")
        identities = [os.path.expanduser(p) for p in found.get("identityfile", [])]
        identity = next((p for p in identities if Path(p).is_file()), identities[0] if identities else None)
        known = found.get("userknownhostsfile")
        jump = found.get("proxyjump")
        return ConfigEntry(
            hostname=hostname if hostname and hostname != name else None,
            port=int(_number(found.get("port"), int, f"{where}: Port")) if "port" in found else None,
            user=found.get("user"),
            identity_file=identity,
            known_hosts=tuple(os.path.expanduser(p) for p in known.split()) if known else None,
            connect_timeout=_number(found.get("connecttimeout"), float, f"{where}: ConnectTimeout")
            if "connecttimeout" in found
            else None,
            proxy_jump=None if not jump or jump.strip().lower() == "none" else jump.strip(),
        )


def _number(value: object, kind: type[int] | type[float], what: str) -> int | float:
    try:
        number = kind(str(value))
    except ValueError:
        raise SSHConfigProblem(f"{what} {value!r} is not a number") from None
    if number <= 0 or (kind is int and number > 65535):
        raise SSHConfigProblem(f"{what} {value!r} is out of range")
    return number


def parse_jump(value: str) -> list[Hop]:
    """``ProxyJump`` as hops, first hop first: ``admin@bastion:2222,inner`` -> two hops."""
    hops = []
    for part in value.split(","):
        m = _HOP_RE.match(part.strip())
        if m is None:
            raise SSHConfigProblem(f"ProxyJump {value!r}: {part.strip()!r} is not [user@]host[:port]")
        port = int(m["port"]) if m["port"] else None
        if port is not None and not 0 < port < 65536:
            raise SSHConfigProblem(f"ProxyJump {value!r}: port {port} is out of range")
        hops.append(Hop(m["v6"] or m["host"], m["user"], port))
    return hops


def load_client_config(setting: str | bool | None, base: Path) -> ClientConfig | None:
    """The config ``defaults.ssh.config`` names (relative to ``base``, the inventory's folder); ``False``:
    none; None: ``~/.ssh/config`` when it exists."""
    if setting is False:
        return None
    if setting is None or setting is True:
        default = Path(os.path.expanduser(DEFAULT_PATH))
        return ClientConfig(default) if default.is_file() else None
    path = Path(os.path.expanduser(setting))
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        raise SSHConfigProblem(f"ssh config file not found: {path}")
    return ClientConfig(path)
