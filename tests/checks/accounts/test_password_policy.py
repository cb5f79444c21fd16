"""checks/accounts/password_policy.py: login.defs defaults and per-account shadow aging."""

from __future__ import annotations

import pytest
from helpers import make_facts, not_found, overall, run_check, timed_out

from itops.model import Status

DEFS = "PASS_MAX_DAYS\t365\nPASS_MIN_DAYS 1\nPASS_WARN_AGE 7\n"
SHADOW = "root:locked:19700:0:99999:7:::9\nalice:set:19700:1:365:7:::9\nbob:set:19700:2:90:14:::9\n"


def facts(defs=DEFS, shadow=SHADOW):
    return make_facts(
        {
            "etc_login_defs": defs if isinstance(defs, tuple) or not isinstance(defs, str) else (0, defs),
            "shadow_status": shadow if isinstance(shadow, tuple) or not isinstance(shadow, str) else (0, shadow),
        }
    )


CASES = [
    ("accounts.password_max_days_limited", "PASS_MAX_DAYS 99999", "alice:set:19700:1:99999:7:::9"),
    ("accounts.password_min_days_set", "PASS_MIN_DAYS 0", "alice:set:19700:0:365:7:::9"),
    ("accounts.password_warn_age_set", "PASS_WARN_AGE 3", "alice:set:19700:1:365:3:::9"),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize(("check_id", "bad_defs", "bad_user"), CASES, ids=IDS)
def test_pass(check_id, bad_defs, bad_user):
    findings = run_check(check_id, facts())
    assert [f.status for f in findings] == [Status.PASS, Status.PASS], findings
    assert [f.resource for f in findings] == ["/etc/login.defs", "/etc/shadow"]


@pytest.mark.parametrize(("check_id", "bad_defs", "bad_user"), CASES, ids=IDS)
def test_fail_login_defs(check_id, bad_defs, bad_user):
    findings = run_check(check_id, facts(defs=DEFS + bad_defs + "\n"))  # the later line wins, as in shadow-utils
    assert [f.status for f in findings] == [Status.FAIL, Status.PASS]


@pytest.mark.parametrize(("check_id", "bad_defs", "bad_user"), CASES, ids=IDS)
def test_fail_existing_account(check_id, bad_defs, bad_user):
    shadow = SHADOW.replace("alice:set:19700:1:365:7:::9", bad_user)
    findings = run_check(check_id, facts(shadow=shadow))
    assert [(f.status, f.resource) for f in findings] == [(Status.PASS, "/etc/login.defs"), (Status.FAIL, "alice")]
    assert "chage" in findings[1].message


@pytest.mark.parametrize("check_id", IDS)
@pytest.mark.parametrize(
    ("defs", "shadow"),
    [
        (
            (1, "", "cat: /etc/login.defs: No such file or directory"),
            (3, "", "/etc/shadow not readable (run as root or enable sudo)"),
        ),
        (timed_out(), timed_out()),
        (not_found("cat"), not_found("awk")),
        (DEFS, "alice:set:x:y:z\n"),
        (DEFS, "alice:set:19700:one:two:three:::9\n"),
    ],
    ids=["unreadable", "timeout", "missing-command", "garbage", "non-numeric"],
)
def test_error_never_pass(check_id, defs, shadow):
    findings = run_check(check_id, facts(defs=defs, shadow=shadow))
    assert overall(findings) is Status.ERROR
    # login.defs may still be judged on its own; the shadow part must be an ERROR, not a PASS
    assert [f.status for f in findings if f.resource == "/etc/shadow"] == [Status.ERROR]


def test_unset_keys_use_shadow_utils_defaults():
    findings = run_check("accounts.password_max_days_limited", facts(defs="# nothing\n"))
    assert findings[0].status is Status.FAIL and "99999" in findings[0].message
    warn = run_check("accounts.password_warn_age_set", facts(defs="# nothing\n"))
    assert warn[0].status is Status.PASS  # unset PASS_WARN_AGE means 7


def test_non_numeric_login_defs_value_is_explained_fail():
    [f, _] = run_check("accounts.password_max_days_limited", facts(defs="PASS_MAX_DAYS never\n"))
    assert f.status is Status.FAIL and "not a number" in f.message


def test_empty_max_days_field_fails_and_locked_accounts_are_skipped():
    shadow = "root:locked:19700:0:99999:7:::9\nalice:set:19700:1::7:::9\n"
    findings = run_check("accounts.password_max_days_limited", facts(shadow=shadow))
    assert [(f.status, f.resource) for f in findings] == [(Status.PASS, "/etc/login.defs"), (Status.FAIL, "alice")]


def test_max_days_var_override():
    facts_90 = facts(shadow="alice:set:19700:1:90:7:::9\n", defs="PASS_MAX_DAYS 90\n")
    assert overall(run_check("accounts.password_max_days_limited", facts_90, password_max_days=60)) is Status.FAIL
    relaxed = facts(shadow="alice:set:19700:1:400:7:::9\n", defs="PASS_MAX_DAYS 400\n")
    assert overall(run_check("accounts.password_max_days_limited", relaxed, password_max_days=400)) is Status.PASS


# --------------------------------------------------------------------------- accounts.password_hashing_strong

HASHING = "accounts.password_hashing_strong"
SCHEMES = "root:locked\nalice:$y\nbob:$6\ncarol:empty\nsvc:locked\n"


def hashing(defs="ENCRYPT_METHOD SHA512\n", schemes=SCHEMES):
    return make_facts(
        {
            "etc_login_defs": defs if isinstance(defs, tuple) or not isinstance(defs, str) else (0, defs),
            "shadow_hash_schemes": schemes if not isinstance(schemes, str) else (0, schemes),
        }
    )


@pytest.mark.parametrize("method", ["SHA512", "YESCRYPT"])
def test_hashing_pass(method):
    findings = run_check(HASHING, hashing(defs=f"ENCRYPT_METHOD {method}\n"))
    assert [(f.status, f.resource) for f in findings] == [
        (Status.PASS, "/etc/login.defs"),
        (Status.PASS, "/etc/shadow"),
    ]
    assert "sha512crypt, yescrypt" in findings[1].message


@pytest.mark.parametrize(
    ("defs", "shown"),
    [
        ("ENCRYPT_METHOD MD5\n", "ENCRYPT_METHOD is MD5"),
        ("ENCRYPT_METHOD SHA256\n", "ENCRYPT_METHOD is SHA256"),
        ("ENCRYPT_METHOD sha512\n", "case-sensitive"),
        ("ENCRYPT_METHOD SHA512\nENCRYPT_METHOD DES\n", "ENCRYPT_METHOD is DES"),  # the later line wins
        ("# ENCRYPT_METHOD SHA512\n", "hashes with DES"),
        ("MD5_CRYPT_ENAB yes\n", "hashes with MD5"),
    ],
)
def test_hashing_fail_login_defs(defs, shown):
    findings = run_check(HASHING, hashing(defs=defs))
    assert [f.status for f in findings] == [Status.FAIL, Status.PASS]
    assert shown in findings[0].message


@pytest.mark.parametrize(
    ("line", "scheme"),
    [
        ("dave:$1", "md5crypt"),
        ("dave:des", "descrypt"),
        ("dave:bsdi", "bsdicrypt"),
        ("dave:$3", "nthash"),
        ("dave:$sha1", "sha1crypt"),
        ("dave:$9", "unknown ($9$)"),
    ],
)
def test_hashing_fail_names_account_and_scheme_only(line, scheme):
    findings = run_check(HASHING, hashing(schemes=SCHEMES + line + "\n"))
    assert [(f.status, f.resource) for f in findings] == [(Status.PASS, "/etc/login.defs"), (Status.FAIL, "dave")]
    assert scheme in findings[1].message and findings[1].observed == scheme


def test_hashing_locked_empty_and_invalid_fields_are_not_judged():
    findings = run_check(HASHING, hashing(schemes="root:locked\nguest:empty\nold:invalid\n"))
    assert [f.status for f in findings] == [Status.PASS, Status.PASS]
    assert "only locked or empty" in findings[1].message


def test_hashing_allowed_schemes_are_a_param():
    findings = run_check(HASHING, hashing(), password_hash_schemes_allowed=["yescrypt"])
    assert [(f.status, f.resource) for f in findings][1:] == [(Status.FAIL, "bob")]


@pytest.mark.parametrize(
    "schemes",
    [
        timed_out("shadow_hash_schemes"),
        (3, "", "/etc/shadow not readable (run as root or enable sudo)\n"),
        (0, ""),
        (0, "no colon here\n"),
        (0, "x:$$$\n"),
        not_found("awk"),
    ],
)
def test_hashing_unreadable_shadow_is_error_never_pass(schemes):
    findings = run_check(HASHING, hashing(schemes=schemes))
    assert [f.status for f in findings] == [Status.PASS, Status.ERROR]
    assert findings[1].resource == "/etc/shadow"


def test_hashing_unreadable_login_defs_is_error():
    findings = run_check(HASHING, hashing(defs=(1, "", "cat: /etc/login.defs: No such file or directory")))
    assert [f.status for f in findings] == [Status.ERROR, Status.PASS]


def test_hash_scheme_probe_never_prints_a_hash(tmp_path):
    import subprocess

    from itops.checklib.accounts import SHADOW_HASH_SCHEMES, parse_shadow_schemes

    secret = "$1$saltsalt$qwertyuiopasdfghjklzx1"
    shadow = tmp_path / "shadow"
    shadow.write_text(
        f"root:*:19700:0:99999:7:::\nmd5:{secret}:19700::::::\ndes:abcdefghijklm:1::::::\n"
        "yes:$y$j9T$salt$hash:1::::::\nlk:!$6$s$h:1::::::\nnone::1::::::\nodd:x:1::::::\n"
    )
    command = SHADOW_HASH_SCHEMES.command.replace("/etc/shadow", str(shadow))
    out = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=30, check=True).stdout
    assert "saltsalt" not in out and "qwerty" not in out and "abcdefghijklm" not in out
    assert [(e.account, e.kind, e.scheme) for e in parse_shadow_schemes(out)] == [
        ("root", "locked", ""),
        ("md5", "hash", "md5crypt"),
        ("des", "hash", "descrypt"),
        ("yes", "hash", "yescrypt"),
        ("lk", "locked", ""),
        ("none", "empty", ""),
        ("odd", "invalid", ""),
    ]
