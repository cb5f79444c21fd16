"""File backups on a real lab host (sshd, Debian root): real gzip/tar/zstd archives with planted faults."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import time
from pathlib import Path

import pytest
from backup_helpers import failures, not_assessed, statuses, verify, write_inventory

from itops_lab import plant
from itops_lab.backup_demo import DEMO_FAULTS, DEMO_RESTORE_ALL_FAULTS, plant_demo_backups
from itops_lab.plant import resolve_in_root

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def demo_outcomes(backup_lab, tmp_path_factory):
    inv = write_inventory(tmp_path_factory.mktemp("inv") / "inv.yaml", backup_lab.fleet, backup_lab.demo)
    return verify(inv)


def test_every_planted_fault_fails_with_a_message_saying_what_is_wrong(demo_outcomes):
    assert not_assessed(demo_outcomes) == []
    found = failures(demo_outcomes)
    assert set(found) == set(DEMO_FAULTS), found
    for key, fragment in DEMO_FAULTS.items():
        assert fragment in found[key], (key, found[key])


def test_healthy_backups_pass_every_check(demo_outcomes):
    fresh = statuses(demo_outcomes["files-fresh"])
    assert fresh == {
        "backup.within_rpo": {"PASS"},
        "backup.size_ok": {"PASS"},
        "backup.integrity_ok": {"PASS"},
        "backup.copies_retained": {"PASS"},
        "backup.restore_test_passed": {"PASS"},
        "backup.restore_within_rto": {"PASS"},
    }
    integrity = next(r for r in demo_outcomes["files-fresh"].results if r.check_id == "backup.integrity_ok")
    assert "gzip -t" in integrity.message and "tar -tzf" in integrity.message
    assert "sha256 matches SHA256SUMS" in integrity.message
    zstd = statuses(demo_outcomes["files-zstd"])
    assert all(s == {"PASS"} for s in zstd.values()), zstd
    restore = next(r for r in demo_outcomes["files-zstd"].results if r.check_id == "backup.restore_test_passed")
    assert "1 expected file(s) present" in restore.message and "sampled member(s) match" in restore.message


def test_restores_are_timed_against_the_rto_and_scratch_space_is_removed(demo_outcomes, backup_lab):
    fresh = demo_outcomes["files-fresh"].facts.restore
    assert fresh is not None and fresh.ok and fresh.seconds is not None and 0 < fresh.seconds < 300
    assert fresh.rto == 300
    assert "etc/app/app.conf sha256 ok" in fresh.verified
    rto = next(r for r in demo_outcomes["files-fresh"].results if r.check_id == "backup.restore_within_rto")
    assert rto.message.startswith("restore took ") and "within RTO 5m" in rto.message
    slow = next(r for r in demo_outcomes["files-slow"].results if r.check_id == "backup.restore_within_rto")
    assert slow.status.value == "FAIL" and slow.message.startswith("restore took ")
    # the failed restore (missing expected file) and the passing ones all cleaned up
    bad = demo_outcomes["files-badrestore"].facts.restore
    assert bad is not None and not bad.ok and bad.cleanup_ok
    assert list(backup_lab.scratch_dir().iterdir()) == []


def test_restore_test_flag_restores_every_file_backup(backup_lab, tmp_path):
    inv = write_inventory(tmp_path / "inv.yaml", backup_lab.fleet, backup_lab.demo)
    outcomes = verify(inv, restore=True)
    found = failures(outcomes)
    assert set(found) == set(DEMO_FAULTS) | set(DEMO_RESTORE_ALL_FAULTS), found
    stale = outcomes["files-stale"].facts.restore  # a plain .gz: decompressed into scratch
    assert stale is not None and stale.ok, stale
    assert not_assessed(outcomes) == []
    assert list((backup_lab.root / "var/tmp").glob("itops-restore.*")) == []


def test_a_backup_landing_during_verification_is_not_confused(backup_lab, tmp_path):
    """Listing, integrity and restore each name the file they used; all agree on the newest."""
    inv = write_inventory(tmp_path / "inv.yaml", backup_lab.fleet, backup_lab.demo)
    out = verify(inv, ["files-fresh"])["files-fresh"]
    newest = out.facts.newest()
    assert newest is not None and out.facts.integrity is not None
    assert out.facts.integrity.detail == os.path.basename(newest.name)


def test_a_host_that_cannot_be_reached_is_unreachable_not_failed(backup_lab, tmp_path):
    fleet = backup_lab.fleet
    doc_backups = {"files-fresh": backup_lab.demo["files-fresh"]}
    inv_path = write_inventory(tmp_path / "inv.yaml", fleet, doc_backups)
    text = inv_path.read_text().replace(f"port: {fleet['bk1'].port}", "port: 1")
    inv_path.write_text(text)
    out = verify(inv_path)["files-fresh"]
    assert {r.status.value for r in out.results} == {"UNREACHABLE"}
    assert "connection refused" in out.results[0].message


def test_glob_values_with_shell_syntax_are_quoted_and_never_run(backup_lab, tmp_path):
    """An inventory path with spaces, quotes and $(...) reaches the shell only through shlex.quote."""
    root = backup_lab.root
    folder = "/var/backups/odd name's $(touch pwned)"
    now = time.time()
    entries = plant_demo_backups(root, host="bk1", base=folder, now=now, seed=11)
    canary = resolve_in_root(root, "/pwned")
    inv = write_inventory(tmp_path / "inv.yaml", backup_lab.fleet, {"odd": entries["files-fresh"]})
    out = verify(inv)["odd"]
    assert statuses(out)["backup.within_rpo"] == {"PASS"}, out.results
    assert statuses(out)["backup.restore_test_passed"] == {"PASS"}, out.results
    assert not canary.exists() and not Path("/pwned").exists()


def test_restore_into_the_backup_folder_is_refused_at_run_time(backup_lab, tmp_path):
    """The inventory rejects an explicit `into` inside the source; the default scratch parent
    (/var/tmp) is refused at run time when the backups themselves live there."""
    now = time.time()
    t = now - 3600
    path = "/var/tmp/dbdumps/app.tar.gz"
    data = (backup_lab.root / "var/backups/itops-demo/few").iterdir().__next__().read_bytes()
    plant(backup_lab.root, path, data)
    os.utime(resolve_in_root(backup_lab.root, path), (t, t))
    entry = {"kind": "file", "host": "bk1", "path": "/var/tmp/*/app.tar.gz", "rpo": "26h"}
    inv = write_inventory(tmp_path / "inv.yaml", backup_lab.fleet, {"in-tmp": entry})
    out = verify(inv, restore=True)["in-tmp"]
    restore = next(r for r in out.results if r.check_id == "backup.restore_test_passed")
    assert restore.status.value == "FAIL"
    assert "restore target /var/tmp is inside the backup folder /var/tmp: refused" in restore.message
    assert sorted(p.name for p in (backup_lab.root / "var/tmp").iterdir() if p.name.startswith("itops-restore.")) == []


# --------------------------------------------------------------------------- untrusted archives (issue #12)


def _tar_gz(members: list[tarfile.TarInfo], data: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info in members:
            tar.addfile(info, io.BytesIO(data[info.name]) if info.name in data else None)
    return buf.getvalue()


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, target, 0o777
    return info


def test_expected_files_are_never_read_through_a_symlink_out_of_the_restore(backup_lab, tmp_path):
    """A backup holding only ``etc/hostname -> /etc/hostname`` (or ``etc -> /etc``) must not pass
    expect_files and the sha256 check by reading bk1's live /etc/hostname (restored over SSH)."""
    root = backup_lab.root
    live = resolve_in_root(root, "/etc/hostname", follow_last=True)
    if not live.exists():
        plant(root, "/etc/hostname", b"bk1\n", mode=0o644)
    digest = hashlib.sha256(live.read_bytes()).hexdigest()
    plant(root, "/var/backups/evil-file/evil.tar.gz", _tar_gz([_link("etc/hostname", "/etc/hostname")], {}))
    plant(root, "/var/backups/evil-dir/evil.tar.gz", _tar_gz([_link("etc", "/etc")], {}))
    test = {
        "into": "/var/tmp/itops-restore",
        "expect_files": ["etc/hostname"],
        "verify": [{"path": "etc/hostname", "sha256": digest}],
    }
    entries = {
        name: {
            "kind": "file",
            "host": "bk1",
            "path": f"/var/backups/{name}/*.tar.gz",
            "restore_test": test,
            "rpo": "26h",
        }
        for name in ("evil-file", "evil-dir")
    }
    outcomes = verify(write_inventory(tmp_path / "inv.yaml", backup_lab.fleet, entries))
    for name in entries:
        restore = outcomes[name].facts.restore
        assert restore is not None and not restore.ok, (name, restore)
        assert any("is a symbolic link leading out of the restored data" in p for p in restore.problems), restore
        assert not any("sha256 ok" in v or "present" in v for v in restore.verified), restore.verified
        assert restore.cleanup_ok
    assert list(backup_lab.scratch_dir().iterdir()) == []


