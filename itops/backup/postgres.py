"""``postgres_dump`` backups: pg_dump files (custom or plain, optionally gzip'd) on a host or here.

Integrity: a custom-format dump must list with ``pg_restore --list``; a plain dump must end
with pg_dump's ``-- PostgreSQL database dump complete`` line (a truncated dump does not).

Restore test: a new database with a unique name (``<prefix>_<UTC time>_<random>``) is created
on the server named in ``restore_test.server``, the newest dump is restored into it (timed),
the ``verify`` queries run in it, and it is dropped again on exit, also when something
failed. The dump's own database is never touched: the restore only ever names the new one.
``pg_restore``/``psql`` run where the dump is (the host, or here) and connect to the server.
"""

from __future__ import annotations

import posixpath
import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime

from itops.backup.facts import BackupFacts, Observation, RestoreOutcome, Verdict, format_age, format_limit
from itops.backup.hostkinds import (
    BackupContext,
    ProbeSpec,
    absent_reason,
    base_facts,
    finish_restore,
    listing_probe,
    parse_listing,
    probe_problem,
    restore_common,
    restore_records,
    where_of,
)
from itops.backup.options import PgQuery, PostgresRestoreSpec
from itops.backup.shell import Record, first, q, records, script, select_newest, strip_tool_prefix, timed
from itops.checkapi import ProbeResult
from itops.inventory import PostgresDumpBackup

TRAILER = "PostgreSQL database dump complete"

# Decide the format from the first bytes (custom dumps start with PGDMP), through gzip for *.gz.
_DETECT = r"""case "$n" in
  *.gz) _head() { gzip -dc -- "$n" 2>/dev/null | head -c 5; }; _tail() { gzip -dc -- "$n" 2>/dev/null | tail -c 300; };;
  *) _head() { head -c 5 -- "$n"; }; _tail() { tail -c 300 -- "$n"; };;
esac
"""


def scratch_database(prefix: str, now: float) -> str:
    """A database name nothing else uses: prefix, UTC time, random suffix (a valid SQL identifier)."""
    return f"{prefix}_{time.strftime('%Y%m%d%H%M%S', time.gmtime(now))}_{secrets.token_hex(4)}"


