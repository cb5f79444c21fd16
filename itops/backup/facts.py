"""What a backup check sees: the copies found, integrity and protection verdicts, the restore test.

The verifiers (one module per backup kind) turn command output and API answers into a
:class:`BackupFacts`; the checks in ``checks/backup/`` are pure functions of it. Every
number a message shows is formatted here, so messages read the same for every kind:
``newest backup is 3d 4h old, RPO 26h``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Copy:
    """One copy of a backup: a file, an object, a snapshot or a recovery point."""

    name: str
    created: float  # epoch seconds (mtime, LastModified, snapshot time)
    size: int | None = None  # bytes; None when the kind does not tell
    group: str = ""  # what the copy is of, when a backup holds several: restic host/tags, volume id
    encrypted: bool | None = None
    public: bool | None = None  # shared with everyone (snapshots)


@dataclass(frozen=True)
class Verdict:
    """The outcome of one verification (integrity, immutability).

    ``ok`` None means there was nothing to verify (no checksum stored, no test for the file
    type): the check is SKIPPED. A verification that could not run is an Observation error.
    """

    ok: bool | None
    message: str
    detail: str = ""  # e.g. which restic slice, which checksum


@dataclass(frozen=True)
class RestoreOutcome:
    """A timed restore into scratch space and what was verified in the restored data."""

    ok: bool  # restored and every verification passed
    seconds: float | None  # restore time; None when it never finished
    rto: float | None  # the target from restore_test.rto
    what: str  # what was restored, e.g. "db-2024-05-01.tar.gz into bk1:/var/tmp/itops-restore.Ab12"
    problems: tuple[str, ...] = ()  # each failed verification, in words
    verified: tuple[str, ...] = ()  # each passed verification, in words
    cleanup_ok: bool = True  # the scratch space was removed afterwards
    timed_out: bool = False


@dataclass(frozen=True)
class Observation:
    """How one aspect of a backup was gathered: the command or API call, an output excerpt,
    and why it could not be gathered (then every check needing the aspect is ERROR)."""

    source: str = ""
    excerpt: str = ""
    error: str = ""
    unreachable: bool = False  # the host/account was not reached at all


@dataclass(frozen=True)
class BackupFacts:
    """Everything known about one backup after verification, as backup checks see it."""

    name: str
    kind: str
    where: str  # human location, e.g. "bk1:/var/backups/db/*.tar.gz" or "s3://bucket/prefix"
    now: float
    rpo: float
    min_size: int | None = None
    max_shrink_pct: float | None = None
    min_copies: int | None = None
    copies: tuple[Copy, ...] = ()
    expected_groups: tuple[str, ...] = ()  # groups that must have a copy (listed volume ids ...)
    absent: str = ""  # why there are no copies, when known ("folder /x does not exist on bk1")
    integrity: Verdict | None = None
    immutable: Verdict | None = None
    restore: RestoreOutcome | None = None
    observations: Mapping[str, Observation] = field(default_factory=dict)
    vars: Mapping[str, Any] = field(default_factory=dict)
    #: this backup's metrics from earlier runs (``{name: [(run start, value)]}``) for checks that declare
    #: ``history`` (forecasts); empty without a run store
    history: Mapping[str, Sequence[tuple[float, float]]] = field(default_factory=dict)

    def groups(self) -> dict[str, list[Copy]]:
        """Copies by group, newest first; expected groups without copies map to []."""
        out: dict[str, list[Copy]] = {g: [] for g in self.expected_groups}
        for c in sorted(self.copies, key=lambda c: (c.created, c.name), reverse=True):
            out.setdefault(c.group, []).append(c)
        return out

    def newest(self) -> Copy | None:
        return max(self.copies, key=lambda c: (c.created, c.name), default=None)


def short_name(name: str) -> str:
    """A copy's name for messages: the file name of a path, else the name (key, snapshot id) as is."""
    return name.rsplit("/", 1)[-1] if name.startswith("/") else name


def newest_first(copies: Sequence[Copy]) -> list[Copy]:
    return sorted(copies, key=lambda c: (c.created, c.name), reverse=True)


def format_age(seconds: float) -> str:
    """An age in its two largest units: ``3d 4h``, ``5h 12m``, ``4m 3s``, ``12s``."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    days, rem = divmod(s, 86400)
    hours, rem = divmod(rem, 3600)
    minutes, secs = divmod(rem, 60)
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    return f"{minutes}m {secs}s" if secs else f"{minutes}m"


def format_limit(seconds: float) -> str:
    """A configured duration the way users write it: ``26h``, ``2d``, ``30m``, ``90s``, ``0.5s``."""
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def format_duration(seconds: float) -> str:
    """A measured duration (restore time): ``12 ms``, ``3.4s``, ``2m 5s``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    return format_age(seconds)


def format_size(size: float) -> str:
    """Bytes in 1000-based units with one decimal: ``1.2 MB`` (the inventory's MB is 1000-based)."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")
