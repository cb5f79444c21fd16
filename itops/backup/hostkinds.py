"""What the host-side backup kinds have in common: the context a verifier gets and the probes it returns.

A host-side verifier (file, postgres_dump, restic) turns one backup into named probes for the
host's batch, and the probes' results back into :class:`~itops.backup.facts.BackupFacts`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from itops.backup.facts import BackupFacts, Copy, Observation, RestoreOutcome
from itops.backup.options import BackupOptions, RestoreSpec
from itops.backup.shell import Record, elapsed, first, list_files, records, source_dir
from itops.checkapi import ProbeResult
from itops.inventory import Backup

#: Default parent of scratch folders on a host.
DEFAULT_SCRATCH_PARENT = "/var/tmp"  # noqa: S108 - a parent for mktemp -d, never a fixed name
#: Restores with no RTO and no timeout give up after this long.
DEFAULT_RESTORE_TIMEOUT = 600.0
ABSENT = "absent: "


@dataclass(frozen=True)
class ProbeSpec:
    """One command for the host's batch (its name is unique within the backup)."""

    name: str
    command: str
    timeout: float


@dataclass
class BackupContext:
    """Everything a host-side verifier needs about one backup in one run."""

    backup: Backup
    options: BackupOptions
    location: str  # "bk1" (inventory host) or "local"
    now: float
    command_timeout: float
    restore: RestoreSpec | None = None  # set when this run restores the backup
    secret_var: str = ""  # ITOPS_SECRET_n holding this backup's password, when it has one
    restore_secret_var: str = ""  # the scratch database server's password
    state: dict[str, Any] = field(default_factory=dict)  # kind-specific (restic: the slice to check)
    vars: Mapping[str, Any] = field(default_factory=dict)  # check parameters: the host's merged vars

    @property
    def name(self) -> str:
        return self.backup.name

    def restore_timeout(self) -> float:
        spec = self.restore
        if spec is not None and spec.timeout:
            return float(spec.timeout)
        if spec is not None and spec.rto:
            return max(3 * float(spec.rto), 60.0)
        return DEFAULT_RESTORE_TIMEOUT


class HostKind(Protocol):
    def probes(self, ctx: BackupContext) -> list[ProbeSpec]: ...

    def facts(self, ctx: BackupContext, results: Mapping[str, ProbeResult]) -> BackupFacts: ...


def base_facts(ctx: BackupContext, where: str, **kw: Any) -> BackupFacts:
    b = ctx.backup
    return BackupFacts(
        name=b.name,
        kind=b.kind,
        where=where,
        now=ctx.now,
        rpo=float(b.rpo),
        min_size=b.min_size,
        max_shrink_pct=b.max_shrink_pct,
        min_copies=b.min_copies,
        vars=ctx.vars,
        **kw,
    )


def where_of(ctx: BackupContext, path: str) -> str:
    return f"{ctx.location}:{path}"


# --- listing of file copies (file and postgres_dump) ---------------------------------------------


def listing_probe(ctx: BackupContext, glob: str) -> ProbeSpec:
    return ProbeSpec("list", list_files(glob), ctx.command_timeout)


def parse_listing(ctx: BackupContext, glob: str, res: ProbeResult | None) -> tuple[tuple[Copy, ...], Observation]:
    """Copies from the listing probe, or an observation saying why there are none / it failed.

    A missing folder is not an error (the backup is simply absent): the observation's excerpt
    says so and :func:`absent_reason` picks it up for the message.
    """
    if res is None:
        return (), Observation(error="listing probe missing from the batch")
    source = f"{ctx.location}: list {glob}"
    folder = source_dir(glob)
    if res.rc == 3:
        return (), Observation(source=source, excerpt=f"{ABSENT}folder {folder} does not exist on {ctx.location}")
    if res.rc == 4:
        return (), Observation(
            source=source, error=f"could not assess: permission denied reading {folder} on {ctx.location}"
        )
    if not res.ok:
        return (), Observation(source=source, error=probe_problem(res, f"listing {glob}"))
    copies = []
    for line in res.text.splitlines():
        parts = line.split(" ", 2)
        if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
            continue
        copies.append(Copy(name=parts[2], created=float(parts[0]), size=int(parts[1])))
    return tuple(copies), Observation(source=source, excerpt=res.text[:2000])


