"""pg_dump backups restored into scratch databases on a real PostgreSQL server (initdb'd by the fixture)."""

from __future__ import annotations

import json
import subprocess

import pytest
from backup_helpers import by_check, failures, not_assessed, statuses, verify, write_inventory
from backup_services import PG_PASSWORD

from itops.inventory import PostgresDumpBackup, load_inventory
from itops.playbook.restore import Restorer
from itops.playbook.schema import RestoreAction
from itops.playbook.steps import StepRunner

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


# --------------------------------------------------------------------------- untrusted dumps (issue #12)


def _plain_with(
    pg_dumps, folder, name: str, inject: str, after: str = "SET row_security = off;", keep_restrict: bool = False
) -> int:
    """A copy of the fixture's plain dump with ``inject`` on the line after ``after``; its line number.

    Recent pg_dump (15.14+) brackets its dump in its own ``\\restrict KEY`` ... ``\\unrestrict KEY``;
    an attacker's dump leaves that out (or unrestricts with its own key, ``keep_restrict``).
    """
    text = next((pg_dumps.dir / "plain").glob("*.sql")).read_text()
    lines = text.splitlines(keepends=True)
    if not keep_restrict:
        lines = [line for line in lines if not line.startswith(("\\restrict ", "\\unrestrict "))]
    at = next(i for i, line in enumerate(lines) if line.strip() == after) + 1
    lines.insert(at, inject + "\n")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("".join(lines))
    return at + 1


def test_a_plain_dump_cannot_run_psql_meta_commands(pg_dumps, tmp_path):
    """``\\!`` (shell as the itops user) and ``\\connect`` (another database) in a dump never run.

    Before the fix psql ran them, the restore test said PASS, the shell command left its file and
    the "production" database lost its table.
    """
    server = pg_dumps.server
    server.psql("CREATE DATABASE itops_victim")
    server.psql("CREATE TABLE precious (id int); INSERT INTO precious VALUES (1)", "itops_victim")
    shell_mark, midline_mark = tmp_path / "pwned-shell", tmp_path / "pwned-midline"
    shell_line = _plain_with(pg_dumps, tmp_path / "shell", "shop.sql", f"\\! touch {shell_mark}")
    connect_line = _plain_with(
        pg_dumps, tmp_path / "connect", "shop.sql", "\\connect itops_victim\nDROP TABLE precious;"
    )
    midline_line = _plain_with(pg_dumps, tmp_path / "midline", "shop.sql", f"SELECT 1; \\! touch {midline_mark}")
    gz = tmp_path / "gz"
    own = next(
        ln
        for ln in next((pg_dumps.dir / "plain").glob("*.sql")).read_text().splitlines()
        if ln.startswith("\\restrict ")
    )
    unrestrict = own.replace("\\restrict", "\\unrestrict")
    gz_line = 1 + _plain_with(pg_dumps, gz, "shop.sql", f"{unrestrict}\n\\! touch {shell_mark}", keep_restrict=True)
    subprocess.run(["gzip", str(gz / "shop.sql")], check=True)
    base = pg_dumps.entries()["pg-orders"]
    entries = {
        name: {**base, "path": f"{tmp_path / name}/*.sql*", "restore_test": {**base["restore_test"], "verify": []}}
        for name in ("shell", "connect", "midline", "gz")
    }
    inv = write_inventory(tmp_path / "inv.yaml", None, entries)
    before = set(server.databases())
    outcomes = verify(inv)
    expected = {
        "shell": ("\\!", shell_line),
        "connect": ("\\connect", connect_line),
        "midline": ("\\!", midline_line),
        "gz": ("\\!", gz_line),
    }
    for name, (cmd, line) in expected.items():
        res = by_check(outcomes[name])["backup.restore_test_passed"][0]
        assert res.status.value == "FAIL", (name, res.message)
        assert f"dump contains psql meta-command {cmd} at line {line}; not restored" in res.message, res.message
        assert outcomes[name].facts.restore is not None and outcomes[name].facts.restore.cleanup_ok
    assert not shell_mark.exists() and not midline_mark.exists()
    assert server.psql("SELECT count(*) FROM precious", "itops_victim") == "1"
    assert server.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'orders'", "itops_victim") == "0"
    assert set(server.databases()) == before


ROLE, ROLE_PASSWORD, ROLE_ENV = "itops_rt_loader", "loader-secret-2207", "ITOPS_TEST_LOADER_PW"


