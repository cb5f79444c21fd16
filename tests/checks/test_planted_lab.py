"""Issue 3 acceptance: a lab audit's failing set equals the planted set on every host.

The hosts of ``AUDIT_LAB`` (tests/lab_hosts.py) are real sshd hosts chrooted into real Debian
roots: one hardened (``clean``) and some with documented misconfigurations planted on top of it.
``itops audit`` runs over SSH with EVERY host check (no --checks filter), and each host's set of
FAILing check ids must be exactly its planted set: a false FAIL or a false PASS both fail.

Each host also has file systems of its own mounted inside its root (``PlantedHost.mounts``: tmpfs
on /tmp, /var/tmp and /dev/shm), so the mount option checks are planted per host too.

Checks that judge the machine the lab runs on rather than a host's root (``ENVIRONMENT_CHECKS``:
kernel parameters, sockets, daemons, disk usage) cannot be planted per host; they are held to a
weaker, still honest standard: the same verdict on every host, and never PASS when their probe
could not run. Checks that combine both (``MACHINE_GATES``) stay in the exact comparison.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from lab_hosts import AUDIT_LAB, AUDIT_LAB_VARS, ENVIRONMENT_CHECKS, HARDENED_TEMP_MOUNTS, MACHINE_GATES

from itops.checkapi import ProbeResult
from itops.inventory import load_inventory
from itops.planner import plan_host
from itops.registry import load_registry
from itops.runner import target_for
from itops.transport.ssh import KnownHosts, SSHConnection
from itops_lab import HostRoots, LabHostSpec, RootKind, start_fleet
from itops_lab.roots import default_cache_dir, read_recipe_marker

pytestmark = pytest.mark.integration

VERDICTS = ("PASS", "FAIL")
#: Forecasts judge a trend over earlier runs; a single audit of a new store has none ("not enough history").
HISTORY_CHECKS = frozenset(
    c.id for c in load_registry(entry_point_packs=False).select(None, target="host") if c.meta.history
)


@dataclass(frozen=True)
class PlantedAudit:
    """What the audit of the planted lab found, kept after the fleet is gone."""

    results: dict[str, dict[str, list[dict[str, Any]]]]  # host -> check id -> result dicts
    probe_problems: dict[str, dict[str, list[str]]]  # host -> environment check -> probes that could not run
    host_checks: frozenset[str]  # every host check in the registry


def _require_debian_lab() -> None:
    if os.geteuid() != 0:
        pytest.skip("the sshd lab needs root (ChrootDirectory, mknod, namespaces)")
    if not os.access("/usr/sbin/sshd", os.X_OK):
        pytest.skip("openssh-server is not installed (scripts/install-system-deps.sh)")
    if os.environ.get("ITOPS_LAB_ROOT_KIND", RootKind.DEBIAN.value) != RootKind.DEBIAN.value:
        pytest.skip("the planted profiles need the Debian root (ITOPS_LAB_ROOT_KIND is not debian)")
    cached = read_recipe_marker(default_cache_dir() / "debian-bookworm") is not None
    if not cached and shutil.which("debootstrap") is None:
        pytest.skip("debootstrap is not installed and no Debian root is cached (scripts/install-system-deps.sh)")


def _audit(inventory: Path, store: Path) -> dict[str, dict[str, list[dict[str, Any]]]]:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "from itops.cli.main import main; main()",
            "audit",
            "-i",
            str(inventory),
            "--format",
            "json",
            "--all",
            "--store",
            str(store),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert proc.returncode in (0, 1, 3), proc.stderr
    by_host: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for r in json.loads(proc.stdout)["results"]:
        by_host.setdefault(r["target"], {}).setdefault(r["check_id"], []).append(r)
    return by_host


def _could_not_run(r: ProbeResult | None) -> bool:
    """The probe never finished, its command is missing, or it failed without printing anything."""
    return r is None or r.rc is None or r.timed_out or r.rc in (126, 127) or (r.rc != 0 and not r.stdout.strip())


def _environment_probe_problems(inventory_path: Path) -> dict[str, dict[str, list[str]]]:
    """Run the environment checks' probes on every host (one batch each, as the audit does)."""
    inventory = load_inventory(inventory_path)
    registry = load_registry([])
    checks = [registry.get(check_id) for check_id in ENVIRONMENT_CHECKS]
    problems: dict[str, dict[str, list[str]]] = {}
    for name, host in inventory.hosts.items():
        plan = plan_host(name, checks, host.vars, float(host.ssh.command_timeout))
        target = target_for(host, inventory.hosts)
        conn = SSHConnection(target, KnownHosts(target.known_hosts))
        try:
            outcome = conn.run_batch(plan.batch(), idle_timeout=60, total_timeout=120)
        finally:
            conn.close()
        problems[name] = {
            pc.check.id: [
                r.problem() if r is not None else f"probe {probe} did not run"
                for probe, i in pc.probe_index.items()
                if _could_not_run(r := outcome.results.get(i))
            ]
            for pc in plan.planned
        }
    return problems


