"""The run store: one folder per run with ``results.jsonl`` plus a SQLite history.

Results are appended to ``results.jsonl`` (flushed per line) as they arrive, so a
run that dies keeps everything gathered so far; the SQLite database (WAL mode)
indexes runs and results for ``runs list``, ``diff`` and report trends.
Location: ``--store DIR``, else ``$ITOPS_HOME``, else the platform's user data dir.

Everything in the store is private to the user running itops, whatever the umask: folders
0700, files 0600 (see :mod:`itops.fsutil`); a store folder owned by another user or writable
by group/others is refused (:class:`itops.fsutil.UnsafePathError`, exit 4).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import closing
from pathlib import Path
from typing import Any, TextIO

import platformdirs

from itops import history_db, integrity
from itops.errors import UsageError
from itops.fsutil import ensure_private_dir, open_private_append, private_sqlite_file, write_private_atomic
from itops.model import Result, Run
from itops.redact import redact_result
from itops.tally import RunTally


def default_home() -> Path:
    """Where runs are stored when no ``--store`` is given."""
    env = os.environ.get("ITOPS_HOME")
    return Path(env).expanduser() if env else Path(platformdirs.user_data_dir("itops", appauthor=False))


def new_run_id(now: float | None = None) -> str:
    """Sortable, unique run id: UTC timestamp plus random suffix."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now if now is not None else time.time()))
    return f"{stamp}-{secrets.token_hex(3)}"


