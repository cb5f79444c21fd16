"""``restore`` steps: a backup's restore test (itops.backup), or a restore that is kept (into a folder / database).

The restore test is the backup verifier's own (:class:`itops.backup.verify.BackupVerifier`
with ``restore=True`` on the one backup, and only the checks that read the restore): the
newest copy is restored into scratch space, verified as the inventory's ``restore_test``
says, timed against its RTO, and removed again.

A kept restore is what a real recovery does; the verifier offers none, so it is built here
from the same shell pieces (:mod:`itops.backup.shell`): the newest copy is chosen on the
backup's host, restored into ``into`` (file backups: extracted by archive type) or into
``database`` on ``server`` (postgres_dump: created, then ``pg_restore``/``psql``), timed,
and left in place for the following steps to verify. A dump is loaded as the restore test loads
it (:mod:`itops.backup.postgres`): a plain dump behind psql's ``\\restrict``, so a meta-command
in it fails the step instead of running; ``server.unprivileged`` checks the role first.
"""

from __future__ import annotations

import os
from pathlib import Path

from itops.backup.files import file_type
from itops.backup.options import PgServer, PostgresRestoreSpec, backup_options
from itops.backup.postgres import META_RECORD, PG_UNSET, PLAIN_LOAD, meta_problem, role_check
from itops.backup.shell import PRELUDE, elapsed, first, q, records, select_newest, timed
from itops.backup.verify import BackupVerifier, VerifyOptions
from itops.checkapi import ProbeResult
from itops.errors import ItopsError
from itops.inventory import FileBackup, Inventory, PostgresDumpBackup
from itops.model import Status
from itops.playbook.schema import _DB_RE, RestoreAction, Step
from itops.playbook.steps import StepResult, StepRunner
from itops.redact import register_secret
from itops.registry import load_registry
from itops.secretfile import read_secret_file

_EXTRACT = {
    "tar.gz": 'tar -xzf "$n" -C "$into"',
    "tar": 'tar -xf "$n" -C "$into"',
    "tar.zst": '{ zstd -q -dc -- "$n" | tar -xf - -C "$into"; }',
    "gzip": '{ _b=$(basename -- "$n" .gz); gzip -dc -- "$n" > "$into/$_b"; }',
    "zstd": '{ _b=$(basename -- "$n" .zst); zstd -q -dc -- "$n" > "$into/$_b"; }',
    "none": 'cp -- "$n" "$into/"',
}


