"""IAM checks on canned collection data: pass, fail, and missing permission -> ERROR."""

from __future__ import annotations

import pytest
from aws_canned import DENIED, coll, facts, only, res, run, statuses

from itops.model import Status

ROOT = "arn:aws:iam::123456789012:root"
NOW = "2026-06-30T12:00:00+00:00"
USERS = {name: f"arn:aws:iam::123456789012:user/{name}" for name in ("alice", "bob", "carol", "dave")}


def summary(**values) -> object:
    return facts(coll("iam.account_summary", [res(ROOT, "global", name="root", summary=values)]))


@pytest.mark.parametrize(
    ("check_id", "good", "bad"),
    [
        ("aws.iam.root_mfa_enabled", {"AccountMFAEnabled": 1}, {"AccountMFAEnabled": 0}),
        ("aws.iam.root_access_keys_absent", {"AccountAccessKeysPresent": 0}, {"AccountAccessKeysPresent": 1}),
    ],
)
def test_root_checks(check_id: str, good: dict, bad: dict) -> None:
    assert only(run(check_id, summary(**good))).status is Status.PASS
    f = only(run(check_id, summary(**bad)))
    assert (f.status, f.resource) == (Status.FAIL, ROOT) and "123456789012" in f.message
    denied = facts(coll("iam.account_summary", [res(ROOT, "global", errors={"summary": DENIED.format("x:Y")})]))
    assert only(run(check_id, denied)).status is Status.ERROR


def row(user: str, **kw: str):
    base = {
        "user": user,
        "arn": USERS.get(user, ROOT),
        "user_creation_time": "2026-01-01T00:00:00+00:00",
        "password_enabled": "false",
        "password_last_used": "N/A",
        "password_last_changed": "N/A",
        "mfa_active": "false",
        "access_key_1_active": "false",
        "access_key_1_last_rotated": "N/A",
        "access_key_1_last_used_date": "N/A",
        "access_key_2_active": "false",
        "access_key_2_last_rotated": "N/A",
        "access_key_2_last_used_date": "N/A",
        "report_generated": NOW,
    }
    base.update(kw)
    return res(base["arn"], "global", name=user, **base)


def report(*rows):
    return facts(coll("iam.credential_report", [row("<root_account>", password_enabled="not_supported"), *rows]))


def test_console_users_need_mfa() -> None:
    found = run(
        "aws.iam.console_users_mfa_enabled",
        report(
            row("alice", password_enabled="true", mfa_active="false"),
            row("bob", password_enabled="true", mfa_active="true"),
            row("carol"),  # no console password: out of scope
        ),
    )
    assert statuses(found) == {USERS["alice"]: Status.FAIL, USERS["bob"]: Status.PASS}


def test_access_key_age() -> None:
    found = run(
        "aws.iam.access_keys_rotated",
        report(
            row("alice", access_key_1_active="true", access_key_1_last_rotated="2026-01-01T00:00:00+00:00"),
            row("bob", access_key_2_active="true", access_key_2_last_rotated="2026-06-01T00:00:00+00:00"),
            row("carol", access_key_1_active="false", access_key_1_last_rotated="2020-01-01T00:00:00+00:00"),
            row("dave", access_key_1_active="true", access_key_1_last_rotated="garbage"),
        ),
    )
    assert statuses(found) == {USERS["alice"]: Status.FAIL, USERS["bob"]: Status.PASS, USERS["dave"]: Status.FAIL}
    alice = next(f for f in found if f.resource == USERS["alice"])
    assert "180 days" in alice.observed
    # the limit is a param (inventory vars override it)
    relaxed = run(
        "aws.iam.access_keys_rotated",
        report(row("alice", access_key_1_active="true", access_key_1_last_rotated="2026-01-01T00:00:00+00:00")),
        access_key_max_age_days=365,
    )
    assert only(relaxed).status is Status.PASS


def test_unused_credentials() -> None:
    found = run(
        "aws.iam.unused_credentials_disabled",
        report(
            row("alice", password_enabled="true", password_last_used="2026-01-02T00:00:00+00:00"),
            row(
                "bob",
                password_enabled="true",
                password_last_used="no_information",
                password_last_changed="2026-06-20T00:00:00+00:00",
            ),
            row(
                "carol",
                access_key_1_active="true",
                access_key_1_last_rotated="2026-01-01T00:00:00+00:00",
                access_key_1_last_used_date="2026-06-29T00:00:00+00:00",
            ),
            row("dave", access_key_1_active="true", access_key_1_last_rotated="2026-01-01T00:00:00+00:00"),
        ),
    )
    assert statuses(found) == {
        USERS["alice"]: Status.FAIL,  # password last used 179 days ago
        USERS["bob"]: Status.PASS,  # never used, but set 10 days ago
        USERS["carol"]: Status.PASS,  # key used yesterday
        USERS["dave"]: Status.FAIL,  # key never used in 180 days
    }


