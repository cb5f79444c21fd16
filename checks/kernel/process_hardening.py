"""Kernel process hardening (CIS section 1.5): ASLR, ptrace scope, dmesg access, core dumps of setuid programs.

Running values come from the shared /proc/sys probe; the core dump check also reads
the pam_limits files, because a hard ``core 0`` limit is what stops ordinary programs
from dumping core too.
"""

from __future__ import annotations

from itops.checkapi import Facts, Finding, Params, Probe, Severity, Status, host_check
from itops.checklib import sysctl
from itops.checklib.storage import file_dump_command, parse_file_dump
from itops.checklib.sysctl import Expect

PROC_SYS = sysctl.proc_sys_probe()
LIMITS = Probe("limits_files", file_dump_command(globs=sysctl.LIMITS_GLOBS))


def _fix(conf: str, setting: str) -> str:
    return (
        f"Remove conflicting settings of {setting.split()[0]} from /etc/sysctl.conf and /etc/sysctl.d/*.conf, "
        f"then run: printf '%s\\n' '{setting}' > /etc/sysctl.d/{conf} && sysctl --system"
    )


@host_check(
    id="kernel.aslr_enabled",
    fix={"sysctl": {"kernel.randomize_va_space": "2"}},
    title="Address space layout randomization is fully enabled",
    severity=Severity.HIGH,
    rationale=(
        "Full ASLR (2) randomizes stack, mmap, VDSO and heap addresses, so memory-corruption exploits "
        "cannot rely on fixed addresses."
    ),
    remediation=_fix("60-itops-aslr.conf", "kernel.randomize_va_space = 2"),
    frameworks={"cis-debian-12": ["1.5.1"], "nist-800-53": ["SI-16"], "iso-27001": ["A.8.7", "A.8.9"]},
    probes=[PROC_SYS],
)
def aslr_enabled(facts: Facts, params: Params) -> Finding:
    """Verifies kernel.randomize_va_space is 2."""
    return sysctl.judge_proc_sys(facts, [Expect("kernel.randomize_va_space", ("2",))])


@host_check(
    id="kernel.ptrace_scope_restricted",
    fix={"sysctl": {"kernel.yama.ptrace_scope": "1"}},
    title="ptrace is restricted to descendants or administrators (Yama)",
    severity=Severity.MEDIUM,
    rationale=(
        "With ptrace_scope 0 any process can attach to every other process of the same user and read its "
        "memory (SSH agent keys, browser sessions). 1 limits it to descendants, 2 to CAP_SYS_PTRACE, 3 off."
    ),
    remediation=_fix("60-itops-ptrace.conf", "kernel.yama.ptrace_scope = 1"),
    frameworks={"cis-debian-12": ["1.5.2"], "nist-800-53": ["AC-6", "CM-6"], "iso-27001": ["A.8.9"]},
    probes=[PROC_SYS],
)
def ptrace_scope_restricted(facts: Facts, params: Params) -> Finding:
    """Verifies kernel.yama.ptrace_scope is 1, 2 or 3.

    A kernel without the Yama LSM has no ptrace_scope: ptrace is then unrestricted, so that is a
    FAIL, not an ERROR, provided the probe could read /proc/sys at all (ASLR's key is there).
    """
    r = facts.get(PROC_SYS.name)
    if r is not None and r.ok:
        readings = facts.parsed(PROC_SYS, sysctl.proc_sys_readings)
        yama = readings.get("kernel.yama.ptrace_scope")
        aslr = readings.get("kernel.randomize_va_space")
        if yama is not None and yama.state == "absent" and aslr is not None and aslr.state == "ok":
            return Finding.failed(
                "the kernel has no Yama LSM (kernel.yama.ptrace_scope absent): ptrace is not restricted",
                observed="kernel.yama.ptrace_scope absent",
                expected="kernel.yama.ptrace_scope in 1, 2, 3",
            )
    return sysctl.judge_proc_sys(facts, [Expect("kernel.yama.ptrace_scope", ("1", "2", "3"))])