class Restorer:
    """Runs the restore steps of one drill (the run id names the verifier's results)."""

    def __init__(self, inventory: Inventory, run_id: str) -> None:
        self.inv = inventory
        self.run_id = run_id

    def __call__(self, step: Step, runner: StepRunner) -> StepResult:
        action = step.spec.restore
        assert action is not None
        backup = self.inv.backups[action.backup]
        if action.into:
            assert isinstance(backup, FileBackup)
            return self.kept_files(action, backup, runner, step.timeout)
        if action.database:
            assert isinstance(backup, PostgresDumpBackup)
            return self.kept_database(action, backup, runner, step.timeout)
        return self.restore_test(action.backup, runner)

    # -- the backup's restore test --------------------------------------------------------------
    def restore_test(self, name: str, runner: StepRunner | None = None) -> StepResult:
        options = backup_options(self.inv)
        registry = load_registry(list(self.inv.checks_dirs))
        checks = [c for c in registry.select(None, "backup") if "restore" in c.collections]
        verifier = BackupVerifier(
            self.run_id,
            self.inv,
            [self.inv.backups[name]],
            checks,
            options,
            VerifyOptions(restore=True, concurrency=1, pool=runner.pool if runner is not None else None),
        )
        outcomes = list(verifier.run())
        source = f"restore test of backup {name} (itops backup verify --restore-test --limit {name})"
        if not outcomes:
            return StepResult(Status.ERROR, "the backup verifier returned nothing", source)
        facts = outcomes[0].facts
        r = facts.restore
        if r is None:
            obs = facts.observations.get("restore")
            why = obs.error if obs is not None and obs.error else "no restore was made"
            skipped = [x.message for x in outcomes[0].results if x.status is Status.SKIPPED and "restore" in x.check_id]
            status = Status.UNREACHABLE if obs is not None and obs.unreachable else Status.ERROR
            return StepResult(status, (skipped[0] if skipped else why), source)
        took = f"{r.seconds:.2f}s" if r.seconds is not None else "-"
        rto = f", backup RTO {r.rto:g}s" if r.rto else ""
        excerpt = "\n".join([*("ok: " + v for v in r.verified), *("problem: " + p for p in r.problems)])
        over = r.rto is not None and r.seconds is not None and r.seconds > r.rto
        if not r.ok or over:
            why = "; ".join(r.problems) or f"took {took}, over the backup's RTO"
            return StepResult(Status.FAIL, f"restore test failed: {why}", source, excerpt, took, f"ok{rto}")
        return StepResult(
            Status.PASS,
            f"restored {r.what} in {took}{rto}; " + "; ".join(r.verified[:3]),
            source,
            excerpt,
            took,
            f"ok{rto}",
        )

    # -- kept restores --------------------------------------------------------------------------
    def kept_files(self, action: RestoreAction, b: FileBackup, runner: StepRunner, timeout: float) -> StepResult:
        assert action.into
        kind = file_type(b.path, b.integrity or "auto")
        guard = (
            ""
            if action.replace
            else 'if [ -d "$into" ] && [ -n "$(ls -A -- "$into" 2>/dev/null)" ]; then '
            '_rec error "folder $into is not empty (set replace: true to extract over it)"; exit 0; fi\n'
        )
        script = (
            PRELUDE
            + select_newest(b.path)
            + f"into={q(action.into)}\n"
            + guard
            + 'mkdir -p -- "$into" 2>"$_e" || { _rec error "cannot create $into: $(head -c 300 "$_e")"; exit 0; }\n'
            + timed(_EXTRACT[kind])
            + '_rec restored "$(find "$into" -type f | wc -l)" "$(du -sk "$into" | cut -f1)"\n'
            + "exit 0\n"
        )
        where = b.host or "here"
        source = f"{runner.describe(b.host) if b.host else 'here'}: extract the newest {b.path} into {action.into}"
        return _kept(runner.script(b.host, script, timeout, {}), source, f"into {where}:{action.into}")

    def kept_database(
        self, action: RestoreAction, b: PostgresDumpBackup, runner: StepRunner, timeout: float
    ) -> StepResult:
        assert action.database
        server = action.server or self._default_server(b)
        if server is None:
            return StepResult(Status.ERROR, f"no server: set restore.server, or restore_test.server on {b.name}")
        secrets: dict[str, str] = {}
        password = self._password(server)
        if password:
            secrets["ITOPS_SECRET_1"] = password
        db = action.database
        if not _DB_RE.match(db):  # checked at load too; the name reaches SQL text below
            return StepResult(Status.ERROR, f"database name {db!r} is not a plain lowercase SQL identifier")
        env = [f"PGHOST={q(server.host)}", f"PGPORT={int(server.port)}", f"PGUSER={q(server.user)}"]
        if server.sslmode:
            env.append(f"PGSSLMODE={q(server.sslmode)}")
        # db matched _DB_RE above: plain identifier text, safe inside SQL
        exists_sql = "SELECT 1 FROM pg_database WHERE datname = '" + db + "'"  # noqa: S608
        drop_sql, create_sql = f"DROP DATABASE {db} WITH (FORCE)", f"CREATE DATABASE {db}"
        replace = (
            f'psql -X -q -v ON_ERROR_STOP=1 -d "$maint" -c {q(drop_sql)} >/dev/null '
            '2>"$_e" || { _rec error "cannot drop the existing database: $(head -c 300 "$_e")"; exit 0; }\n'
            if action.replace
            else '_rec error "database $db already exists on the server (set replace: true)"; exit 0\n'
        )
        # no --create (the archive cannot switch database); a plain dump goes through a restricted psql
        load = (
            '{ case "$n" in *.gz) _h=$(gzip -dc -- "$n" 2>/dev/null | head -c 5);; *) _h=$(head -c 5 -- "$n");; esac; '
            'if [ "$_h" = PGDMP ]; then pg_restore --no-owner --no-privileges --exit-on-error --dbname="$db" -- "$n"; '
            "else _load_plain; fi; }"
        )
        exports = "export " + " ".join(env) + " PGCONNECT_TIMEOUT=10 PGAPPNAME=itops-drill\n"
        script = (  # shell text; the only SQL in it is built from db, checked above
            PRELUDE  # noqa: S608
            + exports
            + PG_UNSET
            + ('PGPASSWORD="$ITOPS_SECRET_1"; export PGPASSWORD\n' if password else "")
            + select_newest(b.path)
            + f"db={q(db)}; maint={q(server.dbname)}\n"
            + f'_x=$(psql -X -A -t -d "$maint" -c {q(exists_sql)} 2>"$_e") || '
            '{ _rec error "cannot connect to the server: $(head -c 300 "$_e")"; exit 0; }\n'
            + (role_check() if server.unprivileged else "")
            + f'if [ "$_x" = 1 ]; then {replace}fi\n'
            + f'psql -X -q -v ON_ERROR_STOP=1 -d "$maint" -c {q(create_sql)} >/dev/null 2>"$_e" || '
            '{ _rec error "cannot create the database: $(head -c 300 "$_e")"; exit 0; }\n'
            + PLAIN_LOAD
            + timed(load)
            + META_RECORD
            + '_rec restored "$(psql -X -A -t -d "$db" -c "SELECT count(*) FROM pg_stat_user_tables")" ""\n'
            + "exit 0\n"
        )
        source = (
            f"{runner.describe(b.host) if b.host else 'here'}: restore the newest {b.path} into database "
            f"{db} on {server.host}:{server.port}"
        )
        res = runner.script(b.host, script, timeout, secrets)
        return _kept(res, source, f"into database {db} on {server.host}", "table(s)")

    def _default_server(self, b: PostgresDumpBackup) -> PgServer | None:
        opts = backup_options(self.inv).get(b.name)
        spec = opts.restore if opts is not None else None
        return spec.server if isinstance(spec, PostgresRestoreSpec) else None

    def _password(self, server: PgServer) -> str | None:
        value = None
        if server.password_env:
            value = os.environ.get(server.password_env)
            if not value:
                raise ItopsError(f"environment variable {server.password_env} (server.password_env) is not set")
        elif server.password_file:
            path = Path(os.path.expanduser(server.password_file))
            path = path if path.is_absolute() else self.inv.path.resolve().parent / path
            value = read_secret_file(path, "server.password_file")  # SecretFileError: refused / unreadable
        if value:
            register_secret(value)
        return value


