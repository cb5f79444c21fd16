"""Discover, validate and index checks.

Built-in packs (``checks/``, registered by the ``itops`` entry point ``checks`` like any plugin's
folder, see :mod:`itops.plugins`), user folders (``--checks-dir`` or the inventory's ``checks_dirs``)
and the ``itops.checks`` entry point group all go through the same loader, which reads each file
with the loader plugins register for its suffix (:func:`load_python_file` for ``.py``,
:func:`itops.declarative.load_declarative_file` for ``.yaml``). A user check that fails to import or
has invalid metadata is skipped with a warning naming the file and the problem; a broken *built-in*
check is a bug and raises, so CI catches it. A built-in check must sit in the folder its id prefix
names (``checks/ssh/`` holds only ``ssh.*``); a built-in ``examples`` folder is documentation and is
not loaded.

Importing a file runs it, so a folder is searched for check modules only: ``.py`` files that
import the check API (``itops.checkapi``), never ``setup.py``, ``conftest.py``, ``noxfile.py``,
``test_*.py``/``*_test.py`` or ``_``/``.`` files, and never inside ``.``/``_`` folders, virtualenvs
or ``venv``/``env``/``site-packages``/``node_modules``/``build``/``dist``. A user folder that
another user could write code into is refused as a whole (ConfigError) before anything is imported.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import hashlib
import importlib.util
import logging
import os
import re
import stat
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import ModuleType

from pydantic import ValidationError

from itops import plugins
from itops.checkapi import Check, is_pending_check
from itops.errors import CheckError, ConfigError, ConfigProblem, UsageError

log = logging.getLogger(__name__)

#: A built-in folder that holds documentation and examples, never loaded.
EXAMPLES_FOLDER = "examples"


def _suffixes() -> set[str]:
    return set(plugins.check_loaders())


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
        pats = split_patterns(patterns)
        chosen = [
            c
            for c in self
            if (target is None or c.meta.target == target)
            and (not pats or any(fnmatch.fnmatchcase(c.id, p) for p in pats))
        ]
        return chosen

    def matches_any(self, pattern: str) -> bool:
        """Does the check id glob ``pattern`` match at least one loaded check?"""
        return any(fnmatch.fnmatchcase(c, pattern) for c in self.checks)

    def unmatched(self, patterns: Sequence[str] | None) -> list[str]:
        """The terms of ``patterns`` (comma-separated items allowed) that match no loaded check."""
        return [p for p in split_patterns(patterns) if not self.matches_any(p)]

    def require_matches(self, patterns: Sequence[str] | None, option: str = "--checks") -> None:
        """Raise :class:`UsageError` (exit 2) when any term of ``patterns`` matches no check."""
        unmatched = self.unmatched(patterns)
        if unmatched:
            raise UsageError(
                f"{option} " + "; ".join(self.no_match_message(p) for p in unmatched),
                hint=f"every {option} term must match a check; `itops checks list` shows them",
            )

    def did_you_mean(self, pattern: str) -> str:
        """`` (did you mean 'ssh.*'?)`` for a pattern matching nothing, else the packs there are."""
        packs = sorted({c.rsplit(".", 1)[0] for c in self.checks} | {c.split(".", 1)[0] for c in self.checks})
        candidates = [*self.checks, *(f"{p}.*" for p in packs)]
        close = difflib.get_close_matches(pattern, candidates, n=1, cutoff=0.8)
        stem = pattern.rstrip("*?")
        if not close and stem and any(c.startswith(stem) for c in self.checks):
            close = [stem + "*"]
        if close:
            return f" (did you mean {close[0]!r}?)"
        tops = sorted({c.split(".", 1)[0] for c in self.checks})
        return f"; check packs: {', '.join(f'{t}.*' for t in tops)} (`itops checks list` shows every check)"

    def no_match_message(self, pattern: str) -> str:
        """``'sshd.*' matches no check (did you mean 'ssh.*'?)``."""
        return f"{pattern!r} matches no check{self.did_you_mean(pattern)}"


def split_patterns(patterns: Sequence[str] | None) -> list[str]:
    """Check id globs from ``--checks`` items (each may be comma-separated), blanks dropped."""
    return [p.strip() for item in (patterns or []) for p in item.split(",") if p.strip()]


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


def load_python_file(path: Path) -> list[Check]:
    """The checks a Python check module declares (importing it runs it)."""
    return list(checks_from_module(_import_file(path), str(path)))


def _load_file(path: Path) -> list[Check]:
    loader = plugins.check_loaders().get(path.suffix)
    return loader.load(path) if loader else []


#: Python files that are never check modules, whatever they contain (packaging, pytest, nox).
NOT_CHECK_FILES = frozenset({"setup.py", "conftest.py", "noxfile.py"})
#: Folders never searched: besides these names, any starting with ``.`` or ``_`` and any virtualenv.
SKIPPED_FOLDERS = frozenset({"venv", "env", "site-packages", "node_modules", "build", "dist"})
#: A check module imports the check API (``from itops.checkapi import ...`` or ``from itops import checkapi``).
_USES_CHECK_API = re.compile(r"\bitops\.checkapi\b|\bfrom\s+itops\s+import\b[^\n]*\bcheckapi\b")


def _skipped_folder(folder: Path) -> bool:
    return folder.name.startswith((".", "_")) or folder.name in SKIPPED_FOLDERS or (folder / "pyvenv.cfg").exists()


def _check_file_name(name: str, suffixes: set[str]) -> bool:
    if name.startswith(("_", ".")) or Path(name).suffix not in suffixes:
        return False
    return not (
        name.endswith(".py") and (name in NOT_CHECK_FILES or name.startswith("test_") or name.endswith("_test.py"))
    )


def _walk(folder: Path, descend: Callable[[Path], bool] = lambda _: True) -> Iterator[tuple[Path, list[str]]]:
    """Each searched folder under ``folder`` (itself first) with its file names, sorted; symlinked folders
    are not followed, nor folders ``descend`` says no to."""
    for current, dirs, files in os.walk(folder):
        here = Path(current)
        dirs[:] = sorted(d for d in dirs if not _skipped_folder(here / d))
        yield here, sorted(files)
        if not descend(here):
            dirs.clear()


def _check_files(folder: Path, descend: Callable[[Path], bool] = lambda _: True) -> Iterable[Path]:
    suffixes = _suffixes()
    for here, files in _walk(folder, descend):
        for name in files:
            path = here / name
            if _check_file_name(name, suffixes) and path.is_file():
                yield path


def _unsafe(path: Path, *, sticky_ok: bool) -> str | None:
    """Why another user could change what ``path`` holds (and the fix), or None."""
    try:
        st = path.stat()
    except OSError as exc:
        return f"cannot check {path}: {exc.strerror or exc}"
    if st.st_uid not in (0, os.geteuid()):
        return f"{path} is owned by another user (uid {st.st_uid}): chown it to root or to uid {os.geteuid()}"
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o022 and not (sticky_ok and mode & stat.S_ISVTX):
        return f"{path} is writable by group or others (mode {mode:04o}): chmod go-w {path}"
    return None


def unsafe_folder_problems(folder: Path) -> list[str]:
    """Why importing from ``folder`` could run code another user wrote: the folder, every folder above
    it up to ``/`` (a sticky one, like /tmp, is fine there), every folder searched below it and every
    check file must be owned by root or this user and not writable by group or others (OpenSSH's
    StrictModes rule for ``authorized_keys``)."""
    given, folder = folder.absolute(), folder.resolve()
    # the folders above the path as given (a symlink's own folder) and above where it leads
    above = sorted({*given.parents, *folder.parents} - {folder}, key=lambda p: (len(p.parts), str(p)))
    problems = [p for parent in above if (p := _unsafe(parent, sticky_ok=True))]
    suffixes = _suffixes()
    unsafe: set[Path] = set()  # what is below an unsafe folder is not looked at: the folder is refused
    for here, files in _walk(folder, lambda here: here not in unsafe):
        if problem := _unsafe(here, sticky_ok=False):
            problems.append(problem)
            unsafe.add(here)
            continue
        for name in files:
            is_check_file = _check_file_name(name, suffixes) and (here / name).is_file()
            if is_check_file and (problem := _unsafe(here / name, sticky_ok=False)):
                problems.append(problem)
    return problems


def _refuse_unsafe_folders(folders: Sequence[Path]) -> None:
    problems = [
        ConfigProblem(str(folder), None, "", f"not loaded, other users could change the code itops runs: {problem}")
        for folder in folders
        if folder.is_dir()
        for problem in unsafe_folder_problems(folder)
    ]
    if problems:
        raise ConfigError(problems, what="checks folder")


def _is_check_module(path: Path) -> bool:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return True  # importing it reports why it cannot be read, as for any broken check file
    return bool(_USES_CHECK_API.search(text))


def misplaced(check: Check, path: Path, folder: Path) -> str | None:
    """Why a built-in check is in the wrong folder (its id prefix names another), or None."""
    try:
        parts = path.relative_to(folder).parts
    except ValueError:
        return None
    domain = check.id.split(".", 1)[0]
    if len(parts) < 2 or parts[0] != domain:
        return f"{path}: check {check.id} must be in {folder / domain}/ (a built-in check lives where its id says)"
    return None


def load_folder(registry: Registry, folder: Path, *, strict: bool, builtin: bool = False) -> None:
    """Load every check file under ``folder``; in non-strict mode bad files become warnings.

    ``builtin``: the folder is a pack shipped by itops or a plugin: its ``examples`` folder is not
    loaded and a check must sit in the folder its id prefix names (a misplaced one is an error when
    ``strict``, else skipped with a warning).
    """
    if not folder.is_dir():
        msg = f"checks folder {folder} does not exist"
        if strict:
            raise CheckError(msg)
        registry.warnings.append(msg)
        return
    top_examples = folder / EXAMPLES_FOLDER
    for path in _check_files(folder, (lambda here: here != top_examples) if builtin else (lambda _: True)):
        if builtin and path.parent == top_examples:
            continue
        if path.suffix == ".py" and not _is_check_module(path):
            if strict:
                raise CheckError(f"{path} does not import itops.checkapi: not a check module")
            log.debug("%s does not import itops.checkapi: not a check module, not imported", path)
            continue
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
            if builtin and (problem := misplaced(check, path, folder)):
                if strict:
                    raise CheckError(problem)
                registry.warnings.append(problem + "; skipped")
                continue
            registry.add(check, strict=strict)


def _short(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'check'}: {e['msg']}" for e in exc.errors()[:5])


@functools.cache
def _check_entry_points() -> tuple[EntryPoint, ...]:
    """The ``itops.checks`` entry points, found once per process as the plugins are (scanning every
    installed distribution's metadata costs ~10 ms per run)."""
    return tuple(entry_points(group="itops.checks"))


def _load_entry_points(registry: Registry) -> None:
    for ep in _check_entry_points():
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


#: the checks of the plugin folders as last loaded, by what the folders held then (see _plugin_packs)
_packs_cache: dict[tuple[object, ...], Registry] = {}
_packs_lock = threading.Lock()


def _folder_state(folder: Path) -> tuple[object, ...]:
    """What a pack folder holds: every file's path, size and modification time."""
    state: list[object] = [str(folder)]
    for here, files in _walk(folder):
        for name in files:
            try:
                st = (here / name).stat()
            except OSError:
                continue
            state.append((str(here / name), st.st_size, st.st_mtime_ns))
    return tuple(state)


def _plugin_packs() -> Registry:
    """A fresh registry holding the checks of every plugin's folder (itops' own ``checks/`` first).

    Importing ~90 check files costs tens of milliseconds per run (more without bytecode caches), and
    a process that runs many audits (the scheduler, an in-process benchmark) would pay it each time:
    the loaded checks are kept and reused while no file in those folders has changed (path, size and
    mtime of each), otherwise the folders are loaded again. Check objects are immutable; each call
    gets its own Registry (dict and warnings), so callers may add to it.
    """
    folders = plugins.check_folders()
    key = tuple((builtin, _folder_state(folder)) for folder, builtin in folders)
    with _packs_lock:
        cached = _packs_cache.get(key)
        if cached is None:
            cached = Registry()
            for folder, builtin in folders:
                load_folder(cached, folder, strict=builtin, builtin=True)
            _packs_cache.clear()  # only the latest state is kept
            _packs_cache[key] = cached
        return Registry(dict(cached.checks), list(cached.warnings))


def load_registry(extra_dirs: Sequence[Path] = (), *, entry_point_packs: bool = True) -> Registry:
    """The built-in packs (strict: a broken one is a bug) plus user folders and plugins (lenient).

    Raises ConfigError, before importing anything from them, when a user folder could hold code
    another user put there (see :func:`unsafe_folder_problems`).
    """
    registry = _plugin_packs()
    _refuse_unsafe_folders([Path(folder) for folder in extra_dirs])
    for folder in extra_dirs:
        load_folder(registry, Path(folder), strict=False)
    if entry_point_packs:
        _load_entry_points(registry)
    for warning in registry.warnings:
        log.warning("%s", warning)
    return registry