class PostgresDumpKind:
    """The ``postgres_dump`` verifier."""

    def probes(self, ctx: BackupContext) -> list[ProbeSpec]:
        b = ctx.backup
        assert isinstance(b, PostgresDumpBackup)
        out = [listing_probe(ctx, b.path), ProbeSpec("check", self._check_script(ctx), max(ctx.command_timeout, 600))]
        spec = ctx.restore
        if isinstance(spec, PostgresRestoreSpec) and spec.server is not None:
            ctx.state.setdefault("database", scratch_database(spec.database_prefix, ctx.now))
            out.append(ProbeSpec("restore", self._restore_script(ctx, spec), ctx.restore_timeout()))
        return out

    def _check_script(self, ctx: BackupContext) -> str:
        b = ctx.backup
        assert isinstance(b, PostgresDumpBackup)
        method = ctx.options.integrity
        fmt = {"custom": "_f=custom", "plain": "_f=plain"}.get(method, '_f=plain; [ "$(_head)" = PGDMP ] && _f=custom')
        body = (
            _DETECT
            + fmt
            + '\n_rec format "$_f"\n'
            + 'case "$n" in *.gz) _step "gzip -t" gzip -t -- "$n" || exit 0;; esac\n'
            + 'if [ "$_f" = custom ]; then\n'
            + '  pg_restore --list "$n" > "$_e.toc" 2>"$_e"; _rc=$?\n'
            + '  _rec step "pg_restore --list" "$_rc" "$(head -c 600 "$_e")"\n'
            + '  _rec toc "$(grep -vc \'^;\' "$_e.toc")" "$(grep -c \' TABLE DATA \' "$_e.toc")"; rm -f "$_e.toc"\n'
            + "else\n"
            + f"  if _tail | grep -q {q(TRAILER)}; then _rec trailer ok; else _rec trailer missing; fi\n"
            + "fi\n"
        )
        if method == "none":
            body = "_rec nomethod\n"
        return script(select_newest(b.path), body)

    def _restore_script(self, ctx: BackupContext, spec: PostgresRestoreSpec) -> str:
        b = ctx.backup
        assert isinstance(b, PostgresDumpBackup) and spec.server is not None
        srv = spec.server
        db = str(ctx.state["database"])
        env = [f"PGHOST={q(srv.host)}", f"PGPORT={int(srv.port)}", f"PGUSER={q(srv.user)}"]
        if srv.sslmode:
            env.append(f"PGSSLMODE={q(srv.sslmode)}")
        setup = (
            "export " + " ".join(env) + " PGCONNECT_TIMEOUT=10 PGTZ=UTC PGAPPNAME=itops-restore-test\n"
            "unset PGDATABASE PGSERVICE PGPASSFILE\n"
            + (f'PGPASSWORD="${{{ctx.restore_secret_var}}}"; export PGPASSWORD\n' if ctx.restore_secret_var else "")
            + f"db={q(db)}; maint={q(srv.dbname)}\n"
            + "_created=0\n"
            # drop only what this script created; the name is unique to this run
            + '_cleanup() { _ok=ok; if [ "$_created" = 1 ]; then '
            + f'psql -X -q -d "$maint" -c {q(f"DROP DATABASE IF EXISTS {_ident(db)}")} >/dev/null 2>"$_e.drop" '
            + '|| _ok=failed; _rec cleanup "$_ok" "$(head -c 300 "$_e.drop" 2>/dev/null)"; fi; '
            + 'rm -f "$_e" "$_e.drop" "$_e.gz"; }\n'
            + '_rec scratch "$db"\n'
        )
        create = f'psql -X -q -v ON_ERROR_STOP=1 -d "$maint" -c {q(f"CREATE DATABASE {_ident(db)}")} >/dev/null'
        load = (
            '{ _f=plain; [ "$(_head)" = PGDMP ] && _f=custom; '
            'if [ "$_f" = custom ]; then pg_restore --no-owner --no-privileges --exit-on-error -d "$db" "$n"; '
            'else case "$n" in '
            '*.gz) ( gzip -dc -- "$n"; echo "$?" > "$_e.gz" ) | psql -X -q -v ON_ERROR_STOP=1 -d "$db" -f - >/dev/null '
            '&& [ "$(cat "$_e.gz")" = 0 ];; '
            '*) psql -X -q -v ON_ERROR_STOP=1 -d "$db" -f "$n" >/dev/null;; esac; fi; }'
        )
        queries = "".join(
            f'psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$db" -c {q(v.query)} > "$_e.q" 2>"$_e"; _qrc=$?\n'
            f'_rec query {i} "$_qrc" "$(head -n 1 "$_e.q" | head -c 200)" "$(head -c 300 "$_e")"; rm -f "$_e.q"\n'
            for i, v in enumerate(spec.verify)
        )
        return script(
            select_newest(b.path),
            _DETECT,
            setup,
            timed(f"{{ {create} && _created=1 && {load}; }}"),
            '[ "$_rc" = 0 ] || exit 0\n',
            queries,
        )

    # -- facts -----------------------------------------------------------------------------------
    def facts(self, ctx: BackupContext, results: Mapping[str, ProbeResult]) -> BackupFacts:
        b = ctx.backup
        assert isinstance(b, PostgresDumpBackup)
        copies, listing = parse_listing(ctx, b.path, results.get("list"))
        obs = {"copies": listing}
        integrity, obs["integrity"] = self._integrity(ctx, results.get("check"))
        restore = None
        spec = ctx.restore
        if isinstance(spec, PostgresRestoreSpec):
            restore, obs["restore"] = self._restore(ctx, spec, results.get("restore"))
        return base_facts(
            ctx,
            where_of(ctx, b.path),
            copies=copies,
            absent=absent_reason(listing),
            integrity=integrity,
            restore=restore,
            observations=obs,
        )

    def _integrity(self, ctx: BackupContext, res: ProbeResult | None) -> tuple[Verdict | None, Observation]:
        source = f"{ctx.location}: pg_restore --list / dump trailer of the newest dump"
        if res is None or not res.ok:
            why = probe_problem(res, "the integrity test") if res is not None else "probe missing from the batch"
            return None, Observation(source=source, error=why)
        recs = records(res.text)
        chosen = first(recs, "file")
        if chosen is None:
            return None, Observation(source=source)
        path = chosen.get(0)
        name = posixpath.basename(path)
        excerpt = "\n".join("\t".join((r.kind, *r.fields)) for r in recs)[:2000]
        obs = Observation(source=source, excerpt=excerpt)
        if first(recs, "nomethod"):
            return Verdict(True, f"{name}: integrity not tested (integrity: none)"), obs
        for step in (r for r in recs if r.kind == "step"):
            if step.get(1) == "127":
                return None, Observation(source, excerpt, error=f"could not assess: {step.get(0)}: command not found")
            if step.get(1) != "0":
                msg = strip_tool_prefix(step.get(2), path) or f"exit {step.get(1)}"
                return Verdict(False, f"{step.get(0)} failed: {msg} ({name})", detail=name), obs
        toc = first(recs, "toc")
        if toc is not None:
            return Verdict(
                True, f"{name}: pg_restore --list ok ({toc.get(0)} entries, {toc.get(1)} with table data)"
            ), obs
        trailer = first(recs, "trailer")
        if trailer is not None and trailer.get(0) == "ok":
            return Verdict(True, f"{name}: plain dump ends with pg_dump's completion line"), obs
        return Verdict(
            False, f"plain dump {name} does not end with '-- {TRAILER}': it is truncated or not a pg_dump", detail=name
        ), obs

    def _restore(
        self, ctx: BackupContext, spec: PostgresRestoreSpec, res: ProbeResult | None
    ) -> tuple[RestoreOutcome | None, Observation]:
        rto = float(spec.rto) if spec.rto else None
        if spec.server is None:
            return None, Observation(
                error="could not assess: restore_test.server is not set (where to create the scratch database)"
            )
        db = str(ctx.state.get("database", ""))
        server = f"{spec.server.host}:{spec.server.port}"
        source = f"{ctx.location}: restore the newest dump into scratch database {db} on {server}"
        recs = restore_records(res, source, rto, nothing_to_restore="no dump file to restore")
        if isinstance(recs, tuple):
            return recs
        chosen = first(recs, "file")
        assert res is not None and chosen is not None  # restore_records answered otherwise
        run = restore_common(recs, res)
        problems = list(run.problems)
        verified: list[str] = []
        got = {int(r.get(0)): r for r in recs if r.kind == "query" and r.get(0).isdigit()}
        if not problems:
            for i, v in enumerate(spec.verify):
                ok, text = judge_query(v, got.get(i), ctx.now)
                (verified if ok else problems).append(text)
        return finish_restore(
            run, recs, problems=problems, verified=verified, rto=rto,
            what=f"{posixpath.basename(chosen.get(0))} into database {db} on {spec.server.host}:{spec.server.port}",
            not_cleaned=f"scratch database {db} was not dropped", source=source,
        )