def test_single_active_key() -> None:
    found = run(
        "aws.iam.single_active_access_key",
        report(
            row("alice", access_key_1_active="true", access_key_2_active="true"),
            row("bob", access_key_1_active="true"),
            row("carol"),
        ),
    )
    assert statuses(found) == {USERS["alice"]: Status.FAIL, USERS["bob"]: Status.PASS}


def test_credential_report_denied() -> None:
    denied = facts(coll("iam.credential_report", errors={"global": DENIED.format("iam:GetCredentialReport")}))
    for check_id in (
        "aws.iam.console_users_mfa_enabled",
        "aws.iam.access_keys_rotated",
        "aws.iam.unused_credentials_disabled",
        "aws.iam.single_active_access_key",
    ):
        f = only(run(check_id, denied))
        assert f.status is Status.ERROR and "iam:GetCredentialReport" in f.message


STRONG = {
    "MinimumPasswordLength": 16,
    "PasswordReusePrevention": 24,
    "RequireUppercaseCharacters": True,
    "RequireLowercaseCharacters": True,
    "RequireNumbers": True,
    "RequireSymbols": True,
}
POLICY_ARN = "arn:aws:iam::123456789012:account"


@pytest.mark.parametrize(
    ("check_id", "weak"),
    [
        ("aws.iam.password_policy_min_length", {"MinimumPasswordLength": 8}),
        ("aws.iam.password_policy_reuse_prevention", {"PasswordReusePrevention": 5}),
        ("aws.iam.password_policy_complexity", {"RequireSymbols": False}),
    ],
)
def test_password_policy(check_id: str, weak: dict) -> None:
    def pol(p):
        return facts(coll("iam.password_policy", [res(POLICY_ARN, "global", policy=p)]))

    assert only(run(check_id, pol(STRONG))).status is Status.PASS
    assert only(run(check_id, pol({**STRONG, **weak}))).status is Status.FAIL
    none = only(run(check_id, pol(None)))
    assert none.status is Status.FAIL and none.observed == "no policy"
    denied = facts(coll("iam.password_policy", [res(POLICY_ARN, "global", errors={"policy": DENIED.format("x:Y")})]))
    assert only(run(check_id, denied)).status is Status.ERROR


def test_full_admin_policies() -> None:
    def pol(name, doc, errors=None):
        arn = f"arn:aws:iam::123456789012:policy/{name}"
        return res(arn, "global", name=name, errors=errors, policy={"Arn": arn, "AttachmentCount": 1}, document=doc)

    admin = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    admin2 = {"Statement": {"Effect": "Allow", "Action": ["*:*"], "Resource": ["*"]}}
    scoped = {
        "Statement": [
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*"},
            {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},
        ]
    }
    found = run(
        "aws.iam.policies_no_full_admin",
        facts(
            coll(
                "iam.policies",
                [
                    pol("admin", admin),
                    pol("admin2", admin2),
                    pol("scoped", scoped),
                    pol("denied", None, {"document": DENIED.format("iam:GetPolicyVersion")}),
                ],
            )
        ),
    )
    assert {r.rsplit("/", 1)[1]: s for r, s in statuses(found).items()} == {
        "admin": Status.FAIL,
        "admin2": Status.FAIL,
        "scoped": Status.PASS,
        "denied": Status.ERROR,
    }


def test_users_without_own_policies() -> None:
    def user(name, attached=(), inline=(), errors=None):
        return res(
            USERS[name],
            "global",
            name=name,
            errors=errors,
            user={"UserName": name},
            attached=[{"PolicyName": p} for p in attached],
            inline=list(inline),
        )

    found = run(
        "aws.iam.users_no_attached_policies",
        facts(
            coll(
                "iam.users",
                [
                    user("alice", attached=["ReadOnlyAccess"]),
                    user("bob", inline=["mine"]),
                    user("carol"),
                    user("dave", errors={"attached": DENIED.format("iam:ListAttachedUserPolicies")}),
                ],
            )
        ),
    )
    assert statuses(found) == {
        USERS["alice"]: Status.FAIL,
        USERS["bob"]: Status.FAIL,
        USERS["carol"]: Status.PASS,
        USERS["dave"]: Status.ERROR,
    }
