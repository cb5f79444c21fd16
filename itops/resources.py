"""Locate the data folders (checks, templates, playbooks, inventory) shipped with itops.

In a source checkout (or an editable install) they are the top-level folders of
the repository; in a regular install setuptools maps them to ``itops/bundled/``.
"""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent
BUNDLED_NAMES = ("checks", "templates", "playbooks", "inventory")


def bundled_dir(name: str) -> Path:
    """Path of a shipped data folder (``checks``, ``templates``, ``playbooks``, ``inventory``)."""
    if name not in BUNDLED_NAMES:
        raise ValueError(f"unknown bundled folder {name!r}")
    installed = _PKG / "bundled" / name
    if installed.is_dir():
        return installed
    return _PKG.parent / name