def _ident(name: str) -> str:
    # names come from scratch_database(): [a-z0-9_] only, so double quotes are enough
    return '"' + name.replace('"', '""') + '"'


def judge_query(v: PgQuery, rec: Record | None, now: float) -> tuple[bool, str]:
    """(passed, words) for one verification query's result record."""
    if rec is None:
        return False, f"{v.query}: did not run"
    if rec.get(1) != "0":
        return False, f"{v.query} failed: {strip_tool_prefix(rec.get(3)) or 'exit ' + rec.get(1)}"
    value = rec.get(2).strip()
    if v.min is not None or v.max is not None:
        try:
            number = float(value)
        except ValueError:
            return False, f"{v.query} returned {value!r}, not a number"
        if v.min is not None and number < v.min:
            return False, f"{v.query} returned {value}, expected at least {v.min:g}"
        if v.max is not None and number > v.max:
            return False, f"{v.query} returned {value}, expected at most {v.max:g}"
    if v.equals is not None and value != v.equals:
        return False, f"{v.query} returned {value!r}, expected {v.equals!r}"
    if v.max_age is not None:
        try:
            when = parse_pg_time(value)
        except ValueError:
            return False, f"{v.query} returned {value!r}, not a timestamp"
        age = now - when
        if age > float(v.max_age):
            return False, f"{v.query} returned {value}: {format_age(age)} old, max age {format_limit(float(v.max_age))}"
    return True, f"{v.query} = {value or '(empty)'}"


def parse_pg_time(text: str) -> float:
    """Epoch seconds of a PostgreSQL timestamp as psql prints it (UTC when it has no zone)."""
    t = text.strip().replace(" ", "T", 1)
    if len(t) >= 3 and t[-3] in "+-" and t[-2:].isdigit():
        t += ":00"  # +00 -> +00:00
    when = datetime.fromisoformat(t)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()