class Store:
    """A folder of runs and the history database beside them."""

    def __init__(self, root: Path | str | None = None, *, signing_key: Path | None = None) -> None:
        self.root = Path(root).expanduser() if root else default_home()
        #: ``--signing-key`` for the runs this store writes (else $ITOPS_SIGNING_KEY, else the store's key)
        self.signing_key_path = signing_key
        ensure_private_dir(self.root)
        ensure_private_dir(self.root / "runs")
        self.db_path = private_sqlite_file(self.root / "history.db")
        with closing(self._connect()) as db, db:
            #: the history database has the results.data column of older stores (rows need a value)
            self.legacy_data = history_db.create_or_upgrade(db)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.db_path, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.row_factory = sqlite3.Row
        return db

    def run_dir(self, run_id: str) -> Path:
        return self.root / "runs" / run_id

    def begin(self, run: Run) -> RunWriter:
        """Record a new run as running and return the writer that streams its results."""
        folder = self.run_dir(run.id)
        folder.mkdir(mode=0o700, exist_ok=False)
        ensure_private_dir(folder)
        with closing(self._connect()) as db, db:
            db.execute(
                "INSERT INTO runs (id, kind, started, inventory, inventory_digest, version, host_keys, counts,"
                " state, pid, planned, shard, selection, merged_from, inventory_lines)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    run.id,
                    run.kind,
                    run.started,
                    run.inventory,
                    run.inventory_digest,
                    run.version,
                    "{}",
                    "{}",
                    "running",
                    os.getpid(),
                    json.dumps(run.planned),
                    run.shard,
                    run.selection,
                    json.dumps(run.merged_from),
                    json.dumps(run.inventory_lines),
                ),
            )
        key = integrity.resolve_signing_key(self.root, self.signing_key_path)
        return RunWriter(self, run, integrity.ChainWriter(run.id, folder, key))

    def public_key_path(self) -> Path:
        """The public half of the store's own signing key (``keys/signing.pub``)."""
        return self.root / integrity.KEY_DIR / integrity.PUBLIC_KEY_FILE

    def verify(self, run_id: str, public_key: Path | None = None) -> integrity.Verification:
        """Verify a stored run's chain, signatures and history rows (see :mod:`itops.integrity`).

        ``public_key``: the key to trust (an auditor's pinned copy); default the store's own.
        """
        rid = self.resolve(run_id)
        path = public_key or self.public_key_path()
        public = integrity.load_public_key(path)
        with closing(self._connect()) as db:  # rows are compared as they are read, never all held
            if self._legacy_rows(db, rid):  # rows with the whole line: compared as they are
                rows = (r["data"] for r in db.execute("SELECT data FROM results WHERE run_id = ? ORDER BY seq", (rid,)))
                return integrity.verify_run(self.run_dir(rid), rid, public, rows)
            keyed = (tuple(r) for r in db.execute(history_db.SELECT_ROW_KEYS, (rid,)))
            return integrity.verify_run(self.run_dir(rid), rid, public, keyed, same=history_db.row_agrees(rid))

    def _legacy_rows(self, db: sqlite3.Connection, run_id: str) -> bool:
        """Whether the run's rows hold whole result lines (written by an itops before 2026-12-07)."""
        if not self.legacy_data:
            return False
        row = db.execute("SELECT data FROM results WHERE run_id = ? ORDER BY seq LIMIT 1", (run_id,)).fetchone()
        return row is not None and bool(row["data"])

    def import_run(self, source: Path) -> Run:
        """Copy a finished run folder from another store (``runs/RUN_ID``) into this one and index it.

        The folder's files are copied as they are (results, manifest, signatures), so the run still
        verifies against the public key of the store that wrote it (``runs verify --pubkey``).
        """
        source = Path(source)
        try:
            data = json.loads((source / "run.json").read_text(encoding="utf-8"))
            run = Run(**{k: v for k, v in data.items() if k in Run.__dataclass_fields__})
        except (OSError, ValueError, TypeError) as exc:
            raise UsageError(f"{source} is not a finished run folder (no readable run.json): {exc}") from exc
        if not re.fullmatch(r"[0-9A-Za-z_.-]{1,80}", run.id) or run.id in (".", ".."):
            raise UsageError(f"{source}: bad run id {run.id!r} in run.json")
        with closing(self._connect()) as db:
            if db.execute("SELECT 1 FROM runs WHERE id = ?", (run.id,)).fetchone():
                raise UsageError(f"run {run.id} is already in {self.root}")
        folder = self.run_dir(run.id)
        folder.mkdir(mode=0o700, exist_ok=False)
        ensure_private_dir(folder)
        for item in sorted(source.iterdir()):
            if item.is_file() and not item.is_symlink() and not item.name.startswith("."):
                write_private_atomic(folder / item.name, _chunks(item))  # streamed: a run can be large

        checks: dict[str, tuple[str, str]] = {}

        def rows() -> Iterator[tuple[Any, ...]]:  # read as SQLite inserts them: never the whole run in memory
            for seq, body in enumerate(_stored_bodies(folder / "results.jsonl")):
                r = Result.from_dict(json.loads(body))
                checks.setdefault(r.check_id, history_db.check_row(r))
                yield history_db.result_row(run.id, seq, r, self.legacy_data)

        def metrics() -> Iterator[tuple[Any, ...]]:
            for body in _stored_bodies(folder / "results.jsonl"):
                r = Result.from_dict(json.loads(body))
                for name, value in r.metrics.items():
                    yield (run.id, run.started, run.kind, r.target, r.check_id, name, float(value))

        with closing(self._connect()) as db, db:
            db.execute(
                "INSERT INTO runs (id, kind, started, finished, inventory, inventory_digest, version, host_keys,"
                " counts, state, exit_code, accounts, planned, shard, selection, merged_from, inventory_lines)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    run.id,
                    run.kind,
                    run.started,
                    run.finished,
                    run.inventory,
                    run.inventory_digest,
                    run.version,
                    json.dumps(run.host_keys),
                    json.dumps(run.counts),
                    run.state,
                    run.exit_code,
                    json.dumps(run.accounts),
                    json.dumps(run.planned),
                    run.shard,
                    run.selection,
                    json.dumps(run.merged_from),
                    json.dumps(run.inventory_lines),
                ),
            )
            db.executemany(history_db.insert_results_sql(self.legacy_data), rows())
            db.executemany(
                "INSERT INTO run_checks (run_id, check_id, title, frameworks) VALUES (?,?,?,?)",
                [(run.id, check, *row) for check, row in checks.items()],
            )
            db.executemany(
                "INSERT INTO metrics (run_id, ts, kind, target, check_id, name, value) VALUES (?,?,?,?,?,?,?)",
                metrics(),
            )
        return run

    def forget(self, run_id: str) -> None:
        """Remove a run's rows from the history database (its folder is the caller's business)."""
        with closing(self._connect()) as db, db:
            for table in ("metrics", "results", "run_checks"):
                db.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))  # noqa: S608 (fixed names)
            db.execute("DELETE FROM runs WHERE id = ?", (run_id,))

    def resolve(self, run_id: str) -> str:
        """Expand ``latest`` or a unique id prefix to a full run id."""
        with closing(self._connect()) as db:
            if run_id == "latest":
                row = db.execute("SELECT id FROM runs ORDER BY started DESC, id DESC LIMIT 1").fetchone()
                if row is None:
                    raise UsageError("no runs stored yet", hint=f"store: {self.root}")
                return str(row["id"])
            rows = db.execute("SELECT id FROM runs WHERE id LIKE ? ORDER BY id", (run_id + "%",)).fetchall()
        if not rows:
            raise UsageError(f"no run {run_id!r} in {self.root}", hint="`itops runs list` shows the runs")
        if len(rows) > 1 and rows[0]["id"] != run_id:
            raise UsageError(f"run id prefix {run_id!r} is ambiguous ({len(rows)} runs)")
        return str(rows[0]["id"])

    def get_run(self, run_id: str) -> Run:
        rid = self.resolve(run_id)
        with closing(self._connect()) as db:
            row = db.execute("SELECT * FROM runs WHERE id = ?", (rid,)).fetchone()
        return _run_from_row(row)

    def list_runs(self, limit: int = 50, kind: str | None = None) -> list[Run]:
        sql = "SELECT * FROM runs WHERE (? IS NULL OR kind = ?) ORDER BY started DESC, id DESC LIMIT ?"
        with closing(self._connect()) as db:
            return [_run_from_row(r) for r in db.execute(sql, (kind, kind, limit)).fetchall()]

    def metric_series(
        self, target: str | None = None, prefix: str = "", *, kind: str | None = None, before: float | None = None
    ) -> dict[tuple[str, str], list[tuple[float, float]]]:
        """Recorded metrics as ``{(target, name): [(run start, value), ...]}`` oldest first.

        ``target`` None: every target; ``prefix``: names starting with it (``fs.used_pct:``);
        ``before``: only runs started before this time (a check's history excludes its own run).
        """
        # only the filters given, as plain terms: "(? IS NULL OR m.target = ?)" would make SQLite scan
        # the whole metrics_series index on every call (a run's forecasts ask once per host and prefix,
        # so the reads, and the page cache each worker's connection fills, grew with the history)
        where = ["m.name >= ?", "m.name < ?"]
        params: list[str | float] = [prefix, prefix + "\uffff"]
        for term, value in (("m.target = ?", target), ("m.kind = ?", kind), ("m.ts < ?", before)):
            if value is not None:
                where.append(term)
                params.append(value)
        sql = (
            "SELECT m.target, m.name, m.ts, m.value FROM metrics m JOIN runs r ON r.id = m.run_id"  # noqa: S608
            f" WHERE {' AND '.join(where)} ORDER BY m.target, m.name, m.ts"  # (fixed terms, values bound)
        )
        out: dict[tuple[str, str], list[tuple[float, float]]] = {}
        with closing(self._connect()) as db:
            for row in db.execute(sql, params):
                out.setdefault((row["target"], row["name"]), []).append((row["ts"], row["value"]))
        return out

    def history_for(self, target: str, prefixes: Sequence[str], before: float) -> dict[str, list[tuple[float, float]]]:
        """A target's metrics from runs started before ``before``, by name (a RunOptions.history provider)."""
        out: dict[str, list[tuple[float, float]]] = {}
        for prefix in prefixes:
            for (_target, name), points in self.metric_series(target, prefix, before=before).items():
                out[name] = points
        return out

    def targets(self, run_id: str) -> set[str]:
        """The targets a run has results for."""
        rid = self.resolve(run_id)
        with closing(self._connect()) as db:
            return {row["target"] for row in db.execute("SELECT DISTINCT target FROM results WHERE run_id = ?", (rid,))}

    def results(self, run_id: str) -> list[Result]:
        """A run's results as a list (for views that need them all at once; else :meth:`iter_results`)."""
        return list(self.iter_results(run_id))

    def iter_results(self, run_id: str) -> Iterator[Result]:
        """A run's results one at a time, in stored order, without holding the run in memory;
        ``results.jsonl`` is the source of truth (it survives a killed run)."""
        rid = self.resolve(run_id)
        path = self.run_dir(rid) / "results.jsonl"
        if path.exists():
            yield from _read_jsonl(path)
            return
        if not self.legacy_data:
            return
        with closing(self._connect()) as db:  # a run of an older store whose folder is gone
            for row in db.execute("SELECT data FROM results WHERE run_id = ? ORDER BY seq", (rid,)):
                if row["data"]:
                    yield Result.from_dict(json.loads(row["data"]))

    def prune(
        self, older_than: float, keep_last: int = 0, *, dry_run: bool = False, now: float | None = None
    ) -> list[Run]:
        """Remove runs started more than ``older_than`` seconds ago from the history database and
        their folders (results.jsonl, run.json); never the newest ``keep_last`` runs, never a run
        whose process is still running. Returns the runs removed (or, with ``dry_run``, that would be).
        """
        cutoff = (time.time() if now is None else now) - older_than
        with closing(self._connect()) as db:
            rows = db.execute("SELECT * FROM runs ORDER BY started DESC, id DESC").fetchall()
        victims = [
            _run_from_row(r)
            for r in rows[max(keep_last, 0) :]
            if r["started"] < cutoff and not (r["state"] == "running" and _alive(r["pid"]))
        ]
        if dry_run or not victims:
            return victims
        for run in victims:  # the history rows first (results, metrics, run): a run is gone once not listed
            self.forget(run.id)
            if _RUN_ID_RE.fullmatch(run.id):  # an id is a folder name, never a path
                shutil.rmtree(self.run_dir(run.id), ignore_errors=True)
        return victims


