#!/usr/bin/env python3
"""Scale benchmark: the audit pipeline at 1,000-10,000 canned hosts, and real sshd at 50-200 hosts.

(a) ``canned``: ``itops audit --format json`` through the CLI entry in a child process, every
    host's SSH connection replaced by a canned one that answers the host's real batch script
    (its nonce, its frames) with the probe outputs recorded from a real Debian lab host
    (bench/data/debian-hardened.json.gz, see bench/record_canned.py). Everything after the
    network is the real code: frame parsing (transport/batch.py, fed in 32 KiB chunks like a
    channel), evaluation, redaction, the run store with its integrity chain and signature,
    the JSON output. Then ``itops report`` renders the stored run as HTML, JSON and CSV, each
    in a child process. Printed: wall, auditor CPU (user+sys) and CPU per host, peak RSS
    (ru_maxrss of the child), output sizes. The audit is the real command at every size;
    ``--replay-above N`` (opt-in) writes runs above N hosts by replaying one host's results
    through the store instead; ``report -f json`` is skipped above ``--json-report-max`` hosts
    (opt-in, for an itops whose json report loads the whole run). ``ITOPS_SCALE_TRACE=FILE``: the
    audit child writes to FILE what its traced memory gained between 10 % and 90 % of the hosts
    (tracemalloc; several times slower).
(b) ``sshd``: N real sshd hosts (bench/fleet.py's lab: each chrooted into a copy of the cached
    Debian root): ``itops audit --format json`` as a child process with the threads executor,
    with ``--executor dask`` when this itops has that option (else the column says n/a), and
    bench/fleet.py's floor (bare paramiko, the same batched script): wall / CPU / peak RSS.

Benchmarks print figures and ratios; they are not tests. Usage:
    python bench/scale.py canned --hosts 1000 10000 [--checks '*']
    python bench/scale.py sshd --hosts 50 200 [--checks 'ssh.*,accounts.*,files.*_permissions']
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gzip
import json
import os
import pickle
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RECORDING = HERE / "data" / "debian-hardened.json.gz"
CHUNK = 32 * 1024  # what one read of an SSH channel typically gives


# -- child side: one canned audit -----------------------------------------------------------
def _canned_connection_class() -> type:
    from itops.transport.base import BatchOutcome, pump_frames
    from itops.transport.batch import DEFAULT_MAX_PROBE_OUTPUT, BatchScript

    recorded: dict[str, tuple[int, bytes, bytes]] = {
        cmd: (rc, base64.b64decode(out), base64.b64decode(err))
        for cmd, (rc, out, err) in json.loads(gzip.decompress(RECORDING.read_bytes())).items()
    }

    class CannedConnection:
        """Answers a batch with the recorded outputs, framed with the batch's own nonce."""

        host_key_fingerprint = "SHA256:canned"

        def run_batch(
            self,
            batch: BatchScript,
            *,
            idle_timeout: float,
            total_timeout: float,
            max_output: int = DEFAULT_MAX_PROBE_OUTPUT,
        ) -> BatchOutcome:
            mark = b"\n@@ITOPS:" + batch.nonce.encode() + b"@@ "
            parts: list[bytes] = []
            for i, cmd in enumerate(batch.commands):
                rc, out, err = recorded.get(cmd, (127, b"", b"sh: not recorded\n"))
                parts += [mark, b"OUT %d\n" % i, out, mark, b"ERR %d\n" % i, err, mark, b"RC %d %d\n" % (i, rc)]
            parts += [mark, b"END\n"]
            stream = b"".join(parts)
            chunks = iter([stream[i : i + CHUNK] for i in range(0, len(stream), CHUNK)] + [b""])
            parser, problem = pump_frames(
                batch,
                lambda _wait: next(chunks),
                idle_timeout=idle_timeout,
                total_timeout=total_timeout,
                max_output=max_output,
            )
            results = parser.complete(problem) if problem else parser.results
            return BatchOutcome(results, exit_status=0, complete=not problem, problem=problem)

        def is_active(self) -> bool:
            return True

        def close(self) -> None:
            pass

    return CannedConnection


def child_audit(inventory: Path, store: Path, checks: str, out: Path) -> None:
    """Run ``itops audit --format json`` in this process with canned connections."""
    from itops.cli.main import cli
    from itops.transport.pool import TRANSPORTS

    canned = _canned_connection_class()
    TRANSPORTS["ssh"] = lambda pool, host: canned()  # the transport table: every host answers from the recording
    if os.environ.get("ITOPS_SCALE_TRACE"):
        _trace_growth(Path(os.environ["ITOPS_SCALE_TRACE"]))
    with out.open("w") as fh, contextlib.redirect_stdout(fh):
        try:
            cli.main(
                ["audit", "-i", str(inventory), "--store", str(store), "--format", "json", "--checks", checks],
                standalone_mode=False,
            )
        except SystemExit as exc:
            if exc.code not in (0, 1, 3, None):
                raise


