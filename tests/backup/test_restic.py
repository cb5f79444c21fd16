"""restic backups with Debian's restic: per-host freshness, rotating check slices, corrupt packs, restores."""

from __future__ import annotations

import json

import pytest
from backup_helpers import by_check, failures, not_assessed, statuses, verify, write_inventory
from backup_services import RESTIC_PASSWORD, data_packs

from itops.backup.restic import coverage, load_state

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def restic_inventory(backup_lab, restic_repos, tmp_path_factory):
    d = tmp_path_factory.mktemp("restic-inv")
    entries = restic_repos.entries(d / "scratch")
    return write_inventory(d / "inv.yaml", backup_lab.fleet, entries), d


def test_stale_host_fails_and_fresh_host_passes(restic_inventory, tmp_path):
    inv, _ = restic_inventory
    out = verify(inv, ["restic-main"], state_dir=tmp_path)["restic-main"]
    rpo = {r.resource: r for r in by_check(out)["backup.within_rpo"]}
    assert set(rpo) == {"host web1 tags daily", "host old-host"}
    assert rpo["host web1 tags daily"].status.value == "PASS"
    assert rpo["host old-host"].status.value == "FAIL"
    assert rpo["host old-host"].message == "host old-host: newest backup is 10d 1h old, RPO 26h"


def test_restore_of_a_path_is_verified_and_timed(restic_inventory, tmp_path):
    inv, d = restic_inventory
    out = verify(inv, ["restic-main"], state_dir=tmp_path)["restic-main"]
    restore = out.facts.restore
    assert restore is not None and restore.ok, restore
    assert any("sha256 ok" in v for v in restore.verified)
    assert restore.seconds is not None and restore.seconds < 300
    assert statuses(out)["backup.restore_within_rto"] == {"PASS"}
    assert list((d / "scratch").iterdir()) == []  # scratch removed


def test_corrupt_pack_fails_the_read_data_check(restic_inventory, tmp_path):
    inv, _ = restic_inventory
    out = verify(inv, ["restic-corrupt"], state_dir=tmp_path)["restic-corrupt"]
    integrity = by_check(out)["backup.integrity_ok"][0]
    assert integrity.status.value == "FAIL"
    assert integrity.message.startswith("restic check --read-data failed")
    assert "Pack ID does not match" in integrity.message
    assert statuses(out)["backup.within_rpo"] == {"PASS"}


def test_repository_on_a_host_over_ssh_with_a_password_file(restic_inventory, tmp_path):
    inv, _ = restic_inventory
    out = verify(inv, ["restic-remote"], state_dir=tmp_path)["restic-remote"]
    assert not_assessed({"x": out}) == []
    assert all(s == {"PASS"} for cid, s in statuses(out).items() if cid != "backup.copies_retained"), out.results
    assert "bk2:" in out.facts.where


def test_check_slices_rotate_across_runs_until_the_whole_repository_is_covered(restic_repos, backup_lab, tmp_path):
    n = 3
    entry = {
        "kind": "restic",
        "repository": str(restic_repos.remote),
        "password_env": "ITOPS_TEST_RESTIC_PW",
        "rpo": "26h",
        "integrity": f"read-data-subset/{n}",
    }
    inv = write_inventory(tmp_path / "inv.yaml", None, {"rot": entry})
    state_dir = tmp_path / "state"
    seen = []
    for run in range(n):
        out = verify(inv, state_dir=state_dir)["rot"]
        msg = by_check(out)["backup.integrity_ok"][0].message
        seen.append(msg)
        assert msg.startswith(f"restic check --read-data-subset {run + 1}/{n} passed"), msg
    state = load_state(state_dir, "rot", n)
    assert sorted(state["last"]) == ["1", "2", "3"] and all(v["ok"] for v in state["last"].values())
    assert coverage(state).startswith(f"all {n} slices verified since")
    assert f"all {n} slices verified" in seen[-1]
    assert "1/3 slices verified (never checked: 2, 3)" in seen[0]
    # run N+1 starts the next round with the slice checked longest ago
    out = verify(inv, state_dir=state_dir)["rot"]
    assert by_check(out)["backup.integrity_ok"][0].message.startswith(f"restic check --read-data-subset 1/{n}")


def test_a_failed_slice_keeps_failing_until_it_verifies_again(restic_repos, tmp_path):
    """Only the slice holding the corrupt pack fails; later runs on other slices still report it."""
    n = 4
    pack = max(data_packs(restic_repos.corrupt), key=lambda p: p.stat().st_size)
    bad_slice = int(pack.name[:2], 16) % n + 1  # restic groups packs by the first byte of their id
    entry = {
        "kind": "restic",
        "repository": str(restic_repos.corrupt),
        "password_env": "ITOPS_TEST_RESTIC_PW",
        "rpo": "26h",
        "integrity": f"read-data-subset/{n}",
    }
    inv = write_inventory(tmp_path / "inv.yaml", None, {"rot": entry})
    state_dir = tmp_path / "state"
    messages = []
    for _ in range(n):
        out = verify(inv, state_dir=state_dir)["rot"]
        messages.append(by_check(out)["backup.integrity_ok"][0])
    for i, res in enumerate(messages, start=1):
        if i < bad_slice:
            assert res.status.value == "PASS", res.message
        elif i == bad_slice:
            assert res.status.value == "FAIL" and f"--read-data-subset {i}/{n} failed" in res.message
        else:
            assert res.status.value == "FAIL" and f"slice {bad_slice}/{n} failed on" in res.message, res.message
    state = json.loads((state_dir / "restic" / "rot.json").read_text())
    assert state["last"][str(bad_slice)]["ok"] is False


def test_the_password_never_appears_in_results_or_commands(restic_inventory, tmp_path):
    inv, _ = restic_inventory
    outcomes = verify(inv, state_dir=tmp_path)
    text = json.dumps([r.to_dict() for o in outcomes.values() for r in o.results])
    assert RESTIC_PASSWORD not in text
    assert set(failures(outcomes)) == {
        ("restic-main", "backup.within_rpo"),
        ("restic-corrupt", "backup.integrity_ok"),
    }


def test_a_missing_password_variable_is_an_error_not_a_pass(restic_repos, tmp_path, monkeypatch):
    monkeypatch.delenv("ITOPS_TEST_RESTIC_PW")
    entry = {
        "kind": "restic",
        "repository": str(restic_repos.remote),
        "password_env": "ITOPS_TEST_RESTIC_PW",
        "rpo": "26h",
    }
    inv = write_inventory(tmp_path / "inv.yaml", None, {"nopw": entry})
    out = verify(inv, state_dir=tmp_path)["nopw"]
    assert {r.status.value for r in out.results} == {"ERROR"}
    assert "ITOPS_TEST_RESTIC_PW (password_env) is not set" in out.results[0].message
