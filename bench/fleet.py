#!/usr/bin/env python3
"""Fleet benchmark: itops audit vs naive per-probe execs vs the bare batched floor.

Starts an N-host lab of real sshd processes on 127.0.0.1 and measures, in one run:

  (a) itops audit with the full host pack (in-process through the CLI entry, and the
      console script as a subprocess for reference),
  (b) naive: the same probes, one exec per probe, one connection per host,
  (c) floor: bare paramiko (SSHClient, its default algorithms, strict known_hosts) running the same
      batched script, rendered before timing; no itops code, no evaluation or storage.

Prints wall and CPU time and the ratios a/c and b/a (wall) and a/c CPU (the lean-auditor figure). Usage:
    python bench/fleet.py --hosts 10 50 [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import paramiko

from itops.cli.main import cli
from itops.inventory import load_inventory
from itops.registry import load_registry
from itops.runner import plan_hosts, target_for
from itops.transport.ssh import KnownHosts, SSHConnection
from itops_lab import HARDENED, HostRoots, RootKind
from itops_lab.fleet import LabHostSpec, start_fleet
from itops_lab.procs import descendants


def cpu_now() -> float:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime


_TICK = os.sysconf("SC_CLK_TCK")


def target_cpu(pids: list[int]) -> float:
    """CPU seconds the lab's sshd listeners and their reaped children (sessions, probes) have used."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return total / _TICK


def measure(fn: Callable[[], object], pids: list[int]) -> tuple[float, float, float]:
    """(wall, auditor CPU, target CPU) of one call; the target side is read once its sessions are reaped."""
    _settle(pids)
    w0, c0, t0 = time.perf_counter(), cpu_now(), target_cpu(pids)
    fn()
    wall, cpu = time.perf_counter() - w0, cpu_now() - c0
    _settle(pids)
    return wall, cpu, target_cpu(pids) - t0


def _settle(pids: list[int]) -> None:
    """Wait (at most 5 s) until every per-connection sshd has exited and been reaped by its listener."""
    deadline = time.monotonic() + 5
    while descendants(pids) and time.monotonic() < deadline:
        time.sleep(0.05)


def audit_in_process(inv: Path, store: Path, checks: str) -> None:
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            cli.main(
                ["audit", "-i", str(inv), "--store", str(store), "--format", "json", "--checks", checks],
                standalone_mode=False,
            )
    except SystemExit as exc:
        if exc.code not in (0, 1, 3):
            raise


def audit_subprocess(inv: Path, store: Path, checks: str) -> None:
    exe = Path(sys.executable).with_name("itops")
    proc = subprocess.run(
        [str(exe), "audit", "-i", str(inv), "--store", str(store), "--format", "json", "--checks", checks],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        check=False,
    )
    if proc.returncode not in (0, 1, 3):
        raise RuntimeError(proc.stderr.decode())


def _connect(target, known: KnownHosts) -> SSHConnection:
    return SSHConnection(target, known)


@dataclass(frozen=True)
class FloorJob:
    """What the floor needs for one host: where, who, and the host's rendered batch script."""

    address: str
    port: int
    user: str
    identity_file: str
    known_hosts: tuple[str, ...]
    script: bytes
    end_marker: bytes


def floor_jobs(inv_path: Path, checks: str) -> list[FloorJob]:
    """Every host's batch script, rendered before the floor is timed (the floor does no itops work)."""
    inv = load_inventory(inv_path)
    plans = plan_hosts(list(inv.hosts.values()), load_registry().select([checks], "host"))
    jobs = []
    for plan in plans:
        target = target_for(inv.hosts[plan.name], inv.hosts)
        batch = plan.batch()
        assert target.identity_file and target.jump is None and not target.sudo
        jobs.append(
            FloorJob(
                target.address,
                target.port,
                target.user,
                target.identity_file,
                target.known_hosts,
                batch.script,
                f"@@ITOPS:{batch.nonce}@@ END".encode(),
            )
        )
    return jobs


def disable_shared_parses() -> None:
    """``--no-shared-parses``: every host parses its own probe outputs, as if no two hosts of the
    fleet sent the same text (the lab's hosts are copies of one root, so by default most parses are
    shared across hosts: see itops.hostmemo.SharedParses). The worst case for the audit's CPU."""
    from itops.hostmemo import SharedParses

    SharedParses.store = lambda self, key, value: None  # type: ignore[method-assign]


