"""The YAML checks checks/examples/README.md shows, one per type, each in its domain's folder: each loads through
the registry and judges canned output."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import RHEL_9, make_facts, not_found, overall, registry, run_check, timed_out

from itops.model import Status

EXAMPLE_IDS = [
    "files.issue_net_permissions_restricted",
    "accounts.login_defs_umask_restrictive",
    "logging.journald_compress_enabled",
    "kernel.cramfs_module_disabled",
    "software.telnet_client_absent",
    "services.rsync_daemon_disabled",
]


def facts_for(check_id: str, spec, **kw):
    probe = registry().get(check_id).probes[0]
    return make_facts({probe.name: spec}, **kw)


def status(check_id: str, spec, **kw) -> Status:
    return overall(run_check(check_id, facts_for(check_id, spec, **kw)))


def test_every_example_type_is_shipped_and_declarative():
    checks = [registry().get(i) for i in EXAMPLE_IDS]
    assert all("declarative" in c.meta.tags for c in checks)
    # each lives where its id says (checks/files/ holds files.*), none in checks/examples/
    assert all(f"/checks/{c.id.split('.')[0]}/" in c.source for c in checks)
    assert not [c.id for c in registry() if "/checks/examples/" in c.source]
    readme = (Path(__file__).parents[3] / "checks" / "examples" / "README.md").read_text()
    assert all(f"`{i}`" in readme for i in EXAMPLE_IDS)


@pytest.mark.parametrize("check_id", EXAMPLE_IDS)
def test_examples_error_on_timeout_and_missing_probe(check_id):
    assert status(check_id, timed_out()) is Status.ERROR
    assert overall(run_check(check_id, make_facts({}))) is Status.ERROR


def test_issue_net():
    cid = "files.issue_net_permissions_restricted"
    assert status(cid, (0, "644 0 0 root root regular file\n")) is Status.PASS
    assert status(cid, (0, "666 0 0 root root regular file\n")) is Status.FAIL
    assert status(cid, (0, "644 1000 1000 alice alice regular file\n")) is Status.FAIL
    assert status(cid, (1, "", "stat: cannot statx '/etc/issue.net': Permission denied")) is Status.ERROR
    assert status(cid, (0, "stat: invalid option\n")) is Status.ERROR
    assert status(cid, not_found("stat")) is Status.ERROR


def test_login_defs_umask():
    cid = "accounts.login_defs_umask_restrictive"
    assert status(cid, (0, "MAIL_DIR /var/mail\nUMASK\t\t027\n")) is Status.PASS
    assert status(cid, (0, "UMASK 077\n")) is Status.PASS
    assert status(cid, (0, "UMASK 0027\n")) is Status.PASS  # same mask, leading zero
    assert status(cid, (0, "UMASK 037\n")) is Status.PASS  # stricter than 027
    assert status(cid, (0, "UMASK\t\t022\n")) is Status.FAIL
    assert status(cid, (0, "UMASK 0022\n")) is Status.FAIL
    assert status(cid, (0, "# UMASK 027\n")) is Status.FAIL
    assert status(cid, (1, "", "cat: /etc/login.defs: Permission denied")) is Status.ERROR
    assert status(cid, not_found("cat")) is Status.ERROR


def test_journald_compress():
    cid = "logging.journald_compress_enabled"
    assert status(cid, (0, "[Journal]\n#Compress=yes\n")) is Status.PASS  # default
    assert status(cid, (0, "[Journal]\nCompress=Yes\n")) is Status.PASS
    assert status(cid, (0, "[Journal]\nCompress=no\n")) is Status.FAIL
    assert status(cid, (1, "", "cat: /etc/systemd/journald.conf: No such file or directory")) is Status.PASS
    assert status(cid, (1, "", "cat: /etc/systemd/journald.conf: Input/output error")) is Status.ERROR


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
    assert status(cid, (0, "no cramfs module for the running kernel 6.1.0-18-amd64 (and modprobe is ...)\n")) \
        is Status.PASS
    assert status(cid, (0, "cramfs is built into the running kernel (/proc/filesystems)\n")) is Status.FAIL
    assert status(cid, (0, "cramfs module present (/lib/modules/x/cramfs.ko) and no modprobe.d install rule\n")) \
        is Status.FAIL
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
    proc = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, timeout=30,
                          env={"PATH": str(bindir)}, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    release = os.uname().release
    builtin = "cramfs" in Path("/proc/filesystems").read_text().split()
    loaded = any(line.startswith("cramfs ") for line in Path("/proc/modules").read_text().splitlines()) \
        if Path("/proc/modules").exists() else False
    has_module = any(Path(d).rglob("cramfs.ko*") for d in (f"/lib/modules/{release}", f"/usr/lib/modules/{release}")
                     if Path(d).is_dir())  # fmt: skip
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


def test_telnet_client():
    cid = "software.telnet_client_absent"
    assert status(cid, (0, "@@itops-pm dpkg\nbash install ok installed\n")) is Status.PASS
    assert status(cid, (0, "@@itops-pm dpkg\nbash install ok installed\ntelnet install ok installed\n")) is Status.FAIL
    assert status(cid, (0, "@@itops-pm rpm\nbash\ntelnet\n"), os_release=RHEL_9) is Status.FAIL
    # the client without the transitional "telnet" package is still the telnet client
    only_inetutils = "@@itops-pm dpkg\nbash install ok installed\ninetutils-telnet install ok installed\n"
    assert status(cid, (0, only_inetutils)) is Status.FAIL
    assert status(cid, (0, "@@itops-pm dpkg\n")) is Status.ERROR
    assert status(cid, (2, "dpkg-query: error")) is Status.ERROR


def test_rsync_daemon():
    cid = "services.rsync_daemon_disabled"
    assert registry().get(cid).meta.os_families == ("debian",)
    assert status(cid, (0, "pid1=systemd\nsystemd=yes\nunit rsync inactive\n")) is Status.PASS  # not installed
    assert status(cid, (0, "pid1=systemd\nsystemd=yes\nunit rsync inactive masked\n")) is Status.PASS
    assert status(cid, (0, "pid1=systemd\nsystemd=yes\nunit rsync active enabled\n")) is Status.FAIL
    assert status(cid, (0, "pid1=sh\nsystemd=no\n")) is Status.ERROR
    # without systemd: no unit file and no init script means not installed, so certainly disabled
    assert status(cid, (0, "pid1=sh\nsystemd=no\nunitfile rsync no\n")) is Status.PASS
    assert status(cid, (0, "pid1=sh\nsystemd=no\nunitfile rsync yes\n")) is Status.ERROR
    assert status(cid, (0, "garbage")) is Status.ERROR
