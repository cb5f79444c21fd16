"""``postgres_dump`` backups: pg_dump files (custom or plain, optionally gzip'd) on a host or here.

Integrity: a custom-format dump must list with ``pg_restore --list``; a plain dump must end
with pg_dump's ``-- PostgreSQL database dump complete`` line (a truncated dump does not).

Restore test: a new database with a unique name (``<prefix>_<UTC time>_<random>``) is created
on the server named in ``restore_test.server``, the newest dump is restored into it (timed),
the ``verify`` queries run in it, and it is dropped again on exit, also when something
failed. The dump's own database is never touched: the restore only ever names the new one.
``pg_restore``/``psql`` run where the dump is (the host, or here) and connect to the server.

A dump is untrusted input. A custom-format dump goes through ``pg_restore --dbname`` into
the scratch database only (no ``--create``, so the archive cannot switch database). A plain
dump is fed to ``psql`` behind ``\\restrict KEY`` with a key drawn on the host for this run,
so psql refuses every meta-command in it (``\\!`` shell, ``\\connect`` to another database,
``\\copy``, ``\\set ON_ERROR_STOP``...) wherever it stands; pg_dump's own
``\\restrict``/``\\unrestrict`` lines are blanked outside COPY data as the dump streams
through (line numbers kept). A dump that tries one is a failed restore naming the command and
line. psql older than 13.22/14.19/15.14/16.10/17.6 lacks ``\\restrict``: plain dumps are then
not restored at all. With ``server.unprivileged: true`` the role is checked first and the
restore is refused when it could reach beyond its own databases (superuser, CREATEROLE,
server file or program access): the dump's SQL runs with the role's rights.
"""

from __future__ import annotations

import posixpath
import re
import secrets
import shlex
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

#: Environment that could steer psql/pg_restore on the host to another server, database or service.
PG_UNSET = "unset PGDATABASE PGSERVICE PGSERVICEFILE PGSYSCONFDIR PGPASSFILE PGHOSTADDR PGOPTIONS\n"

# Outside COPY data, pg_dump's own \restrict/\unrestrict lines become empty lines (psql refuses a
# second \restrict; the line count stays, so psql's line numbers are the dump's plus one).
_PLAIN_FILTER = r"""c { print; if ($0 == "\\.") c = 0; next }
/^\\(un)?restrict [A-Za-z0-9]+$/ { print ""; next }
/^COPY .* FROM stdin;$/ { c = 1 }
{ print }
"""

#: Shell functions: ``_dump`` (the dump's text on stdout) and ``_load_plain`` (``$n`` into ``$db``
#: through a restricted psql; records ``norestrict`` when psql cannot restrict meta-commands).
PLAIN_LOAD = (
    '_dump() { case "$n" in *.gz) gzip -dc -- "$n";; *) cat -- "$n";; esac; }\n'
    f"_filter={shlex.quote(_PLAIN_FILTER)}\n"
    "_load_plain() {\n"
    "  _x=$(printf '\\\\restrict k0\\n' | psql -X -q -v ON_ERROR_STOP=1 -d \"$db\" -f - 2>&1 >/dev/null) || {\n"
    "    case $_x in *'invalid command'*) _rec norestrict \"$(psql --version 2>&1 | head -c 100)\";; esac\n"
    "    printf '%s\\n' \"$_x\" >&2; return 1; }\n"
    "  _k=$(od -An -N18 -tx1 /dev/urandom | tr -d ' \\n'); [ -n \"$_k\" ] || return 1\n"
    '  { printf \'\\\\restrict %s\\n\' "$_k"; ( _dump; echo "$?" > "$_e.dump" ) | awk "$_filter"; } '
    '| psql -X -q -v ON_ERROR_STOP=1 -d "$db" -f - >/dev/null\n'
    '  _prc=$?; _drc=$(cat "$_e.dump" 2>/dev/null); rm -f "$_e.dump"\n'
    '  [ "$_prc" = 0 ] || return "$_prc"\n'
    '  [ "$_drc" = 0 ] || { echo "reading the dump failed (exit $_drc)" >&2; return 1; }\n'
    "}\n"
)

#: After ``timed(...)``: when psql refused a meta-command, record ``meta LINE TEXT`` (the dump's line).
META_RECORD = (
    'if [ "$_rc" != 0 ]; then '
    "_l=$(sed -n 's/^psql:<stdin>:\\([0-9][0-9]*\\): error: backslash commands are restricted.*/\\1/p' \"$_e\" "
    "| head -n 1); "
    'if [ -n "$_l" ]; then _l=$((_l - 1)); _rec meta "$_l" "$(_dump 2>/dev/null | sed -n "${_l}{p;q}" | head -c 200)"; '
    "fi; fi\n"
)