def _kept(res: ProbeResult, source: str, where: str, unit: str = "file(s)") -> StepResult:
    recs = records(res.text)
    excerpt = "\n".join("\t".join((r.kind, *r.fields)) for r in recs)[:2000]
    if res.rc is None or res.timed_out:
        return StepResult(
            Status.FAIL if res.timed_out else Status.ERROR,
            "restore timed out" if res.timed_out else f"restore did not run: {res.error}",
            source,
            excerpt,
        )
    if first(recs, "none") is not None:
        return StepResult(Status.FAIL, "no backup file to restore", source, excerpt, "no copy", "a copy")
    refused = meta_problem(recs)
    if refused:
        return StepResult(Status.FAIL, refused, source, excerpt)
    err = first(recs, "error")
    if err is not None:
        return StepResult(Status.FAIL, err.get(0), source, excerpt)
    rec = first(recs, "restore")
    chosen = first(recs, "file")
    name = os.path.basename(chosen.get(0)) if chosen else "?"
    if rec is None:
        return StepResult(Status.ERROR, f"restore gave no result (rc {res.rc}): {res.err_text[-300:]}", source, excerpt)
    seconds = elapsed(rec.get(1), rec.get(2))
    took = f"{seconds:.2f}s" if seconds is not None else "-"
    if rec.get(0) != "0":
        detail = rec.get(3).strip()
        return StepResult(
            Status.FAIL, f"restore of {name} failed (exit {rec.get(0)}): {detail}", source, excerpt, took, "exit 0"
        )
    restored = first(recs, "restored")
    count = f", {restored.get(0)} {unit}" if restored and restored.get(0) else ""
    return StepResult(Status.PASS, f"restored {name} {where} in {took}{count}", source, excerpt, took, "exit 0")
