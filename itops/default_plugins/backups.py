"""Built-in backup kinds: their inventory models and, for backups verified on a host, their verifiers."""

from __future__ import annotations

from itops.backup.files import FileKind
from itops.backup.postgres import PostgresDumpKind
from itops.backup.restic import ResticKind
from itops.hookspecs import hookimpl
from itops.inventory_schema import (
    AWSBackupVault,
    AWSSnapshotBackup,
    FileBackup,
    PostgresDumpBackup,
    ResticBackup,
    S3Backup,
)
from itops.plugins import BackupKindSpec


@hookimpl
def itops_backup_kinds() -> list[BackupKindSpec]:
    return [
        BackupKindSpec("file", FileBackup, FileKind()),
        BackupKindSpec("s3", S3Backup),
        BackupKindSpec("restic", ResticBackup, ResticKind()),
        BackupKindSpec("postgres_dump", PostgresDumpBackup, PostgresDumpKind()),
        BackupKindSpec("ebs_snapshot", AWSSnapshotBackup),
        BackupKindSpec("rds_snapshot", AWSSnapshotBackup),
        BackupKindSpec("aws_backup", AWSBackupVault),
    ]