def test_a_restore_folder_other_users_can_change_is_refused(backup_lab, tmp_path):
    """``into`` owned by another user, or below a folder others may write without the sticky bit,
    would let them swap the scratch folder: refused on bk1 before anything is extracted."""
    root = backup_lab.root
    foreign = resolve_in_root(root, "/srv/foreign-into")
    foreign.mkdir(parents=True, exist_ok=True)
    os.chown(foreign, 65534, 65534)
    open_parent = resolve_in_root(root, "/srv/open-parent")
    open_parent.mkdir(parents=True, exist_ok=True)
    open_parent.chmod(0o777)  # world-writable, no sticky bit
    src = backup_lab.demo["files-fresh"]
    entries = {
        "foreign": {**src, "restore_test": {**src["restore_test"], "into": "/srv/foreign-into"}},
        "open": {**src, "restore_test": {**src["restore_test"], "into": "/srv/open-parent/scratch"}},
    }
    outcomes = verify(write_inventory(tmp_path / "inv.yaml", backup_lab.fleet, entries))
    foreign_msg = "; ".join(outcomes["foreign"].facts.restore.problems)
    assert "restore folder refused: /srv/foreign-into is owned by uid 65534" in foreign_msg, foreign_msg
    open_msg = "; ".join(outcomes["open"].facts.restore.problems)
    assert "restore folder refused: /srv/open-parent is writable by other users and not sticky" in open_msg, open_msg
    assert list(foreign.iterdir()) == [] and not (open_parent / "scratch").exists()
    open_parent.chmod(0o1777)  # sticky: others can no longer rename or remove our entries
    sticky = verify(write_inventory(tmp_path / "inv2.yaml", backup_lab.fleet, {"open": entries["open"]}))["open"]
    assert sticky.facts.restore is not None and sticky.facts.restore.ok, sticky.facts.restore
    assert (open_parent / "scratch").stat().st_mode & 0o777 == 0o700


