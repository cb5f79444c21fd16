"""Pack-level invariants of checks/files (metadata, tests, shared probes and params)."""

from __future__ import annotations

from pathlib import Path

from helpers import assert_pack_ok


def test_files_pack_invariants():
    assert_pack_ok("files.", Path(__file__).parent)
