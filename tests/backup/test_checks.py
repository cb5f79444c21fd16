"""Every backup check on canned facts: a pass case, a fail case, and an edge case (nothing to judge / unknown)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from backup_helpers import backup_checks

from itops.backup.facts import BackupFacts, Copy, Observation, RestoreOutcome, Verdict
from itops.backup.verify import applicable_checks, evaluate_backup
from itops.checkapi import BACKUP_ASPECTS, CheckMeta
from itops.model import Finding, Status

NOW = 1_800_000_000.0
H = 3600.0
MB = 1_000_000


def facts(**kw: Any) -> BackupFacts:
    base: dict[str, Any] = {"name": "b", "kind": "file", "where": "h:/x/*.gz", "now": NOW, "rpo": 26 * H}
    base.update(kw)
    return BackupFacts(**base)


def run(check_id: str, f: BackupFacts) -> list[Finding]:
    check = next(c for c in backup_checks() if c.id == check_id)
    return check.evaluate(f, check.resolve_params({}))


def one(check_id: str, f: BackupFacts) -> Finding:
    found = run(check_id, f)
    assert len(found) == 1, found
    return found[0]


def test_every_backup_check_has_valid_metadata_and_a_test_here():
    checks = backup_checks()
    ids = {c.id for c in checks}
    assert ids == {
        "backup.within_rpo",
        "backup.size_ok",
        "backup.integrity_ok",
        "backup.copies_retained",
        "backup.immutable",
        "backup.encrypted",
        "backup.not_public",
        "backup.restore_test_passed",
        "backup.restore_within_rto",
        "backup.restore_time_forecast_within_rto",
    }
    source = Path(__file__).read_text(encoding="utf-8")
    for c in checks:
        CheckMeta.model_validate(c.meta.model_dump())
        assert c.meta.target == "backup" and c.collections and set(c.collections) <= set(BACKUP_ASPECTS)
        assert c.meta.frameworks["nist-800-53"] and c.meta.frameworks["iso-27001"] and c.meta.frameworks["cis-controls"]
        assert c.description, f"{c.id} needs a docstring"
        assert f'"{c.id}"' in source, f"{c.id} has no canned-facts test here"


def test_within_rpo():
    fresh = facts(copies=(Copy("/x/a.gz", NOW - 2 * H, 100),))
    assert one("backup.within_rpo", fresh).status is Status.PASS
    stale = facts(copies=(Copy("/x/a.gz", NOW - (3 * 24 + 4) * H, 100), Copy("/x/0.gz", NOW - 5 * 24 * H, 100)))
    f = one("backup.within_rpo", stale)
    assert f.status is Status.FAIL and f.message == "newest backup is 3d 4h old, RPO 26h"
    missing = one("backup.within_rpo", facts(absent="folder /x does not exist on h"))
    assert (
        missing.status is Status.FAIL
        and missing.message == "no backup found at h:/x/*.gz (folder /x does not exist on h)"
    )
    groups = facts(
        copies=(Copy("s1", NOW - H, group="host a"), Copy("s2", NOW - 50 * H, group="host b")),
        expected_groups=("host c",),
    )
    by = {x.resource: x for x in run("backup.within_rpo", groups)}
    assert by["host a"].status is Status.PASS and by["host b"].message == "host b: newest backup is 2d 2h old, RPO 26h"
    assert by["host c"].message == "host c: no completed backup found"


def test_size_ok():
    ok = facts(copies=(Copy("a", NOW - 30 * H, 3 * MB), Copy("b", NOW - H, int(2.9 * MB))), min_size=MB)
    assert one("backup.size_ok", ok).status is Status.PASS
    shrunk = facts(
        copies=(Copy("a", NOW - 30 * H, int(3.1 * MB)), Copy("b", NOW - H, int(1.2 * MB))), max_shrink_pct=20
    )
    f = one("backup.size_ok", shrunk)
    assert f.message == "newest copy 1.2 MB is 61% smaller than the previous 3.1 MB (max shrink 20%)"
    small = one("backup.size_ok", facts(copies=(Copy("a", NOW, 500),), min_size=10 * MB))
    assert small.status is Status.FAIL and small.message == "newest copy 500 B is below the minimum 10.0 MB"
    default_shrink = one("backup.size_ok", facts(copies=(Copy("a", NOW - 30 * H, 100 * MB), Copy("b", NOW, 40 * MB))))
    assert default_shrink.status is Status.FAIL and "(max shrink 50%)" in default_shrink.message
    assert one("backup.size_ok", facts()).status is Status.SKIPPED
    assert one("backup.size_ok", facts(copies=(Copy("a", NOW, None),))).status is Status.ERROR
    # an empty newest copy fails even with no min_size and nothing to compare with
    empty = one("backup.size_ok", facts(copies=(Copy("db-1.sql", NOW, 0),)))
    assert empty.status is Status.FAIL and empty.message == "newest copy db-1.sql is empty (0 bytes)"


def test_copies_retained():
    three = facts(copies=tuple(Copy(f"c{i}", NOW - i * H, 1) for i in range(3)), min_copies=3)
    assert one("backup.copies_retained", three).status is Status.PASS
    f = one("backup.copies_retained", facts(copies=(Copy("c", NOW, 1),), min_copies=3))
    assert f.status is Status.FAIL and f.message == "only 1 copy retained, at least 3 required"
    # no min_copies given: the documented default of 2 applies, so a single copy is not silently accepted
    single = one("backup.copies_retained", facts(copies=(Copy("c", NOW, 1),)))
    assert single.status is Status.FAIL and single.message == "only 1 copy retained, at least 2 required"
    assert one("backup.copies_retained", facts(copies=(Copy("c", NOW, 1),), min_copies=1)).status is Status.PASS
    none = one("backup.copies_retained", facts(min_copies=2))
    assert none.status is Status.FAIL and none.message == "only 0 copies retained, at least 2 required"


def test_integrity_ok():
    c = (Copy("a.gz", NOW, 1),)
    assert one("backup.integrity_ok", facts(copies=c, integrity=Verdict(True, "a.gz: gzip -t"))).status is Status.PASS
    bad = facts(copies=c, integrity=Verdict(False, "gzip -t failed: unexpected end of file (a.gz)"))
    f = one("backup.integrity_ok", bad)
    assert f.status is Status.FAIL and f.message == "gzip -t failed: unexpected end of file (a.gz)"
    nothing = facts(copies=c, integrity=Verdict(None, "no checksum is stored with it"))
    assert one("backup.integrity_ok", nothing).status is Status.SKIPPED
    assert one("backup.integrity_ok", facts()).message == "no copy to verify"


def test_immutable():
    yes = facts(kind="s3", immutable=Verdict(True, "Object Lock on bucket b: COMPLIANCE retention 30 days by default"))
    assert one("backup.immutable", yes).status is Status.PASS
    no = one("backup.immutable", facts(kind="s3", immutable=Verdict(False, "Object Lock is not enabled on bucket b")))
    assert no.status is Status.FAIL and no.message == "Object Lock is not enabled on bucket b"
    assert one("backup.immutable", facts(kind="s3")).status is Status.SKIPPED


def test_encrypted():
    enc = facts(kind="ebs_snapshot", copies=(Copy("snap-1", NOW, 1, group="vol-1", encrypted=True),))
    assert one("backup.encrypted", enc).status is Status.PASS
    plain = facts(
        kind="ebs_snapshot",
        copies=(
            Copy("snap-2", NOW, 1, group="vol-1", encrypted=False),
            Copy("snap-1", NOW - H, 1, group="vol-1", encrypted=False),
        ),
    )
    f = one("backup.encrypted", plain)
    assert (
        f.status is Status.FAIL and f.message == "vol-1: newest copy snap-2 is not encrypted (1 older unencrypted copy)"
    )
    unknown = one("backup.encrypted", facts(kind="s3", copies=(Copy("k", NOW, 1),)))
    assert unknown.status is Status.ERROR


def test_not_public():
    private = facts(kind="rds_snapshot", copies=(Copy("s1", NOW, 1, public=False),))
    assert one("backup.not_public", private).status is Status.PASS
    shared = one("backup.not_public", facts(kind="rds_snapshot", copies=(Copy("s1", NOW, 1, public=True),)))
    assert shared.status is Status.FAIL and shared.message == "1 copy is shared publicly: s1"
    assert one("backup.not_public", facts(kind="rds_snapshot")).status is Status.SKIPPED


def restore(ok: bool = True, seconds: float | None = 1.5, rto: float | None = 60.0, **kw: Any) -> RestoreOutcome:
    return RestoreOutcome(ok=ok, seconds=seconds, rto=rto, what="a.tar.gz into h:/var/tmp/itops-restore.X", **kw)


def test_restore_test_passed():
    good = one("backup.restore_test_passed", facts(restore=restore(verified=("2 expected file(s) present",))))
    assert good.status is Status.PASS and good.message.endswith("in 1.5s; verified: 2 expected file(s) present")
    bad = facts(restore=restore(ok=False, problems=("expected file etc/x is missing from the restored backup",)))
    f = one("backup.restore_test_passed", bad)
    assert f.status is Status.FAIL
    assert f.message == (
        "restore test of a.tar.gz into h:/var/tmp/itops-restore.X failed: expected file etc/x is missing from the "
        "restored backup"
    )
    assert one("backup.restore_test_passed", facts()).status is Status.ERROR


def test_restore_within_rto():
    assert one("backup.restore_within_rto", facts(restore=restore())).message == "restore took 1.5s, within RTO 1m"
    over = one("backup.restore_within_rto", facts(restore=restore(seconds=95.0, rto=60.0)))
    assert over.status is Status.FAIL and over.message == "restore took 1m 35s, RTO 1m"
    no_rto = one("backup.restore_within_rto", facts(restore=restore(rto=None)))
    assert (
        no_rto.status is Status.PASS
        and no_rto.message == "restore took 1.5s, within RTO 4h (default; set restore_test.rto)"
    )
    slow = one("backup.restore_within_rto", facts(restore=restore(seconds=5 * H, rto=None)))
    assert slow.status is Status.FAIL and "RTO 4h (default" in slow.message
    timeout = one("backup.restore_within_rto", facts(restore=restore(ok=False, seconds=None, timed_out=True)))
    assert timeout.status is Status.FAIL and "did not finish before the timeout" in timeout.message


def test_restore_time_forecast_within_rto():
    check = "backup.restore_time_forecast_within_rto"
    day = 86400.0
    # 30 s now, +3 s a day: the RTO of 60 s is reached in 10 days
    history = {"backup.restore_seconds": [(NOW - (5 - i) * day, 15.0 + 3 * i) for i in range(5)]}
    failing = one(check, facts(restore=restore(seconds=30.0, rto=60.0), history=history))
    assert failing.status is Status.FAIL and "projected to exceed the RTO 1m in 10 days" in failing.message
    assert "Theil-Sen over 6 points" in failing.message
    steady = {"backup.restore_seconds": [(NOW - (5 - i) * day, 30.0) for i in range(5)]}
    assert one(check, facts(restore=restore(seconds=30.0, rto=60.0), history=steady)).status is Status.PASS
    short = one(check, facts(restore=restore(seconds=30.0, rto=60.0), history={}))
    assert short.status is Status.SKIPPED and short.message.startswith("not enough history (1 of 5 runs)")
    # without restore_test.rto the default 4h applies, as for backup.restore_within_rto
    default = one(check, facts(restore=restore(seconds=30.0, rto=None), history=history))
    assert default.status is Status.PASS and "RTO 4h (default; set restore_test.rto)" in default.message
    assert one(check, facts(restore=None)).status is Status.ERROR
    # the restore checks record what the forecast reads
    timed = one("backup.restore_within_rto", facts(restore=restore(seconds=30.0, rto=60.0)))
    assert timed.metrics == {"backup.restore_seconds": 30.0, "backup.rto_seconds": 60.0}


@pytest.mark.parametrize("unreachable", [True, False])
def test_an_aspect_that_could_not_be_gathered_is_error_or_unreachable_never_pass(unreachable):
    obs = {"copies": Observation(error="unreachable: connection refused", unreachable=unreachable)}
    f = facts(observations=obs, copies=(Copy("a", NOW, 1),))
    checks = applicable_checks(backup_checks(), "file", restoring=False)
    results = evaluate_backup("r", f, checks, NOW)
    copies_checks = {r.check_id: r.status for r in results if r.check_id in ("backup.within_rpo", "backup.size_ok")}
    want = Status.UNREACHABLE if unreachable else Status.ERROR
    assert set(copies_checks.values()) == {want}
    assert all(r.message == "unreachable: connection refused" for r in results if r.status is want)


def test_checks_apply_by_kind_and_restore_checks_only_when_restoring():
    ids = {c.id for c in applicable_checks(backup_checks(), "file", restoring=False)}
    assert ids == {"backup.within_rpo", "backup.size_ok", "backup.integrity_ok", "backup.copies_retained"}
    ids = {c.id for c in applicable_checks(backup_checks(), "ebs_snapshot", restoring=True)}
    assert ids == {"backup.within_rpo", "backup.copies_retained", "backup.encrypted", "backup.not_public"}
    ids = {c.id for c in applicable_checks(backup_checks(), "postgres_dump", restoring=True)}
    assert {"backup.restore_test_passed", "backup.restore_within_rto"} <= ids
