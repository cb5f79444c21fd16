"""checks/kernel/modules.py and itops/checklib/kmod.py: canned probe output for every verdict, and the real probe."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import make_facts, not_found, overall, registry, run_check, timed_out

from itops.checklib.kmod import MODPROBE_D_GLOBS, KernelModule, module_probe, parse_module_probe
from itops.model import Status

# check id, module (as modprobe names it), file system type in /proc/filesystems
CASES = [
    ("kernel.freevxfs_module_disabled", "freevxfs", "vxfs"),
    ("kernel.hfs_module_disabled", "hfs", "hfs"),
    ("kernel.hfsplus_module_disabled", "hfsplus", "hfsplus"),
    ("kernel.jffs2_module_disabled", "jffs2", "jffs2"),
    ("kernel.squashfs_module_disabled", "squashfs", "squashfs"),
    ("kernel.udf_module_disabled", "udf", "udf"),
    ("kernel.usb_storage_module_disabled", "usb-storage", ""),
]
IDS = [c[0] for c in CASES]
REL = "6.1.0-18-amd64"


def probe_name(module: str) -> str:
    return "kmod_" + module.replace("-", "_")


def out(module: str, *body: str, release: str = REL, end: bool = True) -> str:
    """Probe output in the probe's order: kernel evidence, release, then the modprobe or module-tree part."""
    head = [b for b in body if b.startswith(("@loaded", "@listed", "@unreadable"))]
    tail = [b for b in body if b not in head]
    lines = [f"@module {module}", *head, f"@release {release}", *tail] + (["@end"] if end else [])
    return "\n".join(lines) + "\n"


def modprobe(module: str, rc: int, *lines: str) -> str:
    return out(module, f"@modprobe-rc {rc}", *(f"|{line}" for line in lines))


def tree(module: str, module_file: str, rule: str) -> str:
    return out(module, "@no-modprobe", f"@module-file {module_file}", f"@install-rule {rule}")


def judge(check_id: str, module: str, text: str, rc: int = 0):
    return run_check(check_id, make_facts({probe_name(module): (rc, text)}))


def verdict(check_id: str, module: str, text: str, rc: int = 0) -> Status:
    return overall(judge(check_id, module, text, rc))


def ko(module: str) -> str:
    where = "drivers/usb/storage" if module == "usb-storage" else f"fs/{module}"
    return f"/lib/modules/{REL}/kernel/{where}/{module}.ko"


@pytest.mark.parametrize(("check_id", "module", "fs"), CASES, ids=IDS)
def test_metadata(check_id, module, fs):
    check = registry().get(check_id)
    assert check.meta.title == f"The {module} kernel module cannot be loaded"
    assert check.meta.severity.value == "low"
    assert f"install {module} /bin/false" in check.meta.remediation
    assert f"> /etc/modprobe.d/{module}.conf" in check.meta.remediation
    assert f"modprobe -r {module}" in check.meta.remediation
    assert [p.name for p in check.probes] == [probe_name(module)]
    assert check.meta.frameworks["cis-debian-12"][0].startswith("1.1.1.")


def test_squashfs_rationale_mentions_snaps_and_level_2():
    rationale = registry().get("kernel.squashfs_module_disabled").meta.rationale
    assert "Snap" in rationale and "Level 2" in rationale


# --- with modprobe -----------------------------------------------------------------------------


@pytest.mark.parametrize(("check_id", "module", "fs"), CASES, ids=IDS)
def test_modprobe_install_rule_passes(check_id, module, fs):
    for cmd in ("/bin/false", "/bin/true", "/usr/bin/false"):
        findings = judge(check_id, module, modprobe(module, 0, f"install {cmd} "))
        assert overall(findings) is Status.PASS, findings
    assert "disabled" in judge(check_id, module, modprobe(module, 0, "install /bin/false"))[0].message


@pytest.mark.parametrize(("check_id", "module", "fs"), CASES, ids=IDS)
def test_modprobe_not_found_passes(check_id, module, fs):
    text = modprobe(module, 1, f"modprobe: FATAL: Module {module} not found in directory /lib/modules/{REL}")
    assert verdict(check_id, module, text) is Status.PASS


@pytest.mark.parametrize(("check_id", "module", "fs"), CASES, ids=IDS)
def test_modprobe_insmod_fails(check_id, module, fs):
    findings = judge(check_id, module, modprobe(module, 0, f"insmod {ko(module)} "))
    assert overall(findings) is Status.FAIL
    assert f"modprobe would load {module}" in findings[0].message
    compressed = modprobe(module, 0, "insmod /lib/modules/x/kernel/lib/crc-itu-t.ko", f"insmod {ko(module)}.xz")
    assert verdict(check_id, module, compressed) is Status.FAIL


def test_modprobe_other_install_command_fails():
    text = modprobe("udf", 0, "install /sbin/modprobe --ignore-install udf")
    findings = judge("kernel.udf_module_disabled", "udf", text)
    assert overall(findings) is Status.FAIL and "--ignore-install" in findings[0].message


