"""Inline secrets in operator YAML (inventory, playbooks, schedules): found and refused with where they are;
:func:`validate_or_raise` validates a document against its model with that refusal built in.

A key that looks like a secret (``password``, ``token``, ``secret_access_key`` ...) holding a value is
a problem at its ``file:line``, with what to use instead (``password_env``, ``password_file``, a key).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping

from itops.errors import ConfigError, ConfigProblem
from itops.yamlload import ErrorFactory, KeyPath, LineMap, M, format_path, raise_if_problems, validate_model

__all__ = ["find_inline_secrets", "inline_secret_paths", "validate_or_raise"]


_SECRET_KEY = re.compile(
    r"^(?:.*[_-])?(?:password|passwd|passphrase|secret|token|secret_access_key|private_key)$", re.I
)
_SECRET_HINT = (
    "secrets are never written inline: use password_env: NAME (an environment variable) "
    "or password_file: PATH, or an SSH key / agent"
)


def inline_secret_paths(data: object, path: KeyPath = (), _seen: set[int] | None = None) -> Iterator[KeyPath]:
    """Key paths of every mapping key that looks like an inline secret (password, token, ...).

    Only a key holding a value is a secret: a key holding a mapping or list is a name (a host
    called ``db-token``, a group ``ops-secret``), and what is inside it is searched instead.
    Each mapping or list is searched once (by identity): a YAML alias shares one object, whose
    secrets are reported where the anchor is, and a shared object is never walked again.
    """
    seen = set() if _seen is None else _seen
    if isinstance(data, Mapping | list):
        if id(data) in seen:
            return
        seen.add(id(data))
    if isinstance(data, Mapping):
        for key, value in data.items():
            child = (*path, str(key))
            if isinstance(key, str) and _SECRET_KEY.match(key) and not isinstance(value, Mapping | list):
                yield child
            else:
                yield from inline_secret_paths(value, child, seen)
    elif isinstance(data, list):
        for index, item in enumerate(data):
            yield from inline_secret_paths(item, (*path, index), seen)


def find_inline_secrets(data: object, *, file: str, lines: LineMap) -> list[ConfigProblem]:
    """A problem for every key that looks like an inline secret, telling what to use instead."""
    return [
        ConfigProblem(file, lines.nearest(path), format_path(path), _SECRET_HINT) for path in inline_secret_paths(data)
    ]


def validate_or_raise(
    model: type[M],
    data: object,
    *,
    file: str,
    lines: LineMap,
    error: ErrorFactory = ConfigError,
) -> M:
    """Validate ``data`` against ``model``; raise ``error(problems)`` with every problem."""
    problems = find_inline_secrets(data, file=file, lines=lines)
    instance, more = validate_model(model, data, file=file, lines=lines, ignore=inline_secret_paths(data))
    raise_if_problems(problems + more, error)
    assert instance is not None
    return instance
