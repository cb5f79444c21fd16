#!/usr/bin/env python3
"""Store benchmark: auditor CPU per host spent after evaluation (issue #14).

One host's results are made once by evaluating the recorded Debian lab host
(bench/data/debian-hardened.json.gz, through bench/scale.py's canned connection: real batch
script, frames, evaluation). Each simulated host is a copy of them under its own target name,
and goes through what a live ``itops audit --format json`` does with a host's results:
``RunSession.add`` (waivers none, ``RunWriter.add_many``: redaction, encoding, hash chain,
checkpoint signature, results.jsonl, SQLite; then the ``--format json`` stdout stream, written
to a sink). Printed: CPU (``time.process_time``, user+sys of this process) per host in ms for
the adds alone, best of ``--repeat`` fresh stores; ``uptime``'s load for context.

    .venv/bin/python bench/store.py --hosts 100 --repeat 5
    .venv/bin/python bench/store.py --hosts 100 --repeat 5 --checks '*' --format jsonl

Benchmarks print figures; they are not tests.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

STARTER = "ssh.*,accounts.*,files.*_permissions"


def host_results(checks: str) -> list:  # type: ignore[type-arg]
    """One host's results: the recorded Debian host evaluated once with ``checks``."""
    from scale import _canned_connection_class, write_inventory

    from itops.inventory import load_inventory
    from itops.registry import load_registry
    from itops.runner import evaluate_host, plan_hosts

    with tempfile.TemporaryDirectory() as tmp:
        inv = load_inventory(write_inventory(Path(tmp) / "inv.yaml", 1))
    host = next(iter(inv.hosts.values()))
    (plan,) = plan_hosts([host], load_registry().select([checks], "host"))
    outcome = _canned_connection_class()().run_batch(plan.batch(), idle_timeout=300, total_timeout=900)
    return evaluate_host("bench", plan, outcome, host.vars, time.time())


def one_run(per_host: list[list], fmt: str, workdir: Path) -> float:  # type: ignore[type-arg]
    """CPU seconds of ``RunSession.add`` over every host's results into a fresh store."""
    from itops.model import Run
    from itops.report.jsondoc import JsonLinesStream, JsonRunStream
    from itops.session import RunSession
    from itops.store import Store

    sink: list[int] = []

    def write(text: str) -> None:
        sink.append(len(text))  # what click.echo would be handed; the terminal's cost is not ours

    stream = {"json": JsonRunStream, "jsonl": JsonLinesStream}[fmt](write) if fmt != "none" else None
    store = Store(workdir)
    run = Run(id=f"bench-{time.time_ns()}", kind="audit", started=time.time(), version="bench")
    session = RunSession(store, run, stream=stream)
    session.begin()
    t0 = time.process_time()
    for results in per_host:
        session.add(results)
    cpu = time.process_time() - t0
    session.finish()
    return cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--checks", default=STARTER)
    parser.add_argument("--format", choices=["json", "jsonl", "none"], default="json")
    args = parser.parse_args()

    base = host_results(args.checks)
    per_host = [[dataclasses.replace(r, target=f"h{i:05d}") for r in base] for i in range(args.hosts)]
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            times.append(one_run(per_host, args.format, Path(tmp) / f"s{i}"))
    best = min(times)
    load = os.getloadavg()
    print(
        f"checks {args.checks!r}: {len(base)} results/host, {args.hosts} hosts, --format {args.format}; "
        f"best of {args.repeat}: {1000 * best / args.hosts:.2f} ms CPU/host "
        f"({1e6 * best / (args.hosts * len(base)):.1f} us/result; all: "
        + " ".join(f"{1000 * t / args.hosts:.2f}" for t in times)
        + f"); load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )


if __name__ == "__main__":
    main()
