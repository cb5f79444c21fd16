"""``restic`` backups: snapshot freshness per host/tags, rotating ``restic check``, restore test.

``restic check --read-data-subset n/N`` reads 1/N of the pack files; each run checks the
slice attempted longest ago, and ``<store>/state/restic/<backup>.json`` records when each
slice was last checked and how it went, so the result can state the coverage of the last
N runs. A slice that failed keeps the integrity check failing until it verifies again,
even while other slices are being checked.

The repository password comes from ``password_env`` (read here, exported at the top of the
batch script, never in a command line) or ``password_file`` (a file on the machine restic
runs on, passed as ``--password-file``).
"""

from __future__ import annotations

import json
import posixpath
import re
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from itops.backup.facts import BackupFacts, Copy, Observation, RestoreOutcome, Verdict
from itops.backup.files import path_problems
from itops.backup.hostkinds import (
    DEFAULT_SCRATCH_PARENT,
    BackupContext,
    ProbeSpec,
    base_facts,
    finish_restore,
    probe_problem,
    restore_common,
    restore_records,
)
from itops.backup.options import ResticRestoreSpec
from itops.backup.shell import check_paths, first, inside, make_scratch, q, relative_member, script, timed
from itops.checkapi import ProbeResult
from itops.inventory import ResticBackup

CHECK_TIMEOUT = 1800.0
_HISTORY = 100
_NOISE = ("using temporary cache", "create exclusive lock", "load indexes", "check all packs", "check snapshots")
_GROUP_RE = re.compile(r"read group #(\d+) of (\d+) data packs \(out of total (\d+) packs in (\d+) groups\)")
_HEX_RE = re.compile(r"\b([0-9a-f]{12})[0-9a-f]{52}\b")
_RESTORING_RE = re.compile(r"<Snapshot (\w+) of \[([^\]]*)\]")


def restic_function(b: ResticBackup, secret_var: str) -> str:
    """A ``_restic`` sh function: restic on the repository with the password, no cache left behind."""
    # every value as --option=VALUE: a value starting with "-" can never become an option of its own
    if b.password_file:
        auth = f"{q('--password-file=' + b.password_file)} "
        env = ""
    else:
        auth = ""
        env = f'RESTIC_PASSWORD="${{{secret_var}}}" ' if secret_var else ""
    return (
        "unset RESTIC_PASSWORD_FILE RESTIC_PASSWORD_COMMAND\n"
        f'_restic() {{ {env}restic {q("--repo=" + b.repository)} {auth}--no-cache "$@"; }}\n'
    )


# --- slice state ---------------------------------------------------------------------------------


def state_path(state_dir: Path, backup: str) -> Path:
    return state_dir / "restic" / f"{backup}.json"


