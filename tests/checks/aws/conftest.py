"""AWS check tests: the moto server fixtures, and this folder importable (aws_canned)."""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from aws_fixtures import aws_env, moto  # noqa: E402, F401  (fixtures used by this folder's tests)
