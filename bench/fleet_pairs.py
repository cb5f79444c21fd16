"""The lean-auditor figure (issue #14) in adjacent pairs: floor, then audit, on one lab, N rounds.

``fleet.py`` takes the best of each column over its repeats. On a machine whose speed drifts
(this VM's floor took 0.53 s in one run and 1.38 s in another, minutes apart) the two bests can
come from different moments. Here every round runs (c) the floor and then (a) the audit back to
back on the same lab, and the ratio of each pair is printed, with their median.

Same lab and measures as ``fleet.py`` ((a) ``itops audit --format json`` in-process through the CLI
entry, (c) bare paramiko running the same batched script), auditor CPU only. Usage:
    python bench/fleet_pairs.py --hosts 50 --rounds 8 [--checks GLOBS] [--no-shared-parses]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import tempfile
import time
from pathlib import Path

from fleet import audit_in_process, floor, floor_jobs, measure, parse_with_shared_parses_option

from itops_lab import HARDENED, HostRoots, RootKind
from itops_lab.fleet import LabHostSpec, start_fleet

STARTER = "ssh.*,accounts.*,files.*_permissions"  # the starter pack


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hosts", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--checks", default=STARTER)
    args = parse_with_shared_parses_option(ap)
    with tempfile.TemporaryDirectory(prefix="itops-pairs-") as tmp:
        work = Path(tmp)
        roots = HostRoots()
        specs = [
            LabHostSpec(f"h{i:03d}", root=roots.create(f"h{i:03d}", RootKind.DEBIAN, HARDENED))
            for i in range(args.hosts)
        ]
        fleet = start_fleet(work / "lab", specs, startup_timeout=60)
        try:
            inv = fleet.write_inventory(work / "lab.yaml")
            jobs = floor_jobs(inv, args.checks)
            floor(jobs, 32)  # warm-up: page cache, sshd, host-side caches, this process's imports
            audit_in_process(inv, work / "warm", args.checks)
            pairs: list[tuple[float, float]] = []
            for i in range(args.rounds):
                c = measure(functools.partial(floor, jobs, 32), fleet.pids)[1]
                a = measure(functools.partial(audit_in_process, inv, work / f"s{i}", args.checks), fleet.pids)[1]
                pairs.append((a, c))
                print(f"round {i + 1}: (a) {a:.3f} s  (c) {c:.3f} s  a/c {a / c:.2f}", flush=True)
        finally:
            fleet.stop()
            roots.close()
    ratios = sorted(a / c for a, c in pairs)
    print(
        f"{args.hosts} hosts, {args.rounds} rounds{', no shared parses' if args.no_shared_parses else ''}, "
        f"{time.strftime('%Y-%m-%d %H:%M')}: a/c CPU per pair, median "
        f"{statistics.median(ratios):.2f} [{' '.join(f'{r:.2f}' for r in ratios)}]; median (a) "
        f"{statistics.median(a for a, _ in pairs):.3f} s, (c) {statistics.median(c for _, c in pairs):.3f} s"
    )


if __name__ == "__main__":
    main()
