"""Pack-level invariants of checks/ssh (metadata, tests, shared probes and params)."""

from __future__ import annotations

from pathlib import Path

from helpers import assert_pack_ok


def test_ssh_pack_invariants():
    assert_pack_ok("ssh.", Path(__file__).parent)
