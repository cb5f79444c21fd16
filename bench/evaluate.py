#!/usr/bin/env python3
"""Evaluation benchmark: CPU per host spent in ``itops.runner.evaluate_host`` (issue #14, lean auditor).

No network, no store, no output: the probe outputs of a real Debian lab host (hardened profile),
recorded by bench/record_canned.py in bench/data/debian-hardened.json.gz, are handed to
``evaluate_host`` as each host's batch outcome, for the plans ``itops.planner.plan_host`` builds
for the starter pack and for the whole host pack. Each round evaluates K hosts with distinct
names; the figure is CPU (``time.process_time``: user+sys of this process) per host, summed over
the ``evaluate_host`` calls only (planning, building the outcomes and checking the results are not
timed; each host's results are dropped after the check, as the auditor drops them once stored),
best of N rounds, after one warm-up round.

Every lab host is a copy of the same root, so text-keyed caches (the runner's SharedParses, which
reuses a parse for a host that sent byte-equal output) would hit across hosts here for every probe,
where a real fleet hits only for the files its hosts really share. Unless ``--same-output`` is
given, every host of every round (warm-up included) gets outputs of its own, varied without
changing any verdict: a comment line ``# bench host N`` appended to /etc/passwd, /etc/group and
/etc/login.defs, a whitespace-only line appended to the shadow probe's output, and a line of
stderr on the two sshd probes (read only when they fail). The script checks that claim: every
host's results (run id, target, times aside) must be the same as the unvaried host's, else it
stops. It prints a digest of those results, so two checkouts can be shown to give byte-identical
verdicts, messages and evidence (same digest).

Usage::

    python bench/evaluate.py [--hosts 50] [--repeat 5] [--packs starter all] [--same-output]
    PYTHONPATH=/work/main python bench/evaluate.py     # another checkout (run from anywhere)
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RECORDING = HERE / "data" / "debian-hardened.json.gz"
PACKS = {"starter": "ssh.*,accounts.*,files.*_permissions", "all": "*"}

Recorded = dict[str, tuple[int, bytes, bytes]]


def load_recording(path: Path = RECORDING) -> Recorded:
    """``{command: (rc, stdout, stderr)}`` as bench/record_canned.py wrote it."""
    raw = json.loads(gzip.decompress(path.read_bytes()))
    return {cmd: (rc, base64.b64decode(out), base64.b64decode(err)) for cmd, (rc, out, err) in raw.items()}


#: The probes whose output each host gets a copy of its own of, and how (see the module doc).
VARIED = {
    "etc_passwd": "comment",
    "etc_group": "comment",
    "etc_login_defs": "comment",
    "shadow_status": "blank",
    "sshd_effective_config": "stderr",
    "sshd_config_files": "stderr",
}


def _vary(probe_names: Sequence[str], out: bytes, err: bytes, n: int) -> tuple[bytes, bytes]:
    """Host ``n``'s copy of one probe's output: changed where no verdict reads it (see the module doc)."""
    how = {VARIED[name] for name in probe_names if name in VARIED}
    if "comment" in how:
        out += b"# bench host %d\n" % n
    elif "blank" in how:
        out += b" " * (n + 1) + b"\n"
    elif "stderr" in how:
        err += b"bench host %d\n" % n
    return out, err


def outcome_for(plan: Any, recorded: Recorded, n: int | None) -> Any:
    """The BatchOutcome host ``n`` answers ``plan`` with (``n`` None: the recorded outputs unchanged)."""
    from itops.facts import ProbeResult
    from itops.transport.base import BatchOutcome

    names: dict[int, list[str]] = {}
    for pc in plan.planned:
        for name, i in pc.probe_index.items():
            names.setdefault(i, []).append(name)
    results = {}
    for i, cmd in enumerate(plan.commands):
        rc, out, err = recorded.get(cmd, (127, b"", b"sh: not recorded\n"))
        if n is not None:
            out, err = _vary(names.get(i, ()), out, err, n)
        results[i] = ProbeResult(cmd, rc, out, err)
    return BatchOutcome(results, exit_status=0)


def _comparable(results: Sequence[Any]) -> list[dict[str, Any]]:
    docs = []
    for r in results:
        d = r.to_dict()
        for key in ("run_id", "target", "started", "duration"):
            d.pop(key, None)
        docs.append(d)
    return docs


def measure(
    pack: str, hosts: int, repeat: int, recorded: Recorded, vary: bool, shared: bool = False
) -> tuple[int, int, list[float], str, dict[str, int]]:
    """(checks, results per host, CPU ms per host of each round, results digest, statuses).

    ``shared``: each round is a run with its own :class:`itops.hostmemo.SharedParses`, as the
    auditor's runner has (parses of byte-equal output reused across hosts); else a memo per host only.
    """
    from itops.hostmemo import SharedParses
    from itops.planner import plan_host
    from itops.registry import load_registry
    from itops.runner import evaluate_host

    checks = load_registry().select([PACKS.get(pack, pack)], "host")
    started = time.time()
    base_plan = plan_host("bench-base", checks, {}, 60.0)
    base = evaluate_host("bench", base_plan, outcome_for(base_plan, recorded, None), {}, started)
    expected = _comparable(base)
    digest = hashlib.sha256(json.dumps(expected, sort_keys=True).encode()).hexdigest()[:16]
    planned = {name for pc in base_plan.planned for name in pc.probe_index}
    if vary and set(VARIED) - planned:  # a renamed probe must not silently stop being varied
        print(f"  {pack}: not planned, so not varied: {', '.join(sorted(set(VARIED) - planned))}")
    statuses: dict[str, int] = {}
    for r in base:
        statuses[r.status.value] = statuses.get(r.status.value, 0) + 1

    rounds: list[float] = []
    for rnd in range(repeat + 1):  # round 0 warms up (regexes, first-call imports)
        cpu = 0.0
        run_parses = SharedParses() if shared else None
        for h in range(hosts):
            n = rnd * hosts + h
            plan = plan_host(f"bench-{n:05d}", checks, {}, 60.0)
            outcome = outcome_for(plan, recorded, n if vary else None)
            # only the evaluation is timed; its results are checked, then dropped as the auditor
            # drops a host's results once the store has them
            t0 = time.process_time()
            results = evaluate_host("bench", plan, outcome, {}, started, None, run_parses)
            cpu += time.process_time() - t0
            if _comparable(results) != expected:
                raise SystemExit(f"{plan.name}: results differ from the unvaried host's (the variation is not benign)")
        if rnd:
            rounds.append(cpu * 1000 / hosts)
    return len(checks), len(base), rounds, digest, statuses


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hosts", type=int, default=50, help="distinct hosts per round (K)")
    ap.add_argument("--repeat", type=int, default=5, help="rounds; the best is reported (N)")
    ap.add_argument("--packs", nargs="+", default=["starter", "all"], help="starter, all, or check id globs")
    ap.add_argument("--same-output", action="store_true", help="every host answers the same recorded text")
    args = ap.parse_args()
    import itops

    recorded = load_recording()
    print(f"itops from {Path(itops.__file__).resolve().parent}")
    print(
        f"{args.hosts} hosts x best of {args.repeat}, outputs "
        + ("identical on every host" if args.same_output else "varied per host")
    )
    print(
        "parses: 'host' = a memo per host only; 'run' = plus the run's SharedParses (the auditor's default), "
        "which reuses parses of byte-equal output across hosts"
    )
    print(
        f"{'pack':<8} {'parses':<6} {'checks':>6} {'results':>7} {'best ms/host':>12} {'median':>8}  "
        "digest            statuses"
    )
    for pack in args.packs:
        for shared in (False, True):
            n_checks, n_results, rounds, digest, statuses = measure(
                pack, args.hosts, args.repeat, recorded, not args.same_output, shared
            )
            best, median = min(rounds), sorted(rounds)[len(rounds) // 2]
            st = " ".join(f"{k}={v}" for k, v in sorted(statuses.items()))
            kind = "run" if shared else "host"
            print(f"{pack:<8} {kind:<6} {n_checks:>6} {n_results:>7} {best:>12.2f} {median:>8.2f}  {digest}  {st}")


if __name__ == "__main__":
    main()
