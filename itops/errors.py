"""The itops error tree. Library code raises these; only the CLI maps them to exit codes.

Each class carries its :class:`~itops.exitcodes.ExitStatus` as ``exit_status``; the CLI entry
(:class:`itops.cli.main.ItopsGroup`) exits with it, so a new error class picks its status here,
in one place, and no command maps errors itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from itops.exitcodes import ExitStatus


class ItopsError(Exception):
    """Base of every error itops raises on purpose; ``hint`` tells the user what to do.

    Exit status INCOMPLETE (3) unless a subclass says otherwise: the run could not finish its work.
    """

    hint: str = ""
    exit_status: ClassVar[ExitStatus] = ExitStatus.INCOMPLETE
    #: whether the CLI prints ``hint:`` after the message (config errors put the fix in the message)
    show_hint: ClassVar[bool] = True

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        if hint:
            self.hint = hint


@dataclass(frozen=True)
class ConfigProblem:
    """One problem found while validating a YAML file: where and what."""

    file: str
    line: int | None
    path: str  # dotted key path, e.g. hosts.web1.port
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(ItopsError):
    """A configuration file (inventory, schedule, playbook, check) is invalid. Exit code 4."""

    exit_status = ExitStatus.CONFIG
    show_hint = False

    def __init__(self, problems: list[ConfigProblem], what: str = "configuration") -> None:
        self.problems = problems
        n = len(problems)
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{what} is invalid ({n} problem{'s' if n != 1 else ''}):\n{lines}")


class InventoryError(ConfigError):
    """The inventory is invalid."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        super().__init__(problems, what="inventory")


class SecretFileError(ItopsError):
    """A file holding a secret (``password_file``, ``url_file``) is unreadable or readable by others."""


class UsageError(ItopsError):
    """The command line asks for something impossible (exit code 2)."""

    exit_status = ExitStatus.USAGE


class ExecutorError(ItopsError):
    """The executor cannot run the work (no Dask scheduler at the address, no workers)."""


class TransportError(ItopsError):
    """A target could not be reached or talked to."""


class HostUnreachable(TransportError):
    """TCP connect failed, timed out, DNS failed, or no SSH banner came."""


class AuthFailed(TransportError):
    """The server refused every credential offered."""


class HostKeyRejected(TransportError):
    """The server's host key is unknown or differs from the one in known_hosts."""


class CommandTimeout(TransportError):
    """A remote command ran past its timeout."""


class CheckError(ItopsError):
    """A check shipped with itops is broken (bad metadata, fails to import): a bug in itops, exit 70.

    Checks from the user's own folders are loaded leniently (a warning, the check skipped), so this
    is raised only for the built-in pack, where it means the installation is broken."""

    exit_status = ExitStatus.INTERNAL
