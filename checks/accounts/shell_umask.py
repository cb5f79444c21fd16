"""The umask login shells set: what mode the files users create get by default.

/etc/profile (and the /etc/profile.d/*.sh it sources) and /etc/bash.bashrc (/etc/bashrc on
RHEL) run for every login shell, after pam_umask applied UMASK from /etc/login.defs; a
``umask 002`` there overrides that default for everyone.
"""

from __future__ import annotations

from itops.checkapi import Facts, Finding, Params, Probe, Severity, host_check
from itops.checklib.accounts import read_probe
from itops.checklib.common import format_mode
from itops.checklib.storage import file_dump_command, parse_file_dump
from itops.checklib.umask import find_umask_commands, umask_loosened_bits

SHELL_START_FILES = ("/etc/profile", "/etc/bash.bashrc", "/etc/bashrc")
SHELL_START_GLOBS = ("/etc/profile.d/*.sh",)
SHELL_START_DUMP = Probe(
    "shell_start_files", file_dump_command(SHELL_START_FILES, SHELL_START_GLOBS, unlistable_dirs=True)
)
_REQUIRED = 0o027
_BIT_NAMES = ((0o020, "group write"), (0o004, "others read"), (0o002, "others write"), (0o001, "others execute"))


@host_check(
    id="accounts.shell_umask_restrictive",
    title="No umask in /etc/profile, /etc/profile.d/*.sh, /etc/bash.bashrc or /etc/bashrc is weaker than 027",
    severity=Severity.MEDIUM,
    rationale="A umask set in the system-wide shell start-up files applies to every login shell and overrides "
    "the login.defs/pam_umask default: with `umask 002` or `022`, new files and directories are writable by "
    "the group or readable by everyone, so data and scripts users create are open to other accounts.",
    remediation="In each file listed, change the line to `umask 027` (or stricter, e.g. `077`) or delete it so "
    "the UMASK of /etc/login.defs applies (`UMASK 027` there, with `session optional pam_umask.so` in "
    "/etc/pam.d/common-session on Debian); users get the new mask at their next login.",
    frameworks={"cis-debian-12": ["5.4.3.3"], "nist-800-53": ["AC-3", "AC-6", "CM-6"], "iso-27001": ["A.8.3", "A.8.9"]},
    probes=[SHELL_START_DUMP],
    params={},
)
def shell_umask_restrictive(facts: Facts, params: Params) -> list[Finding]:
    """Every uncommented `umask VALUE` command in /etc/profile, /etc/profile.d/*.sh, /etc/bash.bashrc and
    /etc/bashrc keeps all bits of 027 set (so 027, 077, 0027 pass; 022, 002, 0 fail). Symbolic values are
    applied as the shell does (`u=rwx,g=rx,o=` is 027); a relative one that grants nothing (`o-rwx`) cannot
    loosen the mask and passes. A value that is not a mask (`umask $MASK`) is ERROR for that line.

    With no umask command at all the default comes from UMASK in /etc/login.defs via pam_umask, which
    accounts.login_defs_umask_restrictive checks.
    """
    res = read_probe(facts, SHELL_START_DUMP, "shell start-up files")
    if isinstance(res, Finding):
        return [res]
    dump = parse_file_dump(res.text)
    expected = f"umask {format_mode(_REQUIRED)[1:]} or stricter"
    findings = [
        Finding.error(f"could not assess: {path} is not readable (run as root or enable sudo)", resource=path)
        for path in dump.unreadable
    ]
    seen: list[str] = []
    for path, text in dump.files.items():
        for cmd in find_umask_commands(text):
            where = f"{path}:{cmd.line}"
            loosened = umask_loosened_bits(cmd.value, _REQUIRED)
            if loosened is None:
                findings.append(
                    Finding.error(
                        f"could not assess: {where}: `{cmd.text}` does not set a value itops can read (octal or "
                        "u=,g=,o= symbolic mode)",
                        observed=cmd.text,
                        expected=expected,
                        resource=where,
                    )
                )
            elif loosened:
                findings.append(
                    Finding.failed(
                        f"{where}: `{cmd.text}` lets new files and directories get "
                        f"{', '.join(name for bit, name in _BIT_NAMES if loosened & bit)} (expected {expected})",
                        observed=cmd.text,
                        expected=expected,
                        resource=where,
                    )
                )
            else:
                seen.append(f"{where} `{cmd.text}`")
    if findings:
        return findings
    if not seen:
        return [
            Finding.passed(
                f"no umask command in {', '.join([*SHELL_START_FILES, *SHELL_START_GLOBS])}; the default comes from "
                "UMASK in /etc/login.defs via pam_umask (checked by accounts.login_defs_umask_restrictive)",
                observed="none set",
                expected=expected,
            )
        ]
    return [
        Finding.passed(
            f"every umask in the shell start-up files is 027 or stricter: {'; '.join(seen)}",
            observed="; ".join(seen),
            expected=expected,
        )
    ]