def parse_with_shared_parses_option(ap: argparse.ArgumentParser) -> argparse.Namespace:
    """``ap``'s arguments, with ``--no-shared-parses`` added to it and applied."""
    ap.add_argument(
        "--no-shared-parses",
        action="store_true",
        help="hosts do not share parses of equal probe output (the worst case: a fleet of all-different hosts)",
    )
    args = ap.parse_args()
    if args.no_shared_parses:
        disable_shared_parses()
    return args


#: ``--floor-gcm``: the floor refuses every cipher but AES-GCM (what itops negotiates first), to show
#: the ratio against a floor that gets the same cipher (by default it gets paramiko's default, AES-CTR)
FLOOR_DISABLED: dict[str, list[str]] = {}


def floor(jobs: list[FloorJob], concurrency: int) -> None:
    """Bare paramiko: ``SSHClient`` with its default algorithms, strict known_hosts, the host's key,
    one ``sh -s`` exec fed the same batch script, stdout read to EOF. No evaluation, no storage."""

    def one(job: FloorJob) -> None:
        client = paramiko.SSHClient()
        for path in job.known_hosts:
            client.load_host_keys(path)
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        sock = socket.create_connection((job.address, job.port), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            client.connect(
                job.address,
                job.port,
                username=job.user,
                key_filename=job.identity_file,
                look_for_keys=False,
                allow_agent=False,
                sock=sock,
                timeout=30,
                disabled_algorithms=FLOOR_DISABLED,
            )
            stdin, stdout, stderr = client.exec_command("sh -s", timeout=300)
            stdin.write(job.script)
            stdin.channel.shutdown_write()
            out = stdout.read()
            stderr.read()
            assert stdout.channel.recv_exit_status() == 0 and job.end_marker in out[-200:], out[-200:]
        finally:
            client.close()

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, jobs))


def naive(inv_path: Path, concurrency: int, checks: str) -> None:
    inv = load_inventory(inv_path)
    plans = plan_hosts(list(inv.hosts.values()), load_registry().select([checks], "host"))
    known = KnownHosts(next(iter(inv.hosts.values())).ssh.known_hosts)

    def one(plan):
        conn = _connect(target_for(inv.hosts[plan.name], inv.hosts), known)
        try:
            for cmd in plan.commands:
                chan = conn.transport.open_session(timeout=10)
                chan.exec_command(cmd)
                chan.shutdown_write()
                while chan.recv(65536):
                    pass
                while chan.recv_stderr_ready():
                    chan.recv_stderr(65536)
                chan.recv_exit_status()
                chan.close()
        finally:
            conn.close()

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, plans))


def proxied_inventory(fleet, workdir: Path, rtt_ms: float) -> tuple[Path, subprocess.Popen[str]]:
    """Put a latency proxy in front of every host; returns the inventory that goes through it."""
    maps = [f"--map={h.name}=127.0.0.1:{h.port}" for h in fleet]
    proxy = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("latency_proxy.py")), "--rtt-ms", str(rtt_ms), *maps],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proxy.stdout is not None
    words = proxy.stdout.readline().split()
    assert words and words[0] == "ready", words
    ports = {name: int(port) for name, _, port in (w.partition("=") for w in words[1:])}
    known = workdir / f"known_hosts_rtt{rtt_ms:g}"
    known.write_text(
        "".join(f"[127.0.0.1]:{ports[h.name]} {h.host_key.get_name()} {h.host_key.get_base64()}\n" for h in fleet)
    )
    extra = {
        "defaults": {"ssh": {"known_hosts": [str(known)]}},
        "hosts": {h.name: {"port": ports[h.name]} for h in fleet},
    }
    return fleet.write_inventory(workdir / f"inv-rtt{rtt_ms:g}.yaml", extra=extra), proxy


