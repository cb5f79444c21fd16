"""checks/software/packages_and_updates.py on canned apt/dnf/yum output, os-release and repo files."""

from __future__ import annotations

import pytest
from helpers import DEBIAN_12, RHEL_9, make_facts, not_found, overall, run_check, timed_out

from itops.model import Status

# --- software.security_updates_applied ------------------------------------------------------------

UPDATES = "software.security_updates_applied"
PROBE = "security_updates"

APT_HEADER = """@@itops-pm apt
@@itops-lists 4
NOTE: This is only a simulation!
      apt-get needs root privileges for real execution.
Reading package lists...
Building dependency tree...
Reading state information...
Calculating upgrade...
"""
APT_SECURITY = (
    APT_HEADER
    + """The following packages will be upgraded:
  libssl3 openssl tzdata
3 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.
Inst libssl3 [3.0.11-1~deb12u1] (3.0.11-1~deb12u2 Debian-Security:12/stable-security [amd64])
Inst openssl [3.0.11-1~deb12u1] (3.0.11-1~deb12u2 Debian-Security:12/stable-security [amd64])
Inst tzdata [2024a-0+deb12u1] (2025a-0+deb12u1 Debian:12.9/stable [all])
Conf libssl3 (3.0.11-1~deb12u2 Debian-Security:12/stable-security [amd64])
"""
)
APT_UBUNTU_SECURITY = (
    APT_HEADER
    + """1 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.
Inst libc6 [2.35-0ubuntu3.1] (2.35-0ubuntu3.4 Ubuntu:22.04/jammy-updates, Ubuntu:22.04/jammy-security [amd64])
"""
)
APT_ONLY_REGULAR = (
    APT_HEADER
    + """1 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.
Inst tzdata [2024a-0+deb12u1] (2025a-0+deb12u1 Debian:12.9/stable [all])
"""
)
APT_CLEAN = APT_HEADER + "0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n"
DNF_SECURITY = """@@itops-pm dnf
RHSA-2024:1234 Important/Sec. openssl-libs-1:3.0.7-25.el9_3.x86_64
RHSA-2024:2345 Moderate/Sec.  curl-7.76.1-29.el9_4.x86_64
"""
DNF5_SECURITY = """@@itops-pm dnf
Name                     Type     Severity Package                         Issued
FEDORA-2024-1a2b3c4d5e   security Moderate curl-8.6.0-7.fc40.x86_64        2024-05-01 01:02:03
"""
YUM_SECURITY = """@@itops-pm yum
RHSA-2020:5009 Important/Sec. python-2.7.5-90.el7.x86_64
updateinfo list done
"""


def updates(text: str, rc: int = 0, stderr: str = "", os_release=DEBIAN_12):
    return make_facts({PROBE: (rc, text, stderr)}, os_release=os_release)


@pytest.mark.parametrize(
    ("text", "os_release"),
    [
        (APT_CLEAN, DEBIAN_12),
        (APT_ONLY_REGULAR, DEBIAN_12),
        ("@@itops-pm dnf\n", RHEL_9),
        ("@@itops-pm yum\nupdateinfo list done\n", RHEL_9),
    ],
    ids=["apt-clean", "apt-regular-only", "dnf-none", "yum-none"],
)
def test_updates_pass(text, os_release):
    findings = run_check(UPDATES, updates(text, os_release=os_release))
    assert [f.status for f in findings] == [Status.PASS], findings


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (APT_SECURITY, ["libssl3 (3.0.11-1~deb12u2)", "openssl"]),
        (APT_UBUNTU_SECURITY, ["libc6"]),
        (DNF_SECURITY, ["RHSA-2024:1234 openssl-libs", "RHSA-2024:2345 curl"]),
        (DNF5_SECURITY, ["FEDORA-2024-1a2b3c4d5e curl-8.6.0-7.fc40.x86_64"]),
        (YUM_SECURITY, ["RHSA-2020:5009 python"]),
    ],
    ids=["apt", "ubuntu", "dnf", "dnf5", "yum"],
)
def test_updates_fail_lists_packages(text, expected):
    findings = run_check(UPDATES, updates(text))
    assert overall(findings) is Status.FAIL
    for part in expected:
        assert part in findings[0].message
    assert "tzdata" not in findings[0].message


@pytest.mark.parametrize(
    ("text", "rc", "stderr"),
    [
        (APT_HEADER, 0, ""),  # no summary line: truncated or garbage
        ("E: Could not open lock file\n", 100, "E: Could not open lock file"),
        ("@@itops-pm dnf\nError: Failed to download metadata for repo 'baseos'\n", 1, ""),
        ("@@itops-pm dnf\nsomething unexpected here\n", 0, ""),
        ("@@itops-pm none\n", 127, ""),
        (APT_CLEAN.replace("@@itops-lists 4", "@@itops-lists 0"), 0, ""),
        ("", 0, ""),
    ],
    ids=["apt-no-summary", "apt-lock", "dnf-metadata", "dnf-garbage", "no-manager", "apt-no-lists", "empty"],
)
def test_updates_error(text, rc, stderr):
    assert overall(run_check(UPDATES, updates(text, rc, stderr))) is Status.ERROR


