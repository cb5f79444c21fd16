"""SSH daemon authentication settings: who may log in, and how.

Every check reads the effective configuration (``sshd -T``, or the sshd_config files
with OpenSSH defaults when ``sshd -T`` cannot run) and also judges values set inside
conditional ``Match`` blocks; see itops.checklib.sshd.
"""

from __future__ import annotations

from collections.abc import Mapping

from itops.checkapi import Facts, Finding, Params, Severity, host_check
from itops.checklib.sshd import SSHD_PROBES, Setting
from itops.checklib.sshd_rules import (
    APPLY_SSHD_CHANGE,
    MATCH_PARAM,
    Verdict,
    basis,
    describe,
    evaluate_sshd,
    int_between,
    one_of,
    sshd_config_or_finding,
)


@host_check(
    id="ssh.root_login_disabled",
    fix={
        "risk": "high",
        "sshd": {"PermitRootLogin": "no"},
        "note": "it can lock out whoever logs in that way: make sure another way in works first",
    },
    title="SSH root login is disabled",
    severity=Severity.HIGH,
    rationale="Direct root logins bypass individual accountability and give an attacker who guesses or steals "
    "one credential full control; administrators should log in as themselves and escalate with sudo.",
    remediation="Set `PermitRootLogin no`." + APPLY_SSHD_CHANGE,
    frameworks={"cis-debian-12": ["5.1.20"], "nist-800-53": ["AC-6(2)", "AC-17"], "iso-27001": ["A.8.2", "A.8.5"]},
    probes=SSHD_PROBES,
    params={"ssh_permit_root_login_allowed": ["no"], **MATCH_PARAM},
)
def root_login_disabled(facts: Facts, params: Params) -> list[Finding]:
    """PermitRootLogin is one of the allowed values (default: only `no`)."""
    allowed = params["ssh_permit_root_login_allowed"]
    return evaluate_sshd(
        facts, params, ["permitrootlogin"], one_of("permitrootlogin", "PermitRootLogin", allowed), " or ".join(allowed)
    )


@host_check(
    id="ssh.password_auth_disabled",
    fix={
        "risk": "high",
        "sshd": {"PasswordAuthentication": "no", "KbdInteractiveAuthentication": "no"},
        "note": "it can lock out whoever logs in that way: make sure another way in works first",
    },
    title="SSH password authentication is disabled",
    severity=Severity.MEDIUM,
    rationale="Passwords can be guessed, sprayed and phished; key- or certificate-based authentication removes "
    "remote password guessing. Keyboard-interactive authentication through PAM asks for the same password, so "
    "it must be off as well unless PAM is set up for a second factor only.",
    remediation="Set `PasswordAuthentication no` and `KbdInteractiveAuthentication no`." + APPLY_SSHD_CHANGE,
    frameworks={"nist-800-53": ["IA-2(1)", "IA-5"], "iso-27001": ["A.8.5"]},
    probes=SSHD_PROBES,
    params={"ssh_allow_kbd_interactive": False, **MATCH_PARAM},
)
def password_auth_disabled(facts: Facts, params: Params) -> list[Finding]:
    """PasswordAuthentication is no, and keyboard-interactive via PAM (which prompts for the password) is off.

    Set ssh_allow_kbd_interactive to true where PAM keyboard-interactive is a second
    factor (e.g. TOTP after a key) rather than a password prompt.
    """
    allow_kbd = bool(params["ssh_allow_kbd_interactive"])

    def judge(s: Mapping[str, Setting]) -> Verdict:
        pw = s["passwordauthentication"]
        if pw.value.lower() != "no":
            return Verdict(False, describe("PasswordAuthentication", pw))
        kbd, pam = s["kbdinteractiveauthentication"], s["usepam"]
        if not allow_kbd and kbd.value.lower() == "yes" and pam.value.lower() == "yes":
            return Verdict(
                False,
                "PasswordAuthentication is no, but "
                + describe("KbdInteractiveAuthentication", kbd)
                + " with UsePAM yes, so PAM can still prompt for the password",
            )
        return Verdict(True, describe("PasswordAuthentication", pw))

    return evaluate_sshd(
        facts,
        params,
        ["passwordauthentication", "kbdinteractiveauthentication", "usepam"],
        judge,
        "PasswordAuthentication no" + ("" if allow_kbd else " and no PAM keyboard-interactive"),
    )


@host_check(
    id="ssh.empty_passwords_disabled",
    fix={"sshd": {"PermitEmptyPasswords": "no"}},
    title="SSH refuses accounts with empty passwords",
    severity=Severity.HIGH,
    rationale="With PermitEmptyPasswords yes, any account whose password field is empty can be logged into "
    "remotely without any secret.",
    remediation="Set `PermitEmptyPasswords no`." + APPLY_SSHD_CHANGE,
    frameworks={"cis-debian-12": ["5.1.19"], "nist-800-53": ["IA-5", "AC-17"], "iso-27001": ["A.8.5"]},
    probes=SSHD_PROBES,
    params=dict(MATCH_PARAM),
)
def empty_passwords_disabled(facts: Facts, params: Params) -> list[Finding]:
    """PermitEmptyPasswords is no."""
    return evaluate_sshd(
        facts, params, ["permitemptypasswords"], one_of("permitemptypasswords", "PermitEmptyPasswords", ["no"]), "no"
    )


