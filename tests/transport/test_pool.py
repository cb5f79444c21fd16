"""Issue 13.2 acceptance over real sshd: one connection pool for audits, backup verification and drills.

Hosts behind a jump host are audited, backup-verified with a restore test, and drilled, each run
with ONE login on the bastion (counted in the bastion sshd's own log), every tunnel going through
it; a bastion that cannot be used is tried once per run, and every host behind it is UNREACHABLE.
The lab's hosts all listen on 127.0.0.1, so a host "behind" the bastion could be reached directly
too: the bastion's log shows the tunnels (direct-tcpip) the runs really took.
"""

from __future__ import annotations

import json
import re
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from audit_helpers import by_target, run_audit, write_pack, write_yaml
from click.testing import CliRunner

from itops.cli.main import cli
from itops.errors import TransportError
from itops.inventory import load_inventory
from itops.store import Store
from itops.transport.base import BatchOutcome
from itops.transport.batch import build_script
from itops.transport.pool import ConnectionPool
from itops_lab import Fleet, LabHostSpec
from itops_lab.backup_demo import plant_demo_backups

pytestmark = pytest.mark.integration

BEHIND = ("t1", "t2", "t3")


class BastionLog:
    """The bastion sshd's log from a given point on (its log keeps growing across runs)."""

    def __init__(self, fleet: Fleet, host: str = "bastion") -> None:
        self.fleet = fleet
        self.path = fleet[host].log_path
        self.start = self.path.stat().st_size

    def text(self) -> str:
        with self.path.open("rb") as fh:
            fh.seek(self.start)
            return fh.read().decode("utf-8", "replace")

    def count(self, needle: str, at_least: int = 0) -> int:
        """How often ``needle`` occurs, waiting (bounded) until ``at_least`` occur: the bastion's
        per-connection processes may still be writing when the run has returned."""
        deadline = time.monotonic() + 10
        while self.text().count(needle) < at_least and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.text().count(needle)

    def tunnels(self, at_least: int) -> list[str]:
        """The hosts the bastion opened tunnels (direct-tcpip channels) to, by lab host name, sorted."""
        self.count("server_request_direct_tcpip", at_least)
        ports = re.findall(r"server_request_direct_tcpip: .* target \S+ port (\d+)", self.text())
        names = {str(h.port): h.name for h in self.fleet}
        return sorted(names.get(p, p) for p in ports)


@pytest.fixture
def behind_bastion(fleet_factory, tmp_path) -> tuple[Fleet, Path]:
    """A bastion and three hosts behind it (each with a file backup with a restore test); the inventory."""
    # DEBUG1: sshd logs each TCP connection ("Connection from") and each tunnel ("direct-tcpip")
    fleet = fleet_factory([LabHostSpec("bastion"), *(LabHostSpec(h) for h in BEHIND)], log_level="DEBUG1")
    backups: dict[str, Any] = {}
    for h in BEHIND:
        planted = plant_demo_backups(
            None, host=h, base=str(tmp_path / "backups" / h), scratch=str(tmp_path / "scratch" / h)
        )
        backups[f"{h}-files"] = planted["files-fresh"]
    inv = fleet.inventory({"hosts": {h: {"jump": "bastion"} for h in BEHIND}, "backups": backups})
    return fleet, write_yaml(tmp_path / "inventory.yaml", inv)