def test_updates_probe_timeout_is_error():
    assert overall(run_check(UPDATES, make_facts({PROBE: timed_out()}))) is Status.ERROR


def test_updates_metadata():
    from helpers import registry

    check = registry().get(UPDATES)
    assert check.meta.os_families == ("debian", "rhel")
    assert "dist-upgrade" in check.probes[0].render({})


# --- software.os_release_supported -----------------------------------------------------------------

EOL = "software.os_release_supported"


def eol(os_release, **params):
    return run_check(EOL, make_facts({}, os_release=os_release), **params)


def test_eol_pass_supported_release():
    findings = eol(DEBIAN_12, os_eol_today="2025-01-01")
    assert [f.status for f in findings] == [Status.PASS]
    assert "2028-06-30" in findings[0].message


def test_eol_fail_past_end_of_life():
    findings = eol({"ID": "debian", "VERSION_ID": "10"}, os_eol_today="2024-07-01")
    assert overall(findings) is Status.FAIL
    assert "2024-06-30" in findings[0].message
    # the last day of support still passes
    assert overall(eol({"ID": "debian", "VERSION_ID": "10"}, os_eol_today="2024-06-30")) is Status.PASS


def test_eol_rhel_minor_versions_map_to_major():
    assert overall(eol(RHEL_9, os_eol_today="2030-01-01")) is Status.PASS
    assert overall(eol({"ID": "rhel", "VERSION_ID": "7.9"}, os_eol_today="2025-01-01")) is Status.FAIL


def test_eol_extended_support_counts_only_when_asked():
    focal = {"ID": "ubuntu", "VERSION_ID": "20.04", "PRETTY_NAME": "Ubuntu 20.04.6 LTS"}
    findings = eol(focal, os_eol_today="2026-01-01")
    assert overall(findings) is Status.FAIL
    assert "extended support runs to 2030-04-02" in findings[0].message
    assert overall(eol(focal, os_eol_today="2026-01-01", os_eol_include_extended_support=True)) is Status.PASS


def test_eol_unknown_release_is_error_not_pass():
    findings = eol({"ID": "debian", "PRETTY_NAME": "Debian GNU/Linux trixie/sid"}, os_eol_today="2025-01-01")
    assert overall(findings) is Status.ERROR
    assert "unknown release" in findings[0].message
    assert overall(eol({"ID": "sles", "VERSION_ID": "15.5"}, os_eol_today="2025-01-01")) is Status.ERROR


def test_eol_overrides_var_covers_unknown_release():
    params = {"os_eol_today": "2025-01-01", "os_eol_overrides": {"sles 15": "2031-07-31"}}
    assert overall(eol({"ID": "sles", "VERSION_ID": "15.5"}, **params)) is Status.PASS
    params["os_eol_overrides"] = {"sles 15": "not a date"}
    assert overall(eol({"ID": "sles", "VERSION_ID": "15.5"}, **params)) is Status.ERROR


def test_eol_today_defaults_to_real_date_and_rejects_garbage():
    assert overall(eol({"ID": "debian", "VERSION_ID": "8"})) is Status.FAIL  # long past
    findings = eol(DEBIAN_12, os_eol_today="tomorrow")
    assert overall(findings) is Status.ERROR
    assert "os_eol_today" in findings[0].message


def test_eol_reads_probe_when_facts_have_no_os():
    text = 'PRETTY_NAME="Debian GNU/Linux 11 (bullseye)"\nID=debian\nVERSION_ID="11"\n'
    facts = make_facts({"os_release": (0, text)}, os_release={})
    assert overall(run_check(EOL, facts, os_eol_today="2026-09-01")) is Status.FAIL
    facts = make_facts({"os_release": (1, "", "cat: /usr/lib/os-release: No such file or directory")}, os_release={})
    assert overall(run_check(EOL, facts)) is Status.ERROR
    facts = make_facts({"os_release": (0, "garbage without equals\n")}, os_release={})
    assert overall(run_check(EOL, facts)) is Status.ERROR


# --- software.package_manager_gpgcheck_enabled -----------------------------------------------------

GPG = "software.package_manager_gpgcheck_enabled"
REPO = "package_repo_config"

DNF_CONF = "[main]\ngpgcheck=1\ninstallonly_limit=3\nclean_requirements_on_remove=True\n"
BASEOS = "[baseos]\nname=BaseOS\nbaseurl=https://cdn.redhat.com/baseos\nenabled=1\ngpgcheck=1\n"
DEB822 = (
    "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\n"
    "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
)


