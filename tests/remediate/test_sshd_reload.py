"""``itops_sshd_reload`` (shell fixes and the Ansible handler) reloads only a running sshd: it never
starts one, and a stale /run/sshd.pid never sends SIGHUP to a process that is not an sshd.

Run for real with sh in a chroot (a lab busybox root) with its own /proc mount, so the function reads
the /run/sshd.pid it would read on a host."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from test_render import _fail

from itops.registry import load_registry
from itops.remediate.render import plan_fixes, render_ansible
from itops.remediate.shlib import SSHD_RELOAD
from itops_lab import HostRoots, RootKind

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="chroot and mount namespaces need root")


@pytest.fixture(scope="module")
def root() -> Iterator[Path]:
    with HostRoots() as roots:
        yield roots.create("reload1", RootKind.BUSYBOX)


def _reload(root: Path, pidfile: str | None) -> subprocess.CompletedProcess[str]:
    run = root / "run"
    run.mkdir(exist_ok=True)
    (run / "sshd.pid").unlink(missing_ok=True)
    if pidfile is not None:
        (run / "sshd.pid").write_text(pidfile)
    inner = 'mount -t proc proc "$1/proc" && exec chroot "$1" /bin/sh -c "$2"'
    script = SSHD_RELOAD + "itops_sshd_reload\n"
    return subprocess.run(
        ["unshare", "--mount", "sh", "-c", inner, "sh", str(root), script],
        capture_output=True,
        text=True,
        timeout=30,
    )


def _sleeper(tmp_path: Path, name: str) -> subprocess.Popen[bytes]:
    """A ``sleep`` whose process name (``/proc/PID/comm``) is ``name``."""
    exe = tmp_path / name
    shutil.copy2("/usr/bin/sleep", exe)
    return subprocess.Popen([str(exe), "60"])


def test_a_stale_pidfile_naming_another_process_sends_nothing(root: Path, tmp_path: Path) -> None:
    other = _sleeper(tmp_path, "sleep")
    try:
        proc = _reload(root, f"{other.pid}\n")
        assert proc.returncode == 0, proc.stderr
        assert "note: no running sshd to reload" in proc.stdout
        with pytest.raises(subprocess.TimeoutExpired):
            other.wait(timeout=0.5)  # SIGHUP would have ended it
    finally:
        other.kill()
        other.wait()


def test_a_running_sshd_named_in_the_pidfile_gets_sighup(root: Path, tmp_path: Path) -> None:
    sshd = _sleeper(tmp_path, "sshd")
    try:
        proc = _reload(root, f"{sshd.pid}\n")
        assert proc.returncode == 0, proc.stderr
        assert f"reloaded: sshd (SIGHUP to PID {sshd.pid})" in proc.stdout
        assert sshd.wait(timeout=10) == -signal.SIGHUP
    finally:
        sshd.kill()
        sshd.wait()


@pytest.mark.parametrize("pidfile", [None, "", "12abc\n", "-1\n", "$(id)\n"])
def test_no_or_garbled_pidfile_leaves_sshd_unstarted(root: Path, pidfile: str | None) -> None:
    proc = _reload(root, pidfile)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "note: no running sshd to reload here; the new setting applies when sshd next starts"


def test_the_ansible_handler_runs_the_same_reload_not_the_service_module() -> None:
    """ansible.builtin.service with state=reloaded starts a stopped sshd (it did, in a lab chroot,
    listening on 0.0.0.0:22); the handler runs itops_sshd_reload instead."""
    checks = {c.id: c for c in load_registry([]).select([], target="host")}
    text = render_ansible(plan_fixes([_fail("ssh.ciphers_strong")], checks), "R1")

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))
    (play,) = yaml.load(text, Loader=Loader)
    (handler,) = play["handlers"]
    assert handler["name"] == "itops reload sshd"
    assert "ansible.builtin.service" not in handler
    assert handler["ansible.builtin.shell"]["cmd"] == SSHD_RELOAD + "itops_sshd_reload\n"
    assert all(t.get("notify") in (None, "itops reload sshd") for t in play["tasks"])