def test_audit_backup_verify_and_drill_each_log_in_to_the_bastion_once(behind_bastion, tmp_path):
    fleet, inventory = behind_bastion
    store = str(tmp_path / "store")

    # audit: the hosts behind the bastion, and the bastion itself (its own checks share the connection)
    log = BastionLog(fleet)
    code, doc, _ = run_audit(
        "-i",
        str(inventory),
        "--checks-dir",
        str(write_pack(tmp_path / "pack")),
        "--checks",
        "test.path_exists",
        "--store",
        store,
    )
    assert code == 0, doc
    statuses = {h: r["status"] for h, r in by_target(doc, "test.path_exists").items()}
    assert statuses == {"bastion": "PASS", "t1": "PASS", "t2": "PASS", "t3": "PASS"}
    assert log.tunnels(at_least=3) == ["t1", "t2", "t3"]  # one tunnel per host behind it
    assert log.count("Accepted publickey") == 1

    # backup verify with restore tests: one batch per host, all through the one bastion login
    log = BastionLog(fleet)
    res = CliRunner().invoke(
        cli,
        ["backup", "verify", "-i", str(inventory), "--restore-test", "--store", store, "--format", "json"],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.stdout + res.stderr
    results = json.loads(res.stdout)["results"]
    restores = {r["target"]: r for r in results if r["check_id"] == "backup.restore_test_passed"}
    assert {t: r["status"] for t, r in restores.items()} == {f"{h}-files": "PASS" for h in BEHIND}
    assert all("etc/app/app.conf sha256 ok" in r["message"] for r in restores.values())
    assert log.tunnels(at_least=3) == ["t1", "t2", "t3"]
    assert log.count("Accepted publickey") == 1

    # a drill with steps on two hosts behind the bastion, a restore test and a kept restore
    log = BastionLog(fleet)
    into = tmp_path / "recovered"
    playbook = tmp_path / "behind.yaml"
    playbook.write_text(
        textwrap.dedent(f"""\
        name: behind-bastion
        description: a drill of hosts reached through a jump host
        systems: [app]
        rto: 10m
        rpo: 26h
        owner: tests
        steps:
          - name: t1 answers
            run: hostname
            host: t1
          - name: restore test
            restore: {{backup: t1-files}}
          - name: restore into the recovery folder
            restore: {{backup: t1-files, into: "{into}"}}
          - name: t2 sees the restored file
            check: {{command: "test -s {into}/etc/app/app.conf", host: t2}}
          - name: clean up
            run: rm -rf -- "{into}"
            host: t2
    """)
    )
    res = CliRunner().invoke(cli, ["dr", "drill", str(playbook), "-i", str(inventory), "--store", store])
    assert res.exit_code == 0, res.stdout + res.stderr
    steps = [r for r in Store(Path(store)).results("latest") if r.check_id == "dr.step"]
    assert [r.status.value for r in steps] == ["PASS"] * 5, [(r.resource, r.message) for r in steps]
    assert steps[0].evidence.excerpt.strip() == "t1"
    assert "etc/app/app.conf sha256 ok" in steps[1].message
    assert not into.exists()
    # one connection each to t1 (steps 1-3: the restore test's verifier uses the drill's) and t2 (steps 4-5)
    assert log.tunnels(at_least=2) == ["t1", "t2"]
    assert log.count("Accepted publickey") == 1


def test_a_bastion_that_cannot_be_used_is_tried_once_per_run(behind_bastion, tmp_path):
    fleet, inventory = behind_bastion
    store = str(tmp_path / "store")
    pack = str(write_pack(tmp_path / "pack"))
    behind = ",".join(BEHIND)
    # a rebuilt bastion: its new host key is not the known one, so itops refuses it before logging in
    fleet.rotate_host_key("bastion")
    time.sleep(0.2)  # the lab's readiness probe's own connection is logged before ours

    log = BastionLog(fleet)
    code, doc, _ = run_audit(
        "-i", str(inventory), "--checks-dir", pack, "--checks", "test.path_exists", "--limit", behind, "--store", store
    )
    assert code == 3, doc
    found = by_target(doc, "test.path_exists")
    assert set(found) == set(BEHIND)
    for r in found.values():
        assert r["status"] == "UNREACHABLE", r
        assert "jump host bastion" in r["message"] and "CHANGED" in r["message"], r["message"]
    assert log.count("Connection from", at_least=1) == 1  # one attempt for the three hosts

    log = BastionLog(fleet)
    res = CliRunner().invoke(
        cli,
        ["backup", "verify", "-i", str(inventory), "--restore-test", "--store", store, "--format", "json"],
        catch_exceptions=False,
    )
    assert res.exit_code == 3, res.stdout + res.stderr
    results = json.loads(res.stdout)["results"]
    assert {r["target"] for r in results} == {f"{h}-files" for h in BEHIND}
    assert {r["status"] for r in results} == {"UNREACHABLE"}
    assert all("jump host bastion" in r["message"] for r in results)
    assert log.count("Connection from", at_least=1) == 1

    # a stopped bastion: refused, named, once per run (nothing to count in a log: nothing listens)
    fleet.stop_host("bastion")
    t0 = time.monotonic()
    code, doc, _ = run_audit(
        "-i", str(inventory), "--checks-dir", pack, "--checks", "test.path_exists", "--limit", behind, "--store", store
    )
    assert code == 3, doc
    for r in by_target(doc, "test.path_exists").values():
        assert r["status"] == "UNREACHABLE" and "jump host bastion" in r["message"] and "refused" in r["message"]
    assert time.monotonic() - t0 < 30


def test_chained_jump_hosts_are_each_logged_in_to_once(fleet_factory, tmp_path):
    """t1 and t2 sit behind j2, which sits behind j1: each hop is one shared connection."""
    fleet = fleet_factory([LabHostSpec(h) for h in ("j1", "j2", "t1", "t2")], log_level="DEBUG1")
    inv = fleet.inventory({"hosts": {"j2": {"jump": "j1"}, "t1": {"jump": "j2"}, "t2": {"jump": "j2"}}})
    path = write_yaml(tmp_path / "inv.yaml", inv)
    j1, j2 = BastionLog(fleet, "j1"), BastionLog(fleet, "j2")
    code, doc, _ = run_audit(
        "-i",
        str(path),
        "--checks-dir",
        str(write_pack(tmp_path / "pack")),
        "--checks",
        "test.path_exists",
        "--limit",
        "t1,t2",
        "--store",
        str(tmp_path / "s"),
    )
    assert code == 0, doc
    assert {h: r["status"] for h, r in by_target(doc, "test.path_exists").items()} == {"t1": "PASS", "t2": "PASS"}
    assert j1.tunnels(at_least=1) == ["j2"] and j1.count("Accepted publickey") == 1
    assert j2.tunnels(at_least=2) == ["t1", "t2"] and j2.count("Accepted publickey") == 1


def test_interrupt_closes_every_connection_now_and_the_pool_stays_usable(behind_bastion):
    """A stop request ends a batch in flight behind the bastion; a drill's rollbacks then connect again."""
    fleet, inventory = behind_bastion
    inv = load_inventory(inventory)
    log = BastionLog(fleet)
    with ConnectionPool(inv.hosts) as pool:
        conn = pool.connect("t1")
        bastion = pool.jump("bastion")  # the shared connection t1 tunnels through
        ended: list[BatchOutcome | Exception] = []

        def long_batch() -> None:
            try:
                ended.append(conn.run_batch(build_script(["sleep 60"], [90]), idle_timeout=90, total_timeout=90))
            except TransportError as exc:
                ended.append(exc)

        worker = threading.Thread(target=long_batch)
        worker.start()
        time.sleep(1.0)  # the batch is running on t1, through the bastion
        t0 = time.monotonic()
        pool.interrupt()
        worker.join(timeout=20)
        assert not worker.is_alive() and time.monotonic() - t0 < 10
        assert isinstance(ended[0], TransportError) or not ended[0].complete, ended
        assert not conn.is_active() and not bastion.is_active()
        with pool.lease("t2") as again:  # a new connection (and bastion login) after the interrupt
            outcome = again.run_batch(build_script(["hostname"], [10]), idle_timeout=20, total_timeout=20)
        assert outcome.results[0].text.strip() == "t2"
    assert log.count("Accepted publickey", at_least=2) == 2  # the interrupted login and the new one
