"""Pack-level invariants of checks/accounts (metadata, tests, shared probes and params)."""

from __future__ import annotations

from pathlib import Path

from helpers import assert_pack_ok


def test_accounts_pack_invariants():
    assert_pack_ok("accounts.", Path(__file__).parent)
