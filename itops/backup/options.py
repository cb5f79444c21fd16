"""Per-kind settings of a backup: the integrity method and the ``restore_test`` shape.

The inventory keeps ``restore_test`` open (extra keys allowed) so each kind can add its
own keys; they are validated here, against the file itself so every problem names the
file, line and key path like the inventory loader does::

    inventory.yaml:41: backups.orders-dump.restore_test.server.port: must be 1-65535

All problems are collected and raised together as :class:`~itops.errors.InventoryError`
(exit code 4, nothing run).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from itops.errors import ConfigProblem, InventoryError
from itops.inventory import Backup, Inventory, ResticBackup
from itops.yamlload import (
    EnvName,
    LineMap,
    Port,
    PositiveDuration,
    StrictModel,
    StrList,
    raise_if_problems,
    read_yaml,
    validate_model,
)

#: Integrity methods by kind; the first is the default.
INTEGRITY_METHODS: Mapping[str, tuple[str, ...]] = {
    "file": ("auto", "gzip", "tar", "tar.gz", "zstd", "tar.zst", "none"),
    "postgres_dump": ("auto", "custom", "plain", "none"),
    "s3": ("auto", "none"),
}
#: restic: ``check`` (structure only), ``read-data`` (all data each run) or
#: ``read-data-subset/N`` (a different 1/N of the data each run, rotating).
RESTIC_INTEGRITY_RE = re.compile(r"^(check|read-data|read-data-subset/([1-9][0-9]{0,3}))$")
DEFAULT_RESTIC_SLICES = 5
_IDENT_RE = re.compile(r"^[a-z_][a-z0-9_]{0,30}$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
_SNAPSHOT_RE = re.compile(r"^[0-9a-f]{8,64}$")


def _abs_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError(f"must be an absolute path, got {value!r}")
    return value


def _ident(value: str) -> str:
    if not _IDENT_RE.match(value):
        raise ValueError("must be a lowercase SQL identifier (a-z, 0-9, _; at most 31 characters)")
    return value


def _sha256(value: str) -> str:
    if not _SHA256_RE.match(value.lower()):
        raise ValueError("must be 64 hex digits (a sha256 checksum)")
    return value.lower()


AbsPath = Annotated[str, AfterValidator(_abs_path)]


class PathChecksum(StrictModel):
    """A file in the restored data and its expected sha256."""

    path: str = Field(min_length=1)
    sha256: Annotated[str, AfterValidator(_sha256)]


class FileRestoreSpec(StrictModel):
    """``restore_test`` of a file backup: extract the newest copy into ``into`` (a scratch folder
    is made inside it) and verify it."""

    into: AbsPath | None = None  # parent of the scratch folder (default: the host's /var/tmp)
    rto: PositiveDuration | None = None
    timeout: PositiveDuration | None = None  # give up after this long (default: max(RTO x 3, 10m))
    expect_files: StrList = ()  # paths inside the backup that must be restored
    verify: tuple[PathChecksum, ...] = ()  # paths inside the backup with their expected sha256
    sample: int = Field(3, ge=0, le=100)  # archive members compared byte for byte after extraction


def _snapshot_id(value: str) -> str:
    # restic takes the snapshot as a positional argument: only "latest" or a hex id, never an option
    if value != "latest" and not _SNAPSHOT_RE.match(value):
        raise ValueError(f"must be 'latest' or a snapshot id (8-64 hex digits), got {value!r}")
    return value


class ResticRestoreSpec(FileRestoreSpec):
    """``restore_test`` of a restic backup: ``restic restore`` into scratch, then verify.
    Paths in ``expect_files``/``verify`` are the original absolute paths."""

    snapshot: Annotated[str, AfterValidator(_snapshot_id)] = "latest"
    host: str | None = None  # with snapshot "latest": the newest snapshot of this host
    tags: StrList = ()
    include: StrList = ()  # restore only these paths (default: the whole snapshot)


class PgServer(StrictModel):
    """The PostgreSQL server the scratch database is created on."""

    host: str = Field(min_length=1)
    port: Port = 5432
    user: str = "postgres"
    password_env: EnvName | None = None
    password_file: str | None = None  # read by itops on this machine
    dbname: str = "postgres"  # maintenance database to connect to for CREATE/DROP DATABASE
    sslmode: str | None = None
    # user is a role without superuser (CREATEDB is enough): checked before anything is restored
    unprivileged: bool = False


class PgQuery(StrictModel):
    """A verification query run in the restored scratch database; its first value is compared."""

    query: str = Field(min_length=1)
    min: float | None = None
    max: float | None = None
    equals: str | None = None
    max_age: PositiveDuration | None = None  # the value is a timestamp no older than this


class PostgresRestoreSpec(StrictModel):
    """``restore_test`` of a postgres_dump: restore into a new scratch database, query it, drop it."""

    server: PgServer | None = None
    database_prefix: Annotated[str, AfterValidator(_ident)] = "itops_restore"
    rto: PositiveDuration | None = None
    timeout: PositiveDuration | None = None
    verify: tuple[PgQuery, ...] = ()


RESTORE_SPECS: Mapping[str, type[StrictModel]] = {
    "file": FileRestoreSpec,
    "restic": ResticRestoreSpec,
    "postgres_dump": PostgresRestoreSpec,
}
RestoreSpec = FileRestoreSpec | ResticRestoreSpec | PostgresRestoreSpec


@dataclass(frozen=True)
class BackupOptions:
    """A backup's validated kind-specific settings."""

    integrity: str  # the method (see INTEGRITY_METHODS / RESTIC_INTEGRITY_RE)
    restore: RestoreSpec | None  # the restore_test section, validated; None when absent
    restic_slices: int = 0  # read-data-subset/N: N (0 otherwise)

    def restore_spec(self, kind: str) -> RestoreSpec | None:
        """The restore settings for a restore test run: the configured ones or the kind's defaults."""
        if self.restore is not None:
            return self.restore
        model = RESTORE_SPECS.get(kind)
        return model() if model is not None else None  # type: ignore[return-value]