def _trace_growth(dump: Path) -> None:
    """tracemalloc snapshots after the 10th and the 90th percent of the hosts: what grew in between
    (memory kept per host for the whole run) goes to ``dump``, largest first."""
    import tracemalloc

    from itops.session import RunSession

    tracemalloc.start(8)
    seen = [0]
    first: list[tracemalloc.Snapshot] = []
    at_first: list[int] = []
    add_outcome = RunSession.add_outcome

    def traced(self: RunSession, outcome: Any) -> None:
        add_outcome(self, outcome)
        seen[0] += 1
        total = len(self.run.planned)
        if seen[0] == max(1, total // 10):
            at_first.append(tracemalloc.get_traced_memory()[0])
            first.append(tracemalloc.take_snapshot())
        elif seen[0] == max(2, total * 9 // 10) and first:
            now = tracemalloc.get_traced_memory()[0]
            stats = tracemalloc.take_snapshot().compare_to(first[0], "traceback")
            with dump.open("w") as fh:
                fh.write(
                    f"growth between host {total // 10} and host {total * 9 // 10} of {total}: traced "
                    f"{at_first[0] / 1e6:.1f} -> {now / 1e6:.1f} MB\n"
                )
                for stat in stats[:25]:
                    fh.write(f"{stat}\n")
                    fh.writelines(f"    {line}\n" for line in stat.traceback.format())

    RunSession.add_outcome = traced  # type: ignore[method-assign]


def child_replay(inventory: Path, store_dir: Path, checks: str, n: int) -> None:
    """Write an n-host run into a store without the CLI: the first host's results through the canned
    pipeline (batch, frames, evaluation), then every host's copy through the real RunWriter (one
    add_many per host: redaction, chain, checkpoint signature, SQLite), for sizes the audit command
    cannot hold in memory yet (it keeps every result until the end)."""
    import dataclasses
    import time as _time

    from itops import __version__
    from itops.inventory import load_inventory
    from itops.model import Run
    from itops.registry import load_registry
    from itops.runner import evaluate_host, plan_hosts
    from itops.store import Store

    inv = load_inventory(inventory)
    host = next(iter(inv.hosts.values()))
    (plan,) = plan_hosts([host], load_registry().select([checks], "host"))
    outcome = _canned_connection_class()().run_batch(plan.batch(), idle_timeout=300, total_timeout=900)
    started = _time.time()
    run = Run(
        id=_time.strftime("%Y%m%dT%H%M%SZ-replay", _time.gmtime(started)),
        kind="audit",
        started=started,
        inventory=str(inventory),
        version=__version__,
    )
    base = evaluate_host(run.id, plan, outcome, host.vars, started)
    writer = Store(store_dir).begin(run)
    for i in range(n):
        name = f"h{i:05d}"
        writer.add_many([dataclasses.replace(r, target=name) for r in base])
    writer.finish("complete", 1)


def write_inventory(path: Path, n: int) -> Path:
    known = path.with_suffix(".known_hosts")
    known.write_text("")
    key = path.with_suffix(".key")
    key.write_text("")
    key.chmod(0o600)
    hosts = "".join(f"  h{i:05d}: {{address: 10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}}}\n" for i in range(n))
    path.write_text(
        "version: 1\n"
        f"defaults:\n  ssh: {{user: root, identity_file: {key}, known_hosts: [{known}]}}\n  concurrency: 32\n"
        f"hosts:\n{hosts}"
    )
    return path


# -- parent side: measure children ---------------------------------------------------------
#: Runs argv as its child and writes that child's CPU (user+sys) and peak RSS to the file sys.argv[1].
#: On Linux a process's ru_maxrss starts at the peak RSS of the process that spawned it (exec keeps the
#: old address space's high-water mark), so a child of this benchmark (~60 MB, ~9 GB after loading a
#: large JSON output) would be reported at least that big: this small launcher in between resets it.
_LAUNCHER = (
    "import resource, subprocess, sys\n"
    "rc = subprocess.call(sys.argv[2:])\n"
    "ru = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "open(sys.argv[1], 'w').write(f'{ru.ru_utime + ru.ru_stime} {ru.ru_maxrss}')\n"
    "sys.exit(rc if rc >= 0 else 128 - rc)\n"
)


def run_child(argv: list[str], *, stdout: Any = subprocess.DEVNULL) -> tuple[float, float, float, int]:
    """(wall s, CPU s, peak RSS MB, exit status) of one child process (and the processes it waits for:
    a LocalCluster's workers), measured through :data:`_LAUNCHER`."""
    with tempfile.NamedTemporaryFile(prefix="itops-scale-", suffix=".ru") as ru_file:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, ru_file.name, *argv], stdout=stdout, stderr=subprocess.PIPE
        )
        err = proc.communicate()[1]
        wall = time.perf_counter() - t0
        if proc.returncode not in (0, 1, 3):
            sys.stderr.write(err.decode(errors="replace")[-4000:])
            raise SystemExit(f"child failed ({proc.returncode}): {' '.join(argv)}")
        cpu, maxrss_kb = Path(ru_file.name).read_text().split()
    return wall, float(cpu), int(maxrss_kb) / 1024, proc.returncode


