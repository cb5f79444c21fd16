"""checks/kernel/process_hardening.py on canned /proc/sys and limits.conf probe output."""

from __future__ import annotations

import pytest
from helpers import make_facts, not_found, overall, run_check, timed_out
from kernel_canned import PROC_SYS, facts, proc_sys

from itops.checklib.sysctl import ABSENT, UNREADABLE
from itops.model import Status

# check id, overrides that make it FAIL, the key it reads
CASES = [
    ("kernel.aslr_enabled", {"kernel.randomize_va_space": "1"}, "kernel.randomize_va_space"),
    ("kernel.ptrace_scope_restricted", {"kernel.yama.ptrace_scope": "0"}, "kernel.yama.ptrace_scope"),
    ("kernel.dmesg_restricted", {"kernel.dmesg_restrict": "0"}, "kernel.dmesg_restrict"),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize(("check_id", "bad", "key"), CASES, ids=IDS)
def test_pass_on_hardened_values(check_id, bad, key):
    assert [f.status for f in run_check(check_id, facts())] == [Status.PASS]


@pytest.mark.parametrize(("check_id", "bad", "key"), CASES, ids=IDS)
def test_fail_on_weak_value(check_id, bad, key):
    findings = run_check(check_id, facts(proc_sys(bad)))
    assert overall(findings) is Status.FAIL
    assert key in findings[0].message


@pytest.mark.parametrize(("check_id", "bad", "key"), CASES, ids=IDS)
def test_error_on_unreadable_garbage_or_broken_probe(check_id, bad, key):
    assert overall(run_check(check_id, facts(proc_sys({key: UNREADABLE})))) is Status.ERROR
    assert overall(run_check(check_id, facts(proc_sys({key: None})))) is Status.ERROR
    assert overall(run_check(check_id, facts("<html>oops</html>\n"))) is Status.ERROR
    assert overall(run_check(check_id, make_facts({PROC_SYS: timed_out()}))) is Status.ERROR
    assert overall(run_check(check_id, make_facts({PROC_SYS: not_found("sh")}))) is Status.ERROR


def test_ptrace_scope_accepts_stricter_modes():
    for value in ("2", "3"):
        findings = run_check("kernel.ptrace_scope_restricted", facts(proc_sys({"kernel.yama.ptrace_scope": value})))
        assert overall(findings) is Status.PASS


def test_kernel_without_yama_fails_because_ptrace_is_unrestricted():
    # a kernel without Yama has no ptrace_scope file while the rest of /proc/sys reads fine
    findings = run_check("kernel.ptrace_scope_restricted", facts(proc_sys({"kernel.yama.ptrace_scope": ABSENT})))
    assert overall(findings) is Status.FAIL
    assert "no Yama" in findings[0].message


def test_absent_key_with_unreadable_proc_sys_is_error_not_pass():
    text = "/proc/sys/kernel/randomize_va_space=<absent>\n/proc/sys/kernel/yama/ptrace_scope=<absent>\n"
    findings = run_check("kernel.ptrace_scope_restricted", facts(text))
    assert overall(findings) is Status.ERROR
    assert "does not exist" in findings[0].message


# --- kernel.suid_core_dumps_disabled -----------------------------------------------------------

LIMITS = "limits_files"


def limits(*files: tuple[str, str], unreadable: tuple[str, ...] = ()) -> str:
    out = [f"@@itops-unreadable {p}" for p in unreadable]
    for path, text in files:
        out += [f"@@itops-file {path}", text, ""]
    return "\n".join(out) + "\n"


def core_facts(sysctl_text: str | None = None, limits_text: str | None = None, limits_rc: int = 0):
    return make_facts(
        {
            PROC_SYS: (0, proc_sys() if sysctl_text is None else sysctl_text),
            LIMITS: (
                limits_rc,
                limits(("/etc/security/limits.conf", "*   hard   core   0")) if limits_text is None else limits_text,
            ),
        }
    )


def test_core_dumps_pass():
    findings = run_check("kernel.suid_core_dumps_disabled", core_facts())
    assert overall(findings) is Status.PASS, findings


def test_core_dumps_pass_with_dash_type_in_dropin():
    text = limits(("/etc/security/limits.conf", "# nothing\n"), ("/etc/security/limits.d/10-core.conf", "* - core 0"))
    assert overall(run_check("kernel.suid_core_dumps_disabled", core_facts(limits_text=text))) is Status.PASS


def test_core_dumps_fail_on_suid_dumpable():
    findings = run_check("kernel.suid_core_dumps_disabled", core_facts(proc_sys({"fs.suid_dumpable": "2"})))
    assert overall(findings) is Status.FAIL
    assert "fs.suid_dumpable=2" in findings[0].message


def test_core_dumps_fail_without_hard_limit():
    text = limits(("/etc/security/limits.conf", "#*  hard core 0\n*  soft core 0"))
    findings = run_check("kernel.suid_core_dumps_disabled", core_facts(limits_text=text))
    assert overall(findings) is Status.FAIL
    assert "hard core 0" in findings[0].message


def test_core_dumps_fail_when_later_dropin_raises_limit():
    text = limits(
        ("/etc/security/limits.conf", "* hard core 0"), ("/etc/security/limits.d/90-dev.conf", "* hard core unlimited")
    )
    findings = run_check("kernel.suid_core_dumps_disabled", core_facts(limits_text=text))
    assert overall(findings) is Status.FAIL
    assert "unlimited" in findings[0].message


def test_core_dumps_error_when_limits_unreadable_or_probe_broken():
    text = limits(unreadable=("/etc/security/limits.conf",))
    assert overall(run_check("kernel.suid_core_dumps_disabled", core_facts(limits_text=text))) is Status.ERROR
    assert (
        overall(run_check("kernel.suid_core_dumps_disabled", core_facts(limits_rc=127, limits_text=""))) is Status.ERROR
    )
    assert overall(run_check("kernel.suid_core_dumps_disabled", core_facts("garbage"))) is Status.ERROR