_RUN_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")


def _alive(pid: int | None) -> bool:
    """Whether a process with this id runs (a run left 'running' by a dead process may be pruned)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _chunks(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    """A file's bytes in pieces of ``size``."""
    with path.open("rb") as fh:
        while chunk := fh.read(size):
            yield chunk


def _stored_bodies(path: Path) -> Iterator[str]:
    """Each complete line of a results.jsonl without its chain value (what history.db rows hold)."""
    if not path.exists():
        return
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.endswith("\n") or not line.strip():
                continue  # a torn last line from a killed run
            text = line.rstrip("\n")
            parts = integrity.split_chained(text)
            yield parts[0] if parts is not None else text


def _read_jsonl(path: Path) -> Iterator[Result]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                yield Result.from_dict(json.loads(line))
            except (ValueError, KeyError):
                continue  # a torn last line from a killed run


def _run_from_row(row: sqlite3.Row) -> Run:
    return Run(
        id=row["id"],
        kind=row["kind"],
        started=row["started"],
        finished=row["finished"],
        inventory=row["inventory"] or "",
        inventory_digest=row["inventory_digest"] or "",
        version=row["version"] or "",
        host_keys=json.loads(row["host_keys"] or "{}"),
        accounts=json.loads(row["accounts"] or "{}"),
        shard=row["shard"] or "",
        selection=row["selection"] or "",
        merged_from=json.loads(row["merged_from"] or "[]"),
        counts=json.loads(row["counts"] or "{}"),
        state=row["state"],
        exit_code=row["exit_code"],
        planned=json.loads(row["planned"] or "{}"),
        inventory_lines=json.loads(row["inventory_lines"] or "{}"),
    )


