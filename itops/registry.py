"""Discover, validate and index checks.

Built-in packs (``checks/``), user folders (``--checks-dir`` or the inventory's
``checks_dirs``) and the ``itops.checks`` entry point group all go through the
same loader. A user check that fails to import or has invalid metadata is
skipped with a warning naming the file and the problem; a broken *built-in*
check is a bug and raises, so CI catches it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib.util
import logging
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

from pydantic import ValidationError

from itops.checkapi import Check, is_pending_check
from itops.errors import CheckError, UsageError
from itops.resources import bundled_dir

log = logging.getLogger(__name__)

#: Hook for non-Python check formats (the declarative YAML loader registers here).
FileLoader = Callable[[Path], list[Check]]
_FILE_LOADERS: dict[str, FileLoader] = {}


def register_file_loader(suffix: str, loader: FileLoader) -> None:
    """Teach the registry to load check files with ``suffix`` (e.g. ``.yaml``)."""
    _FILE_LOADERS[suffix] = loader


@dataclass
class Registry:
    """All loaded checks by id, plus the warnings produced while loading them."""

    checks: dict[str, Check] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[Check]:
        return iter(sorted(self.checks.values(), key=lambda c: c.id))

    def __len__(self) -> int:
        return len(self.checks)

    def get(self, check_id: str) -> Check:
        try:
            return self.checks[check_id]
        except KeyError:
            close = [c for c in self.checks if check_id in c]
            hint = f" (did you mean {', '.join(close[:3])}?)" if close else ""
            raise UsageError(f"no check named {check_id!r}{hint}", hint="`itops checks list` shows them") from None

    def add(self, check: Check, *, strict: bool) -> None:
        if check.id in self.checks:
            msg = f"duplicate check id {check.id} in {check.source} (already from {self.checks[check.id].source})"
            if strict:
                raise CheckError(msg)
            self.warnings.append(msg + "; skipped")
            return
        self.checks[check.id] = check

    def select(self, patterns: Sequence[str] | None, target: str | None = None) -> list[Check]:
        """Checks whose id matches any glob in ``patterns`` (all when empty), optionally of one target kind."""
        pats = [p.strip() for item in (patterns or []) for p in item.split(",") if p.strip()]
        chosen = [
            c
            for c in self
            if (target is None or c.meta.target == target)
            and (not pats or any(fnmatch.fnmatchcase(c.id, p) for p in pats))
        ]
        return chosen


def _import_file(path: Path) -> ModuleType:
    digest = hashlib.sha1(str(path).encode(), usedforsecurity=False).hexdigest()[:10]
    name = f"itops_checks_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def checks_from_module(module: ModuleType, source: str) -> Iterator[Check]:
    """Validate and yield every check declared in an imported module."""
    for value in vars(module).values():
        if is_pending_check(value):
            yield value.build(source)
        elif isinstance(value, Check):
            yield value


def _load_file(path: Path) -> list[Check]:
    if path.suffix == ".py":
        return list(checks_from_module(_import_file(path), str(path)))
    loader = _FILE_LOADERS.get(path.suffix)
    return loader(path) if loader else []


def _check_files(folder: Path) -> Iterable[Path]:
    suffixes = {".py", *_FILE_LOADERS}
    for path in sorted(folder.rglob("*")):
        if path.suffix in suffixes and path.is_file() and not path.name.startswith(("_", ".")):
            yield path


def load_folder(registry: Registry, folder: Path, *, strict: bool) -> None:
    """Load every check file under ``folder``; in non-strict mode bad files become warnings."""
    if not folder.is_dir():
        msg = f"checks folder {folder} does not exist"
        if strict:
            raise CheckError(msg)
        registry.warnings.append(msg)
        return
    for path in _check_files(folder):
        try:
            checks = _load_file(path)
        except ValidationError as exc:
            if strict:
                raise CheckError(f"{path}: invalid check metadata: {exc}") from exc
            registry.warnings.append(f"{path}: invalid check metadata, skipped: {_short(exc)}")
            continue
        except Exception as exc:  # a user's file may raise anything at import
            if strict:
                raise CheckError(f"{path}: {type(exc).__name__}: {exc}") from exc
            registry.warnings.append(f"{path}: could not load ({type(exc).__name__}: {exc}), skipped")
            continue
        for check in checks:
            registry.add(check, strict=strict)


def _short(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'check'}: {e['msg']}" for e in exc.errors()[:5]
    )


def _load_entry_points(registry: Registry) -> None:
    for ep in entry_points(group="itops.checks"):
        try:
            target = ep.load()
            if isinstance(target, ModuleType):
                checks = list(checks_from_module(target, f"entry point {ep.name}"))
            else:
                checks = list(checks_from_module(_import_file(Path(str(target))), ep.name))
        except Exception as exc:
            registry.warnings.append(f"entry point {ep.name}: could not load ({exc}), skipped")
            continue
        for check in checks:
            registry.add(check, strict=False)


def load_registry(extra_dirs: Sequence[Path] = (), *, entry_point_packs: bool = True) -> Registry:
    """The built-in packs (strict: a broken one is a bug) plus user folders and plugins (lenient)."""
    _ensure_builtin_loaders()
    registry = Registry()
    load_folder(registry, bundled_dir("checks"), strict=True)
    for folder in extra_dirs:
        load_folder(registry, Path(folder), strict=False)
    if entry_point_packs:
        _load_entry_points(registry)
    for warning in registry.warnings:
        log.warning("%s", warning)
    return registry


def _ensure_builtin_loaders() -> None:
    # The declarative loader lives in its own module; importing it registers ".yaml".
    try:
        importlib.import_module("itops.declarative")
    except ModuleNotFoundError as exc:
        if exc.name != "itops.declarative":
            raise