@pytest.fixture
def loader_role(pg_dumps, monkeypatch):
    """A login role with CREATEDB only (what server.unprivileged asks for)."""
    server = pg_dumps.server
    if server.psql(f"SELECT count(*) FROM pg_roles WHERE rolname = '{ROLE}'") == "0":
        server.psql(f"CREATE ROLE {ROLE} LOGIN CREATEDB PASSWORD '{ROLE_PASSWORD}'")
    monkeypatch.setenv(ROLE_ENV, ROLE_PASSWORD)
    return {**server.server_entry(ROLE_ENV), "user": ROLE, "unprivileged": True}


def test_unprivileged_refuses_a_superuser_and_loads_as_a_plain_role(pg_dumps, loader_role, tmp_path):
    """With server.unprivileged a superuser is refused before anything is restored; the plain role
    restores a custom dump, and a dump's ``COPY ... TO PROGRAM`` (shell on the server) is denied."""
    mark = tmp_path / "pwned-program"
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "evil.sql").write_text(
        f"CREATE TABLE orders (id int);\nCOPY (SELECT 1) TO PROGRAM 'touch {mark}';\n"
        "-- PostgreSQL database dump complete\n"
    )
    base = pg_dumps.entries()["pg-orders"]
    test = base["restore_test"]
    entries = {
        "as-superuser": {**base, "restore_test": {**test, "server": {**test["server"], "unprivileged": True}}},
        "as-loader": {**base, "restore_test": {**test, "server": loader_role}},
        "evil-as-loader": {
            **base,
            "path": f"{evil}/*.sql",
            "restore_test": {**test, "verify": [], "server": loader_role},
        },
    }
    inv = write_inventory(tmp_path / "inv.yaml", None, entries)
    before = set(pg_dumps.server.databases())
    outcomes = verify(inv)
    su = by_check(outcomes["as-superuser"])["backup.restore_test_passed"][0]
    assert su.status.value == "FAIL" and "role postgres has superuser" in su.message, su.message
    ok = by_check(outcomes["as-loader"])["backup.restore_test_passed"][0]
    assert ok.status.value == "PASS", ok.message
    evil_res = by_check(outcomes["evil-as-loader"])["backup.restore_test_passed"][0]
    assert evil_res.status.value == "FAIL" and "pg_execute_server_program" in evil_res.message, evil_res.message
    assert not mark.exists()
    assert set(pg_dumps.server.databases()) == before
    assert ROLE_PASSWORD not in json.dumps([r.to_dict() for o in outcomes.values() for r in o.results])


def test_a_server_password_file_other_users_can_read_is_refused(pg_dumps, tmp_path):
    """restore_test.server.password_file gets the SSH password_file check (itops.secretfile)."""
    pwfile = tmp_path / "pg.pw"
    pwfile.write_text(PG_PASSWORD + "\n")
    base = pg_dumps.entries()["pg-orders"]
    server = {k: v for k, v in base["restore_test"]["server"].items() if k != "password_env"}
    entry = {**base, "restore_test": {**base["restore_test"], "server": {**server, "password_file": str(pwfile)}}}
    inv = write_inventory(tmp_path / "inv.yaml", None, {"pg-file": entry})
    pwfile.chmod(0o644)
    res = by_check(verify(inv)["pg-file"])["backup.restore_test_passed"][0]
    assert res.status.value == "ERROR", res.message
    assert f"restore_test.server.password_file {pwfile} is accessible by other users (mode 0644)" in res.message
    assert f"chmod 600 {pwfile}" in res.message and PG_PASSWORD not in res.message
    pwfile.chmod(0o600)
    res = by_check(verify(inv)["pg-file"])["backup.restore_test_passed"][0]
    assert res.status.value == "PASS", res.message


def test_a_kept_restore_of_a_plain_dump_refuses_meta_commands_too(pg_dumps, tmp_path):
    """The playbook's kept restore (``restore: {database: ...}``) loads a dump like the restore
    test: a ``\\!`` in it fails the step and never runs."""
    mark = tmp_path / "pwned-kept"
    line = _plain_with(pg_dumps, tmp_path / "kept", "shop.sql", f"\\! touch {mark}")
    entry = {**pg_dumps.entries()["pg-orders"], "path": f"{tmp_path / 'kept'}/*.sql"}
    inv = load_inventory(write_inventory(tmp_path / "inv.yaml", None, {"pg-kept": entry}))
    action = RestoreAction(backup="pg-kept", database="itops_kept_meta")
    backup = inv.backups["pg-kept"]
    assert isinstance(backup, PostgresDumpBackup)
    runner = StepRunner(inv)
    try:
        res = Restorer(inv, "test-run").kept_database(action, backup, runner, 120)
    finally:
        runner.close()
    assert res.status.value == "FAIL", res.message
    assert f"dump contains psql meta-command \\! at line {line}; not restored" in res.message
    assert not mark.exists()
    pg_dumps.server.psql("DROP DATABASE IF EXISTS itops_kept_meta")