# What a role could do beyond its own databases: run programs or read/write files on the server
# (COPY ... PROGRAM), be or make a superuser, grant itself those roles (CREATEROLE before 16).
_ROLE_SQL = (
    "SELECT concat_ws(', ', CASE WHEN rolsuper THEN 'superuser' END, CASE WHEN rolcreaterole THEN 'CREATEROLE' END, "
    "CASE WHEN pg_has_role(current_user, 'pg_execute_server_program', 'USAGE') THEN 'pg_execute_server_program' END, "
    "CASE WHEN pg_has_role(current_user, 'pg_read_server_files', 'USAGE') THEN 'pg_read_server_files' END, "
    "CASE WHEN pg_has_role(current_user, 'pg_write_server_files', 'USAGE') THEN 'pg_write_server_files' END) "
    "FROM pg_roles WHERE rolname = current_user"
)


def role_check(maint_var: str = "$maint") -> str:
    """Refuse (``_rec error``, exit) when ``$PGUSER`` has rights beyond its own databases."""
    return (
        f'_priv=$(psql -X -A -t -d "{maint_var}" -c {q(_ROLE_SQL)} 2>"$_e") || '
        '{ _rec error "cannot check the role $PGUSER: $(head -c 300 "$_e")"; exit 0; }\n'
        'if [ -n "$_priv" ]; then _rec error "role $PGUSER has $_priv; server.unprivileged is set: '
        'a dump is only restored by a role without these (CREATEDB is enough)"; exit 0; fi\n'
    )


def meta_problem(recs: list[Record]) -> str:
    """The failure words when the dump tried a psql meta-command or psql cannot refuse them; else ''."""
    meta = first(recs, "meta")
    if meta is not None:
        text = "".join(c if c.isprintable() else "?" for c in meta.get(1)).strip()
        found = re.search(r"\\[^\s\\]*", text)
        cmd = found.group(0)[:20] if found else "\\?"
        return f"dump contains psql meta-command {cmd} at line {meta.get(0)}; not restored ({text[:120]})"
    old = first(recs, "norestrict")
    if old is not None:
        return (
            f"{old.get(0) or 'psql'} cannot refuse psql meta-commands (\\restrict needs psql 13.22, 14.19, "
            "15.14, 16.10, 17.6 or later): plain dump not restored"
        )
    return ""


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
            "export "
            + " ".join(env)
            + " PGCONNECT_TIMEOUT=10 PGTZ=UTC PGAPPNAME=itops-restore-test\n"
            + PG_UNSET
            + (f'PGPASSWORD="${{{ctx.restore_secret_var}}}"; export PGPASSWORD\n' if ctx.restore_secret_var else "")
            + f"db={q(db)}; maint={q(srv.dbname)}\n"
            + "_created=0\n"
            # drop only what this script created; the name is unique to this run
            + '_cleanup() { _ok=ok; if [ "$_created" = 1 ]; then '
            + f'psql -X -q -d "$maint" -c {q(f"DROP DATABASE IF EXISTS {_ident(db)}")} >/dev/null 2>"$_e.drop" '
            + '|| _ok=failed; _rec cleanup "$_ok" "$(head -c 300 "$_e.drop" 2>/dev/null)"; fi; '
            + 'rm -f "$_e" "$_e.drop" "$_e.dump"; }\n'
            + (role_check() if srv.unprivileged else "")
            + '_rec scratch "$db"\n'
        )
        create = f'psql -X -q -v ON_ERROR_STOP=1 -d "$maint" -c {q(f"CREATE DATABASE {_ident(db)}")} >/dev/null'
        # no --create: the archive's own database entry is never acted on; only the scratch one is named
        load = (
            '{ _f=plain; [ "$(_head)" = PGDMP ] && _f=custom; '
            'if [ "$_f" = custom ]; then pg_restore --no-owner --no-privileges --exit-on-error --dbname="$db" -- "$n"; '
            "else _load_plain; fi; }"
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
            PLAIN_LOAD,
            timed(f"{{ {create} && _created=1 && {load}; }}"),
            META_RECORD,
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
        refused = meta_problem(recs)
        problems = [refused] if refused else list(run.problems)
        verified: list[str] = []
        got = {int(r.get(0)): r for r in recs if r.kind == "query" and r.get(0).isdigit()}
        if not problems:
            for i, v in enumerate(spec.verify):
                ok, text = judge_query(v, got.get(i), ctx.now)
                (verified if ok else problems).append(text)
        return finish_restore(
            run,
            recs,
            problems=problems,
            verified=verified,
            rto=rto,
            what=f"{posixpath.basename(chosen.get(0))} into database {db} on {spec.server.host}:{spec.server.port}",
            not_cleaned=f"scratch database {db} was not dropped",
            source=source,
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