def test_modprobe_unrecognised_output_is_error():
    cid = "kernel.hfs_module_disabled"
    assert verdict(cid, "hfs", modprobe("hfs", 0)) is Status.ERROR  # prints nothing (built in, no /sys)
    assert verdict(cid, "hfs", modprobe("hfs", 1, "modprobe: ERROR: could not insert 'hfs': Oops")) is Status.ERROR
    # a dependency's insmod is not the module's own
    assert verdict(cid, "hfs", modprobe("hfs", 0, "insmod /lib/modules/x/kernel/lib/hfs_helper.ko")) is Status.ERROR
    # "not found" of another module does not count
    assert verdict(cid, "hfs", modprobe("hfs", 1, "modprobe: FATAL: Module hfsplus not found")) is Status.ERROR


def test_usb_storage_not_found_in_kernel_spelling_passes():
    text = modprobe("usb-storage", 1, f"modprobe: FATAL: Module usb_storage not found in directory /lib/modules/{REL}")
    assert verdict("kernel.usb_storage_module_disabled", "usb-storage", text) is Status.PASS


# what a host reports about the policy, with and without modprobe: both say "disabled"
DISABLED_BOTH_WAYS = (
    ("@modprobe-rc 0", "|install /bin/false"),
    ("@no-modprobe", "@module-file none", "@install-rule none"),
)


# --- loaded, built in --------------------------------------------------------------------------


@pytest.mark.parametrize(("check_id", "module", "fs"), CASES, ids=IDS)
def test_loaded_module_fails_whatever_the_policy(check_id, module, fs):
    kname = module.replace("-", "_")
    loaded = f"@loaded {kname} 118784 0 - Live 0xffffffffc0a1b000"
    for body in DISABLED_BOTH_WAYS:
        findings = judge(check_id, module, out(module, loaded, f"@listed /sys/module/{kname}", *body))
        assert overall(findings) is Status.FAIL
        assert findings[0].message == f"{module} is loaded in the running kernel"
        assert kname in findings[0].observed


@pytest.mark.parametrize(("check_id", "module", "fs"), CASES, ids=IDS)
def test_built_in_module_fails(check_id, module, fs):
    where = "/proc/filesystems" if fs else f"/sys/module/{module.replace('-', '_')}"
    for body in DISABLED_BOTH_WAYS:
        findings = judge(check_id, module, out(module, f"@listed {where}", *body))
        assert overall(findings) is Status.FAIL
        assert "built into the running kernel" in findings[0].message and where in findings[0].message
    builtin = out(module, f"@listed /lib/modules/{REL}/modules.builtin", "@modprobe-rc 0")
    assert verdict(check_id, module, builtin) is Status.FAIL


# --- without modprobe --------------------------------------------------------------------------


@pytest.mark.parametrize(("check_id", "module", "fs"), CASES, ids=IDS)
def test_without_modprobe(check_id, module, fs):
    findings = judge(check_id, module, tree(module, "none", "none"))
    assert overall(findings) is Status.PASS
    assert "nothing on this system can load it" in findings[0].message
    assert verdict(check_id, module, tree(module, ko(module), "/bin/false")) is Status.PASS
    assert verdict(check_id, module, tree(module, ko(module), "/bin/true")) is Status.PASS
    findings = judge(check_id, module, tree(module, ko(module), "none"))
    assert overall(findings) is Status.FAIL
    assert "no modprobe.d install rule" in findings[0].message
    assert verdict(check_id, module, tree(module, ko(module), "/usr/local/bin/load-it")) is Status.FAIL


# --- probe problems ----------------------------------------------------------------------------


@pytest.mark.parametrize(("check_id", "module", "fs"), CASES, ids=IDS)
def test_broken_probe_is_error_never_pass(check_id, module, fs):
    name = probe_name(module)
    good = modprobe(module, 0, "install /bin/false")
    assert overall(run_check(check_id, make_facts({name: timed_out(name)}))) is Status.ERROR
    assert overall(run_check(check_id, make_facts({name: not_found("sh")}))) is Status.ERROR
    assert overall(run_check(check_id, make_facts({}))) is Status.ERROR
    assert verdict(check_id, module, good, rc=2) is Status.ERROR
    assert verdict(check_id, module, good.replace("@end\n", "")) is Status.ERROR  # truncated
    assert verdict(check_id, module, "<html>oops</html>\n") is Status.ERROR
    assert verdict(check_id, module, "") is Status.ERROR
    assert verdict(check_id, module, good.replace(f"@module {module}", "@module cramfs")) is Status.ERROR
    assert verdict(check_id, module, out(module, "@modprobe-rc 0", "|install /bin/false", release="")) is Status.ERROR
    unreadable = out(module, "@unreadable /proc/modules", "@modprobe-rc 0", "|install /bin/false")
    assert verdict(check_id, module, unreadable) is Status.ERROR
    no_proc = out(module, "@unreadable /proc/filesystems", "@no-modprobe", "@module-file none", "@install-rule none")
    assert verdict(check_id, module, no_proc) is Status.ERROR
    assert verdict(check_id, module, out(module, "@no-modprobe", "@module-file none")) is Status.ERROR


