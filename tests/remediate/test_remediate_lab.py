"""Issue 17 acceptance on the planted sshd lab: fixes applied over SSH turn planted FAILs into PASS.

The planted hosts (tests/lab_hosts.py) are audited in full; ``itops remediate RUN --apply --yes``
applies every safe fix of the planted FAILs over SSH and re-audits the touched checks. Checks
whose fix would change the machine the lab runs on (its kernel: sysctl, modules) are left out
with ``--checks``: the lab hosts share this machine's kernel. Then: every planted FAIL with a safe
fix PASSes, a full audit finds no check failing that passed before, a second apply changes
nothing (idempotence), and a fix that ``sshd -t`` refuses leaves the old config and a reachable host.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from lab_hosts import AUDIT_LAB, AUDIT_LAB_VARS, ENVIRONMENT_CHECKS, MACHINE_GATES

from itops.registry import load_registry
from itops.remediate.render import plan_fixes
from itops.store import Store
from itops_lab import HostRoots, LabHostSpec, RootKind, start_fleet

pytestmark = pytest.mark.integration

HOSTS = ("ssh-drift", "neglected", "account-drift")


def _itops(*args: str, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from itops.cli.main import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "NO_COLOR": "1"},
    )


def _audit(inventory: Path, store: Path) -> tuple[str, dict[tuple[str, str], str]]:
    proc = _itops("audit", "-i", str(inventory), "--format", "json", "--all", "--store", str(store))
    assert proc.returncode in (0, 1, 3), proc.stderr
    doc = json.loads(proc.stdout)
    verdicts: dict[tuple[str, str], str] = {}
    for r in doc["results"]:
        key = (r["target"], r["check_id"])
        if verdicts.get(key) != "FAIL":
            verdicts[key] = r["status"]
    return doc["run"]["id"], verdicts


def _tree_digest(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted((root / "etc").rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        st = path.stat()
        h.update(f"{path}:{st.st_mode:o}:{st.st_uid}:{st.st_gid}\n".encode())
        h.update(path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Any:
    if os.geteuid() != 0 or not os.access("/usr/sbin/sshd", os.X_OK):
        pytest.skip("the sshd lab needs root and openssh-server")
    with HostRoots() as roots:
        specs = [
            LabHostSpec(
                name,
                groups=("planted",),
                root=roots.create(name, RootKind.DEBIAN, AUDIT_LAB[name].profile),
                vars=AUDIT_LAB_VARS,
                mounts=AUDIT_LAB[name].mounts,
            )
            for name in HOSTS
        ]
        with start_fleet(tmp_path_factory.mktemp("remediate-lab"), specs, startup_timeout=30) as fleet:
            yield fleet, {s.name: s.root for s in specs}, fleet.write_inventory(), tmp_path_factory.mktemp("store")


def _kernel_bound() -> set[str]:
    """Checks whose fix changes the running kernel every lab host shares (sysctl, modules), left out here."""
    registry = load_registry([])
    bound = set(ENVIRONMENT_CHECKS) | set(MACHINE_GATES)
    bound |= {
        c.id for c in registry.select([], target="host") if c.meta.fix and (c.meta.fix.sysctl or c.meta.fix.modules)
    }
    return bound


def test_apply_turns_safe_planted_fails_into_pass_and_is_idempotent(lab: Any) -> None:
    _fleet, roots, inventory, store = lab
    run_id, before = _audit(inventory, store)
    registry = load_registry([])
    planted = {(h, c) for h in HOSTS for c in AUDIT_LAB[h].expected_fail} - {
        (h, c) for h in HOSTS for c in _kernel_bound()
    }
    checks = {c.id: c for c in registry.select([], target="host")}
    plans = plan_fixes(Store(store).results(run_id), checks)
    safe = planted & {(p.host, f.check_id) for p in plans for f in p.fixes}
    assert len(safe) >= 25, sorted(safe)
    assert all(before[k] == "FAIL" for k in safe), {k: before[k] for k in safe if before[k] != "FAIL"}
    selected = sorted({c for _, c in safe})

    script = _itops(
        "remediate",
        run_id,
        "-i",
        str(inventory),
        "--store",
        str(store),
        "--format",
        "sh",
        *[a for c in selected for a in ("--checks", c)],
    )
    assert script.returncode == 0, script.stderr
    assert f"from run {run_id}" in script.stdout and "# --- ssh.ciphers_strong" in script.stdout

    applied = _itops(
        "remediate",
        run_id,
        "-i",
        str(inventory),
        "--store",
        str(store),
        "--apply",
        "--yes",
        *[a for c in selected for a in ("--checks", c)],
    )
    assert "re-audit stored as run" in applied.stderr, applied.stderr
    assert applied.returncode == 0, applied.stderr

    reaudit_id = applied.stderr.split("re-audit stored as run ")[1].split(":")[0]
    diff = _itops("diff", run_id, reaudit_id, "--format", "json", "--store", str(store))
    assert diff.returncode == 0, diff.stderr
    fixed = {(e["target"], e["check_id"]) for e in json.loads(diff.stdout)["fixed"]}
    assert safe <= fixed, sorted(safe - fixed)

    _, after = _audit(inventory, store)
    still = sorted(k for k in safe if after[k] != "PASS")
    assert not still, (still, applied.stderr)
    regressed = sorted(k for k, v in after.items() if before.get(k) == "PASS" and v != "PASS")
    assert not regressed, regressed

    digests = {h: _tree_digest(roots[h]) for h in HOSTS}
    again = _itops(
        "remediate",
        run_id,
        "-i",
        str(inventory),
        "--store",
        str(store),
        "--apply",
        "--yes",
        *[a for c in selected for a in ("--checks", c)],
    )
    assert ": changed" not in again.stderr, again.stderr
    assert {h: _tree_digest(roots[h]) for h in HOSTS} == digests


def test_fix_refused_by_sshd_t_restores_config_and_host_stays_reachable(lab: Any, tmp_path: Path) -> None:
    _fleet, roots, inventory, store = lab
    doc = yaml.safe_load(inventory.read_text())
    doc["hosts"]["ssh-drift"].setdefault("vars", {})["ssh_macs_allowed"] = ["hmac-md5-not-a-mac"]
    bad_inventory = tmp_path / "inventory.yaml"
    bad_inventory.write_text(yaml.safe_dump(doc))
    config = roots["ssh-drift"] / "etc/ssh/sshd_config"
    # a MACs fix is only planned for a FAIL: make the host fail it again with a weak MAC at the top
    config.write_text("MACs hmac-sha1\n" + config.read_text())
    run_id, _ = _audit(bad_inventory, store)
    before = config.read_bytes()
    applied = _itops(
        "remediate",
        run_id,
        "-i",
        str(bad_inventory),
        "--store",
        str(store),
        "--apply",
        "--yes",
        "--checks",
        "ssh.macs_strong",
        "--limit",
        "ssh-drift",
    )
    assert "sshd -t refused" in applied.stderr, applied.stderr
    assert config.read_bytes() == before
    assert applied.returncode == 1
    _, after = _audit(inventory, store)
    assert after[("ssh-drift", "ssh.macs_strong")] == "FAIL"  # reachable, old config still judged
    config.write_text(before.decode().replace("MACs hmac-sha1\n", "", 1))