@host_check(
    id="ssh.max_auth_tries_limited",
    fix={"sshd": {"MaxAuthTries": "{ssh_max_auth_tries}"}},
    title="SSH limits authentication attempts per connection",
    severity=Severity.MEDIUM,
    rationale="A low MaxAuthTries slows online guessing and makes failed attempts show up in the logs sooner.",
    remediation="Set `MaxAuthTries {ssh_max_auth_tries}` (or fewer)." + APPLY_SSHD_CHANGE,
    frameworks={"cis-debian-12": ["5.1.16"], "nist-800-53": ["AC-7"], "iso-27001": ["A.8.5"]},
    probes=SSHD_PROBES,
    params={"ssh_max_auth_tries": 4, **MATCH_PARAM},
)
def max_auth_tries_limited(facts: Facts, params: Params) -> list[Finding]:
    """MaxAuthTries is at most ssh_max_auth_tries (default 4)."""
    limit = int(params["ssh_max_auth_tries"])
    return evaluate_sshd(
        facts, params, ["maxauthtries"], int_between("maxauthtries", "MaxAuthTries", 1, limit), f"1 to {limit}"
    )


@host_check(
    id="ssh.hostbased_auth_disabled",
    fix={"sshd": {"HostbasedAuthentication": "no"}},
    title="SSH host-based authentication is disabled",
    severity=Severity.MEDIUM,
    rationale="Host-based authentication trusts another machine's word about who the user is; one compromised "
    "host then opens every host that trusts it.",
    remediation="Set `HostbasedAuthentication no`." + APPLY_SSHD_CHANGE,
    frameworks={"cis-debian-12": ["5.1.10"], "nist-800-53": ["IA-2", "CM-7"], "iso-27001": ["A.8.5"]},
    probes=SSHD_PROBES,
    params=dict(MATCH_PARAM),
)
def hostbased_auth_disabled(facts: Facts, params: Params) -> list[Finding]:
    """HostbasedAuthentication is no."""
    return evaluate_sshd(
        facts,
        params,
        ["hostbasedauthentication"],
        one_of("hostbasedauthentication", "HostbasedAuthentication", ["no"]),
        "no",
    )


@host_check(
    id="ssh.ignore_rhosts_enabled",
    fix={"sshd": {"IgnoreRhosts": "yes"}},
    title="SSH ignores .rhosts and .shosts files",
    severity=Severity.MEDIUM,
    rationale="~/.rhosts and ~/.shosts let users grant password-less access from other hosts outside any central "
    "control; sshd must ignore them.",
    remediation="Set `IgnoreRhosts yes`." + APPLY_SSHD_CHANGE,
    frameworks={"cis-debian-12": ["5.1.11"], "nist-800-53": ["IA-2", "CM-7"], "iso-27001": ["A.8.5"]},
    probes=SSHD_PROBES,
    params=dict(MATCH_PARAM),
)
def ignore_rhosts_enabled(facts: Facts, params: Params) -> list[Finding]:
    """IgnoreRhosts is yes (shosts-only still honours ~/.shosts and fails)."""
    return evaluate_sshd(facts, params, ["ignorerhosts"], one_of("ignorerhosts", "IgnoreRhosts", ["yes"]), "yes")


@host_check(
    id="ssh.permit_user_environment_disabled",
    fix={"sshd": {"PermitUserEnvironment": "no"}},
    title="SSH ignores user-supplied environment files",
    severity=Severity.MEDIUM,
    rationale="PermitUserEnvironment lets users set variables such as LD_PRELOAD for their sessions through "
    "~/.ssh/environment or authorized_keys options, which can bypass ForceCommand and other restrictions.",
    remediation="Set `PermitUserEnvironment no`." + APPLY_SSHD_CHANGE,
    frameworks={"cis-debian-12": ["5.1.21"], "nist-800-53": ["CM-6", "CM-7"], "iso-27001": ["A.8.9"]},
    probes=SSHD_PROBES,
    params=dict(MATCH_PARAM),
)
def permit_user_environment_disabled(facts: Facts, params: Params) -> list[Finding]:
    """PermitUserEnvironment is no."""
    return evaluate_sshd(
        facts, params, ["permituserenvironment"], one_of("permituserenvironment", "PermitUserEnvironment", ["no"]), "no"
    )