def test_parser_keeps_unknown_lines():
    state = parse_module_probe("@module udf\n@release 1\nsurprise\n@no-modprobe\n@end\n")
    assert state.unknown == ("surprise",) and state.has_modprobe is False and state.complete


# --- the real probe ----------------------------------------------------------------------------


def _run_probe_without_modprobe(
    module: KernelModule, tmp_path: Path, command: str = ""
) -> subprocess.CompletedProcess[str]:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    for tool in ("sh", "awk", "find", "uname", "head", "cat", "sed"):
        if not (bindir / tool).exists():
            (bindir / tool).symlink_to(shutil.which(tool))
    cmd = command or module_probe(module).render({})
    return subprocess.run(
        ["sh", "-c", cmd], capture_output=True, text=True, timeout=30, env={"PATH": str(bindir)}, check=False
    )


@pytest.mark.parametrize(("check_id", "module", "fs"), CASES, ids=IDS)
def test_real_probe_without_modprobe_judges_this_machines_kernel(check_id, module, fs, tmp_path):
    """The real probe under sh with kmod absent from PATH: its verdict follows this machine's kernel."""
    proc = _run_probe_without_modprobe(KernelModule(module, fs), tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "@no-modprobe" in proc.stdout and proc.stdout.endswith("@end\n")
    release = os.uname().release
    kname = module.replace("-", "_")
    modules = Path("/proc/modules")
    loaded = modules.exists() and any(line.split()[0] == kname for line in modules.read_text().splitlines())
    trees = [Path(d) for d in (f"/lib/modules/{release}", f"/usr/lib/modules/{release}") if Path(d).is_dir()]
    builtin = (
        (bool(fs) and fs in Path("/proc/filesystems").read_text().split())
        or Path(f"/sys/module/{kname}").is_dir()
        or any(
            Path(t, "modules.builtin").is_file()
            and any(
                line.rsplit("/", 1)[-1] in (f"{module}.ko", f"{kname}.ko")
                for line in Path(t, "modules.builtin").read_text().splitlines()
            )
            for t in trees
        )
    )
    has_module = any(next(t.rglob(f"{n}.ko*"), None) for t in trees for n in {module, kname})
    got = verdict(check_id, module, proc.stdout)
    if loaded:
        assert f"@loaded {kname} " in proc.stdout
        assert got is Status.FAIL
    elif builtin:
        assert "@listed " in proc.stdout
        assert got is Status.FAIL
    elif not has_module:
        assert "@module-file none" in proc.stdout
        assert got is Status.PASS
    else:  # a module file: the verdict is the modprobe.d policy's
        rule = parse_module_probe(proc.stdout).install_rule
        assert got is (Status.PASS if rule in ("/bin/false", "/bin/true") else Status.FAIL)


def test_real_probe_reads_module_tree_and_install_rules(tmp_path):
    """The no-modprobe branch on real files: the probe's paths moved under tmp_path."""
    module = KernelModule("usb-storage")
    release = os.uname().release
    cmd = module_probe(module).render({})
    for d in ("/lib/modules/", "/usr/lib/modules/"):
        cmd = cmd.replace(f'"{d}$k"', f'"{tmp_path}{d}$k"')
    for glob in MODPROBE_D_GLOBS:
        cmd = cmd.replace(glob, f"{tmp_path}{glob}")
    assert str(tmp_path) in cmd and " /etc/modprobe.d" not in cmd

    def run() -> Status:
        proc = _run_probe_without_modprobe(module, tmp_path, command=cmd)
        assert proc.returncode == 0, proc.stderr
        return verdict("kernel.usb_storage_module_disabled", "usb-storage", proc.stdout)

    if "@listed" in _run_probe_without_modprobe(module, tmp_path).stdout:
        pytest.skip("usb-storage is built into or loaded in this machine's kernel")
    assert run() is Status.PASS  # no module file at all
    ko = tmp_path / f"lib/modules/{release}/kernel/drivers/usb/storage/usb-storage.ko.xz"
    ko.parent.mkdir(parents=True)
    ko.write_bytes(b"")
    assert run() is Status.FAIL  # a module file and no rule
    conf = tmp_path / "etc/modprobe.d"
    conf.mkdir(parents=True)
    (conf / "other.conf").write_text("install usb_storagex /bin/false\n# install usb-storage /bin/false\n")
    assert run() is Status.FAIL  # another module's rule, a comment
    (conf / "usb.conf").write_text("blacklist usb-storage\ninstall  usb_storage   /bin/false\n")
    assert run() is Status.PASS  # kernel spelling, extra blanks
