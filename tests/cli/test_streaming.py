"""Runs stream (issue #14, part 1): results go host by host from the runner through the session
into the store and to stdout; nothing holds the whole run, so memory does not grow with the fleet."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import jsonschema
from audit_helpers import ITOPS, write_yaml
from click.testing import CliRunner

from itops.cli.main import cli
from itops.report.jsondoc import load_schema
from itops.store import Store

#: 20 checks sharing one probe (run once per host) whose output makes each result a few KB: what the
#: run would hold in memory if it kept its results.
BULKY_PACK = textwrap.dedent(
    """
    from itops.checkapi import Finding, Probe, Severity, host_check

    BULK = Probe("bulk", "head -c 2500 /dev/zero | tr '\\\\0' x")


    def _make(i):
        @host_check(id=f"mem.bulky_{i:02d}", title=f"Bulky {i}", probes=[BULK], severity=Severity.LOW,
                    rationale="memory test: a result with a large message", remediation="nothing to fix here",
                    frameworks={"nist-800-53": ["CM-6"], "iso-27001": ["A.8.9"]})
        def check(facts, params):
            return Finding.failed(f"{i}: " + facts["bulk"].text, observed=facts["bulk"].text)
        return check


    for _i in range(20):
        globals()[f"bulky_{_i}"] = _make(_i)
    """
)

SLOW_PACK = textwrap.dedent(
    """
    from itops.checkapi import Finding, Probe, Severity, host_check

    @host_check(id="slow.answer_given", title="Slow answer", probes=[Probe("slow", "sleep 1.5; echo ok")],
                severity=Severity.LOW, rationale="streaming test: a host that takes a while",
                remediation="nothing to fix here", frameworks={"nist-800-53": ["CM-6"], "iso-27001": ["A.8.9"]})
    def slow(facts, params):
        return Finding.passed("answered")
    """
)


def _fleet(tmp_path: Path, hosts: int, pack: str, name: str) -> tuple[Path, Path]:
    folder = tmp_path / f"pack-{name}"
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.py").write_text(pack)
    inv = write_yaml(
        tmp_path / f"inv-{hosts}.yaml",
        {
            "version": 1,
            "hosts": {f"h{i:04d}": {"address": "127.0.0.1"} for i in range(hosts)},
        },
    )
    return inv, folder


def test_json_output_is_the_run_document_streamed_and_jsonl_gives_one_result_per_line(tmp_path):
    inv, pack = _fleet(tmp_path, 3, BULKY_PACK, "bulky")
    store = tmp_path / "s"
    args = ["audit", str(inv), "--local", "--checks-dir", str(pack), "--checks", "mem.*", "--store", str(store)]
    res = CliRunner().invoke(cli, [*args, "--format", "json"])
    assert res.exit_code == 1, res.output
    doc = json.loads(res.stdout)
    # members in the order they become known: results before the run's final header and counts
    assert list(doc) == ["schema", "generator", "generated_at", "results", "run", "counts", "summary", "catalogues"]
    jsonschema.Draft202012Validator(load_schema()).validate(doc)
    assert doc["run"]["state"] == "complete" and doc["run"]["exit_code"] == 1
    assert doc["summary"]["total"] == len(doc["results"]) == 60 and doc["counts"]["FAIL"] == 60
    assert doc["summary"]["targets"] == 3 and doc["summary"]["checks"] == 20
    # the same document as one rendered from the store afterwards
    shown = json.loads(
        CliRunner().invoke(cli, ["runs", "show", "latest", "--store", str(store), "--format", "json"]).stdout
    )
    assert shown["results"] == doc["results"] and shown["summary"] == doc["summary"]
    assert shown["counts"] == doc["counts"] and shown["run"] == doc["run"]

    res = CliRunner().invoke(cli, [*args, "--format", "jsonl"])
    assert res.exit_code == 1, res.output
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    *results, last = lines
    assert len(results) == 60 and all(r["check_id"].startswith("mem.bulky_") for r in results)
    assert last["schema"] == "itops.run/1" and "results" not in last
    assert last["summary"]["total"] == 60 and last["run"]["id"] != doc["run"]["id"]
    assert last["run"]["counts"] == last["counts"] == Store(store).get_run(last["run"]["id"]).counts


def test_results_reach_stdout_while_the_run_is_still_going(tmp_path):
    inv, pack = _fleet(tmp_path, 3, SLOW_PACK, "slow")
    cmd = [
        ITOPS,
        "audit",
        str(inv),
        "--local",
        "--checks-dir",
        str(pack),
        "--checks",
        "slow.*",
        "--concurrency",
        "1",
        "--format",
        "jsonl",
        "--store",
        str(tmp_path / "s"),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        # one host done, two hosts (>= 3 s of sleeps, one at a time) still to go
        assert proc.poll() is None, "the first result came only when the run had ended"
        assert first["check_id"] == "slow.answer_given"
        rest = proc.stdout.read().splitlines()
        assert proc.wait(timeout=120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert len(rest) == 3 and json.loads(rest[-1])["summary"]["total"] == 3


_PEAK_RSS = textwrap.dedent(
    """
    import resource, subprocess, sys
    rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    """
)


def _peak_rss_kb(tmp_path: Path, hosts: int) -> int:
    """Peak RSS (VmHWM, KiB) of `itops audit --format json` over ``hosts`` local hosts, in a fresh process."""
    inv, pack = _fleet(tmp_path, hosts, BULKY_PACK, "bulky")
    cmd = [
        ITOPS,
        "audit",
        str(inv),
        "--local",
        "--checks-dir",
        str(pack),
        "--checks",
        "mem.*",
        "--format",
        "json",
        "--store",
        str(tmp_path / f"s{hosts}"),
    ]
    out = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS, *cmd], capture_output=True, text=True, timeout=600, check=True
    ).stdout.split()
    assert out[0] == "1", out  # every result a FAIL: the run went through
    return int(out[1])


def test_peak_memory_does_not_grow_with_the_number_of_hosts(tmp_path):
    """20 vs 200 hosts x 20 results of ~5 KB each: a run that kept its results (or printed the
    document from them at the end) peaked ~60 MB higher at 200 hosts; a streaming run stays flat
    but for the plans and per-target counters (a few MB)."""
    t0 = time.monotonic()
    small = _peak_rss_kb(tmp_path, 20)
    large = _peak_rss_kb(tmp_path, 200)
    print(
        f"peak RSS: 20 hosts {small / 1024:.1f} MiB, 200 hosts {large / 1024:.1f} MiB ({time.monotonic() - t0:.0f} s)"
    )
    assert large <= 1.3 * small + 8 * 1024, (small, large)


def _whole_pack_peak_rss_kb(tmp_path: Path, hosts: int, port: int) -> int:
    """Peak RSS (KiB) of `itops audit --format json` with every host check on ``hosts`` hosts whose
    SSH port refuses connections: each host is planned in full (the whole pack's params and probes),
    then gives one UNREACHABLE result per check, through the real transport, store and output."""
    inv = write_yaml(
        tmp_path / f"refused-{hosts}.yaml",
        {"version": 1, "hosts": {f"h{i:04d}": {"address": "127.0.0.1", "port": port} for i in range(hosts)}},
    )
    cmd = [ITOPS, "audit", str(inv), "--format", "json", "--store", str(tmp_path / f"refused-s{hosts}")]
    out = subprocess.run(
        [sys.executable, "-c", _PEAK_RSS, *cmd], capture_output=True, text=True, timeout=600, check=True
    ).stdout.split()
    assert out[0] == "3", out  # every result UNREACHABLE: the run went through, incomplete
    return int(out[1])


def test_peak_memory_with_the_whole_pack_does_not_grow_with_the_number_of_hosts(tmp_path):
    """50 vs 600 hosts x every host check: a host's plan (resolved params, rendered probes: ~50 KB
    with the whole pack) must live only while the host runs. Planning every host before the run
    peaked ~30 MB higher at 600 hosts (~500 MB at 10,000); planning each host as it starts stays flat."""
    with socket.socket() as reserved:  # bound, never listening: connections to it are refused
        reserved.bind(("127.0.0.1", 0))
        port = reserved.getsockname()[1]
        t0 = time.monotonic()
        small = _whole_pack_peak_rss_kb(tmp_path, 50, port)
        large = _whole_pack_peak_rss_kb(tmp_path, 600, port)
    print(
        f"peak RSS, whole pack: 50 hosts {small / 1024:.1f} MiB, 600 hosts {large / 1024:.1f} MiB "
        f"({time.monotonic() - t0:.0f} s)"
    )
    assert large <= small + 12 * 1024, (small, large)


def test_a_closed_output_pipe_stops_the_run_keeps_it_as_interrupted_and_exits_141(tmp_path):
    """`itops audit --format jsonl | head -1`: the reader goes away while hosts are still running."""
    inv, pack = _fleet(tmp_path, 4, SLOW_PACK, "slow")
    store = tmp_path / "s"
    cmd = [
        ITOPS,
        "audit",
        str(inv),
        "--local",
        "--checks-dir",
        str(pack),
        "--checks",
        "slow.*",
        "--concurrency",
        "1",
        "--format",
        "jsonl",
        "--store",
        str(store),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    json.loads(proc.stdout.readline())
    proc.stdout.close()  # as `head -1` does after its line
    try:
        rc = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read()
    assert rc == 141, err
    assert "Traceback" not in err
    run = Store(store).get_run("latest")
    assert run.state == "interrupted" and run.exit_code == 3
    assert 1 <= run.counts["PASS"] < 4 and sum(run.counts.values()) == run.counts["PASS"]
