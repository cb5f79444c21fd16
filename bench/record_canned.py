#!/usr/bin/env python3
"""Record the whole host pack's probe outputs from one real lab host (Debian root, hardened) for
bench/scale.py's canned transport.

Starts one sshd on 127.0.0.1 chrooted into a copy of the cached Debian lab root, runs the batch of
every host check once over SSH, and writes ``{command: [rc, stdout, stderr]}`` (base64) gzipped to
bench/data/debian-hardened.json.gz. Usage: python bench/record_canned.py [--out FILE]
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import tempfile
from pathlib import Path

from itops.inventory import load_inventory
from itops.registry import load_registry
from itops.runner import plan_hosts, target_for
from itops.transport.ssh import KnownHosts, SSHConnection
from itops_lab import HARDENED, HostRoots, RootKind
from itops_lab.fleet import LabHostSpec, start_fleet

DEFAULT_OUT = Path(__file__).with_name("data") / "debian-hardened.json.gz"


def record(out: Path) -> dict[str, list[object]]:
    roots = HostRoots()
    with tempfile.TemporaryDirectory(prefix="itops-record-") as tmp:
        spec = LabHostSpec("rec", root=roots.create("rec", RootKind.DEBIAN, HARDENED))
        fleet = start_fleet(Path(tmp) / "lab", [spec], startup_timeout=60)
        try:
            inv = load_inventory(fleet.write_inventory(Path(tmp) / "inv.yaml"))
            host = inv.hosts["rec"]
            (plan,) = plan_hosts([host], load_registry().select(["*"], "host"))
            conn = SSHConnection(target_for(host, inv.hosts), KnownHosts(host.ssh.known_hosts))
            try:
                outcome = conn.run_batch(plan.batch(), idle_timeout=300, total_timeout=900)
            finally:
                conn.close()
            assert outcome.complete, outcome.problem
        finally:
            fleet.stop()
            roots.close()
    data = {
        r.command: [r.rc, base64.b64encode(r.stdout).decode(), base64.b64encode(r.stderr).decode()]
        for r in outcome.results.values()
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(gzip.compress(json.dumps(data, sort_keys=True).encode(), 9, mtime=0))
    return data


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    data = record(args.out)
    raw = sum(len(base64.b64decode(v[1])) + len(base64.b64decode(v[2])) for v in data.values())
    print(f"{len(data)} probes, {raw} bytes of output -> {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