@pytest.fixture(scope="module")
def planted_audit(tmp_path_factory: pytest.TempPathFactory) -> PlantedAudit:
    """Build the planted hosts, audit them in full, probe the environment checks, tear it all down.

    Everything the tests need is gathered first, so the fleet and its roots are gone before any
    assertion runs (about 15 s for the module once the Debian root is cached).
    """
    _require_debian_lab()
    with HostRoots() as roots:
        specs = [
            LabHostSpec(
                name,
                groups=("planted",),
                root=roots.create(name, RootKind.DEBIAN, host.profile),
                vars=AUDIT_LAB_VARS,
                mounts=host.mounts,
            )
            for name, host in AUDIT_LAB.items()
        ]
        with start_fleet(tmp_path_factory.mktemp("planted-lab"), specs, startup_timeout=30) as fleet:
            inventory = fleet.write_inventory()
            results = _audit(inventory, tmp_path_factory.mktemp("planted-store"))
            probe_problems = _environment_probe_problems(inventory)
    host_checks = frozenset(c.id for c in load_registry([]).select([], target="host"))
    return PlantedAudit(results, probe_problems, host_checks)


def _failing(results: dict[str, list[dict[str, Any]]]) -> set[str]:
    return {check_id for check_id, rs in results.items() if any(r["status"] == "FAIL" for r in rs)}


def _describe(results: dict[str, list[dict[str, Any]]], check_ids: set[str]) -> str:
    return "\n".join(
        f"  {check_id}: "
        + "; ".join(f"{r['status']} {r['resource'] or ''} {r['message']}".strip() for r in results[check_id])
        for check_id in sorted(check_ids)
    )


# --------------------------------------------------------------------------- the planted data itself


def test_lab_data_names_real_host_checks() -> None:
    """Every id the lab data names is a host check, and no check is both planted and environment."""
    host_checks = {c.id for c in load_registry([]).select([], target="host")}
    planted = set().union(*(h.expected_fail for h in AUDIT_LAB.values()))
    assert planted - host_checks == set()
    assert set(ENVIRONMENT_CHECKS) - host_checks == set()
    assert set(MACHINE_GATES) - host_checks == set()
    assert planted & set(ENVIRONMENT_CHECKS) == set()
    assert set(MACHINE_GATES) & set(ENVIRONMENT_CHECKS) == set()
    assert AUDIT_LAB["clean"].expected_fail == frozenset()
    assert AUDIT_LAB["clean"].mounts == HARDENED_TEMP_MOUNTS


def test_planted_hosts_are_named_after_their_profiles() -> None:
    for name, host in AUDIT_LAB.items():
        assert host.profile.name == name and host.profile.description
        assert host.expected_fail or name == "clean", f"{name} plants nothing"


# --------------------------------------------------------------------------- the audit


def test_every_host_check_ran_on_every_host(planted_audit: PlantedAudit) -> None:
    assert set(planted_audit.results) == set(AUDIT_LAB)
    for host, results in planted_audit.results.items():
        assert set(results) == planted_audit.host_checks, host


@pytest.mark.parametrize("host", list(AUDIT_LAB))
def test_failing_set_equals_planted_set(planted_audit: PlantedAudit, host: str) -> None:
    results = planted_audit.results[host]
    gated = {check_id for check_id, machine_fails in MACHINE_GATES.items() if machine_fails()}
    expected = set(AUDIT_LAB[host].expected_fail) | gated
    actual = _failing(results) - set(ENVIRONMENT_CHECKS)
    false_fail, false_pass = actual - expected, expected - actual
    assert not false_fail and not false_pass, (
        f"{host}: failing set differs from the planted set\n"
        f"FAIL but not planted:\n{_describe(results, false_fail)}\n"
        f"planted but not FAIL:\n{_describe(results, false_pass)}"
    )


@pytest.mark.parametrize("host", list(AUDIT_LAB))
def test_root_dependent_checks_reach_a_verdict(planted_audit: PlantedAudit, host: str) -> None:
    """Everything a host's root decides can be judged: an ERROR there is a check that could have known."""
    results = planted_audit.results[host]
    undecided = {
        check_id
        for check_id, rs in results.items()
        if check_id not in ENVIRONMENT_CHECKS
        and check_id not in HISTORY_CHECKS
        and any(r["status"] not in VERDICTS for r in rs)
    }
    assert not undecided, f"{host}:\n{_describe(results, undecided)}"


@pytest.mark.parametrize("check_id", list(ENVIRONMENT_CHECKS))
def test_environment_check_same_verdict_on_every_host(planted_audit: PlantedAudit, check_id: str) -> None:
    verdicts = {host: sorted({r["status"] for r in rs[check_id]}) for host, rs in planted_audit.results.items()}
    assert len({tuple(v) for v in verdicts.values()}) == 1, verdicts


@pytest.mark.parametrize("check_id", list(ENVIRONMENT_CHECKS))
def test_environment_check_never_passes_without_its_probe(planted_audit: PlantedAudit, check_id: str) -> None:
    for host, problems in planted_audit.probe_problems.items():
        if problems[check_id]:
            statuses = {r["status"] for r in planted_audit.results[host][check_id]}
            assert "PASS" not in statuses, (host, problems[check_id], planted_audit.results[host][check_id])
