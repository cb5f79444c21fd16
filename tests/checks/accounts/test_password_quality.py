"""checks/accounts/password_quality.py and itops.checklib.pam on canned file dumps, and its probe on real files."""

from __future__ import annotations

import subprocess

import pytest
from helpers import RHEL_9, make_facts, not_found, overall, registry, run_check

from itops.checklib.pam import effective_pwquality, find_module, parse_pam_stack, pwquality_file_order
from itops.checklib.storage import FILE_MARK, UNREADABLE_MARK
from itops.model import Status

CID = "accounts.password_quality_enforced"
COMMON_PASSWORD = """\
# here are the per-package modules (the "Primary" block)
password\trequisite\t\t\tpam_pwquality.so retry=3
password\t[success=1 default=ignore]\tpam_unix.so obscure use_authtok try_first_pass yescrypt
password\trequisite\t\t\tpam_deny.so
password\trequired\t\t\tpam_permit.so
"""
DEBIAN_DEFAULT = COMMON_PASSWORD.replace("password\trequisite\t\t\tpam_pwquality.so retry=3\n", "").replace(
    " use_authtok try_first_pass", ""
)
CONF = "# minlen = 8\nminlen = 14\n"
SYSTEM_AUTH = """\
auth        required      pam_env.so
password    requisite     pam_pwquality.so local_users_only
password    sufficient    pam_unix.so sha512 shadow use_authtok
password    required      pam_deny.so
"""


def dump(files: dict[str, str], unreadable=()) -> str:
    out = "".join(f"{FILE_MARK}{p}\n{t}\n" for p, t in files.items())
    return out + "".join(f"{UNREADABLE_MARK}{p}\n" for p in unreadable)


def check(files, unreadable=(), os_release=None, **variables):
    facts = make_facts({"pwquality_files": (0, dump(files, unreadable))}, os_release=os_release)
    return run_check(CID, facts, **variables)


def good(**extra):
    return {"/etc/pam.d/common-password": COMMON_PASSWORD, "/etc/security/pwquality.conf": CONF, **extra}


# --------------------------------------------------------------------------- parsing


def test_parse_pam_stack_controls_paths_and_continuations():
    text = (
        "# comment\n@include common-auth\n-password optional /lib/security/pam_gnome_keyring.so\n"
        "password [success=1 default=ignore] pam_unix.so obscure \\\n  yescrypt # trailing\n"
        "Password requisite /usr/lib/x86_64-linux-gnu/security/pam_pwquality.so minlen=15\nbroken\n"
    )
    lines = parse_pam_stack(text)
    assert [(ln.line, ln.type, ln.control, ln.module_name) for ln in lines] == [
        (3, "password", "optional", "pam_gnome_keyring.so"),
        (4, "password", "[success=1 default=ignore]", "pam_unix.so"),
        (6, "password", "requisite", "pam_pwquality.so"),
    ]
    assert lines[1].args == ("obscure", "yescrypt")
    pwq = find_module(lines, "pam_pwquality.so", "password")
    assert pwq is not None and pwq.args == ("minlen=15",)


def test_pwquality_reads_dropins_first_then_the_main_file():
    order = pwquality_file_order(
        [
            "/etc/security/pwquality.conf",
            "/etc/security/pwquality.conf.d/50-b.conf",
            "/etc/security/pwquality.conf.d/10-a.conf",
            "/etc/security/pwquality.conf.d/x.conf.conf",
        ]
    )
    assert order == [
        "/etc/security/pwquality.conf.d/10-a.conf",
        "/etc/security/pwquality.conf.d/50-b.conf",
        "/etc/security/pwquality.conf",
    ]


@pytest.mark.parametrize(
    ("files", "args", "minlen", "source"),
    [
        ([], (), 8, "libpwquality default"),
        ([("/etc/security/pwquality.conf", "minlen = 14\n")], (), 14, "/etc/security/pwquality.conf:1"),
        ([("/etc/security/pwquality.conf", "MINLEN 15 # comment\n")], (), 15, "/etc/security/pwquality.conf:1"),
        ([("/etc/security/pwquality.conf", "minlen=14\n")], (), 8, "libpwquality default"),  # "minlen=14": unknown
        ([("/etc/security/pwquality.conf", "minlen = 4\n")], (), 6, "/etc/security/pwquality.conf:1"),
        # the main file overrides a drop-in
        (
            [
                ("/etc/security/pwquality.conf.d/50-x.conf", "minlen = 8\n"),
                ("/etc/security/pwquality.conf", "minlen = 14\n"),
            ],
            (),
            14,
            "/etc/security/pwquality.conf:1",
        ),
        (
            [
                ("/etc/security/pwquality.conf.d/50-x.conf", "minlen = 8\n"),
                ("/etc/security/pwquality.conf", "# minlen = 14\n"),
            ],
            (),
            8,
            "/etc/security/pwquality.conf.d/50-x.conf:1",
        ),
        # a rejected line stops all reading, the main file included
        (
            [
                ("/etc/security/pwquality.conf.d/50-x.conf", "minlen = short\n"),
                ("/etc/security/pwquality.conf", "minlen = 14\n"),
            ],
            (),
            8,
            "libpwquality default",
        ),
        ([("/etc/security/pwquality.conf", "minlen = 14\n")], ("retry=3", "minlen=9"), 9, "argument"),
        ([("/etc/security/pwquality.conf", "minlen = 14\n")], ("minlen=bad",), 14, "pwquality.conf:1"),
    ],
)
def test_effective_minlen(files, args, minlen, source):
    line = parse_pam_stack("password requisite pam_pwquality.so " + " ".join(args))[0]
    eff = effective_pwquality(files, line, "/etc/pam.d/common-password")
    assert eff.minlen.value == minlen and source in eff.minlen.source


