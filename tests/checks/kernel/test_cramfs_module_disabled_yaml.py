"""kernel.cramfs_module_disabled (checks/kernel/cramfs_module_disabled.yaml):
canned output (a YAML example of checks/examples/README.md)."""

from __future__ import annotations

from pathlib import Path

from helpers import make_facts, overall, registry, run_check

from itops.model import Status


def facts_for(check_id: str, spec, **kw):
    probe = registry().get(check_id).probes[0]
    return make_facts({probe.name: spec}, **kw)


def status(check_id: str, spec, **kw) -> Status:
    return overall(run_check(check_id, facts_for(check_id, spec, **kw)))


def test_cramfs():
    cid = "kernel.cramfs_module_disabled"
    assert status(cid, (0, "install /bin/false\n")) is Status.PASS
    assert (
        status(cid, (0, "modprobe: FATAL: Module cramfs not found in directory /lib/modules/6.1.0-18-amd64\n"))
        is Status.PASS
    )
    assert status(cid, (0, "insmod /lib/modules/6.1.0-18-amd64/kernel/fs/cramfs/cramfs.ko\n")) is Status.FAIL
    assert status(cid, (0, "install /bin/false\ncramfs 16384 0 - Live 0x0000000000000000\n")) is Status.FAIL
    assert status(cid, (0, "")) is Status.FAIL  # no evidence either way is not a pass
    # without modprobe (slim images, containers) the probe decides from the kernel and modprobe.d
    assert (
        status(cid, (0, "no cramfs module for the running kernel 6.1.0-18-amd64 (and modprobe is ...)\n"))
        is Status.PASS
    )
    assert status(cid, (0, "cramfs is built into the running kernel (/proc/filesystems)\n")) is Status.FAIL
    assert (
        status(cid, (0, "cramfs module present (/lib/modules/x/cramfs.ko) and no modprobe.d install rule\n"))
        is Status.FAIL
    )
    assert status(cid, (127, "")) is Status.ERROR  # sh itself failed to run the probe


def test_cramfs_probe_without_modprobe_judges_the_running_kernel(tmp_path):
    """The real probe under sh with kmod absent from PATH: its verdict follows this machine's kernel."""
    import os
    import shutil
    import subprocess

    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("sh", "grep", "find", "uname", "head", "cat", "awk"):
        (bindir / tool).symlink_to(shutil.which(tool))
    cmd = registry().get("kernel.cramfs_module_disabled").probes[0].command
    proc = subprocess.run(
        ["sh", "-c", cmd], capture_output=True, text=True, timeout=30, env={"PATH": str(bindir)}, check=False
    )
    assert proc.returncode == 0, proc.stderr
    release = os.uname().release
    builtin = "cramfs" in Path("/proc/filesystems").read_text().split()
    loaded = (
        any(line.startswith("cramfs ") for line in Path("/proc/modules").read_text().splitlines())
        if Path("/proc/modules").exists()
        else False
    )
    has_module = any(
        Path(d).rglob("cramfs.ko*")
        for d in (f"/lib/modules/{release}", f"/usr/lib/modules/{release}")
        if Path(d).is_dir()
    )
    if loaded:
        assert "cramfs " in proc.stdout
    elif builtin:
        assert proc.stdout.startswith("cramfs is built into the running kernel")
    elif has_module:
        assert proc.stdout.startswith(("install ", "cramfs module present"))
    else:
        assert proc.stdout.startswith(f"no cramfs module for the running kernel {release}")
    got = status("kernel.cramfs_module_disabled", (0, proc.stdout))
    if loaded or builtin:
        assert got is Status.FAIL
    elif not has_module:
        assert got is Status.PASS
    else:  # a module file: the verdict is the modprobe.d policy's
        assert got is (Status.PASS if proc.stdout.startswith("install /bin/") else Status.FAIL)
