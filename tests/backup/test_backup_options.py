"""Validation of the kind-specific backup settings (restore_test shapes, integrity methods), with file and line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from itops.backup.options import FileRestoreSpec, PostgresRestoreSpec, ResticRestoreSpec, backup_options
from itops.errors import InventoryError
from itops.inventory import load_inventory


def inv(tmp_path: Path, backups: str) -> Path:
    path = tmp_path / "inv.yaml"
    path.write_text(
        "version: 1\nhosts:\n  db1: {address: 127.0.0.1}\nbackups:\n" + textwrap.indent(textwrap.dedent(backups), "  ")
    )
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(InventoryError) as exc:
        backup_options(load_inventory(path))
    return [str(p) for p in exc.value.problems]


def test_valid_settings_of_each_kind(tmp_path):
    path = inv(
        tmp_path,
        """
        files:
          kind: file
          host: db1
          path: /var/backups/*.tar.gz
          rpo: 26h
          restore_test: {into: /var/tmp/rt, rto: 10m, expect_files: [etc/a], verify: [{path: etc/a, sha256: "%s"}]}
        repo:
          kind: restic
          repository: /srv/restic
          password_env: RESTIC_PW
          rpo: 1d
          integrity: read-data-subset/7
          restore_test: {include: [/etc], rto: 5m}
        dump:
          kind: postgres_dump
          path: /var/backups/pg/*.dump
          rpo: 26h
          restore_test:
            server: {host: pg.example, port: 5433, user: restore, password_env: PGPW}
            database_prefix: rt
            verify: [{query: "SELECT count(*) FROM orders", min: 1000}, {query: "SELECT max(ts) FROM t", max_age: 26h}]
    """
        % ("ab" * 32),
    )
    opts = backup_options(load_inventory(path))
    assert isinstance(opts["files"].restore, FileRestoreSpec) and opts["files"].restore.rto == 600
    assert opts["repo"].restic_slices == 7 and isinstance(opts["repo"].restore, ResticRestoreSpec)
    spec = opts["dump"].restore
    assert isinstance(spec, PostgresRestoreSpec) and spec.server is not None and spec.server.port == 5433
    assert spec.verify[1].max_age == 26 * 3600
    assert opts["files"].integrity == "auto" and opts["dump"].integrity == "auto"


def test_every_problem_is_reported_with_file_line_and_key(tmp_path):
    path = inv(
        tmp_path,
        """
        dump:
          kind: postgres_dump
          path: /var/backups/pg/*.dump
          rpo: 26h
          integrity: md5
          restore_test:
            server: {host: pg, port: 99999, hostname: x}
            database_prefix: "Bad-Name"
            verify: [{query: "SELECT 1", minimum: 3}]
        repo:
          kind: restic
          repository: /srv/restic
          rpo: 1d
          integrity: read-data-subset/0
        snap:
          kind: ebs_snapshot
          cloud: aws
          rpo: 1d
          restore_test: {rto: 5m}
        rel:
          kind: file
          host: db1
          path: backups/*.gz
          rpo: 1d
    """,
    )
    text = path.read_text().replace("hosts:", "clouds:\n  aws: {regions: [eu-west-1]}\nhosts:")
    path.write_text(text)
    found = problems(path)
    joined = "\n".join(found)
    name = str(path)
    lines = path.read_text().splitlines()
    line = next(i for i, text in enumerate(lines, start=1) if "integrity: md5" in text)
    assert f"{name}:{line}: backups.dump.integrity: unknown integrity method 'md5' for a postgres_dump backup" in joined
    assert "backups.dump.restore_test.server.port: must be 1-65535" in joined
    assert "backups.dump.restore_test.server.hostname: unknown key 'hostname'" in joined
    assert "backups.dump.restore_test.database_prefix: must be a lowercase SQL identifier" in joined
    assert "backups.dump.restore_test.verify[0].minimum: unknown key 'minimum'" in joined
    assert "backups.repo.password_env: a restic backup needs password_env or password_file" in joined
    assert "backups.repo.integrity: unknown integrity method 'read-data-subset/0'" in joined
    assert "backups.snap.restore_test: restore tests are not supported for ebs_snapshot backups" in joined
    assert "backups.rel.path: must be an absolute path (glob)" in joined
    assert all(p.startswith(name + ":") for p in found), found


def test_restore_target_inside_the_backup_source_is_rejected_by_the_inventory(tmp_path):
    path = inv(
        tmp_path,
        """
        files:
          kind: file
          host: db1
          path: /var/backups/db/*.sql.gz
          rpo: 26h
          restore_test: {into: /var/backups/db/restore, rto: 30m}
        repo:
          kind: restic
          repository: /srv/restic
          password_env: PW
          rpo: 1d
          restore_test: {into: /srv/restic/tmp}
    """,
    )
    with pytest.raises(InventoryError) as exc:
        load_inventory(path)
    text = str(exc.value)
    assert "backups.files.restore_test.into: '/var/backups/db/restore' is inside the backup source folder" in text
    assert "backups.repo.restore_test.into: '/srv/restic/tmp' is inside the backup source folder" in text


def test_secrets_are_never_inline(tmp_path):
    path = inv(
        tmp_path,
        """
        dump:
          kind: postgres_dump
          path: /x/*.dump
          rpo: 1d
          restore_test: {server: {host: pg, password: hunter2}}
    """,
    )
    with pytest.raises(InventoryError) as exc:
        load_inventory(path)
    assert "password" in str(exc.value) and "hunter2" not in str(exc.value)


def test_a_restic_snapshot_that_could_be_an_option_is_refused(tmp_path):
    """restic takes the snapshot as a positional argument: only 'latest' or a hex id is accepted
    (``--target=/`` would otherwise reach restic as an option)."""
    path = inv(
        tmp_path,
        """
        repo:
          kind: restic
          repository: /srv/restic
          password_env: RESTIC_PW
          rpo: 26h
          restore_test: {snapshot: "--target=/etc"}
        ok:
          kind: restic
          repository: /srv/restic
          password_env: RESTIC_PW
          rpo: 26h
          restore_test: {snapshot: 4f2a9c1d}
        """,
    )
    found = problems(path)
    assert len(found) == 1, found
    assert "backups.repo.restore_test.snapshot: must be 'latest' or a snapshot id (8-64 hex digits)" in found[0]
