"""The facts transports gather and checks read: probe results and cloud API collections.

Transports (``itops.transport``) produce these and the check API (``itops.checkapi``) hands them
to checks, which import them from there; keeping them here lets the transports stay below the
check-author API (a transport never imports ``itops.checkapi``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CloudResource", "CollectionResult", "NotAssessable", "ProbeResult"]


@dataclass(frozen=True)
class ProbeResult:
    """The outcome of one probe on one host: a failed command is data, not an exception."""

    command: str
    rc: int | None  # None when the probe never finished (timeout, connection lost)
    stdout: bytes = b""
    stderr: bytes = b""
    timed_out: bool = False
    error: str = ""  # why it did not finish, when rc is None
    over_limit: bool = False  # its output went over ssh.max_probe_output: dropped, not assessable

    @property
    def text(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    @property
    def err_text(self) -> str:
        return self.stderr.decode("utf-8", "replace")

    @property
    def ok(self) -> bool:
        return self.rc == 0

    @property
    def command_missing(self) -> bool:
        """True when the shell reported the command as not found (rc 127)."""
        return self.rc == 127

    def problem(self) -> str:
        """A one-line reason this probe's output cannot be trusted, for ERROR messages."""
        if self.over_limit:
            return self.error
        if self.timed_out:
            return f"`{self.command}` timed out"
        if self.rc is None:
            return f"`{self.command}` did not run: {self.error or 'unknown error'}"
        if self.command_missing:
            return f"`{self.command}`: command not found"
        first = self.err_text.strip().splitlines()
        return f"`{self.command}` exited {self.rc}" + (f": {first[0][:200]}" if first else "")


class NotAssessable(Exception):
    """A part of a resource could not be read (missing permission, API error): ERROR, never PASS."""


@dataclass(frozen=True)
class CloudResource:
    """One resource of a collection (bucket, security group, trail, region-wide setting).

    ``data`` holds what the API returned, by part (``"policy"``, ``"encryption"`` ...);
    ``errors`` names the parts that could not be read and why. A part that exists but
    is "not configured" (no bucket policy) is data (``None``), not an error.
    """

    arn: str
    region: str
    data: Mapping[str, Any]
    errors: Mapping[str, str] = field(default_factory=dict)
    name: str = ""  # short human name (bucket name, sg-123 ...) for messages

    def part(self, key: str) -> Any:
        """The part ``key``; raises :class:`NotAssessable` when it could not be read."""
        if key in self.errors:
            raise NotAssessable(self.errors[key])
        return self.data.get(key)

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)


@dataclass(frozen=True)
class CollectionResult:
    """One API collection over an account's regions (or once, for global services).

    ``errors`` maps a region (``"global"`` for global collections) to why the whole
    collection failed there, e.g. ``not assessable: missing permission ec2:DescribeVolumes``.
    """

    name: str
    resources: tuple[CloudResource, ...] = ()
    regions: tuple[str, ...] = ()
    calls: tuple[str, ...] = ()  # IAM actions of the API calls made, sorted
    errors: Mapping[str, str] = field(default_factory=dict)