def bench(
    n: int, repeat: int, workdir: Path, root_kind: str, checks: str, rtts: list[float]
) -> dict[float, dict[str, tuple[float, float, float]]]:
    roots = HostRoots() if root_kind != "none" else None
    specs = [
        LabHostSpec(f"h{i:03d}", root=roots.create(f"h{i:03d}", RootKind(root_kind), HARDENED) if roots else None)
        for i in range(n)
    ]
    fleet = start_fleet(workdir / f"lab{n}", specs, startup_timeout=60)
    out: dict[float, dict[str, tuple[float, float, float]]] = {}
    pids = fleet.pids
    try:
        for rtt in rtts:
            proxy = None
            if rtt:
                inv, proxy = proxied_inventory(fleet, workdir, rtt)
            else:
                inv = fleet.write_inventory(workdir / f"lab{n}.yaml")
            conc = 32
            runs: dict[str, list[tuple[float, float, float]]] = {"a": [], "a_cli": [], "b": [], "c": []}
            try:
                jobs = floor_jobs(inv, checks)
                floor(jobs, conc)  # warm-up: page cache, sshd, host-side caches
                for i in range(repeat):
                    store, cli_store = workdir / f"store{n}-{rtt}-{i}", workdir / f"cli{n}-{rtt}-{i}"
                    runs["c"].append(measure(functools.partial(floor, jobs, conc), pids))
                    runs["a"].append(measure(functools.partial(audit_in_process, inv, store, checks), pids))
                    runs["a_cli"].append(measure(functools.partial(audit_subprocess, inv, cli_store, checks), pids))
                    runs["b"].append(measure(functools.partial(naive, inv, conc, checks), pids))
            finally:
                if proxy is not None:
                    proxy.terminate()
                    proxy.wait(timeout=10)
            out[rtt] = {k: min(v) for k, v in runs.items()}  # best of N: least disturbed by noise
        return out
    finally:
        fleet.stop()
        if roots is not None:
            roots.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hosts", type=int, nargs="+", default=[10, 50])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--checks",
        default="*",
        help="check id globs (comma-separated); the starter pack is 'ssh.*,accounts.*,files.*_permissions'",
    )
    ap.add_argument(
        "--rtt-ms",
        type=float,
        nargs="+",
        default=[0.0, 2.0, 20.0],
        help="emulated round-trip times (0: plain loopback; >0: through bench/latency_proxy.py)",
    )
    ap.add_argument(
        "--root-kind",
        choices=["debian", "busybox", "none"],
        default="debian",
        help="each host chrooted into its own copy of this root (none: the machine's own /)",
    )
    ap.add_argument(
        "--floor-gcm",
        action="store_true",
        help="the floor negotiates AES-GCM, as itops does (default: paramiko's default cipher, AES-CTR + HMAC)",
    )
    args = parse_with_shared_parses_option(ap)
    if args.floor_gcm:
        FLOOR_DISABLED["ciphers"] = [c for c in paramiko.Transport._preferred_ciphers if "gcm" not in c]
    nprobes = len(plan_hosts_dummy(args.checks))
    print(
        f"checks {args.checks!r}: {len(load_registry().select([args.checks], 'host'))} host checks, "
        f"{nprobes} distinct probes per host; roots: {args.root_kind}; cpus: {os.cpu_count()}; "
        f"best of {args.repeat}"
    )
    print(
        "each cell: wall seconds / auditor CPU seconds (this process + children) / target CPU seconds "
        "(the lab's sshd, sessions and probes)"
    )
    print(
        f"{'hosts':>5} {'rtt':>5}  {'(a) itops audit':>21}  {'(a) CLI process':>21}  {'(b) naive':>21}  "
        f"{'(c) floor':>21}  {'a/c':>5}  {'b/a':>5}  {'a/c CPU':>7}  {'a: targets use':>14}"
    )
    ncpu = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="itops-bench-") as tmp:
        for n in args.hosts:
            by_rtt = bench(n, args.repeat, Path(tmp), args.root_kind, args.checks, args.rtt_ms)
            for rtt, r in by_rtt.items():
                cells = [f"{r[k][0]:6.2f}/{r[k][1]:5.2f}/{r[k][2]:5.2f}" for k in ("a", "a_cli", "b", "c")]
                share = r["a"][2] / (r["a"][0] * ncpu)  # of all the CPU the machine had during (a)
                print(
                    f"{n:>5} {rtt:>3g}ms  "
                    + "  ".join(f"{c:>21}" for c in cells)
                    + f"  {r['a'][0] / r['c'][0]:5.2f}  {r['b'][0] / r['a'][0]:5.2f}  {r['a'][1] / r['c'][1]:7.2f}"
                    + f"  {share:13.0%}",
                    flush=True,
                )


def plan_hosts_dummy(checks: str) -> list[str]:
    from itops.planner import plan_host

    return plan_host("x", load_registry().select([checks], "host"), {}, 60).commands


if __name__ == "__main__":
    socket.setdefaulttimeout(None)
    threading.stack_size(512 * 1024)
    main()
