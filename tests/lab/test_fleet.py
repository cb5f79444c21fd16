"""itops_lab.fleet: LabMount validation and how isolated() mounts it (no sshd), and a lab on a fresh machine."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from itops_lab import Fleet, LabError, LabHostSpec, LabMount
from itops_lab.fleet import LabHost
from itops_lab.netutil import generate_ed25519
from itops_lab.roots import RECIPE_MARKER
from itops_lab.sshd import isolated


def _host(tmp_path: Path, root: Path | None, *mounts: LabMount, mount_proc: bool = True) -> LabHost:
    spec = LabHostSpec("h1", root=root, mounts=mounts, mount_proc=mount_proc)
    return LabHost(spec=spec, port=0, host_key=generate_ed25519(tmp_path / "key", "t"), directory=tmp_path)


def _run_script(tmp_path: Path, command: list[str]) -> list[list[str]]:
    """Run the ``sh -c`` part of an isolated() command with fake mount/hostname; each mount's argv.

    The wrapped command must be ``["true"]`` (the script execs it at the end)."""
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    log = tmp_path / "mount.log"
    for tool in ("mount", "hostname"):
        fake = bin_dir / tool
        fake.write_text(f'#!/bin/sh\n[ "$(basename "$0")" = mount ] && printf "%s\\0" "$@" "--end" >> {log}\nexit 0\n')
        fake.chmod(0o755)
    shell = command[command.index("/bin/sh") :]
    proc = subprocess.run(
        shell, env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    calls = log.read_text().split("\0--end\0") if log.exists() else []
    return [call.split("\0") for call in calls if call]


def test_default_spec_has_no_mounts() -> None:
    assert LabHostSpec("h").mounts == ()


@pytest.mark.parametrize("fstype", ["ext4", "bind", "proc", "tmpfs; reboot", ""])
def test_only_tmpfs_is_accepted(fstype: str) -> None:
    with pytest.raises(LabError, match="unsupported file system type"):
        LabMount("/tmp", fstype, "nodev")


@pytest.mark.parametrize("target", ["tmp", "/", "//", "/var/../etc", "/tmp/..", "/tmp\nx", "/tmp\0x", ""])
def test_bad_targets_are_rejected(target: str) -> None:
    with pytest.raises(LabError, match="bad lab mount target"):
        LabMount(target, "tmpfs", "nodev")


@pytest.mark.parametrize("options", ["nodev nosuid", "nodev;reboot", "nodev,,nosuid", "$(reboot)", ",nodev", "a\nb"])
def test_bad_options_are_rejected(options: str) -> None:
    with pytest.raises(LabError, match="bad mount options"):
        LabMount("/tmp", "tmpfs", options)


def test_targets_and_options_reach_mount_as_single_arguments(tmp_path: Path) -> None:
    """A target with a space and a ';' is one quoted argument; the mount point is made in the root."""
    root = tmp_path / "root"
    (root / "tmp").mkdir(parents=True)
    odd = "/srv/my dir;touch pwned"
    host = _host(
        tmp_path,
        root,
        LabMount("/tmp", "tmpfs", "nodev,nosuid,noexec,size=16m"),
        LabMount(odd),
    )
    calls = _run_script(tmp_path, isolated(host, ["true"]))
    assert calls[-2:] == [
        ["-t", "tmpfs", "-o", "nodev,nosuid,noexec,size=16m", "tmpfs", str(root / "tmp")],
        ["-t", "tmpfs", "tmpfs", str(root / odd.lstrip("/"))],
    ]
    assert (root / odd.lstrip("/")).is_dir()
    assert not Path("pwned").exists() and not (tmp_path / "pwned").exists()


def test_mounts_come_after_the_root_bind_and_proc(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    calls = _run_script(tmp_path, isolated(_host(tmp_path, root, LabMount("/dev/shm", options="nosuid")), ["true"]))
    assert [c[:2] for c in calls] == [["--bind", str(root)], ["-t", "proc"], ["-t", "tmpfs"]]
    assert (root / "dev/shm").is_dir()


def test_a_symlink_in_the_root_resolves_inside_the_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    (root / "escape").symlink_to("/etc")  # absolute: the chroot's /etc, not this machine's
    calls = _run_script(tmp_path, isolated(_host(tmp_path, root, LabMount("/escape/lab-mnt")), ["true"]))
    assert calls[-1][-1] == str(root / "etc/lab-mnt")
    assert (root / "etc/lab-mnt").is_dir() and not Path("/etc/lab-mnt").exists()


def test_mount_points_are_never_made_in_the_cached_base(tmp_path: Path) -> None:
    base = tmp_path / "debian-bookworm"
    base.mkdir()
    (base / RECIPE_MARKER).write_text("{}")
    with pytest.raises(LabError, match="cached Debian base"):
        isolated(_host(tmp_path, base, LabMount("/newdir")), ["x"])
    assert not (base / "newdir").exists()


@pytest.mark.parametrize("target", ["/proc", "/proc/sys"])
def test_mounts_over_the_roots_proc_are_refused(tmp_path: Path, target: str) -> None:
    root = tmp_path / "root"
    (root / "proc").mkdir(parents=True)
    with pytest.raises(LabError, match="cover the root or its /proc"):
        isolated(_host(tmp_path, root, LabMount(target)), ["x"])


def test_a_file_as_mount_target_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text("")
    with pytest.raises(LabError, match="not a directory"):
        isolated(_host(tmp_path, root, LabMount("/etc/passwd")), ["x"])


def test_mounts_without_a_root_or_isolation_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    fleet = Fleet(tmp_path / "fleet", isolate=False)
    with pytest.raises(LabError, match="need a root and an isolated fleet"):
        fleet.start([LabHostSpec("h1", mounts=(LabMount("/tmp"),))])
    with pytest.raises(LabError, match="need a root and an isolated fleet"):
        fleet.start([LabHostSpec("h2", root=root, mounts=(LabMount("/tmp"),))])


_FRESH_RUN_SCRIPT = """
import subprocess, sys
from pathlib import Path
from itops_lab import LabHostSpec, start_fleet
assert not Path("/run/sshd").exists(), "the namespace should hide /run/sshd"
with start_fleet(Path(sys.argv[1]), [LabHostSpec("fresh1")], startup_timeout=20) as fleet:
    host = fleet.hosts["fresh1"]
    out = subprocess.run(["ssh", "-F", str((fleet.workdir / "ssh_config")), "fresh1", "echo", "reached"],
                         capture_output=True, text=True, timeout=30)
    print(out.stdout.strip(), out.returncode)
"""


@pytest.mark.integration
def test_lab_starts_on_a_machine_whose_ssh_service_never_ran(tmp_path: Path) -> None:
    """A fresh machine (CI, a container) has no /run/sshd: Debian's sshd refuses to start without it.

    The lab runs here in a private mount namespace with an empty /run, as on such a machine."""
    if os.geteuid() != 0 or not os.access("/usr/sbin/sshd", os.X_OK):
        pytest.fail("the sshd lab needs root and openssh-server (scripts/install-system-deps.sh)")
    script = tmp_path / "fresh.py"
    script.write_text(_FRESH_RUN_SCRIPT)
    work = tmp_path / "lab"
    work.mkdir()
    proc = subprocess.run(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            'mount -t tmpfs -o mode=0755 tmpfs /run && exec "$0" "$@"',
            sys.executable,
            str(script),
            str(work),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["reached", "0"]
