"""pg_dump backups restored into scratch databases on a real PostgreSQL server (initdb'd by the fixture)."""

from __future__ import annotations

import json

import pytest
from backup_helpers import by_check, failures, not_assessed, statuses, verify, write_inventory
from backup_services import PG_PASSWORD

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pg_outcomes(backup_lab, pg_dumps, tmp_path_factory):
    inv = write_inventory(tmp_path_factory.mktemp("pg-inv") / "inv.yaml", backup_lab.fleet, pg_dumps.entries())
    before = set(pg_dumps.server.databases())
    outcomes = verify(inv)
    return outcomes, before


def test_a_real_dump_restores_into_a_scratch_database_and_verifies(pg_outcomes):
    outcomes, _ = pg_outcomes
    out = outcomes["pg-orders"]
    assert all(s == {"PASS"} for c, s in statuses(out).items() if c != "backup.copies_retained"), out.results
    restore = out.facts.restore
    assert restore is not None and restore.ok
    assert "SELECT count(*) FROM orders = 1500" in restore.verified
    assert any(v.startswith("SELECT max(created_at) FROM orders = ") for v in restore.verified)
    assert "into database itops_rt_" in restore.what
    passed = by_check(out)["backup.restore_test_passed"][0].message
    assert "verified: SELECT count(*) FROM orders = 1500" in passed
    rto = by_check(out)["backup.restore_within_rto"][0]
    assert rto.status.value == "PASS" and "within RTO 5m" in rto.message
    integrity = by_check(out)["backup.integrity_ok"][0].message
    assert "pg_restore --list ok" in integrity and "with table data" in integrity


def test_a_dump_that_restores_but_fails_a_verification_query_fails(pg_outcomes):
    outcomes, _ = pg_outcomes
    res = by_check(outcomes["pg-small"])["backup.restore_test_passed"][0]
    assert res.status.value == "FAIL"
    assert "SELECT count(*) FROM orders returned 10, expected at least 1000" in res.message
    assert statuses(outcomes["pg-small"])["backup.restore_within_rto"] == {"PASS"}  # it did restore, in time


def test_a_truncated_plain_dump_fails_integrity(pg_outcomes):
    outcomes, _ = pg_outcomes
    res = by_check(outcomes["pg-truncated"])["backup.integrity_ok"][0]
    assert res.status.value == "FAIL"
    assert "does not end with '-- PostgreSQL database dump complete'" in res.message


def test_a_plain_dump_on_a_host_restores_over_ssh(pg_outcomes):
    outcomes, _ = pg_outcomes
    out = outcomes["pg-plain"]
    assert all(s == {"PASS"} for c, s in statuses(out).items() if c != "backup.copies_retained"), out.results
    assert out.facts.where.startswith("bk2:")


def test_scratch_databases_are_dropped_and_originals_untouched(pg_outcomes, pg_dumps):
    outcomes, before = pg_outcomes
    after = set(pg_dumps.server.databases())
    assert after == before
    assert not [d for d in after if d.startswith("itops_rt_")]
    assert pg_dumps.server.psql("SELECT count(*) FROM orders", "shop") == "1500"
    assert not_assessed(outcomes) == []
    assert set(failures(outcomes)) == {
        ("pg-small", "backup.restore_test_passed"),
        ("pg-truncated", "backup.integrity_ok"),
    }


def test_a_failing_restore_still_drops_its_scratch_database(pg_dumps, tmp_path):
    """A dump that breaks half way (ON_ERROR_STOP) fails the restore; the scratch database is dropped."""
    broken = tmp_path / "broken"
    broken.mkdir()
    text = (pg_dumps.dir / "plain").glob("*.sql").__next__().read_text()
    (broken / "shop-broken.sql").write_text(text.replace("COPY public.orders", "COPY public.no_such_table", 1))
    entry = {**pg_dumps.entries()["pg-orders"], "path": f"{broken}/*.sql"}
    inv = write_inventory(tmp_path / "inv.yaml", None, {"pg-broken": entry})
    before = set(pg_dumps.server.databases())
    out = verify(inv)["pg-broken"]
    res = by_check(out)["backup.restore_test_passed"][0]
    assert res.status.value == "FAIL" and "restore failed" in res.message and "no_such_table" in res.message
    assert out.facts.restore is not None and out.facts.restore.cleanup_ok
    assert set(pg_dumps.server.databases()) == before


def test_the_server_password_never_reaches_results(pg_outcomes):
    outcomes, _ = pg_outcomes
    text = json.dumps([r.to_dict() for o in outcomes.values() for r in o.results])
    assert PG_PASSWORD not in text
