"""`--executor dask` for real: lab sshd hosts audited through a Dask scheduler and worker processes
on 127.0.0.1 (tests/executors/conftest.py), compared with `--executor threads`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tarfile
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from audit_helpers import ITOPS, run_audit, write_yaml

pytestmark = pytest.mark.integration

CHECKS = "ssh.*,accounts.*,files.*_permissions"

#: a check whose probe takes a while: hosts stay in flight long enough to kill a worker under them
SLOW_PACK = textwrap.dedent(
    """
    from itops.checkapi import Finding, Probe, Severity, host_check

    @host_check(id="slow.probe_finishes", title="A slow probe finishes", probes=[Probe("slow", "sleep 4; echo done")],
                severity=Severity.LOW, rationale="test-only check for the executors", remediation="nothing to fix",
                frameworks={"nist-800-53": ["SI-4"], "iso-27001": ["A.8.16"]})
    def slow(facts, params):
        r = facts["slow"]
        return Finding.passed("finished") if r.ok and r.text.strip() == "done" else Finding.error(r.problem())
    """
)


def verdicts(doc: dict[str, Any]) -> dict[tuple[str, str, str], str]:
    return {(r["target"], r["check_id"], r.get("resource") or ""): r["status"] for r in doc["results"]}


def test_audit_on_a_dask_cluster_gives_the_same_verdicts_as_threads(lab_inventory, dask_lab, tmp_path):
    code_t, threads, err_t = run_audit(str(lab_inventory), "--checks", CHECKS, "--store", str(tmp_path / "t"))
    code_d, dask, err_d = run_audit(
        str(lab_inventory), "--checks", CHECKS, "--store", str(tmp_path / "d"), "--executor", dask_lab.address
    )
    assert threads and dask, (err_t, err_d)
    assert code_d == code_t, err_d
    assert verdicts(dask) == verdicts(threads)
    assert len({t for t, _, _ in verdicts(dask)}) == len(dask["run"]["planned"]) >= 3
    # the workers did the work, and the run left no task behind on the cluster
    with dask_lab.client() as client:
        assert client.run_on_scheduler(lambda dask_scheduler: "audit_batch" in dask_scheduler.task_prefixes)
        assert client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks)) == 0


def test_dask_url_scheme_and_an_absent_scheduler(lab_inventory, tmp_path):
    from itops_lab.netutil import free_port

    code, doc, err = run_audit(
        str(lab_inventory),
        "--checks",
        "ssh.*",
        "--store",
        str(tmp_path),
        "--executor",
        f"dask://127.0.0.1:{free_port()}",
    )
    assert code == 3 and not doc
    assert "cannot use the Dask scheduler at tcp://127.0.0.1:" in err and "dask scheduler" in err
    assert not list(tmp_path.glob("runs/*")), "nothing is stored when the cluster is not there"


def _slow_fleet(fleet_factory, tmp_path: Path, hosts: int) -> tuple[Path, Path]:
    fleet = fleet_factory(hosts)
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "slow_checks.py").write_text(SLOW_PACK)
    assert fleet.inventory_path is not None
    return fleet.inventory_path, pack


def _worker_pids(client) -> dict[str, int]:
    return client.run(os.getpid)


def test_a_killed_worker_loses_only_its_hosts_which_are_retried_or_unreachable(fleet_factory, dask_lab, tmp_path):
    inv, pack = _slow_fleet(fleet_factory, tmp_path, 6)
    args = [
        "audit",
        str(inv),
        "--checks-dir",
        str(pack),
        "--checks",
        "slow.*,ssh.root_login_disabled",
        "--store",
        str(tmp_path / "store"),
        "--executor",
        dask_lab.address,
        "--format",
        "json",
    ]
    proc = subprocess.Popen([ITOPS, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with dask_lab.client() as client:
            pids = _worker_pids(client)
            victim = None
            deadline = time.monotonic() + 60
            while victim is None and time.monotonic() < deadline and proc.poll() is None:
                busy = {w: tasks for w, tasks in client.processing().items() if tasks}
                victim = next(iter(busy), None)
                time.sleep(0.1)
            assert victim is not None, "no worker ever had a task"
            os.kill(pids[victim], signal.SIGKILL)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert dask_lab.workers[pids[victim]].wait(timeout=10) == -signal.SIGKILL
    doc = json.loads(out)
    got = verdicts(doc)
    targets = {t for t, _, _ in got}
    assert targets == set(doc["run"]["planned"]) and len(targets) == 6, err  # nothing lost
    assert len(got) == 12, got  # every host x check accounted for
    assert "retrying once on another worker" in err, err
    for (target, check, _), status in got.items():
        if status == "UNREACHABLE":  # lost twice: says why
            r = next(r for r in doc["results"] if r["target"] == target and r["check_id"] == check)
            assert "Dask worker" in r["message"], r
        else:
            assert status == "PASS" if check.startswith("slow.") else status in ("PASS", "FAIL"), (target, check)
    assert doc["run"]["state"] == "complete"


def test_ctrl_c_cancels_the_clusters_tasks(fleet_factory, dask_lab, tmp_path):
    inv, pack = _slow_fleet(fleet_factory, tmp_path, 4)
    args = [
        "audit",
        str(inv),
        "--checks-dir",
        str(pack),
        "--checks",
        "slow.*",
        "--store",
        str(tmp_path / "store"),
        "--executor",
        dask_lab.address,
        "--format",
        "json",
    ]
    proc = subprocess.Popen([ITOPS, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with dask_lab.client() as client:

            def tasks() -> int:
                return client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))

            deadline = time.monotonic() + 60
            while tasks() == 0 and time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.1)
            assert tasks() > 0
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
            assert proc.returncode == 3, err
            assert "stopping on SIGINT" in err
            deadline = time.monotonic() + 10
            while tasks() and time.monotonic() < deadline:
                time.sleep(0.1)
            assert tasks() == 0, "the interrupted run's tasks are cancelled on the cluster"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    doc = json.loads(out)
    assert doc["run"]["state"] == "interrupted"


def test_executor_dask_starts_a_local_cluster(fleet_factory, tmp_path):
    fleet = fleet_factory(3)
    inv = str(fleet.inventory_path)
    code_t, threads, _ = run_audit(inv, "--checks", CHECKS, "--store", str(tmp_path / "t"))
    code_d, dask, err = run_audit(inv, "--checks", CHECKS, "--store", str(tmp_path / "d"), "--executor", "dask")
    assert dask, err
    assert code_d == code_t
    assert verdicts(dask) == verdicts(threads)
    assert "executor: dask" in err


def _backup_inventory(fleet, tmp_path: Path) -> Path:
    folder = tmp_path / "backups"
    folder.mkdir()
    payload = tmp_path / "payload.txt"
    payload.write_text("data\n" * 100)
    for i in range(2):
        with tarfile.open(folder / f"app-{i}.tar.gz", "w:gz") as tar:
            tar.add(payload, arcname="payload.txt")
    old = folder / "app-0.tar.gz"
    os.utime(old, (time.time() - 3 * 86400, time.time() - 3 * 86400))
    doc = fleet.inventory()
    host = next(iter(fleet.hosts))
    doc["backups"] = {
        "app-remote": {"kind": "file", "host": host, "path": str(folder / "*.tar.gz"), "rpo": "26h"},
        "app-local": {"kind": "file", "path": str(folder / "*.tar.gz"), "rpo": "26h", "min_copies": 3},
    }
    return write_yaml(tmp_path / "inv.yaml", doc)


def test_backup_verify_on_a_dask_cluster_matches_threads(fleet_factory, dask_lab, tmp_path):
    inv = _backup_inventory(fleet_factory(1), tmp_path)

    def verify(executor: str) -> tuple[int, dict[str, Any], str]:
        res = subprocess.run(
            [
                ITOPS,
                "backup",
                "verify",
                str(inv),
                "--format",
                "json",
                "--store",
                str(tmp_path / executor[:4]),
                "--executor",
                executor,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        return res.returncode, json.loads(res.stdout or "{}"), res.stderr

    code_t, threads, err_t = verify("threads")
    code_d, dask, err_d = verify(dask_lab.address)
    assert threads and dask, (err_t, err_d)
    assert code_d == code_t == 1, err_d  # min_copies 3 of 2 fails
    assert verdicts(dask) == verdicts(threads)
    assert {t for t, _, _ in verdicts(dask)} == {"app-remote", "app-local"}
    assert "UNREACHABLE" not in verdicts(dask).values() and "ERROR" not in verdicts(dask).values(), verdicts(dask)
    with dask_lab.client() as client:  # the host's backup went to a worker (the host-less one stays here)
        assert client.run_on_scheduler(lambda dask_scheduler: "verify_backup_batch" in dask_scheduler.task_prefixes)


#: a check that kills the process evaluating it on one host: on Dask, the worker that runs lab1
KILLER_PACK = textwrap.dedent(
    """
    import os, signal
    from itops.checkapi import Finding, Probe, Severity, host_check

    @host_check(id="crash.worker_survives", title="The worker survives", probes=[Probe("up", "echo up")],
                severity=Severity.LOW, rationale="test-only check for the executors", remediation="nothing",
                frameworks={"nist-800-53": ["SI-4"], "iso-27001": ["A.8.16"]})
    def crash(facts, params):
        if facts.target == "lab1":
            os.kill(os.getpid(), signal.SIGKILL)
        return Finding.passed("alive")
    """
)


def test_a_batch_that_kills_its_worker_twice_is_unreachable_with_the_reason(fleet_factory, tmp_path):
    from dask_lab import start_dask_lab

    fleet = fleet_factory(4)
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "crash_checks.py").write_text(KILLER_PACK)
    lab = start_dask_lab(tmp_path / "dask", workers=3)
    try:
        res = subprocess.run(
            [
                ITOPS,
                "audit",
                str(fleet.inventory_path),
                "--checks-dir",
                str(pack),
                "--checks",
                "crash.*",
                "--store",
                str(tmp_path / "store"),
                "--executor",
                lab.address,
                "--format",
                "json",
            ],
            capture_output=True,
            text=True,
            timeout=180,
        )
        dead = [pid for pid, p in lab.workers.items() if p.poll() is not None]
    finally:
        lab.stop()
    doc = json.loads(res.stdout)
    got = {r["target"]: r for r in doc["results"]}
    assert set(got) == {"lab1", "lab2", "lab3", "lab4"}, res.stderr  # nothing lost
    assert got["lab1"]["status"] == "UNREACHABLE"
    assert "the Dask worker running it died" in got["lab1"]["message"] and "twice" in got["lab1"]["message"]
    assert len(dead) == 2, "the first attempt and the one retry each killed a worker"
    for name in ("lab2", "lab3", "lab4"):  # PASS, or lost twice alongside lab1 and saying so
        assert got[name]["status"] == "PASS" or "Dask worker" in got[name]["message"], got[name]
    assert res.returncode == 3 and doc["run"]["state"] == "complete"