@dataclass
class RestoreRun:
    """What every restore probe reports: timing, scratch space, cleanup, and why it failed."""

    seconds: float | None
    scratch: str
    problems: list[str]
    cleanup_ok: bool
    timed_out: bool


def probe_problem(res: ProbeResult, label: str) -> str:
    """Why a probe gave no usable answer, in one line naming ``label`` (not the whole script)."""
    first_err = next((ln.strip() for ln in res.err_text.splitlines() if ln.strip()), "")
    tail = f": {first_err[:200]}" if first_err else ""
    if res.timed_out:
        return f"could not assess: {label} timed out"
    if res.rc is None:
        return f"could not assess: {label} did not run: {res.error or 'unknown error'}"
    if res.rc == 127:
        return f"could not assess: {label}: command not found{tail}"
    return f"could not assess: {label} exited {res.rc}{tail}"


def absent_reason(obs: Observation) -> str:
    """Why a listing found nothing, when it knows (see :func:`parse_listing`)."""
    return obs.excerpt[len(ABSENT) :] if obs.excerpt.startswith(ABSENT) else ""


def restore_records(
    res: ProbeResult | None, source: str, rto: float | None, *, nothing_to_restore: str | None = None
) -> list[Record] | tuple[RestoreOutcome | None, Observation]:
    """The restore probe's records, or the answer of a restore test that cannot go on.

    A probe missing from the batch, or one that never finished and left nothing to judge, is not
    assessable: no outcome, an Observation carrying the error. With ``nothing_to_restore``, a probe
    that ran but found no ``file`` to restore is a failed restore with that problem.
    """
    if res is None:
        return None, Observation(source=source, error="restore probe missing from the batch")
    recs = records(res.text)
    no_file = nothing_to_restore is not None and first(recs, "file") is None
    if res.rc is None and (not recs or no_file):
        return None, Observation(source=source, error=probe_problem(res, "the restore test"))
    if no_file:
        return RestoreOutcome(False, None, rto, "", problems=(str(nothing_to_restore),)), Observation(source)
    return recs


def restore_common(recs: list[Record], res: ProbeResult) -> RestoreRun:
    """Read the records every restore probe prints (scratch, restore, error, cleanup)."""
    problems: list[str] = []
    scratch = (first(recs, "scratch") or Record("scratch", ("",))).get(0)
    cleanup = first(recs, "cleanup")
    # no scratch made: nothing to clean; made: the cleanup record must say ok
    cleanup_ok = (cleanup.get(0) == "ok") if cleanup is not None else not scratch
    err = first(recs, "error")
    if err is not None:
        problems.append(err.get(0))
    rec = first(recs, "restore")
    seconds = None
    if rec is not None:
        seconds = elapsed(rec.get(1), rec.get(2))
        if rec.get(0) != "0":
            detail = rec.get(3).strip()
            problems.append(f"restore failed (exit {rec.get(0)})" + (f": {detail}" if detail else ""))
    elif err is None:
        problems.append("restore did not finish: " + (probe_problem(res, "restore") if not res.ok else "no result"))
    return RestoreRun(seconds, scratch, problems, cleanup_ok, bool(res.timed_out))


def finish_restore(
    run: RestoreRun,
    recs: list[Record],
    *,
    problems: list[str],
    verified: list[str],
    rto: float | None,
    what: str,
    not_cleaned: str,
    source: str,
) -> tuple[RestoreOutcome, Observation]:
    """The outcome every restore verifier ends with: cleanup and timeout problems added (``not_cleaned``
    says what is left behind when cleanup failed), the records as the evidence excerpt."""
    if not run.cleanup_ok:
        problems.append(not_cleaned)
    if run.timed_out:
        problems.append("restore did not finish before the timeout")
    outcome = RestoreOutcome(
        ok=not problems,
        seconds=run.seconds,
        rto=rto,
        what=what,
        problems=tuple(problems),
        verified=tuple(verified),
        cleanup_ok=run.cleanup_ok,
        timed_out=run.timed_out,
    )
    excerpt = "\n".join("\t".join((r.kind, *r.fields)) for r in recs)[:2000]
    return outcome, Observation(source=source, excerpt=excerpt)