def _mb(path: Path) -> str:
    return f"{path.stat().st_size / 1e6:.1f} MB"


def canned(
    hosts: list[int], checks: str, workdir: Path, formats: list[str], replay_above: int, json_report_max: int
) -> None:
    from itops.registry import load_registry

    nchecks = len(load_registry().select([checks], "host"))
    print(f"canned transport: {nchecks} host checks ({checks!r}), recording {RECORDING.name}; cpus {os.cpu_count()}")
    print(
        f"{'hosts':>6} {'results':>9}  {'step':<12} {'wall s':>8} {'CPU s':>8} {'CPU/host ms':>11} "
        f"{'peak RSS MB':>11}  output"
    )
    itops = str(Path(sys.executable).with_name("itops"))
    for n in hosts:
        inv = write_inventory(workdir / f"inv{n}.yaml", n)
        store = workdir / f"store{n}"
        out = workdir / f"audit{n}.json"
        if not replay_above or n <= replay_above:
            wall, cpu, rss, _ = run_child([sys.executable, __file__, "_child", str(inv), str(store), checks, str(out)])
            results = _count_results(out)
            step, size = "audit json", _mb(out)
        else:  # opt-in (--replay-above): the run is written by replaying one host's results through the store
            wall, cpu, rss, _ = run_child([sys.executable, __file__, "_replay", str(inv), str(store), checks, str(n)])
            with next((store / "runs").glob("*/results.jsonl")).open("rb") as fh:
                results = sum(1 for _ in fh)
            step, size = "store replay", "(no audit: --replay-above)"
        print(
            f"{n:>6} {results:>9}  {step:<12} {wall:8.1f} {cpu:8.1f} {cpu / n * 1000:11.1f} {rss:11.0f}  {size}",
            flush=True,
        )
        for fmt in formats:
            if fmt == "json" and json_report_max and n > json_report_max:
                print(f"{n:>6} {results:>9}  {'report json':<12} skipped: above --json-report-max {json_report_max}")
                continue
            path = workdir / f"report{n}.{fmt}"
            wall, cpu, rss, _ = run_child(
                [itops, "report", "latest", "--store", str(store), "-f", fmt, "-o", str(path)]
            )
            print(
                f"{n:>6} {results:>9}  {'report ' + fmt:<12} {wall:8.1f} {cpu:8.1f} {'':>11} {rss:11.0f}  {_mb(path)}",
                flush=True,
            )


def _count_results(path: Path) -> int:
    """Results in the audit's JSON output: the streamed document's ``summary.total`` (read from its
    tail: loading a 2 GB document would take ~9 GB here), else one result per line (jsonl)."""
    with path.open("rb") as fh:
        fh.seek(max(0, path.stat().st_size - 256 * 1024))
        tail = fh.read().decode(errors="replace")
    found = re.search(r'"summary":\s*\{\s*"total":\s*(\d+)', tail)
    if found:
        return int(found.group(1))
    with path.open("rb") as fh:
        return sum(1 for line in fh if line.strip())


def has_option(option: str) -> bool:
    itops = str(Path(sys.executable).with_name("itops"))
    return option in subprocess.run([itops, "audit", "--help"], capture_output=True, text=True).stdout


