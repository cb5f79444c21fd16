"""checks/ssh/sshd_auth.py on canned sshd -T output and sshd_config dumps."""

from __future__ import annotations

import pytest
from helpers import SSHD_T_NEEDS_ROOT, files_dump, not_found, overall, run_check, sshd_facts, sshd_t, timed_out

from itops.model import Status

# check id, sshd -T overrides that pass, overrides that fail, config text that fails via the files fallback
CASES = [
    (
        "ssh.root_login_disabled",
        {"permitrootlogin": "no"},
        {"permitrootlogin": "without-password"},
        "PermitRootLogin yes\n",
    ),
    (
        "ssh.password_auth_disabled",
        {"passwordauthentication": "no"},
        {"passwordauthentication": "yes"},
        "# PasswordAuthentication defaults to yes\n",
    ),
    (
        "ssh.empty_passwords_disabled",
        {"permitemptypasswords": "no"},
        {"permitemptypasswords": "yes"},
        "PermitEmptyPasswords yes\n",
    ),
    ("ssh.max_auth_tries_limited", {"maxauthtries": "3"}, {"maxauthtries": "6"}, "# default MaxAuthTries 6\n"),
    (
        "ssh.hostbased_auth_disabled",
        {"hostbasedauthentication": "no"},
        {"hostbasedauthentication": "yes"},
        "HostbasedAuthentication yes\n",
    ),
    ("ssh.ignore_rhosts_enabled", {"ignorerhosts": "yes"}, {"ignorerhosts": "shosts-only"}, "IgnoreRhosts no\n"),
    (
        "ssh.permit_user_environment_disabled",
        {"permituserenvironment": "no"},
        {"permituserenvironment": "LANG,LC_*"},
        "PermitUserEnvironment yes\n",
    ),
    ("ssh.use_pam_enabled", {"usepam": "yes"}, {"usepam": "no"}, "# UsePAM defaults to no upstream\n"),
    (
        "ssh.gssapi_auth_disabled",
        {"gssapiauthentication": "no"},
        {"gssapiauthentication": "yes"},
        "GSSAPIAuthentication yes\n",
    ),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize(("check_id", "good", "bad", "config"), CASES, ids=IDS)
def test_pass_on_compliant_sshd_t(check_id, good, bad, config):
    findings = run_check(check_id, sshd_facts(t=(0, sshd_t(**good))))
    assert [f.status for f in findings] == [Status.PASS], findings


@pytest.mark.parametrize(("check_id", "good", "bad", "config"), CASES, ids=IDS)
def test_fail_on_weak_sshd_t(check_id, good, bad, config):
    findings = run_check(check_id, sshd_facts(t=(0, sshd_t(**bad))))
    assert overall(findings) is Status.FAIL
    assert "expected" in findings[0].message and findings[0].observed


@pytest.mark.parametrize(("check_id", "good", "bad", "config"), CASES, ids=IDS)
def test_fail_from_files_when_sshd_t_needs_root(check_id, good, bad, config):
    facts = sshd_facts(t=SSHD_T_NEEDS_ROOT, files=(0, files_dump({"/etc/ssh/sshd_config": config})))
    findings = run_check(check_id, facts)
    assert overall(findings) is Status.FAIL, findings
    assert "sshd_config files" in findings[0].message  # says what the verdict is based on


@pytest.mark.parametrize("check_id", IDS)
@pytest.mark.parametrize(
    ("t", "files"),
    [
        (SSHD_T_NEEDS_ROOT, (0, files_dump({}, unreadable={"/etc/ssh/sshd_config": "600 0 0"}))),
        ((0, "<html>proxy error</html>\n"), (0, "garbage\n")),
        (not_found("sshd"), timed_out("sshd files")),
        (timed_out("sshd -T"), (0, files_dump({"/etc/ssh/sshd_config": "PermitRootLogin no\n"}, done=False))),
        (SSHD_T_NEEDS_ROOT, (0, files_dump({"/etc/ssh/sshd_config": 'Banner "unterminated\n'}))),
    ],
    ids=["unreadable", "garbage", "missing-command+timeout", "truncated", "bad-quotes"],
)
def test_error_never_pass_when_config_unknown(check_id, t, files):
    findings = run_check(check_id, sshd_facts(t=t, files=files))
    assert [f.status for f in findings] == [Status.ERROR], findings
    assert findings[0].message.startswith("could not assess:")


@pytest.mark.parametrize("check_id", IDS)
def test_skipped_when_openssh_server_not_installed(check_id):
    facts = sshd_facts(t=not_found("sshd"), files=(0, files_dump({}, missing=("/etc/ssh/sshd_config",))))
    assert [f.status for f in run_check(check_id, facts)] == [Status.SKIPPED]


def test_missing_key_in_sshd_t_is_error():
    # without permitrootlogin the output is not taken as sshd -T at all: the files decide, and the message says so
    [f] = run_check("ssh.root_login_disabled", sshd_facts(t=(0, sshd_t(permitrootlogin=""))))
    assert f.status is Status.PASS and "sshd_config files" in f.message and "lacks 'permitrootlogin'" in f.message
    findings = run_check("ssh.use_pam_enabled", sshd_facts(t=(0, sshd_t(usepam=""))))
    assert [f.status for f in findings] == [Status.ERROR]
    assert "does not report usepam" in findings[0].message


def test_unparseable_value_is_error():
    findings = run_check("ssh.max_auth_tries_limited", sshd_facts(t=(0, sshd_t(maxauthtries="four"))))
    assert [f.status for f in findings] == [Status.ERROR]


def test_root_login_message_states_observed_and_expected():
    [f] = run_check("ssh.root_login_disabled", sshd_facts(t=(0, sshd_t(permitrootlogin="yes"))))
    assert f.message == "PermitRootLogin is yes (expected no)"
    assert (f.observed, f.expected) == ("PermitRootLogin is yes", "no")


def test_root_login_allowed_values_param():
    facts = sshd_facts(t=(0, sshd_t(permitrootlogin="without-password")))
    assert overall(run_check("ssh.root_login_disabled", facts)) is Status.FAIL
    ok = run_check("ssh.root_login_disabled", facts, ssh_permit_root_login_allowed=["no", "prohibit-password"])
    assert overall(ok) is Status.PASS  # without-password is the old spelling of prohibit-password


def test_max_auth_tries_var_override_changes_verdict():
    facts = sshd_facts(t=(0, sshd_t(maxauthtries="6")))
    assert overall(run_check("ssh.max_auth_tries_limited", facts)) is Status.FAIL
    assert overall(run_check("ssh.max_auth_tries_limited", facts, ssh_max_auth_tries=6)) is Status.PASS
    via_inventory = sshd_facts(t=(0, sshd_t(maxauthtries="6")), vars={"ssh_max_auth_tries": 6})
    assert overall(run_check("ssh.max_auth_tries_limited", via_inventory)) is Status.PASS


def test_password_auth_kbd_interactive_with_pam_still_prompts():
    facts = sshd_facts(t=(0, sshd_t(passwordauthentication="no", kbdinteractiveauthentication="yes", usepam="yes")))
    [f] = run_check("ssh.password_auth_disabled", facts)
    assert f.status is Status.FAIL and "KbdInteractiveAuthentication" in f.message
    assert overall(run_check("ssh.password_auth_disabled", facts, ssh_allow_kbd_interactive=True)) is Status.PASS
    no_pam = sshd_facts(t=(0, sshd_t(passwordauthentication="no", kbdinteractiveauthentication="yes", usepam="no")))
    assert overall(run_check("ssh.password_auth_disabled", no_pam)) is Status.PASS


def test_match_block_override_fails_even_when_global_passes():
    config = "PermitRootLogin no\nMatch Address 10.0.0.0/8\n    PermitRootLogin yes\n"
    facts = sshd_facts(files=(0, files_dump({"/etc/ssh/sshd_config": config})))
    findings = run_check("ssh.root_login_disabled", facts)
    assert [f.status for f in findings] == [Status.PASS, Status.FAIL]
    assert findings[1].resource == "Match Address 10.0.0.0/8 (/etc/ssh/sshd_config:2)"
    assert "under 'Match Address 10.0.0.0/8'" in findings[1].message
    assert "/etc/ssh/sshd_config:3" in findings[1].message
    only_global = run_check("ssh.root_login_disabled", facts, ssh_check_match_blocks=False)
    assert [f.status for f in only_global] == [Status.PASS]


def test_match_blocks_not_inspected_is_said():
    facts = sshd_facts(files=(0, files_dump({}, unreadable={"/etc/ssh/sshd_config": "600 0 0"})))
    [f] = run_check("ssh.root_login_disabled", facts)
    assert f.status is Status.PASS  # sshd -T is authoritative for the global value
    assert "Match blocks not inspected" in f.message


def test_fallback_reports_origin_file_and_line():
    config = "Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin no\n"
    dump = files_dump(
        {"/etc/ssh/sshd_config": config, "/etc/ssh/sshd_config.d/10-cloud.conf": "PermitRootLogin yes\n"},
        {"/etc/ssh/sshd_config.d/*.conf": ["/etc/ssh/sshd_config.d/10-cloud.conf"]},
    )
    [f] = run_check("ssh.root_login_disabled", sshd_facts(t=SSHD_T_NEEDS_ROOT, files=(0, dump)))
    assert f.status is Status.FAIL
    assert "PermitRootLogin is yes (/etc/ssh/sshd_config.d/10-cloud.conf:1)" in f.message


# --------------------------------------------------------------------------- ssh.access_restricted

ACCESS = "ssh.access_restricted"


@pytest.mark.parametrize(
    "extra",
    [
        "allowgroups sshusers\n",
        "allowusers alice\nallowusers bob@10.0.0.0/8\n",
        "denyusers guest\n",
        "denygroups nossh\n",
        "allowusers *\ndenygroups nossh\n",
    ],
)
def test_access_restricted_pass(extra):
    findings = run_check(ACCESS, sshd_facts(t=(0, sshd_t() + extra)))
    assert [f.status for f in findings] == [Status.PASS], findings


def test_access_restricted_pass_names_the_lists():
    [f] = run_check(ACCESS, sshd_facts(t=(0, sshd_t() + "allowusers alice\nallowusers bob\n")))
    assert f.message.startswith("logins are limited by AllowUsers alice bob")


@pytest.mark.parametrize("extra", ["", "allowusers *\n", "allowgroups *\n", "allowusers alice *@*\n"])
def test_access_restricted_fail(extra):
    [f] = run_check(ACCESS, sshd_facts(t=(0, sshd_t() + extra)))
    assert f.status is Status.FAIL
    if extra:
        assert "admits every user" in f.message


def test_access_restricted_only_under_match_fails_and_says_where():
    config = "PermitRootLogin no\nMatch Address 10.0.0.0/8\n    AllowUsers alice\n"
    files = (0, files_dump({"/etc/ssh/sshd_config": config}))
    [f] = run_check(ACCESS, sshd_facts(t=(0, sshd_t()), files=files))
    assert f.status is Status.FAIL and "set only under Match Address 10.0.0.0/8" in f.message


def test_access_restricted_from_files_when_sshd_t_cannot_run():
    good = (
        0,
        files_dump(
            {
                "/etc/ssh/sshd_config": "Include /etc/ssh/sshd_config.d/*.conf\n",
                "/etc/ssh/sshd_config.d/10-access.conf": "AllowGroups  sshusers admins\n",
            },
            includes={"/etc/ssh/sshd_config.d/*.conf": ["/etc/ssh/sshd_config.d/10-access.conf"]},
        ),
    )
    [f] = run_check(ACCESS, sshd_facts(t=SSHD_T_NEEDS_ROOT, files=good))
    assert f.status is Status.PASS and "AllowGroups sshusers admins" in f.message and "sshd_config files" in f.message
    bare = (0, files_dump({"/etc/ssh/sshd_config": "PermitRootLogin no\n"}))
    assert overall(run_check(ACCESS, sshd_facts(t=SSHD_T_NEEDS_ROOT, files=bare))) is Status.FAIL


@pytest.mark.parametrize(
    ("t", "files"),
    [
        (timed_out("sshd"), timed_out("files")),
        (SSHD_T_NEEDS_ROOT, (3, "", "permission denied")),
        ((0, "garbage\n"), (0, "not a dump\n")),
    ],
)
def test_access_restricted_unassessable_is_error(t, files):
    assert overall(run_check(ACCESS, sshd_facts(t=t, files=files))) is Status.ERROR


def test_access_restricted_skipped_without_openssh_server():
    files = (0, files_dump({}, missing=("/etc/ssh/sshd_config",)))
    assert overall(run_check(ACCESS, sshd_facts(t=not_found("sshd"), files=files))) is Status.SKIPPED
