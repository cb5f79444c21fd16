"""Built-in check loaders (``.py``, ``.yaml``, ``.yml``) and the built-in ``checks/`` folder."""

from __future__ import annotations

from pathlib import Path

from itops.declarative import SUFFIXES, load_declarative_file
from itops.hookspecs import hookimpl
from itops.plugins import CheckLoader
from itops.registry import load_python_file
from itops.resources import bundled_dir


@hookimpl
def itops_check_loaders() -> list[CheckLoader]:
    return [CheckLoader(".py", load_python_file), *(CheckLoader(s, load_declarative_file) for s in SUFFIXES)]


@hookimpl
def itops_check_folders() -> list[Path]:
    return [bundled_dir("checks")]
