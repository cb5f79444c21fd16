"""Every extension point of itops, declared once (pluggy hook specifications).

A plugin is a module (or object) with functions marked ``@hookimpl`` and named like the hooks
below, registered through the ``itops`` entry point group of its package::

    [project.entry-points.itops]
    my_formats = "my_package.itops_plugin"

itops's own check loaders, check folders, report formats, backup kinds, AWS collections and
notifiers are registered exactly that way (``itops/default_plugins/``, listed in itops's
pyproject), so a third-party package can add any of them without touching itops's code. Hooks are
called by :mod:`itops.plugins` inside functions, the first time a table is needed, never when a
module is imported. Each hook returns a list of descriptions (the types are in
:mod:`itops.plugins`); a name registered twice keeps the first (itops's own come first) and the
other is skipped with a warning.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from pathlib import Path

    from itops.plugins import BackupKindSpec, CheckLoader, NotifierChannel, ReportFormat
    from itops.transport.aws import CollectionSpec

PROJECT = "itops"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def itops_check_loaders() -> list[CheckLoader]:
    """Loaders of check files, one per file suffix (``.py``, ``.yaml``): ``CheckLoader(suffix, load)``
    where ``load(path)`` returns the checks the file declares (raising on a broken file)."""
    raise NotImplementedError


@hookspec
def itops_check_folders() -> list[Path]:
    """Folders of checks this plugin ships. itops's own folder is loaded strictly (a broken check
    is an error, a check must sit in the folder its id prefix names); a plugin's leniently (a
    broken file is a warning)."""
    raise NotImplementedError


@hookspec
def itops_report_formats() -> list[ReportFormat]:
    """Report formats for ``itops report --format NAME`` and ``--report NAME:PATH``:
    ``ReportFormat(name, extension, render)`` where ``render(report_data, templates)`` returns bytes."""
    raise NotImplementedError


@hookspec
def itops_backup_kinds() -> list[BackupKindSpec]:
    """Backup kinds the inventory accepts in ``backups.*.kind``: ``BackupKindSpec(name, model,
    host_kind)``: the pydantic model (a subclass of ``itops.inventory.Backup``) and, for a backup
    verified on a host, the verifier (``itops.backup.hostkinds.HostKind``) that turns it into probes
    and facts; cloud kinds (``host_kind=None``) are verified by itops's cloud code."""
    raise NotImplementedError


@hookspec
def itops_aws_collections() -> list[CollectionSpec]:
    """AWS collections cloud checks name in ``collections``: ``CollectionSpec(name, scope, actions,
    collect)`` (build them with ``itops.transport.aws.collection``)."""
    raise NotImplementedError


@hookspec
def itops_notifiers() -> list[NotifierChannel]:
    """Scheduler notification channels (``email``, ``webhook``): ``NotifierChannel(name, send)``
    where ``send(spec, message, attachment, base)`` delivers one message or raises ``OSError``."""
    raise NotImplementedError