def load_state(state_dir: Path | None, backup: str, slices: int) -> dict[str, Any]:
    """The recorded slice checks of a backup (fresh when N changed or nothing is recorded)."""
    empty: dict[str, Any] = {"slices": slices, "last": {}, "history": []}
    if state_dir is None or slices <= 0:
        return empty
    try:
        data = json.loads(state_path(state_dir, backup).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return empty
    if not isinstance(data, dict) or data.get("slices") != slices or not isinstance(data.get("last"), dict):
        return empty
    data.setdefault("history", [])
    return data


def save_state(state_dir: Path, backup: str, state: Mapping[str, Any]) -> None:
    """Write the slice record atomically and privately (:func:`itops.fsutil.write_private_atomic`)."""
    from itops.fsutil import ensure_private_dir, write_private_atomic

    path = state_path(state_dir, backup)
    ensure_private_dir(state_dir)
    ensure_private_dir(path.parent)
    write_private_atomic(path, json.dumps(state, indent=2, sort_keys=True) + "\n")


def next_slice(state: Mapping[str, Any]) -> int:
    """The slice attempted longest ago (never attempted first, lowest number first)."""
    n = int(state["slices"])
    last = state.get("last", {})
    return min(range(1, n + 1), key=lambda i: (float(last.get(str(i), {}).get("at", -1.0)), i))


def record_slice(state: dict[str, Any], slice_no: int, ok: bool, at: float, run_id: str, note: str) -> None:
    state["last"][str(slice_no)] = {"at": at, "ok": ok, "run": run_id, "note": note}
    state["history"] = [*state.get("history", []), {"at": at, "slice": slice_no, "ok": ok, "run": run_id}][-_HISTORY:]


def coverage(state: Mapping[str, Any]) -> str:
    """How much of the repository the recorded slice checks cover, in words."""
    n = int(state["slices"])
    last = state.get("last", {})
    good = sorted(int(k) for k, v in last.items() if v.get("ok"))
    never = [i for i in range(1, n + 1) if str(i) not in last]
    if len(good) == n:
        since = min(float(last[str(i)]["at"]) for i in good)
        return f"all {n} slices verified since {time.strftime('%Y-%m-%d %H:%M', time.gmtime(since))} UTC"
    text = f"{len(good)}/{n} slices verified"
    return text + (f" (never checked: {', '.join(map(str, never))})" if never else "")


# --- the verifier ---------------------------------------------------------------------------------


class ResticKind:
    """The ``restic`` verifier. ``ctx.state`` holds ``slice`` (this run's) and the loaded ``record``."""

    def probes(self, ctx: BackupContext) -> list[ProbeSpec]:
        b = ctx.backup
        assert isinstance(b, ResticBackup)
        fn = restic_function(b, ctx.secret_var)
        out = [ProbeSpec("snapshots", fn + "_restic snapshots --json", max(ctx.command_timeout, 120))]
        out.append(
            ProbeSpec("check", fn + "_restic check " + self._check_args(ctx), max(ctx.command_timeout, CHECK_TIMEOUT))
        )
        spec = ctx.restore
        if isinstance(spec, ResticRestoreSpec) and not self._refused(b, spec):
            out.append(ProbeSpec("restore", self._restore_script(ctx, spec, fn), ctx.restore_timeout()))
        return out

    def _check_args(self, ctx: BackupContext) -> str:
        method = ctx.options.integrity
        if method == "read-data":
            return "--read-data"
        if ctx.options.restic_slices:
            return f"--read-data-subset {int(ctx.state['slice'])}/{ctx.options.restic_slices}"
        return ""

    @staticmethod
    def _refused(b: ResticBackup, spec: ResticRestoreSpec) -> str:
        parent = posixpath.normpath(spec.into or DEFAULT_SCRATCH_PARENT)
        repo = b.repository
        if repo.startswith("/") and inside(parent, repo):
            return f"restore target {parent} is inside the repository {repo}: refused (set restore_test.into)"
        return ""

    def _restore_script(self, ctx: BackupContext, spec: ResticRestoreSpec, fn: str) -> str:
        # options as --name=VALUE, then "--": the snapshot (validated: latest or hex) is only ever an id
        args = ['--target="$s/data"', "--verify"]
        if spec.host:
            args.append(q(f"--host={spec.host}"))
        args += [q(f"--tag={t}") for t in spec.tags]
        args += [q(f"--include={p}") for p in spec.include]
        args += ["--", q(spec.snapshot)]
        return script(
            fn,
            make_scratch(posixpath.normpath(spec.into or DEFAULT_SCRATCH_PARENT)),
            timed(f'_restic restore {" ".join(args)} > "$s/out"'),
            '_rec snapshot "$(head -n 1 "$s/out" | head -c 300)"\n',
            '[ "$_rc" = 0 ] || exit 0\n',
            check_paths("$s/data", spec.expect_files, [v.path for v in spec.verify]),
            '_rec restored "$(find "$s/data" -type f | wc -l)" "$(du -sk "$s/data" | cut -f1)"\n',
        )

    # -- facts -----------------------------------------------------------------------------------
    def facts(self, ctx: BackupContext, results: Mapping[str, ProbeResult]) -> BackupFacts:
        b = ctx.backup
        assert isinstance(b, ResticBackup)
        where = f"{ctx.location}:{b.repository}"
        copies, obs_copies = self._snapshots(ctx, results.get("snapshots"))
        obs = {"copies": obs_copies}
        integrity, obs["integrity"] = self._check(ctx, results.get("check"))
        restore = None
        if isinstance(ctx.restore, ResticRestoreSpec):
            restore, obs["restore"] = self._restore(ctx, ctx.restore, results.get("restore"))
        return base_facts(ctx, where, copies=copies, integrity=integrity, restore=restore, observations=obs)

    def _snapshots(self, ctx: BackupContext, res: ProbeResult | None) -> tuple[tuple[Copy, ...], Observation]:
        source = f"{ctx.location}: restic -r {ctx.backup.repository} snapshots --json"  # type: ignore[attr-defined]
        if res is None or not res.ok:
            why = probe_problem(res, "restic snapshots") if res is not None else "probe missing from the batch"
            return (), Observation(source=source, excerpt=res.err_text[:500] if res else "", error=why)
        try:
            data = json.loads(res.text or "[]") or []
            copies = tuple(_snapshot_copy(s) for s in data)
        except (ValueError, KeyError, TypeError) as exc:
            return (), Observation(
                source=source, excerpt=res.text[:500], error=f"could not parse restic snapshots: {exc}"
            )
        return copies, Observation(source=source, excerpt=f"{len(copies)} snapshot(s)")

    def _check(self, ctx: BackupContext, res: ProbeResult | None) -> tuple[Verdict | None, Observation]:
        args = self._check_args(ctx)
        label = f"restic check {args}".strip()
        source = f"{ctx.location}: {label}"
        if res is None or res.rc is None or res.command_missing:
            why = probe_problem(res, label) if res is not None else "probe missing from the batch"
            return None, Observation(source=source, error=why)
        groups = _GROUP_RE.search(res.text)
        scope = f" ({groups.group(2)} of {groups.group(3)} packs)" if groups else ""
        ok = res.ok
        errors = [ln.strip() for ln in res.err_text.splitlines() if ln.strip() and not ln.strip().startswith(_NOISE)]
        detail = _HEX_RE.sub(r"\1…", "; ".join(errors[:3]))[:400]
        note = "ok" if ok else detail or f"exit {res.rc}"
        slices = ctx.options.restic_slices
        if slices:
            record: dict[str, Any] = ctx.state["record"]
            record_slice(record, int(ctx.state["slice"]), ok, ctx.now, str(ctx.state.get("run_id", "")), note)
            ctx.state["save"] = True
            failed = sorted(int(k) for k, v in record["last"].items() if not v.get("ok"))
            cover = coverage(record)
            obs = Observation(source=source, excerpt=(res.text[-800:] + "\n" + res.err_text[-800:]).strip())
            if not ok:
                return Verdict(False, f"{label} failed{scope}: {note}; {cover}", detail=cover), obs
            if failed:
                old = record["last"][str(failed[0])]
                when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(float(old["at"])))
                return Verdict(
                    False,
                    f"{label} passed{scope}, but slice {failed[0]}/{slices} failed on {when} UTC and has not "
                    f"verified since: {old.get('note', '')}",
                    detail=cover,
                ), obs
            return Verdict(True, f"{label} passed{scope}; {cover}", detail=cover), obs
        obs = Observation(source=source, excerpt=(res.text[-800:] + "\n" + res.err_text[-800:]).strip())
        if not ok:
            return Verdict(False, f"{label} failed{scope}: {note}"), obs
        return Verdict(True, f"{label} passed{scope}"), obs

    def _restore(
        self, ctx: BackupContext, spec: ResticRestoreSpec, res: ProbeResult | None
    ) -> tuple[RestoreOutcome | None, Observation]:
        b = ctx.backup
        assert isinstance(b, ResticBackup)
        parent = posixpath.normpath(spec.into or DEFAULT_SCRATCH_PARENT)
        source = f"{ctx.location}: restic restore {spec.snapshot} into a scratch folder in {parent}"
        rto = float(spec.rto) if spec.rto else None
        refused = self._refused(b, spec)
        if refused:
            return RestoreOutcome(False, None, rto, "", problems=(refused,)), Observation(source)
        recs = restore_records(res, source, rto)
        if isinstance(recs, tuple):
            return recs
        assert res is not None  # restore_records answered otherwise
        run = restore_common(recs, res)
        problems = list(run.problems)
        verified: list[str] = []
        problems += path_problems(recs, {relative_member(v.path): v.sha256 for v in spec.verify}, verified)
        restored = first(recs, "restored")
        if restored is not None:
            if restored.get(0) == "0":
                problems.append("nothing was restored (does restore_test.include name paths in the snapshot?)")
            else:
                verified.append(f"{restored.get(0)} file(s) restored and verified by restic (--verify)")
        snap = first(recs, "snapshot")
        said = _RESTORING_RE.search(snap.get(0)) if snap is not None else None
        what = f"snapshot {said.group(1)} of {said.group(2)}" if said else f"snapshot {spec.snapshot}"
        return finish_restore(
            run,
            recs,
            problems=problems,
            verified=verified,
            rto=rto,
            what=f"{what} into {ctx.location}:{run.scratch or parent}",
            not_cleaned=f"scratch folder {run.scratch} was not removed",
            source=source,
        )


def _snapshot_copy(s: Mapping[str, Any]) -> Copy:
    tags = sorted(s.get("tags") or [])
    group = f"host {s['hostname']}" + (f" tags {','.join(tags)}" if tags else "")
    return Copy(
        name=str(s.get("short_id") or s["id"][:8]), created=parse_time(str(s["time"])), group=group, encrypted=True
    )


def parse_time(text: str) -> float:
    """Epoch seconds of an RFC 3339 time with any number of fraction digits (restic prints nanoseconds)."""
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$", text.strip())
    if not m:
        raise ValueError(f"unreadable time {text!r}")
    frac = (m.group(2) or "0")[:6].ljust(6, "0")
    zone = "+00:00" if m.group(3) == "Z" else m.group(3)
    return datetime.fromisoformat(f"{m.group(1)}.{frac}{zone}").timestamp()