def sshd(hosts: list[int], checks: str, workdir: Path, repeat: int) -> None:
    sys.path.insert(0, str(HERE))
    import fleet as fleetbench  # bench/fleet.py

    from itops_lab import HARDENED, HostRoots, RootKind
    from itops_lab.fleet import LabHostSpec, start_fleet

    dask = has_option("--executor")
    itops = str(Path(sys.executable).with_name("itops"))
    print(f"real sshd hosts (Debian roots, hardened), checks {checks!r}; cpus {os.cpu_count()}; best of {repeat}")
    print(
        "each cell: wall s / auditor CPU s / peak RSS MB;  --executor dask: "
        + ("measured" if dask else "n/a: this itops has no --executor (branch `dask`)")
    )
    print(
        f"{'hosts':>5}  {'threads (itops audit)':>22}  {'dask (itops audit)':>22}  {'floor (paramiko)':>22}  "
        f"{'threads/floor CPU':>17}  {'dask/floor CPU':>14}"
    )
    for n in hosts:
        with HostRoots() as roots:
            specs = [
                LabHostSpec(f"h{i:03d}", root=roots.create(f"h{i:03d}", RootKind.DEBIAN, HARDENED)) for i in range(n)
            ]
            fleet = start_fleet(workdir / f"lab{n}", specs, startup_timeout=120)
            try:
                inv = fleet.write_inventory(workdir / f"lab{n}.yaml")
                jobs_file = workdir / f"floor{n}.pickle"
                jobs_file.write_bytes(pickle.dumps(fleetbench.floor_jobs(inv, checks)))
                fleetbench.floor(pickle.loads(jobs_file.read_bytes()), 32)  # warm-up
                best: dict[str, tuple[float, float, float]] = {}
                for i in range(repeat):
                    variants = {"threads": [], "dask": ["--executor", "dask"] if dask else None}
                    for name, extra in variants.items():
                        if extra is None:
                            continue
                        argv = [
                            itops,
                            "audit",
                            "-i",
                            str(inv),
                            "--store",
                            str(workdir / f"s{n}-{name}-{i}"),
                            "--format",
                            "json",
                            "--checks",
                            checks,
                            *extra,
                        ]
                        wall, cpu, rss, _ = run_child(argv)
                        best[name] = min(best.get(name, (1e9, 0, 0)), (wall, cpu, rss))
                    argv = [sys.executable, __file__, "_floor", str(jobs_file)]
                    wall, cpu, rss, _ = run_child(argv)
                    best["floor"] = min(best.get("floor", (1e9, 0, 0)), (wall, cpu, rss))
            finally:
                fleet.stop()

        def cell(k: str, best: dict[str, tuple[float, float, float]] = best) -> str:
            return f"{best[k][0]:6.2f}/{best[k][1]:6.2f}/{best[k][2]:5.0f}" if k in best else "n/a"

        fcpu = best["floor"][1]
        ratio = {k: f"{best[k][1] / fcpu:.2f}" if k in best else "n/a" for k in ("threads", "dask")}
        print(
            f"{n:>5}  {cell('threads'):>22}  {cell('dask'):>22}  {cell('floor'):>22}  {ratio['threads']:>17}  "
            f"{ratio['dask']:>14}",
            flush=True,
        )


def child_floor(jobs_file: Path) -> None:
    sys.path.insert(0, str(HERE))
    import fleet as fleetbench

    # the floor's child pays the interpreter and paramiko's import; the scripts were rendered by the parent
    fleetbench.floor(pickle.loads(jobs_file.read_bytes()), 32)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_child":
        child_audit(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4], Path(sys.argv[5]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_replay":
        child_replay(Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4], int(sys.argv[5]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_floor":
        child_floor(Path(sys.argv[2]))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["canned", "sshd"])
    ap.add_argument("--hosts", type=int, nargs="+")
    ap.add_argument("--checks", default=None, help="check id globs (default: canned '*', sshd the starter pack)")
    ap.add_argument("--formats", nargs="*", default=["html", "json", "csv"], help="canned: report formats to time")
    ap.add_argument("--repeat", type=int, default=1, help="sshd: best of N")
    ap.add_argument(
        "--replay-above",
        type=int,
        default=0,
        help="canned, opt-in: above this many hosts write the run by replaying one host's results through "
        "the store (RunWriter) instead of running `itops audit` (0, the default: always the real audit)",
    )
    ap.add_argument(
        "--json-report-max",
        type=int,
        default=0,
        help="canned: skip `itops report -f json` above this many hosts (0, the default: never), for an "
        "itops whose json report loads the whole run (before main fe0161a: ~1.8 GB per 1,000 hosts x the whole pack)",
    )
    ap.add_argument("--keep", type=Path, help="work in this folder and keep it (stores, outputs, reports)")
    args = ap.parse_args()
    with contextlib.ExitStack() as stack:
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
            workdir = args.keep
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="itops-scale-")))
        if args.mode == "canned":
            canned(
                args.hosts or [1000, 10000],
                args.checks or "*",
                workdir,
                args.formats,
                args.replay_above,
                args.json_report_max,
            )
        else:
            sshd(args.hosts or [50, 200], args.checks or "ssh.*,accounts.*,files.*_permissions", workdir, args.repeat)


if __name__ == "__main__":
    main()