@host_check(
    id="kernel.dmesg_restricted",
    fix={"sysctl": {"kernel.dmesg_restrict": "1"}},
    title="The kernel log (dmesg) is readable by privileged users only",
    severity=Severity.LOW,
    rationale=(
        "The kernel ring buffer holds kernel addresses and hardware details that help an unprivileged "
        "attacker defeat KASLR and target exploits."
    ),
    remediation=_fix("60-itops-dmesg.conf", "kernel.dmesg_restrict = 1"),
    frameworks={"nist-800-53": ["AC-6", "SI-11"], "iso-27001": ["A.8.9", "A.8.3"]},
    probes=[PROC_SYS],
)
def dmesg_restricted(facts: Facts, params: Params) -> Finding:
    """Verifies kernel.dmesg_restrict is 1."""
    return sysctl.judge_proc_sys(facts, [Expect("kernel.dmesg_restrict", ("1",))])


@host_check(
    id="kernel.suid_core_dumps_disabled",
    fix={
        "sysctl": {"fs.suid_dumpable": "0"},
        "sh": "itops_set_line /etc/security/limits.d/60-itops-core.conf '*' ' ' 'hard core 0' || return 1",
    },
    title="Core dumps are restricted (no setuid dumps, hard core limit 0)",
    severity=Severity.MEDIUM,
    rationale=(
        "A core dump holds the process memory: passwords, keys and session tokens. fs.suid_dumpable 0 "
        "stops setuid programs from dumping, and a hard `core 0` limit stops users from enabling dumps."
    ),
    remediation=(
        "Remove conflicting fs.suid_dumpable settings from /etc/sysctl.conf and /etc/sysctl.d/*.conf, then run: "
        "printf '%s\\n' 'fs.suid_dumpable = 0' > /etc/sysctl.d/60-itops-coredump.conf && sysctl --system && "
        "printf '%s\\n' '* hard core 0' > /etc/security/limits.d/60-itops-coredump.conf"
    ),
    frameworks={"cis-debian-12": ["1.5.3"], "nist-800-53": ["CM-6", "SC-28"], "iso-27001": ["A.8.9", "A.8.12"]},
    probes=[PROC_SYS, LIMITS],
)
def suid_core_dumps_disabled(facts: Facts, params: Params) -> Finding:
    """Verifies fs.suid_dumpable is 0 and the last `* hard core` limit in limits.conf / limits.d is 0."""
    kernel = sysctl.judge_proc_sys(facts, [Expect("fs.suid_dumpable", ("0",))])
    limits = facts.get(LIMITS.name)
    if limits is None or not limits.ok:
        why = limits.problem() if limits is not None else "the limits probe did not run"
        if kernel.status is Status.FAIL:
            return Finding.failed(f"{kernel.message}; limits files could not be read ({why})", observed=kernel.observed)
        return Finding.error(f"could not assess the core limit: {why}")
    dump = parse_file_dump(limits.text)
    entry = sysctl.hard_core_limit(list(dump.files.items()))
    problems: list[str] = []
    if kernel.status is Status.FAIL:
        problems.append(kernel.message)
    if entry is None:
        if dump.unreadable:
            if not problems:
                return Finding.error(f"could not assess: unreadable limits file(s) {', '.join(dump.unreadable)}")
        else:
            problems.append("no '* hard core 0' entry in /etc/security/limits.conf or /etc/security/limits.d/")
    elif entry[0] != "0":
        problems.append(f"hard core limit is {entry[0]} ({entry[1]})")
    observed = "; ".join(x for x in (kernel.observed, entry[1] if entry else "") if x)
    if problems:
        return Finding.failed("; ".join(problems), observed=observed, expected="fs.suid_dumpable=0; * hard core 0")
    if kernel.status is not Status.PASS:
        return kernel
    return Finding.passed(f"fs.suid_dumpable=0 and {entry[1] if entry else ''}", observed=observed)
