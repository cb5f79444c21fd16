"""The one plugin registry: built-ins and third-party packages alike come in through entry points.

:func:`plugin_manager` loads every ``itops`` entry point (itops's own ``itops.default_plugins.*``
first, then other packages in name order) the first time it is called, never at import time. The
table functions below call one hook each (see :mod:`itops.hookspecs`) and cache the answer:
:func:`check_loaders`, :func:`check_folders`, :func:`report_formats`, :func:`backup_kinds`,
:func:`aws_collections` and :func:`notifiers`. A third-party plugin that fails to load, or that
registers a name already taken, is skipped with a warning; a broken built-in is a bug and raises.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pluggy

from itops import hookspecs
from itops.errors import ItopsError

if TYPE_CHECKING:
    from itops.checkapi import Check
    from itops.transport.aws import CollectionSpec

log = logging.getLogger(__name__)

#: The entry point group a package lists its plugin modules in.
ENTRY_POINT_GROUP = "itops"
#: The distribution whose plugins are the built-ins.
BUILTIN_DIST = "itops"


class PluginError(ItopsError):
    """A built-in plugin is broken (a bug in itops, not in the user's setup)."""


@dataclass(frozen=True)
class CheckLoader:
    """Loads the checks of one kind of file (``suffix``: ``.py``, ``.yaml``)."""

    suffix: str
    load: Callable[[Path], list[Check]]


@dataclass(frozen=True)
class ReportFormat:
    """A report format: ``render(report_data, templates_dir_or_None) -> bytes``."""

    name: str
    extension: str
    render: Callable[[Any, Path | None], bytes]
    aliases: tuple[str, ...] = ()
    #: None when usable, else why not and how to fix it (checked before a run that will need it)
    unavailable: Callable[[], tuple[str, str] | None] | None = None


@dataclass(frozen=True)
class BackupKindSpec:
    """A backup kind: its inventory model and, for host-side kinds, its verifier."""

    name: str
    model: type[Any]  # a subclass of itops.inventory.Backup
    host_kind: Any = None  # an itops.backup.hostkinds.HostKind, or None for cloud kinds


@dataclass(frozen=True)
class NotifierChannel:
    """A notification channel: ``send(notifier_spec, message, attachment, base)``."""

    name: str
    send: Callable[..., None]


@dataclass(frozen=True)
class LoadedPlugin:
    name: str
    dist: str
    builtin: bool


_lock = threading.RLock()
_manager: pluggy.PluginManager | None = None
_loaded: dict[int, LoadedPlugin] = {}  # id(plugin object) -> where it came from
_problems: list[str] = []


def _dist_name(ep: EntryPoint) -> str:
    dist = ep.dist
    return dist.metadata["Name"] if dist is not None else ""


def _entry_points() -> list[EntryPoint]:
    eps = list(entry_points(group=ENTRY_POINT_GROUP))
    return sorted(eps, key=lambda ep: (_dist_name(ep).lower() != BUILTIN_DIST, _dist_name(ep).lower(), ep.name))


def plugin_manager() -> pluggy.PluginManager:
    """The plugin manager, with every ``itops`` entry point registered (loaded on the first call)."""
    global _manager
    with _lock:
        if _manager is not None:
            return _manager
        pm = pluggy.PluginManager(hookspecs.PROJECT)
        pm.add_hookspecs(hookspecs)
        for ep in _entry_points():
            dist = _dist_name(ep)
            builtin = dist.lower() == BUILTIN_DIST
            try:
                plugin = ep.load()
                pm.register(plugin, name=f"{dist}:{ep.name}")
            except Exception as exc:
                if builtin:
                    raise PluginError(f"built-in plugin {ep.name} ({ep.value}) is broken: {exc}") from exc
                problem = f"plugin {ep.name} from {dist or 'an unknown package'} could not load ({exc}), skipped"
                log.warning("%s", problem)
                _problems.append(problem)
                continue
            _loaded[id(plugin)] = LoadedPlugin(ep.name, dist, builtin)
        _manager = pm
        return pm


def startup() -> None:
    """Load the plugins now (the CLI calls this once at start-up; every table also loads them lazily)."""
    plugin_manager()


def loaded_plugins() -> list[LoadedPlugin]:
    """Every plugin registered, built-ins first (``itops plugins``-style listings, tests)."""
    plugin_manager()
    return list(_loaded.values())


def reset() -> None:
    """Forget the loaded plugins and cached tables (tests that install or remove a plugin)."""
    global _manager
    with _lock:
        _manager = None
        _loaded.clear()
        _problems.clear()
        for table in _TABLES:
            table.cache_clear()


T = TypeVar("T")


def _answers(hook_name: str) -> Iterator[tuple[LoadedPlugin, list[Any]]]:
    """Each plugin's answer to one hook, built-ins first, in entry point order."""
    pm = plugin_manager()
    caller = getattr(pm.hook, hook_name)
    order = {id(p): i for i, p in enumerate(pm.get_plugins())}
    impls = sorted(caller.get_hookimpls(), key=lambda impl: (not _origin(impl.plugin).builtin, order[id(impl.plugin)]))
    for impl in impls:
        origin = _origin(impl.plugin)
        try:
            answer = impl.function()
        except Exception as exc:
            if origin.builtin:
                raise PluginError(f"built-in plugin {origin.name}: {hook_name} raised {exc}") from exc
            log.warning("plugin %s (%s): %s raised %s, skipped", origin.name, origin.dist, hook_name, exc)
            continue
        yield origin, list(answer or [])


def _origin(plugin: object) -> LoadedPlugin:
    return _loaded.get(id(plugin), LoadedPlugin(str(plugin), "", False))


def _table(hook_name: str, key: Callable[[Any], str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for origin, items in _answers(hook_name):
        for item in items:
            name = key(item)
            if name in out:
                msg = f"plugin {origin.name} ({origin.dist}): {hook_name} entry {name!r} is already registered"
                if origin.builtin:
                    raise PluginError(msg)
                log.warning("%s, skipped", msg)
                continue
            out[name] = item
    return out


@functools.cache
def check_loaders() -> Mapping[str, CheckLoader]:
    """File suffix -> loader (``.py``, ``.yaml``, ``.yml`` and any a plugin adds)."""
    return _table("itops_check_loaders", lambda x: x.suffix)


@functools.cache
def check_folders() -> tuple[tuple[Path, bool], ...]:
    """(folder, built-in) for every plugin's checks folder; built-in folders are loaded strictly."""
    return tuple(
        (Path(folder), origin.builtin) for origin, items in _answers("itops_check_folders") for folder in items
    )


@functools.cache
def report_formats() -> Mapping[str, ReportFormat]:
    """Format name -> report format."""
    return _table("itops_report_formats", lambda x: x.name)


@functools.cache
def backup_kinds() -> Mapping[str, BackupKindSpec]:
    """Backup kind name -> its inventory model and verifier."""
    return _table("itops_backup_kinds", lambda x: x.name)


@functools.cache
def aws_collections() -> Mapping[str, CollectionSpec]:
    """Collection name -> how to make it."""
    return _table("itops_aws_collections", lambda x: x.name)


@functools.cache
def notifiers() -> Mapping[str, NotifierChannel]:
    """Channel name (``email``, ``webhook``) -> how to send."""
    return _table("itops_notifiers", lambda x: x.name)


_TABLES = (check_loaders, check_folders, report_formats, backup_kinds, aws_collections, notifiers)
