"""``file`` backups: a path glob on a host (or here). Copies, integrity by type, manifest, restore test.

Three probes go into the host's batch: ``list`` (every matching file's mtime and size),
``check`` (integrity of the newest file: ``gzip -t``, ``tar -t``, ``zstd -t``; its sha256
against a named manifest) and, when a restore test runs, ``restore`` (extract the newest
file into a unique scratch folder, check expected files, named checksums and a sample of
members against the archive, remove the scratch folder, also on failure or timeout).
``check`` and ``restore`` pick the newest file themselves and name it, so a backup that
lands while the batch runs is noticed instead of verifying a different file.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping

from itops.backup.facts import BackupFacts, Copy, Observation, RestoreOutcome, Verdict, format_size, newest_first
from itops.backup.hostkinds import (
    DEFAULT_SCRATCH_PARENT,
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
from itops.backup.options import FileRestoreSpec
from itops.backup.shell import (
    Record,
    check_paths,
    first,
    inside,
    make_scratch,
    q,
    records,
    relative_member,
    script,
    select_newest,
    source_dir,
    strip_tool_prefix,
    timed,
)
from itops.checkapi import ProbeResult
from itops.inventory import FileBackup

#: file suffix -> archive type, longest first
_SUFFIXES = (
    (".tar.gz", "tar.gz"),
    (".tgz", "tar.gz"),
    (".tar.zst", "tar.zst"),
    (".tzst", "tar.zst"),
    (".tar", "tar"),
    (".gz", "gzip"),
    (".zst", "zstd"),
)

_TEST_STEPS = {
    "gzip": "_step 'gzip -t' gzip -t -- \"$n\"",
    "zstd": "_step 'zstd -t' zstd -q -t -- \"$n\"",
    "tar": "_step 'tar -t' tar -tf \"$n\"",
    "tar.gz": "_step 'gzip -t' gzip -t -- \"$n\" && _step 'tar -tzf' tar -tzf \"$n\"",
    "tar.zst": "_step 'zstd -t' zstd -q -t -- \"$n\" && "
    "_step 'tar -t' sh -c 'zstd -q -dc -- \"$1\" | tar -tf -' _ \"$n\"",
}
_EXTRACT = {
    "tar.gz": 'tar -xzf "$n" -C "$s/data"',
    "tar": 'tar -xf "$n" -C "$s/data"',
    "tar.zst": '{ zstd -q -dc -- "$n" | tar -xf - -C "$s/data"; }',
    "gzip": '{ _b=$(basename -- "$n" .gz); gzip -dc -- "$n" > "$s/data/$_b"; }',
    "zstd": '{ _b=$(basename -- "$n" .zst); zstd -q -dc -- "$n" > "$s/data/$_b"; }',
    "none": 'cp -- "$n" "$s/data/"',
}
_LIST_MEMBERS = {
    "tar.gz": 'tar -tzf "$n"',
    "tar": 'tar -tf "$n"',
    "tar.zst": '{ zstd -q -dc -- "$n" | tar -tf -; }',
}
_STREAM_MEMBERS = {
    "tar.gz": 'tar -xOzf "$n" -T "$s/sample"',
    "tar": 'tar -xOf "$n" -T "$s/sample"',
    "tar.zst": '{ zstd -q -dc -- "$n" | tar -xOf - -T "$s/sample"; }',
}


def file_type(path: str, method: str) -> str:
    """The archive type of ``path`` (a name or the glob): the configured method, else from the suffix.

    The integrity test looks at the newest file's own name; the restore follows the glob's suffix.
    """
    if method not in ("auto", ""):
        return method
    name = path.lower()
    return next((kind for suffix, kind in _SUFFIXES if name.endswith(suffix)), "none")


def manifest_path(backup: FileBackup) -> str:
    """The manifest as an absolute path (a relative one is relative to the backup folder)."""
    assert backup.manifest
    if backup.manifest.startswith("/"):
        return backup.manifest
    return posixpath.join(source_dir(backup.path), backup.manifest)


def scratch_parent(ctx: BackupContext, spec: FileRestoreSpec) -> str:
    return posixpath.normpath(spec.into or DEFAULT_SCRATCH_PARENT)


class FileKind:
    """The ``file`` verifier."""

    def probes(self, ctx: BackupContext) -> list[ProbeSpec]:
        b = ctx.backup
        assert isinstance(b, FileBackup)
        out = [listing_probe(ctx, b.path), ProbeSpec("check", self._check_script(ctx), max(ctx.command_timeout, 600))]
        spec = ctx.restore
        if isinstance(spec, FileRestoreSpec) and not self._refused(ctx, spec):
            out.append(ProbeSpec("restore", self._restore_script(ctx, spec), ctx.restore_timeout()))
        return out

    # -- scripts ---------------------------------------------------------------------------------
    def _check_script(self, ctx: BackupContext) -> str:
        b = ctx.backup
        assert isinstance(b, FileBackup)
        method = ctx.options.integrity
        steps = ""
        if method == "auto":
            cases = "".join(
                f"  *{suffix}) {_TEST_STEPS[kind]} ;;\n" for suffix, kind in _SUFFIXES if kind in _TEST_STEPS
            )
            steps = f'case "$n" in\n{cases}  *) _rec nomethod ;;\nesac\n'
        elif method in _TEST_STEPS:
            steps = _TEST_STEPS[method] + "\n"
        else:
            steps = "_rec nomethod\n"
        manifest = ""
        if b.manifest:
            manifest = (
                f"m={q(manifest_path(b))}\n"
                'if [ -r "$m" ]; then _rec sha256 "$(sha256sum < "$n" | cut -d" " -f1)"; '
                'head -c 262144 -- "$m" | while IFS= read -r l; do _rec manifest "$l"; done; '
                'else _rec nomanifest "$m"; fi\n'
            )
        return script(select_newest(b.path), steps, manifest)

    def _restore_script(self, ctx: BackupContext, spec: FileRestoreSpec) -> str:
        b = ctx.backup
        assert isinstance(b, FileBackup)
        kind = file_type(b.path, ctx.options.integrity)
        parts = [
            select_newest(b.path),
            make_scratch(scratch_parent(ctx, spec)),
            'mkdir "$s/data" || exit 0\n',
        ]
        parts.append(timed(_EXTRACT[kind]))
        parts.append('[ "$_rc" = 0 ] || exit 0\n')
        parts.append(check_paths("$s/data", spec.expect_files, [v.path for v in spec.verify]))
        if kind in _LIST_MEMBERS and spec.sample:
            parts.append(_sample_script(kind, spec.sample))
        parts.append('_rec restored "$(find "$s/data" -type f | wc -l)" "$(du -sk "$s/data" | cut -f1)"\n')
        return script(*parts)

    @staticmethod
    def _refused(ctx: BackupContext, spec: FileRestoreSpec) -> str:
        """Why restoring into the configured place is refused (it would write into the backup source)."""
        b = ctx.backup
        assert isinstance(b, FileBackup)
        parent, folder = scratch_parent(ctx, spec), source_dir(b.path)
        if inside(parent, folder):
            return f"restore target {parent} is inside the backup folder {folder}: refused (set restore_test.into)"
        return ""

    # -- facts -----------------------------------------------------------------------------------
    def facts(self, ctx: BackupContext, results: Mapping[str, ProbeResult]) -> BackupFacts:
        b = ctx.backup
        assert isinstance(b, FileBackup)
        copies, listing = parse_listing(ctx, b.path, results.get("list"))
        obs = {"copies": listing}
        integrity, obs["integrity"] = self._integrity(ctx, copies, results.get("check"))
        restore = None
        if isinstance(ctx.restore, FileRestoreSpec):
            restore, obs["restore"] = self._restore(ctx, ctx.restore, copies, results.get("restore"))
        return base_facts(
            ctx,
            where_of(ctx, b.path),
            copies=copies,
            absent=absent_reason(listing),
            integrity=integrity,
            restore=restore,
            observations=obs,
        )

    def _integrity(
        self, ctx: BackupContext, copies: tuple[Copy, ...], res: ProbeResult | None
    ) -> tuple[Verdict | None, Observation]:
        source = f"{ctx.location}: integrity test of the newest file ({ctx.options.integrity})"
        if res is None:
            return None, Observation(source=source, error="integrity probe missing from the batch")
        recs = records(res.text)
        if not res.ok:
            return None, Observation(
                source=source, excerpt=res.err_text[:500], error=probe_problem(res, "the integrity test")
            )
        chosen = first(recs, "file")
        if chosen is None:
            return None, Observation(source=source)  # no copy: nothing to verify
        newest = newest_first(copies)[0] if copies else None
        if newest is not None and newest.name != chosen.get(0):
            return None, Observation(
                source=source,
                error=f"could not assess: the newest backup changed while it was verified "
                f"({newest.name} listed, {chosen.get(0)} tested); run again",
            )
        path = chosen.get(0)
        name = posixpath.basename(path)
        problems: list[str] = []
        passed: list[str] = []
        for step in (r for r in recs if r.kind == "step"):
            if step.get(1) == "0":
                passed.append(step.get(0))
            else:
                problems.append(
                    f"{step.get(0)} failed: {strip_tool_prefix(step.get(2), path) or 'exit ' + step.get(1)}"
                )
        if any(r.kind == "nomethod" for r in recs):
            passed.append(f"no integrity test for this file type ({name})")
        manifest_verdict = _manifest(ctx, recs, path)
        if manifest_verdict is not None:
            (passed if manifest_verdict[0] else problems).append(manifest_verdict[1])
        excerpt = "\n".join("\t".join((r.kind, *r.fields)) for r in recs if r.kind != "manifest")[:2000]
        obs = Observation(source=source, excerpt=excerpt)
        if problems:
            return Verdict(False, "; ".join(problems) + f" ({name})", detail=name), obs
        return Verdict(True, f"{name}: " + ", ".join(passed), detail=name), obs

    def _restore(
        self, ctx: BackupContext, spec: FileRestoreSpec, copies: tuple[Copy, ...], res: ProbeResult | None
    ) -> tuple[RestoreOutcome | None, Observation]:
        source = f"{ctx.location}: restore the newest file into a scratch folder in {scratch_parent(ctx, spec)}"
        refused = self._refused(ctx, spec)
        rto = float(spec.rto) if spec.rto else None
        if refused:
            return RestoreOutcome(False, None, rto, "", problems=(refused,)), Observation(source)
        recs = restore_records(res, source, rto, nothing_to_restore="no backup file to restore")
        if isinstance(recs, tuple):
            return recs
        chosen = first(recs, "file")
        assert res is not None and chosen is not None  # restore_records answered otherwise
        run = restore_common(recs, res)
        problems = list(run.problems)
        verified: list[str] = []
        problems += path_problems(recs, {relative_member(v.path): v.sha256 for v in spec.verify}, verified)
        sample = first(recs, "sample")
        if sample is not None:
            count = sample.get(0)
            if sample.get(1) and sample.get(1) == sample.get(2):
                verified.append(f"{count} sampled member(s) match the archive byte for byte")
            else:
                problems.append(f"{count} sampled member(s) differ from the archive after extraction ({sample.get(3)})")
        restored = first(recs, "restored")
        if restored is not None:
            verified.append(f"{restored.get(0)} file(s), {format_size(int(restored.get(1) or 0) * 1024)} restored")
        name = posixpath.basename(chosen.get(0))
        return finish_restore(
            run,
            recs,
            problems=problems,
            verified=verified,
            rto=rto,
            what=f"{name} into {ctx.location}:{run.scratch or scratch_parent(ctx, spec)}",
            not_cleaned=f"scratch folder {run.scratch} was not removed",
            source=source,
        )


def path_problems(recs: list[Record], sums: Mapping[str, str], verified: list[str]) -> list[str]:
    """Problems from ``exists``/``missing``/``sum`` records (expected files, named checksums)."""
    problems: list[str] = []
    present = [r.get(0) for r in recs if r.kind == "exists"]
    for r in recs:
        if r.kind == "missing":
            problems.append(f"expected file {r.get(0)} is missing from the restored backup")
        elif r.kind == "escapes":
            problems.append(
                f"expected file {r.get(0)} is a symbolic link leading out of the restored data "
                f"(to {r.get(1)}): not followed"
            )
        elif r.kind == "notfile":
            problems.append(f"expected file {r.get(0)} is not a regular file in the restored backup")
        elif r.kind == "sum":
            want = sums.get(r.get(0), "")
            if want and r.get(1) != want:
                problems.append(f"{r.get(0)}: sha256 {r.get(1)[:12]}… does not match the expected {want[:12]}…")
            elif want:
                verified.append(f"{r.get(0)} sha256 ok")
    if present:
        verified.append(f"{len(present)} expected file(s) present")
    return problems


def _manifest(ctx: BackupContext, recs: list[Record], path: str) -> tuple[bool, str] | None:
    b = ctx.backup
    assert isinstance(b, FileBackup)
    if not b.manifest:
        return None
    missing = first(recs, "nomanifest")
    if missing is not None:
        return False, f"manifest {missing.get(0)} not found or unreadable"
    actual = (first(recs, "sha256") or Record("sha256", ("",))).get(0)
    name = posixpath.basename(path)
    mname = posixpath.basename(manifest_path(b))
    for r in recs:
        if r.kind != "manifest":
            continue
        digest, _, entry = r.get(0).strip().partition(" ")
        entry = entry.strip().lstrip("*")
        if entry in (path, name) or posixpath.basename(entry) == name:
            if digest.lower() == actual:
                return True, f"sha256 matches {mname}"
            return False, f"sha256 of {name} does not match {mname} (manifest {digest[:12]}…, actual {actual[:12]}…)"
    return False, f"manifest {mname} has no entry for {name}"


def _sample_script(kind: str, count: int) -> str:
    """Compare ``count`` members spread through the archive with what was extracted."""
    return (
        f'{_LIST_MEMBERS[kind]} > "$s/list" 2>/dev/null\n'
        "_total=$(grep -c '' \"$s/list\")\n"
        ': > "$s/sample"; _k=0\n'
        f'_every=$(( _total / {count} )); [ "$_every" -ge 1 ] || _every=1\n'
        "_i=0\n"
        "while IFS= read -r m; do _i=$((_i + 1)); [ $(( (_i - 1) % _every )) -eq 0 ] || continue; "
        f'[ "$_k" -lt {count} ] || break; '
        '[ "$(readlink -f "$s/data/$m")" = "$s/data/${m#./}" ] || continue; '
        '[ -f "$s/data/$m" ] && [ ! -L "$s/data/$m" ] && [ "$(stat -c %h -- "$s/data/$m")" = 1 ] || continue; '
        'printf \'%s\\n\' "$m" >> "$s/sample"; _k=$((_k + 1)); done < "$s/list"\n'
        'if [ -s "$s/sample" ]; then\n'
        f"  _a=$({_STREAM_MEMBERS[kind]} 2>/dev/null | sha256sum | cut -d' ' -f1)\n"
        '  _r=$(while IFS= read -r m; do cat -- "$s/data/$m"; done < "$s/sample" | sha256sum | cut -d\' \' -f1)\n'
        '  _rec sample "$_k" "$_a" "$_r" "$(tr \'\\n\' \' \' < "$s/sample" | head -c 300)"\n'
        "fi\n"
    )