class StoredResults(list[Result]):
    """Results as :meth:`RunWriter.add_many` stored them (redacted), with :attr:`texts`: the JSON
    text of each (:meth:`Result.to_json`, as in results.jsonl without its chain value), so what
    prints them (``--format json``/``jsonl``) does not encode them a second time."""

    __slots__ = ("texts",)

    def __init__(self) -> None:
        super().__init__()
        self.texts: list[str] = []


class RunWriter:
    """Streams one run's results to disk as they arrive; used from a single thread.

    It keeps no results: :attr:`tally` counts them (statuses, severities, targets, check ids) for
    the run's counts and manifest, so a run's memory does not grow with its results.
    """

    COMMIT_EVERY = 0.5  # seconds between SQLite commits

    def __init__(self, store: Store, run: Run, chain: integrity.ChainWriter) -> None:
        self.store = store
        self.run = run
        self.chain = chain
        self.tally = RunTally()
        self._seq = 0
        fd = open_private_append(store.run_dir(run.id) / "results.jsonl")
        self._jsonl: TextIO = os.fdopen(fd, "a", encoding="utf-8")
        self._db = store._connect()
        self._last_commit = time.monotonic()
        self._insert = history_db.insert_results_sql(store.legacy_data)
        self._legacy = store.legacy_data
        self._checks_seen: set[str] = set()  # bounded by the checks of the run, not its results

    def add(self, result: Result) -> Result:
        return self.add_many([result])[0]

    def add_many(self, results: Sequence[Result]) -> StoredResults:
        """Append results: one flushed write to results.jsonl, one batched insert into SQLite.
        Returns them as stored (redacted), each with the JSON text it was stored as, for whatever
        streams them on (stdout prints those texts instead of encoding the results again).

        This is the single redaction step for everything stored: whatever produced a result
        (host, cloud, backup or drill runner, or a plugin), its message and evidence pass
        through :func:`itops.redact.redact_result` here.
        """
        stored = StoredResults()
        if not results:
            return stored
        texts = stored.texts
        rows = []
        lines = []
        new_checks = []
        run_id, seq, chain, count, legacy = self.run.id, self._seq, self.chain.chain, self.tally.add, self._legacy
        seen = self._checks_seen
        for result in results:
            result = redact_result(result)  # redact() remembers texts across hosts (bounded)
            text = result.to_json()  # encoded once: results.jsonl and the stdout stream
            lines.append(chain(text) + "\n")
            rows.append(history_db.result_row(run_id, seq, result, legacy))
            if result.check_id not in seen:
                seen.add(result.check_id)
                new_checks.append((run_id, result.check_id, *history_db.check_row(result)))
            seq += 1
            count(result)
            stored.append(result)
            texts.append(text)
        self._seq = seq
        self._jsonl.write("".join(lines))
        self._jsonl.flush()
        self.chain.checkpoint()  # signs the head of what was just flushed
        self._db.executemany(self._insert, rows)
        if new_checks:
            self._db.executemany(
                "INSERT OR IGNORE INTO run_checks (run_id, check_id, title, frameworks) VALUES (?,?,?,?)", new_checks
            )
        metrics = [
            (self.run.id, self.run.started, self.run.kind, r.target, r.check_id, name, float(value))
            for r in results
            for name, value in r.metrics.items()
        ]
        if metrics:
            self._db.executemany(
                "INSERT INTO metrics (run_id, ts, kind, target, check_id, name, value) VALUES (?,?,?,?,?,?,?)",
                metrics,
            )
        if time.monotonic() - self._last_commit > self.COMMIT_EVERY:
            self._db.commit()
            self._last_commit = time.monotonic()
        return stored

    def finish(
        self,
        state: str,
        exit_code: int | None,
        host_keys: dict[str, str] | None = None,
        accounts: dict[str, str] | None = None,
    ) -> Run:
        """Close the run: counts, host keys seen, final state (complete / interrupted / failed)."""
        self.run.finished = time.time()
        self.run.state = state
        self.run.exit_code = exit_code
        self.run.counts = self.tally.counts
        self.run.host_keys = dict(host_keys or {})
        self.run.accounts = dict(accounts or {})
        self._jsonl.flush()
        os.fsync(self._jsonl.fileno())
        self._jsonl.close()
        self._db.execute(
            "UPDATE runs SET finished=?, state=?, exit_code=?, counts=?, host_keys=?, accounts=? WHERE id=?",
            (
                self.run.finished,
                state,
                exit_code,
                json.dumps(self.run.counts),
                json.dumps(self.run.host_keys),
                json.dumps(self.run.accounts),
                self.run.id,
            ),
        )
        self._db.commit()
        self._db.close()
        self.chain.seal(
            {
                "kind": self.run.kind,
                "itops_version": self.run.version,
                "started": self.run.started,
                "finished": self.run.finished,
                "state": state,
                "exit_code": exit_code,
                "inventory": self.run.inventory,
                "inventory_digest": self.run.inventory_digest,
                "check_ids": sorted(self.tally.check_ids),
                "host_keys": self.run.host_keys,
                "accounts": self.run.accounts,
                "counts": self.run.counts,
                "shard": self.run.shard,
                "merged_from": self.run.merged_from,
            }
        )
        self.chain.close()
        write_private_atomic(self.store.run_dir(self.run.id) / "run.json", json.dumps(self.run.to_dict(), indent=2))
        return self.run