# --------------------------------------------------------------------------- the check


def test_pass_with_module_in_stack_and_minlen_14():
    findings = check(good())
    assert [f.status for f in findings] == [Status.PASS], findings
    assert "minlen 14 (/etc/security/pwquality.conf:2)" in findings[0].message


def test_pass_with_longer_minlen_in_a_dropin():
    findings = check(
        good(
            **{
                "/etc/security/pwquality.conf": "# all defaults\n",
                "/etc/security/pwquality.conf.d/60-cis.conf": "minlen = 16\n",
            }
        )
    )
    assert [f.status for f in findings] == [Status.PASS]


def test_fail_when_module_missing_from_stack():
    [f] = check({"/etc/pam.d/common-password": DEBIAN_DEFAULT})
    assert f.status is Status.FAIL and "libpam-pwquality not installed" in f.message


@pytest.mark.parametrize(
    ("files", "why"),
    [
        (good(**{"/etc/security/pwquality.conf": "minlen = 8\n"}), "effective minlen is 8"),
        ({"/etc/pam.d/common-password": COMMON_PASSWORD}, "effective minlen is 8 (libpwquality default)"),
        (
            good(**{"/etc/pam.d/common-password": COMMON_PASSWORD.replace("retry=3", "retry=3 minlen=8")}),
            "effective minlen is 8 (pam_pwquality.so argument",
        ),
        (good(**{"/etc/security/pwquality.conf": "minlen = 14\nenforcing = 0\n"}), "enforcing = 0"),
        (good(**{"/etc/pam.d/common-password": COMMON_PASSWORD.replace("retry=3", "enforcing=0")}), "enforcing = 0"),
        (
            good(
                **{"/etc/pam.d/common-password": COMMON_PASSWORD.replace("requisite\t\t\tpam_pwq", "optional pam_pwq")}
            ),
            "optional",
        ),
        (good(**{"/etc/security/pwquality.conf": "minlen=14\n"}), "stops reading"),
    ],
)
def test_fail_says_why(files, why):
    findings = check(files)
    assert overall(findings) is Status.FAIL and why in findings[0].message, findings


def test_min_password_length_param():
    assert overall(check(good(), min_password_length=16)) is Status.FAIL


def test_rhel_needs_both_stacks():
    files = {
        "/etc/pam.d/system-auth": SYSTEM_AUTH,
        "/etc/pam.d/password-auth": SYSTEM_AUTH.replace("pam_pwq", "#"),
        "/etc/security/pwquality.conf": "minlen = 14\n",
    }
    findings = check(files, os_release=RHEL_9)
    assert [(f.status, f.resource) for f in findings] == [
        (Status.PASS, "/etc/pam.d/system-auth"),
        (Status.FAIL, "/etc/pam.d/password-auth"),
    ]


@pytest.mark.parametrize(
    "unreadable",
    [
        "/etc/pam.d/common-password",
        "/etc/security/pwquality.conf",
        "/etc/security/pwquality.conf.d",
        "/etc/security/pwquality.conf.d/10-site.conf",
    ],
)
def test_unreadable_file_is_error_never_pass(unreadable):
    files = {k: v for k, v in good().items() if k != unreadable}
    findings = check(files, unreadable=(unreadable,))
    assert overall(findings) is Status.ERROR and unreadable in findings[0].message


def test_probe_failure_is_error():
    assert overall(run_check(CID, make_facts({"pwquality_files": not_found("sh")}))) is Status.ERROR


def test_skipped_outside_debian_rhel_suse():
    check_meta = registry().get(CID).meta
    assert set(check_meta.os_families) == {"debian", "rhel", "suse"}


def test_probe_on_real_files(tmp_path):
    """The probe's own shell over a copy of the layout; the drop-in directory is globbed."""
    (tmp_path / "etc/pam.d").mkdir(parents=True)
    (tmp_path / "etc/security/pwquality.conf.d").mkdir(parents=True)
    (tmp_path / "etc/pam.d/common-password").write_text(COMMON_PASSWORD)
    (tmp_path / "etc/security/pwquality.conf").write_text("# minlen = 8\n")
    (tmp_path / "etc/security/pwquality.conf.d/50-site.conf").write_text("minlen = 12\n")
    [probe] = registry().get(CID).probes
    command = probe.render({}).replace("/etc/", f"{tmp_path}/etc/")
    out = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=30, check=True).stdout
    findings = run_check(CID, make_facts({"pwquality_files": (0, out.replace(f"{tmp_path}/etc/", "/etc/"))}))
    assert [f.status for f in findings] == [Status.FAIL]
    assert "effective minlen is 12 (/etc/security/pwquality.conf.d/50-site.conf:1)" in findings[0].message
