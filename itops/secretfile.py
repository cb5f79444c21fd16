"""Secrets kept in files (``password_file``, ``url_file``, ...): read only when private to this user.

One rule for every such file itops reads — the SSH ``password_file``, the SMTP ``password_file`` and
webhook ``url_file`` of notifiers: like OpenSSH with an unprotected private key, a file that group or
others may read or write (any bit of 0o077) is refused rather than used, because the secret in it is
no longer this user's alone.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from itops.errors import SecretFileError


def read_secret_file(path: str | Path, key: str = "password_file") -> str:
    """The secret in ``path`` without its trailing newline; ``key`` names the setting in messages.

    Raises SecretFileError naming the setting, the path and the mode (never the content), with
    ``chmod 600 PATH`` as the hint, when the file is accessible by other users, unreadable or not UTF-8.
    """
    file = Path(path).expanduser()
    try:
        # the mode is read from the open file (fstat), so a symlink is judged by what it points to
        fd = os.open(file, os.O_RDONLY)
        with os.fdopen(fd, "r", encoding="utf-8") as fh:
            mode = stat.S_IMODE(os.fstat(fh.fileno()).st_mode)
            if mode & 0o077:
                raise SecretFileError(
                    f"{key} {file} is accessible by other users (mode {mode:04o}): not used",
                    hint=f"chmod 600 {file} (and consider whether the secret must now be changed)",
                )
            return fh.read().rstrip("\r\n")
    except OSError as exc:
        raise SecretFileError(f"cannot read {key} {file}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise SecretFileError(f"{key} {file} is not UTF-8 text") from exc
