"""Rarely used file systems and USB storage cannot be loaded into the kernel (CIS 1.1.1.x).

One check per module, generated from ``MODULES`` below; the probe and the verdict are shared
(itops.checklib.kmod, whose docstring lists every verdict). cramfs (1.1.1.1) has its own
declarative check, checks/kernel/cramfs_module_disabled.yaml.

Blacklisting: CIS also asks for a ``blacklist MOD`` line. These checks, like the cramfs one, pass
on ``install MOD /bin/false`` alone and do not FAIL a missing blacklist line: the install rule
stops every load through modprobe (explicit or automatic by alias), while a blacklist line only
stops loading by alias, so it adds nothing once the install rule is there. The remediation
still writes both, as CIS does.
"""

from __future__ import annotations

from dataclasses import dataclass

from itops.checkapi import Check, Facts, Finding, Params, Severity, host_check
from itops.checklib.kmod import KernelModule, judge_module, module_probe

# CIS numbers: CIS Debian Linux 12 Benchmark v1.0.x "1.1.1 Configure Filesystem Kernel Modules"
# (cramfs 1.1.1.1 ... usb-storage 1.1.1.8), as its table of contents reads. Not verified against
# v1.1.0, which may number them differently (Ubuntu 24.04's benchmark inserts overlayfs at 1.1.1.6
# and puts squashfs, udf and usb-storage at 1.1.1.7-1.1.1.9).
_FS_RATIONALE = (
    "Kernel code for a rarely used file system is attack surface: a crafted {what} image on a USB "
    "stick, an optical disc or in a downloaded archive can reach bugs in a parser nobody on this host needs."
)


@dataclass(frozen=True)
class ModuleCheck:
    """One row of the table: the check id (literal, so it can be grepped), the module and its texts."""

    id: str
    module: KernelModule
    cis: str
    rationale: str
    nist: tuple[str, ...] = ("CM-7",)
    iso: tuple[str, ...] = ("A.8.9",)


MODULES = (
    ModuleCheck(
        "kernel.freevxfs_module_disabled",
        KernelModule("freevxfs", fs_type="vxfs"),
        "1.1.1.2",
        _FS_RATIONALE.format(what="Veritas (HP-UX) vxfs"),
    ),
    ModuleCheck(
        "kernel.hfs_module_disabled",
        KernelModule("hfs", fs_type="hfs"),
        "1.1.1.3",
        _FS_RATIONALE.format(what="classic Mac OS HFS"),
    ),
    ModuleCheck(
        "kernel.hfsplus_module_disabled",
        KernelModule("hfsplus", fs_type="hfsplus"),
        "1.1.1.4",
        _FS_RATIONALE.format(what="macOS HFS+"),
    ),
    ModuleCheck(
        "kernel.jffs2_module_disabled",
        KernelModule("jffs2", fs_type="jffs2"),
        "1.1.1.5",
        _FS_RATIONALE.format(what="JFFS2 flash"),
    ),
    ModuleCheck(
        "kernel.squashfs_module_disabled",
        KernelModule("squashfs", fs_type="squashfs"),
        "1.1.1.6",
        _FS_RATIONALE.format(what="squashfs")
        + " Snap packages (Ubuntu) and many live and container images are squashfs images: on such hosts "
        "the module is needed, which is why CIS makes this a Level 2 recommendation; waive it there.",
    ),
    ModuleCheck(
        "kernel.udf_module_disabled",
        KernelModule("udf", fs_type="udf"),
        "1.1.1.7",
        _FS_RATIONALE.format(what="UDF (DVD, Blu-ray)")
        + " Some clouds (Azure) deliver provisioning data on a UDF disc: waive it there.",
    ),
    ModuleCheck(
        "kernel.usb_storage_module_disabled",
        KernelModule("usb-storage"),
        "1.1.1.8",
        "A USB mass storage device plugged into a server is a way to carry data out and malware in, "
        "past every network control. Servers rarely need one; disabling the driver makes such "
        "devices unusable.",
        nist=("CM-7", "MP-7"),
        iso=("A.8.9", "A.7.10"),
    ),
)


def _remediation(name: str) -> str:
    return (
        f"printf '%s\\n' 'install {name} /bin/false' 'blacklist {name}' > /etc/modprobe.d/{name}.conf "
        f"&& {{ modprobe -r {name} 2>/dev/null || true; }} (a module built into the kernel needs a kernel "
        "built without it)"
    )


def _build(row: ModuleCheck) -> Check:
    module = row.module

    def evaluate(facts: Facts, params: Params) -> Finding:
        return judge_module(module, facts)

    evaluate.__doc__ = (
        f"Verifies the {module.name} kernel module is not loaded, not built into the running kernel, and "
        f"cannot be loaded: modprobe refuses it (install {module.name} /bin/false) or finds no module for it."
    )
    return host_check(
        id=row.id,
        title=f"The {module.name} kernel module cannot be loaded",
        severity=Severity.LOW,
        rationale=row.rationale,
        remediation=_remediation(module.name),
        fix={"modules": [module.name]},
        frameworks={"cis-debian-12": [row.cis], "nist-800-53": list(row.nist), "iso-27001": list(row.iso)},
        probes=[module_probe(module)],
    )(evaluate)


# The registry collects module-level checks; one global per row, named after the check id.
globals().update({row.id.partition(".")[2]: _build(row) for row in MODULES})
