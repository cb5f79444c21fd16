"""Private folders and files for what itops keeps: the run store, reports, metrics, scheduler state.

The store holds evidence auditors rely on and the scheduler's job store is unpickled on
start, so both stay private to the user running itops, whatever the umask:

- :func:`ensure_private_dir` creates a folder 0700 (tightening one we own that is only too
  readable) and refuses, with :class:`UnsafePathError` (a config error, exit 4), a folder owned
  by another user or writable by group or others: someone else could swap its files.
- :func:`write_private_atomic` writes a file 0600 through a temporary file with an
  unpredictable name (``tempfile.mkstemp``: O_CREAT|O_EXCL|O_NOFOLLOW) in the target folder,
  fsyncs it and renames it over the target. ``rename`` replaces a symlink planted at the
  target instead of writing through it, and a reader never sees half a file.
- :func:`open_private_append` opens an append-only log 0600 without following a symlink.
- :func:`private_sqlite_file` creates a SQLite database file 0600 before SQLite opens it
  (SQLite gives its -wal/-shm files the database file's mode).
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterable
from pathlib import Path

from itops.errors import ConfigError, ConfigProblem, ItopsError

DIR_MODE = 0o700
FILE_MODE = 0o600


class UnsafePathError(ConfigError):
    """A folder or file itops keeps private is owned by someone else or writable by others (exit 4)."""

    def __init__(self, path: Path | str, message: str) -> None:
        self.path = Path(path)
        self.problems = [ConfigProblem(str(path), None, "", message)]
        ItopsError.__init__(self, f"refusing to use {path}: {message}")


def _check_owned(path: Path, st: os.stat_result, kind: str) -> None:
    if st.st_uid != os.geteuid():
        raise UnsafePathError(
            path,
            f"the {kind} is owned by uid {st.st_uid}, not by the user running itops (uid {os.geteuid()}); "
            f"use a {kind} of your own",
        )
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        fix = "700" if kind == "folder" else "600"
        raise UnsafePathError(
            path,
            f"the {kind} is writable by group or others (mode {stat.S_IMODE(st.st_mode):04o}); "
            f"chmod {fix} {path} if nobody else has changed it",
        )


def make_private_dirs(path: Path | str) -> None:
    """``mkdir -p`` where every folder created (not the existing ones) is 0700 whatever the umask."""
    folder = Path(path)
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):
            d.mkdir(mode=DIR_MODE)
            os.chmod(d, DIR_MODE)


def ensure_private_dir(path: Path | str) -> Path:
    """Create ``path`` (and missing parents) and make sure it is a private folder of ours: mode 0700.

    A folder we own that is merely readable by others is tightened to 0700; one owned by
    another user or writable by group/others raises :class:`UnsafePathError`. Missing parents
    are created 0700 too; existing parents are left as they are.
    """
    folder = Path(path)
    make_private_dirs(folder)
    st = folder.stat()
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafePathError(folder, "not a folder")
    _check_owned(folder, st, "folder")
    if stat.S_IMODE(st.st_mode) != DIR_MODE:
        os.chmod(folder, DIR_MODE)
    return folder


def check_private_file(path: Path | str) -> None:
    """Refuse a file (not following a symlink) that is a symlink, foreign-owned or writable by others.

    A file of ours that is only too readable (from an older itops) is tightened to 0600.
    A missing file is fine (it will be created private).
    """
    file = Path(path)
    try:
        st = os.lstat(file)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(st.st_mode):
        raise UnsafePathError(file, "a symlink; itops does not follow links to its private files")
    if not stat.S_ISREG(st.st_mode):
        raise UnsafePathError(file, "not a regular file")
    _check_owned(file, st, "file")
    if stat.S_IMODE(st.st_mode) & 0o077:
        os.chmod(file, FILE_MODE)


def write_private_atomic(path: Path | str, data: bytes | str | Iterable[bytes], mode: int = FILE_MODE) -> Path:
    """Write ``data`` (or each of its pieces, for a document too big to hold) to ``path`` atomically,
    mode ``mode`` (0600), never through a symlink.

    The temporary file is ``.NAME.<random>.tmp`` beside the target, created exclusively
    (O_EXCL|O_NOFOLLOW) by :func:`tempfile.mkstemp`; it is fsynced, renamed over ``path``
    (which replaces a symlink at ``path`` rather than following it) and the folder fsynced.
    On any failure the previous file stays and the temporary file is removed. Missing
    folders on the way are created 0700.
    """
    target = Path(path)
    make_private_dirs(target.parent)
    pieces = [data.encode("utf-8")] if isinstance(data, str) else [data] if isinstance(data, bytes) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)
            for piece in pieces:
                fh.write(piece)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(target.parent)
    return target


def _fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def open_private_append(path: Path | str) -> int:
    """An O_APPEND descriptor on ``path`` (created 0600), refusing a symlink or a foreign file."""
    file = Path(path)
    fd = os.open(file, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePathError(file, "not a regular file")
        _check_owned(file, st, "file")
        if stat.S_IMODE(st.st_mode) != FILE_MODE:
            os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def private_sqlite_file(path: Path | str) -> Path:
    """Create the SQLite database ``path`` 0600 (if missing) and check it and its -wal/-shm files.

    SQLite creates the -wal and -shm files with the database file's permissions, so a 0600
    database keeps them 0600 too; existing ones from an older itops are tightened.
    """
    db = Path(path)
    with contextlib.suppress(FileExistsError):
        fd = os.open(db, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
        os.close(fd)
    for suffix in ("", "-wal", "-shm", "-journal"):
        check_private_file(db.with_name(db.name + suffix))
    return db
