"""A third-party itops plugin: the report format ``count`` and the backup kind ``dated_file``.

It uses only itops's public plugin API (:mod:`itops.hookspecs`, :mod:`itops.plugins`) and classes a
plugin builds on (the ``Backup`` model, the file backup verifier); itops's code knows nothing of it.
"""

from __future__ import annotations

from pathlib import Path

from itops.backup.files import FileKind
from itops.hookspecs import hookimpl
from itops.inventory_schema import FileBackup
from itops.plugins import BackupKindSpec, ReportFormat
from itops.report.data import ReportData


def render_count(data: ReportData, templates: Path | None) -> bytes:
    """One line per status with its count, then the run id: ``FAIL 3``."""
    counts = data.counts
    lines = [f"{status} {n}" for status, n in sorted(counts.items()) if n]
    return ("\n".join([f"run {data.run.id}", *lines]) + "\n").encode()


class DatedFileBackup(FileBackup):
    """A file backup whose copies carry their date in the name (verified like a ``file`` backup)."""

    date_format: str = "%Y%m%d"


@hookimpl
def itops_report_formats() -> list[ReportFormat]:
    return [ReportFormat("count", ".count.txt", render_count)]


@hookimpl
def itops_backup_kinds() -> list[BackupKindSpec]:
    return [BackupKindSpec("dated_file", DatedFileBackup, FileKind())]