@host_check(
    id="ssh.use_pam_enabled",
    fix={"sshd": {"UsePAM": "yes"}},
    title="SSH uses PAM for account and session checks",
    severity=Severity.LOW,
    rationale="With UsePAM no, PAM account and session modules (lockout, expiry, access.conf, limits, "
    "auditing) are skipped for SSH logins.",
    remediation="Set `UsePAM yes`." + APPLY_SSHD_CHANGE,
    frameworks={"cis-debian-12": ["5.1.22"], "nist-800-53": ["AC-7", "IA-2"], "iso-27001": ["A.8.5"]},
    os_families=("debian", "rhel", "suse"),
    probes=SSHD_PROBES,
    params=dict(MATCH_PARAM),
)
def use_pam_enabled(facts: Facts, params: Params) -> list[Finding]:
    """UsePAM is yes (only on OS families whose sshd is built with PAM)."""
    return evaluate_sshd(facts, params, ["usepam"], one_of("usepam", "UsePAM", ["yes"]), "yes")


@host_check(
    id="ssh.gssapi_auth_disabled",
    fix={"sshd": {"GSSAPIAuthentication": "no"}},
    title="SSH GSSAPI authentication is disabled",
    severity=Severity.LOW,
    rationale="GSSAPI (Kerberos) authentication adds attack surface and should only be on where Kerberos "
    "single sign-on is actually used.",
    remediation="Set `GSSAPIAuthentication no` (or waive this check on Kerberos-integrated hosts)." + APPLY_SSHD_CHANGE,
    frameworks={"cis-debian-12": ["5.1.9"], "nist-800-53": ["CM-7"], "iso-27001": ["A.8.9"]},
    probes=SSHD_PROBES,
    params=dict(MATCH_PARAM),
)
def gssapi_auth_disabled(facts: Facts, params: Params) -> list[Finding]:
    """GSSAPIAuthentication is no."""
    return evaluate_sshd(
        facts, params, ["gssapiauthentication"], one_of("gssapiauthentication", "GSSAPIAuthentication", ["no"]), "no"
    )


#: The keywords that limit who may log in, as sshd -T names them and as they are written.
_ACCESS_KEYWORDS = {
    "allowusers": "AllowUsers",
    "allowgroups": "AllowGroups",
    "denyusers": "DenyUsers",
    "denygroups": "DenyGroups",
}
#: Patterns that match every user (or group): an Allow list holding one restricts nobody.
_MATCH_EVERYONE = frozenset({"*", "*@*"})


@host_check(
    id="ssh.access_restricted",
    fix={"manual": "which accounts or groups may log in over SSH is a decision (AllowGroups / AllowUsers)"},
    title="SSH limits who may log in (AllowUsers, AllowGroups, DenyUsers or DenyGroups is set)",
    severity=Severity.MEDIUM,
    rationale="Without an allow or deny list every local account with a valid credential (service accounts, "
    "forgotten test users, accounts added by packages) can open an SSH session; naming who may log in keeps "
    "a stray key or password from becoming remote access.",
    remediation="Add e.g. `AllowGroups sshusers` (and `groupadd sshusers; usermod -aG sshusers USER` for each "
    "administrator) or `AllowUsers alice bob` to /etc/ssh/sshd_config.d/00-hardening.conf, outside any Match "
    "block; then `sshd -t && systemctl reload ssh` (`sshd` on RHEL/SUSE).",
    frameworks={"cis-debian-12": ["5.1.4"], "nist-800-53": ["AC-3", "AC-17"], "iso-27001": ["A.5.15", "A.8.5"]},
    probes=SSHD_PROBES,
    params={},
)
def access_restricted(facts: Facts, params: Params) -> list[Finding]:
    """At least one of AllowUsers, AllowGroups, DenyUsers or DenyGroups applies to every connection.

    An Allow list containing `*` (or `*@*`) admits everyone and does not count; lists set
    only inside conditional Match blocks apply to some connections only and do not count
    either (the message names them).
    """
    cfg = sshd_config_or_finding(facts)
    if isinstance(cfg, list):
        return cfg
    expected = "AllowUsers, AllowGroups, DenyUsers or DenyGroups restricting logins"
    source_note = basis(cfg)
    restricting: list[str] = []
    open_lists: list[str] = []
    for key, display in _ACCESS_KEYWORDS.items():
        setting = cfg.get(key)
        patterns = setting.value.split() if setting is not None else []
        if not patterns:
            continue
        shown = f"{display} {' '.join(patterns)}"
        if key.startswith("allow") and _MATCH_EVERYONE.intersection(patterns):
            open_lists.append(shown)
        else:
            restricting.append(shown)
    if restricting:
        observed = "; ".join(restricting)
        return [Finding.passed(f"logins are limited by {observed}{source_note}", observed=observed, expected=expected)]
    conditional = sorted(
        {
            f"{block.label} ({block.file}:{block.line})"
            for block in cfg.conditional
            for d in block.directives
            if d.keyword in _ACCESS_KEYWORDS
        }
    )
    observed = "; ".join(open_lists) if open_lists else "none of them set"
    message = (
        f"{'; '.join(open_lists)} admits every user"
        if open_lists
        else "no AllowUsers, AllowGroups, DenyUsers or DenyGroups applies to all connections"
    )
    if conditional:
        message += f" (set only under {', '.join(conditional)})"
    return [Finding.failed(message + source_note, observed=observed, expected=expected)]
