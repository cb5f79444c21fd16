"""Issue 17 acceptance, Ansible flavour: ``itops remediate --format ansible`` run by real ansible-playbook
against the planted sshd lab turns every planted FAIL with a safe fix into PASS, and breaks nothing.

The lab's Debian roots carry no Python (Ansible modules run on the target): this test copies this
machine's own python3.11 (the lab runs on Debian bookworm, like the roots) into each host's root
before the audit; elsewhere it skips. Kernel-bound checks are left out as in test_remediate_lab.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from lab_hosts import AUDIT_LAB, AUDIT_LAB_VARS
from test_remediate_lab import HOSTS, _audit, _itops, _kernel_bound

from itops.registry import load_registry
from itops.remediate.render import plan_fixes
from itops.store import Store
from itops_lab import HostRoots, LabHostSpec, RootKind, start_fleet

pytestmark = pytest.mark.integration

PYTHON = Path("/usr/bin/python3.11")


def _ansible_playbook() -> str | None:
    local = Path(sys.executable).parent / "ansible-playbook"
    return str(local) if local.exists() else shutil.which("ansible-playbook")


def _bookworm() -> bool:
    text = Path("/etc/os-release").read_text() if Path("/etc/os-release").exists() else ""
    return "VERSION_CODENAME=bookworm" in text


def _give_python(root: Path) -> None:
    """This machine's python3.11 and its standard library copied into a bookworm root (same libc)."""
    shutil.copy2(PYTHON, root / "usr/bin/python3.11")
    if not (root / "usr/bin/python3").exists():
        (root / "usr/bin/python3").symlink_to("python3.11")
    subprocess.run(["cp", "-a", "/usr/lib/python3.11", str(root / "usr/lib/")], check=True, timeout=120)
    for lib in Path("/lib/x86_64-linux-gnu").glob("libexpat.so.1*"):
        dest = root / "usr/lib/x86_64-linux-gnu" / lib.name
        if not dest.exists():
            subprocess.run(["cp", "-a", str(lib), str(dest)], check=True, timeout=30)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Any:
    if os.geteuid() != 0 or not os.access("/usr/sbin/sshd", os.X_OK):
        pytest.skip("the sshd lab needs root and openssh-server")
    if _ansible_playbook() is None or not PYTHON.exists() or not _bookworm():
        pytest.skip("needs ansible-playbook and this machine's python3.11 on Debian bookworm (copied into the roots)")
    with HostRoots() as roots:
        specs = []
        for name in HOSTS:
            root = roots.create(name, RootKind.DEBIAN, AUDIT_LAB[name].profile)
            _give_python(root)
            specs.append(
                LabHostSpec(name, groups=("planted",), root=root, vars=AUDIT_LAB_VARS, mounts=AUDIT_LAB[name].mounts)
            )
        with start_fleet(tmp_path_factory.mktemp("ansible-lab"), specs, startup_timeout=30) as fleet:
            yield fleet, fleet.write_inventory(), tmp_path_factory.mktemp("store")


def test_ansible_playbook_turns_safe_planted_fails_into_pass(lab: Any, tmp_path: Path) -> None:
    fleet, inventory, store = lab
    run_id, before = _audit(inventory, store)
    registry = load_registry([])
    planted = {(h, c) for h in HOSTS for c in AUDIT_LAB[h].expected_fail}
    planted -= {(h, c) for h in HOSTS for c in _kernel_bound()}
    checks = {c.id: c for c in registry.select([], target="host")}
    plans = plan_fixes(Store(store).results(run_id), checks)
    safe = planted & {(p.host, f.check_id) for p in plans for f in p.fixes}
    assert len(safe) >= 25
    selected = sorted({c for _, c in safe})

    book = tmp_path / "fix.yml"
    written = _itops(
        "remediate",
        run_id,
        "-i",
        str(inventory),
        "--store",
        str(store),
        "--format",
        "ansible",
        "-o",
        str(book),
        *[a for c in selected for a in ("--checks", c)],
    )
    assert written.returncode == 0, written.stderr
    hosts = tmp_path / "hosts.ini"
    opts = f"-o UserKnownHostsFile={fleet.known_hosts_path} -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes"
    hosts.write_text(
        "[all:vars]\nansible_user=root\nansible_become=false\nansible_python_interpreter=/usr/bin/python3\n"
        f"ansible_ssh_private_key_file={fleet.client_key_path}\nansible_ssh_common_args='{opts}'\n[all]\n"
        + "".join(f"{h} ansible_host=127.0.0.1 ansible_port={fleet.hosts[h].port}\n" for h in HOSTS)
    )
    env = {
        **os.environ,
        "ANSIBLE_HOME": str(tmp_path / "ansible"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_HOST_KEY_CHECKING": "True",
    }
    proc = subprocess.run(
        [_ansible_playbook() or "", "-i", str(hosts), str(book)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]

    _, after = _audit(inventory, store)
    still = sorted(k for k in safe if after[k] != "PASS")
    assert not still, (still, proc.stdout[-4000:])
    regressed = sorted(k for k, v in after.items() if before.get(k) == "PASS" and v != "PASS")
    assert not regressed, regressed