def test_a_single_retained_copy_fails_unless_min_copies_1_accepts_it(backup_lab, tmp_path):
    """Without min_copies the documented default of 2 applies: one copy is a FAIL, not a silent SKIPPED."""
    few = "/var/backups/itops-demo/few/cfg-*.tar.gz"  # one real archive on bk1
    default = {"kind": "file", "host": "bk1", "path": few, "rpo": "26h"}
    backups = {"one-default": default, "one-accepted": {**default, "min_copies": 1}}
    inv = write_inventory(tmp_path / "inv.yaml", backup_lab.fleet, backups)
    outcomes = verify(inv)
    retained = next(r for r in outcomes["one-default"].results if r.check_id == "backup.copies_retained")
    assert retained.status.value == "FAIL" and retained.message == "only 1 copy retained, at least 2 required"
    assert statuses(outcomes["one-accepted"])["backup.copies_retained"] == {"PASS"}
    # the default is a check parameter: vars override it like any other
    inv = write_inventory(
        tmp_path / "inv2.yaml",
        backup_lab.fleet,
        {"one-default": default},
        defaults={**backup_lab.fleet.inventory().get("defaults", {}), "vars": {"min_copies": 1}},
    )
    assert statuses(verify(inv)["one-default"])["backup.copies_retained"] == {"PASS"}