def backup_options(inv: Inventory) -> dict[str, BackupOptions]:
    """Validate the kind-specific settings of every backup; raise InventoryError with all problems."""
    doc = read_yaml(inv.path, InventoryError)
    raw = doc.data.get("backups") if isinstance(doc.data, dict) else None
    raw = raw if isinstance(raw, dict) else {}
    problems: list[ConfigProblem] = []
    out: dict[str, BackupOptions] = {}
    for name, backup in inv.backups.items():
        found = raw.get(name)
        entry: Mapping[str, Any] = found if isinstance(found, dict) else {}
        opts = _one(name, backup, entry, doc.file, doc.lines, problems)
        if opts is not None:
            out[name] = opts
    raise_if_problems(problems, InventoryError)
    return out


def _one(
    name: str, backup: Backup, entry: Mapping[str, Any], file: str, lines: LineMap, problems: list[ConfigProblem]
) -> BackupOptions | None:
    kind = backup.kind
    where = ("backups", name)
    method, slices = _integrity(kind, backup.integrity)
    if method is None:
        allowed = INTEGRITY_METHODS.get(kind)
        choices = ", ".join(allowed) if allowed else "check, read-data, read-data-subset/N (N 1-9999)"
        if kind not in INTEGRITY_METHODS and kind != "restic":
            choices = "none (integrity is not verifiable for snapshots)"
        problems.append(
            ConfigProblem(
                file,
                lines.nearest((*where, "integrity")),
                f"backups.{name}.integrity",
                f"unknown integrity method {backup.integrity!r} for a {kind} backup; use {choices}",
            )
        )
    for key, message in _kind_problems(backup):
        problems.append(ConfigProblem(file, lines.nearest((*where, key)), f"backups.{name}.{key}", message))
    raw_restore = entry.get("restore_test")
    spec: Any = None
    if raw_restore is not None:
        model = RESTORE_SPECS.get(kind)
        if model is None:
            problems.append(
                ConfigProblem(
                    file,
                    lines.nearest((*where, "restore_test")),
                    f"backups.{name}.restore_test",
                    f"restore tests are not supported for {kind} backups (kinds: {', '.join(RESTORE_SPECS)})",
                )
            )
        else:
            spec, found = validate_model(model, raw_restore, file=file, lines=lines, prefix=(*where, "restore_test"))
            problems.extend(found)
            if (
                isinstance(spec, PostgresRestoreSpec)
                and spec.server
                and spec.server.password_env
                and (spec.server.password_file)
            ):
                problems.append(
                    ConfigProblem(
                        file,
                        lines.nearest((*where, "restore_test", "server")),
                        f"backups.{name}.restore_test.server",
                        "set password_env or password_file, not both",
                    )
                )
    if method is None or (raw_restore is not None and spec is None):
        return None
    return BackupOptions(integrity=method, restore=spec, restic_slices=slices)


def _kind_problems(backup: Backup) -> list[tuple[str, str]]:
    """(key, message) for settings a kind needs that the inventory schema cannot express."""
    out: list[tuple[str, str]] = []
    path = getattr(backup, "path", None)
    if isinstance(path, str) and not path.startswith("/"):
        out.append(("path", f"must be an absolute path (glob), got {path!r}"))
    if isinstance(backup, ResticBackup):
        if not backup.password_env and not backup.password_file:
            out.append(("password_env", "a restic backup needs password_env or password_file"))
        elif backup.password_env and backup.password_file:
            out.append(("password_file", "set password_env or password_file, not both"))
    return out


def _integrity(kind: str, value: str | None) -> tuple[str | None, int]:
    if kind == "restic":
        text = value or f"read-data-subset/{DEFAULT_RESTIC_SLICES}"
        m = RESTIC_INTEGRITY_RE.match(text)
        if not m:
            return None, 0
        return (m.group(1), int(m.group(2))) if m.group(2) else (text, 0)
    allowed = INTEGRITY_METHODS.get(kind, ("none",))
    if value is None:
        return allowed[0], 0
    return (value, 0) if value in allowed else (None, 0)