def dump(files: dict[str, str], unreadable: tuple[str, ...] = ()) -> str:
    out = [f"@@itops-unreadable {p}" for p in unreadable]
    for path, text in files.items():
        out += [f"@@itops-file {path}", text, ""]
    return "\n".join(out) + "\n"


def gpg(files: dict[str, str], os_release=RHEL_9, unreadable: tuple[str, ...] = (), rc: int = 0):
    return run_check(GPG, make_facts({REPO: (rc, dump(files, unreadable))}, os_release=os_release))


def test_gpg_rhel_pass():
    files = {
        "/etc/dnf/dnf.conf": DNF_CONF,
        "/etc/yum.repos.d/redhat.repo": BASEOS,
        "/etc/yum.repos.d/epel.repo": "[epel-debug]\nenabled=0\ngpgcheck=0\n",
    }  # disabled repo ignored
    assert [f.status for f in gpg(files)] == [Status.PASS]


@pytest.mark.parametrize(
    ("files", "needle"),
    [
        ({"/etc/dnf/dnf.conf": "[main]\ngpgcheck=0\n"}, "[main] gpgcheck=0"),
        ({"/etc/dnf/dnf.conf": "[main]\ninstallonly_limit=3\n"}, "not set"),
        (
            {"/etc/dnf/dnf.conf": DNF_CONF, "/etc/yum.repos.d/x.repo": "[x]\nbaseurl=http://x\ngpgcheck=no\n"},
            "/etc/yum.repos.d/x.repo [x] gpgcheck=no",
        ),
        ({"/etc/yum.repos.d/x.repo": BASEOS}, "neither /etc/dnf/dnf.conf nor /etc/yum.conf"),
    ],
    ids=["main-off", "main-unset", "repo-off", "no-main-conf"],
)
def test_gpg_rhel_fail(files, needle):
    findings = gpg(files)
    assert overall(findings) is Status.FAIL
    assert needle in findings[0].message


def test_gpg_debian_pass():
    files = {
        "/etc/apt/sources.list.d/debian.sources": DEB822,
        "/etc/apt/apt.conf.d/70debconf": '// Pre-configure all packages\nDPkg::Pre-Install-Pkgs {"x";};\n',
    }
    assert [f.status for f in gpg(files, DEBIAN_12)] == [Status.PASS]


@pytest.mark.parametrize(
    ("files", "needle"),
    [
        ({"/etc/apt/sources.list": "deb [arch=amd64 trusted=yes] http://repo.example/ stable main\n"}, "trusted=yes"),
        ({"/etc/apt/sources.list.d/x.sources": DEB822 + "Trusted: yes\n"}, "Trusted: yes"),
        (
            {
                "/etc/apt/sources.list.d/debian.sources": DEB822,
                "/etc/apt/apt.conf.d/99insecure": 'APT::Get::AllowUnauthenticated "true";\n',
            },
            "AllowUnauthenticated",
        ),
        (
            {
                "/etc/apt/sources.list.d/debian.sources": DEB822,
                "/etc/apt/apt.conf": 'Acquire { AllowInsecureRepositories "1"; };\n',
            },
            "AllowInsecureRepositories",
        ),
    ],
    ids=["trusted-option", "deb822-trusted", "allow-unauthenticated", "insecure-repos"],
)
def test_gpg_debian_fail(files, needle):
    findings = gpg(files, DEBIAN_12)
    assert overall(findings) is Status.FAIL
    assert needle in findings[0].message


def test_gpg_commented_settings_are_ignored():
    files = {
        "/etc/apt/sources.list": (
            "# deb [trusted=yes] http://old/ stable main\ndeb http://deb.debian.org/debian bookworm main\n"
        ),
        "/etc/apt/apt.conf.d/99x": '// APT::Get::AllowUnauthenticated "true";\n',
    }
    assert overall(gpg(files, DEBIAN_12)) is Status.PASS


def test_gpg_error_cases():
    assert overall(gpg({}, DEBIAN_12)) is Status.ERROR  # no apt source at all
    assert overall(gpg({}, DEBIAN_12, unreadable=("/etc/apt/sources.list",))) is Status.ERROR
    assert overall(gpg({}, RHEL_9, unreadable=("/etc/dnf/dnf.conf",))) is Status.ERROR
    assert (
        overall(gpg({"/etc/dnf/dnf.conf": DNF_CONF}, RHEL_9, unreadable=("/etc/yum.repos.d/a.repo",))) is Status.ERROR
    )
    assert overall(run_check(GPG, make_facts({REPO: not_found("sh")}))) is Status.ERROR
    assert overall(run_check(GPG, make_facts({REPO: timed_out()}))) is Status.ERROR


def test_gpg_other_family_skipped():
    alpine = {"ID": "alpine", "VERSION_ID": "3.20.1"}
    assert overall(gpg({}, alpine)) is Status.SKIPPED
