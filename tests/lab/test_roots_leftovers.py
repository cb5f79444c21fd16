"""A process left running inside a lab host's root is stopped when the roots are removed; one that
listens on a port (a daemon started in a chroot, which escapes the fleet's process tree) is reported
as an error naming it and the port. A stale run directory's leftovers are stopped by the sweep."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from itops_lab import HostRoots, LabError, RootKind
from itops_lab.netutil import free_port
from itops_lab.procs import processes_inside
from itops_lab.roots import sweep_stale_roots

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="chroot and mount namespaces need root")


def _daemon_in(root: Path, *command: str) -> int:
    """Start ``command`` chrooted into ``root``, detached as a daemon would be; its PID."""
    proc = subprocess.Popen(
        ["unshare", "--mount", "chroot", str(root), *command],
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while proc.pid not in processes_inside(str(root)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return proc.pid


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_a_listener_left_in_a_root_is_stopped_and_reported() -> None:
    port = free_port()
    roots = HostRoots()
    root = roots.create("web1", RootKind.BUSYBOX)
    pid = _daemon_in(root, "/bin/busybox", "nc", "-l", "-p", str(port))
    deadline = time.monotonic() + 10
    while not getattr(processes_inside(str(root)).get(pid), "ports", ()) and time.monotonic() < deadline:
        time.sleep(0.05)
    with pytest.raises(LabError, match=rf"busybox \(PID {pid}, listening on (0\.0\.0\.0|\[::\]):{port}\)"):
        roots.close()
    assert _gone(pid)
    assert not root.exists()


def test_a_leftover_that_listens_on_nothing_is_stopped_quietly() -> None:
    """A probe still running after its session ended (it would end at its own timeout)."""
    with HostRoots() as roots:
        root = roots.create("web1", RootKind.BUSYBOX)
        pid = _daemon_in(root, "/bin/busybox", "sleep", "600")
        assert pid in processes_inside(str(root))
    assert _gone(pid)
    assert not root.exists()


def test_the_sweep_stops_what_runs_in_a_stale_run_directory() -> None:
    roots = HostRoots()
    root = roots.create("web1", RootKind.BUSYBOX)
    pid = _daemon_in(root, "/bin/busybox", "sleep", "600")
    assert pid in processes_inside(str(root))
    roots.set_owners([2**22 + 1])  # above pid_max: an owner that no longer exists
    assert roots.run_dir in sweep_stale_roots(roots.parent)
    assert _gone(pid)
    assert not roots.run_dir.exists()
