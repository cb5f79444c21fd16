"""IAM: the root user, console MFA, access key hygiene, password policy, admin policies."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from itops.checkapi import CloudFacts, CloudResource, Finding, Params, Severity, aws_check
from itops.checklib.aws import grants_full_admin, parse_time

REPORT = ["iam:GenerateCredentialReport", "iam:GetCredentialReport"]
ROOT_ROW = "<root_account>"


#: Credential report columns holding a date.
_DATE_COLUMNS = (
    "user_creation_time",
    "password_last_used",
    "password_last_changed",
    "access_key_1_last_rotated",
    "access_key_1_last_used_date",
    "access_key_2_last_rotated",
    "access_key_2_last_used_date",
)


def _now(row: Mapping[str, Any] | CloudResource) -> datetime:
    """Ages are measured from when the credential report was generated (keeps evaluation pure).

    A generation time older than a date inside the report itself cannot be true (some
    endpoints, moto among them, send a fixed one); ages are then measured from the wall
    clock, or every key would look new and stale credentials would PASS.
    """
    generated = parse_time(row.get("report_generated"))
    dates = [d for d in (parse_time(row.get(c)) for c in _DATE_COLUMNS) if d is not None]
    if generated is None or any(d > generated for d in dates):
        return datetime.now(UTC)
    return generated


def _days(since: datetime | None, now: datetime) -> int | None:
    return None if since is None else (now - since).days


def _users(facts: CloudFacts, judge: Any) -> list[Finding]:
    """Per IAM user of the credential report (the root row excluded)."""
    return facts.each("iam.credential_report", lambda r: None if r.name == ROOT_ROW else judge(r), what="IAM users")


def _active_keys(row: CloudResource) -> list[int]:
    return [n for n in (1, 2) if row.get(f"access_key_{n}_active") == "true"]


@aws_check(
    id="aws.iam.root_mfa_enabled",
    title="The root user has MFA enabled",
    severity=Severity.CRITICAL,
    rationale="The root user can do anything in the account, including closing it; a password alone is one "
    "phishing away from losing the account.",
    remediation="Sign in as root, open IAM > Security credentials > Assign MFA device (hardware key preferred). "
    "Verify with: aws iam get-account-summary --query SummaryMap.AccountMFAEnabled",
    frameworks={
        "cis-aws-foundations": ["1.5"],
        "nist-800-53": ["IA-2(1)", "IA-2(2)"],
        "iso-27001": ["A.8.5", "A.5.17"],
    },
    collections=["iam.account_summary"],
    iam_actions=["iam:GetAccountSummary"],
)
def root_mfa_enabled(facts: CloudFacts, params: Params) -> list[Finding]:
    """AccountMFAEnabled is 1 in the IAM account summary."""

    def judge(res: CloudResource) -> Finding:
        enabled = res.part("summary").get("AccountMFAEnabled", 0)
        if enabled != 1:
            return Finding.failed(f"root user has no MFA in {facts.where()}", observed="no MFA", expected="MFA")
        return Finding.passed(f"root user has MFA in {facts.where()}")

    return facts.each("iam.account_summary", judge, what="account summary")


@aws_check(
    id="aws.iam.root_access_keys_absent",
    title="The root user has no access keys",
    severity=Severity.CRITICAL,
    rationale="Root access keys give unrestricted, unconditional API access to the account and cannot be "
    "limited by any policy.",
    remediation="Sign in as root, IAM > Security credentials > Access keys: deactivate and delete every key. "
    "Verify with: aws iam get-account-summary --query SummaryMap.AccountAccessKeysPresent",
    frameworks={"cis-aws-foundations": ["1.4"], "nist-800-53": ["AC-6(2)", "IA-2"], "iso-27001": ["A.8.2", "A.5.17"]},
    collections=["iam.account_summary"],
    iam_actions=["iam:GetAccountSummary"],
)
def root_access_keys_absent(facts: CloudFacts, params: Params) -> list[Finding]:
    """AccountAccessKeysPresent is 0 in the IAM account summary."""

    def judge(res: CloudResource) -> Finding:
        present = res.part("summary").get("AccountAccessKeysPresent", 0)
        if present:
            return Finding.failed(
                f"root user has access keys in {facts.where()}", observed=f"{present} key(s)", expected="none"
            )
        return Finding.passed(f"root user has no access keys in {facts.where()}")

    return facts.each("iam.account_summary", judge, what="account summary")


@aws_check(
    id="aws.iam.console_users_mfa_enabled",
    title="IAM users with a console password have MFA",
    severity=Severity.HIGH,
    rationale="A console password without MFA lets a phished or reused password take over the user.",
    remediation="aws iam create-virtual-mfa-device --virtual-mfa-device-name USER --outfile qr.png "
    "--bootstrap-method QRCodePNG; aws iam enable-mfa-device --user-name USER --serial-number ARN "
    "--authentication-code1 CODE1 --authentication-code2 CODE2",
    frameworks={"cis-aws-foundations": ["1.10"], "nist-800-53": ["IA-2(1)", "IA-2(2)"], "iso-27001": ["A.8.5"]},
    collections=["iam.credential_report"],
    iam_actions=REPORT,
)
def console_users_mfa_enabled(facts: CloudFacts, params: Params) -> list[Finding]:
    """Every user whose credential report row has password_enabled=true has mfa_active=true."""

    def judge(r: CloudResource) -> Finding | None:
        if r.get("password_enabled") != "true":
            return None
        if r.get("mfa_active") != "true":
            return Finding.failed(
                f"console user {r.name} has no MFA in {facts.where()}", observed="no MFA", expected="MFA"
            )
        return Finding.passed(f"console user {r.name} has MFA in {facts.where()}")

    return _users(facts, judge)


@aws_check(
    id="aws.iam.access_keys_rotated",
    title="Active IAM access keys are rotated within the allowed age",
    severity=Severity.MEDIUM,
    rationale="Old keys have had more time to leak (laptops, CI logs, repositories); rotation bounds the damage.",
    remediation="aws iam create-access-key --user-name USER; deploy the new key; "
    "aws iam update-access-key --user-name USER --access-key-id OLD --status Inactive; "
    "aws iam delete-access-key --user-name USER --access-key-id OLD",
    frameworks={"cis-aws-foundations": ["1.14"], "nist-800-53": ["IA-5(1)", "AC-2(1)"], "iso-27001": ["A.5.17"]},
    collections=["iam.credential_report"],
    iam_actions=REPORT,
    params={"access_key_max_age_days": 90},
)
def access_keys_rotated(facts: CloudFacts, params: Params) -> list[Finding]:
    """No active access key is older than ``access_key_max_age_days``."""
    limit = int(params["access_key_max_age_days"])

    def judge(r: CloudResource) -> Finding | None:
        keys = _active_keys(r)
        if not keys:
            return None
        now = _now(r)
        ages = {n: _days(parse_time(r.get(f"access_key_{n}_last_rotated")), now) for n in keys}
        old = {n: a for n, a in ages.items() if a is None or a > limit}
        if old:
            desc = ", ".join(f"key {n}: {'unknown age' if a is None else f'{a} days'}" for n, a in old.items())
            return Finding.failed(
                f"user {r.name} has access keys past {limit} days in {facts.where()} ({desc})",
                observed=desc,
                expected=f"<= {limit} days",
            )
        return Finding.passed(f"user {r.name}'s active keys are under {limit} days old in {facts.where()}")

    return _users(facts, judge)


@aws_check(
    id="aws.iam.unused_credentials_disabled",
    title="IAM credentials unused for too long are disabled",
    severity=Severity.MEDIUM,
    rationale="Passwords and keys nobody uses are rarely watched; disabling them removes a way in.",
    remediation="aws iam delete-login-profile --user-name USER (unused password); "
    "aws iam update-access-key --user-name USER --access-key-id KEY --status Inactive (unused key)",
    frameworks={"cis-aws-foundations": ["1.12"], "nist-800-53": ["AC-2(3)", "IA-4"], "iso-27001": ["A.5.18"]},
    collections=["iam.credential_report"],
    iam_actions=REPORT,
    params={"credentials_unused_days": 45},
)
def unused_credentials_disabled(facts: CloudFacts, params: Params) -> list[Finding]:
    """No enabled password or active key is unused for more than ``credentials_unused_days``.

    Never-used credentials count from when they were created (password set, key issued)."""
    limit = int(params["credentials_unused_days"])

    def judge(r: CloudResource) -> Finding | None:
        now, stale = _now(r), []
        if r.get("password_enabled") == "true":
            used = (
                parse_time(r.get("password_last_used"))
                or parse_time(r.get("password_last_changed"))
                or parse_time(r.get("user_creation_time"))
            )
            age = _days(used, now)
            if age is None or age > limit:
                stale.append(f"password unused {age if age is not None else '?'} days")
        for n in _active_keys(r):
            used = parse_time(r.get(f"access_key_{n}_last_used_date")) or parse_time(
                r.get(f"access_key_{n}_last_rotated")
            )
            age = _days(used, now)
            if age is None or age > limit:
                stale.append(f"key {n} unused {age if age is not None else '?'} days")
        if r.get("password_enabled") != "true" and not _active_keys(r):
            return None
        if stale:
            return Finding.failed(
                f"user {r.name} has stale credentials in {facts.where()}: {', '.join(stale)}",
                observed=", ".join(stale),
                expected=f"used within {limit} days or disabled",
            )
        return Finding.passed(f"user {r.name}'s credentials were used within {limit} days in {facts.where()}")

    return _users(facts, judge)


@aws_check(
    id="aws.iam.single_active_access_key",
    title="No IAM user has more than one active access key",
    severity=Severity.LOW,
    rationale="Two active keys usually means a rotation never finished, leaving an old key live.",
    remediation="aws iam list-access-keys --user-name USER; "
    "aws iam update-access-key --user-name USER --access-key-id OLD --status Inactive",
    frameworks={"cis-aws-foundations": ["1.13"], "nist-800-53": ["IA-5(1)", "AC-2"], "iso-27001": ["A.5.17"]},
    collections=["iam.credential_report"],
    iam_actions=REPORT,
)
def single_active_access_key(facts: CloudFacts, params: Params) -> list[Finding]:
    """At most one of access_key_1_active / access_key_2_active is true per user."""

    def judge(r: CloudResource) -> Finding | None:
        keys = _active_keys(r)
        if not keys:
            return None
        if len(keys) > 1:
            return Finding.failed(
                f"user {r.name} has {len(keys)} active access keys in {facts.where()}",
                observed=str(len(keys)),
                expected="1",
            )
        return Finding.passed(f"user {r.name} has one active access key in {facts.where()}")

    return _users(facts, judge)


def _password_policy(facts: CloudFacts, test: Any, what: str) -> list[Finding]:
    def judge(res: CloudResource) -> Finding:
        policy = res.part("policy")
        if policy is None:
            return Finding.failed(f"no IAM password policy in {facts.where()}", observed="no policy", expected=what)
        problem = test(policy)
        if problem:
            return Finding.failed(f"IAM password policy in {facts.where()}: {problem}", observed=problem, expected=what)
        return Finding.passed(f"IAM password policy in {facts.where()} requires {what}")

    return facts.each("iam.password_policy", judge, what="password policy")


PASSWORD = dict(
    collections=["iam.password_policy"],
    iam_actions=["iam:GetAccountPasswordPolicy"],
)


@aws_check(
    id="aws.iam.password_policy_min_length",
    title="The IAM password policy requires long passwords",
    severity=Severity.MEDIUM,
    rationale="Length is what makes passwords resist guessing and cracking.",
    remediation="aws iam update-account-password-policy --minimum-password-length {password_min_length}",
    frameworks={"cis-aws-foundations": ["1.8"], "nist-800-53": ["IA-5(1)"], "iso-27001": ["A.5.17"]},
    params={"password_min_length": 14},
    **PASSWORD,
)
def password_policy_min_length(facts: CloudFacts, params: Params) -> list[Finding]:
    """MinimumPasswordLength is at least ``password_min_length``."""
    need = int(params["password_min_length"])

    def test(policy: Mapping[str, Any]) -> str:
        have = int(policy.get("MinimumPasswordLength", 0))
        return f"minimum length {have}" if have < need else ""

    return _password_policy(facts, test, f"at least {need} characters")


@aws_check(
    id="aws.iam.password_policy_reuse_prevention",
    title="The IAM password policy prevents password reuse",
    severity=Severity.LOW,
    rationale="Reusing a previous (possibly leaked) password undoes a forced change.",
    remediation="aws iam update-account-password-policy --password-reuse-prevention {password_reuse_prevention}",
    frameworks={"cis-aws-foundations": ["1.9"], "nist-800-53": ["IA-5(1)"], "iso-27001": ["A.5.17"]},
    params={"password_reuse_prevention": 24},
    **PASSWORD,
)
def password_policy_reuse_prevention(facts: CloudFacts, params: Params) -> list[Finding]:
    """PasswordReusePrevention remembers at least ``password_reuse_prevention`` passwords."""
    need = int(params["password_reuse_prevention"])

    def test(policy: Mapping[str, Any]) -> str:
        have = int(policy.get("PasswordReusePrevention", 0))
        return f"remembers {have} passwords" if have < need else ""

    return _password_policy(facts, test, f"no reuse of the last {need} passwords")


@aws_check(
    id="aws.iam.password_policy_complexity",
    title="The IAM password policy requires mixed character classes",
    severity=Severity.LOW,
    rationale="Requiring upper and lower case, digits and symbols stops the most common weak passwords.",
    remediation="aws iam update-account-password-policy --require-uppercase-characters "
    "--require-lowercase-characters --require-numbers --require-symbols",
    frameworks={"nist-800-53": ["IA-5(1)"], "iso-27001": ["A.5.17"]},
    **PASSWORD,
)
def password_policy_complexity(facts: CloudFacts, params: Params) -> list[Finding]:
    """The policy requires uppercase, lowercase, numbers and symbols."""
    keys = ("RequireUppercaseCharacters", "RequireLowercaseCharacters", "RequireNumbers", "RequireSymbols")

    def test(policy: Mapping[str, Any]) -> str:
        missing = [k for k in keys if not policy.get(k)]
        return f"{', '.join(missing)} off" if missing else ""

    return _password_policy(facts, test, "upper, lower, numbers and symbols")


@aws_check(
    id="aws.iam.policies_no_full_admin",
    title="No customer-managed IAM policy allows *:* on *",
    severity=Severity.HIGH,
    rationale="Full-admin policies defeat least privilege; grant the actions a role needs instead.",
    remediation="Find where it is attached: aws iam list-entities-for-policy --policy-arn ARN; detach it "
    "(aws iam detach-user-policy / detach-role-policy / detach-group-policy) and replace it with a scoped policy, "
    "then aws iam delete-policy --policy-arn ARN",
    frameworks={"cis-aws-foundations": ["1.16"], "nist-800-53": ["AC-6", "AC-6(1)"], "iso-27001": ["A.8.2", "A.5.15"]},
    collections=["iam.policies"],
    iam_actions=["iam:ListPolicies", "iam:GetPolicyVersion"],
)
def policies_no_full_admin(facts: CloudFacts, params: Params) -> list[Finding]:
    """No customer-managed policy's default version allows Action * on Resource *."""

    def judge(p: CloudResource) -> Finding:
        attached = int(p.get("policy", {}).get("AttachmentCount", 0))
        if grants_full_admin(p.part("document")):
            return Finding.failed(
                f"policy {p.name} allows *:* ({attached} attachment(s)) in {facts.where()}",
                observed="Action * on Resource *",
                expected="scoped actions",
            )
        return Finding.passed(f"policy {p.name} does not allow *:* in {facts.where()}")

    return facts.each("iam.policies", judge, what="customer-managed policies")


@aws_check(
    id="aws.iam.users_no_attached_policies",
    title="IAM users get permissions only through groups or roles",
    severity=Severity.LOW,
    rationale="Policies attached to single users are hard to review and forgotten when people change roles.",
    remediation="aws iam add-user-to-group --user-name USER --group-name GROUP; then "
    "aws iam detach-user-policy --user-name USER --policy-arn ARN and "
    "aws iam delete-user-policy --user-name USER --policy-name NAME",
    frameworks={"cis-aws-foundations": ["1.15"], "nist-800-53": ["AC-2", "AC-6"], "iso-27001": ["A.5.15", "A.5.18"]},
    collections=["iam.users"],
    iam_actions=["iam:ListUsers", "iam:ListAttachedUserPolicies", "iam:ListUserPolicies"],
)
def users_no_attached_policies(facts: CloudFacts, params: Params) -> list[Finding]:
    """No user has managed policies attached or inline policies of its own."""

    def judge(u: CloudResource) -> Finding:
        attached = [p.get("PolicyName", "?") for p in u.part("attached") or []]
        inline = list(u.part("inline") or [])
        if attached or inline:
            names = ", ".join([*attached, *(f"{n} (inline)" for n in inline)])
            return Finding.failed(
                f"user {u.name} has policies of its own in {facts.where()}: {names}",
                observed=names,
                expected="none (use groups)",
            )
        return Finding.passed(f"user {u.name} has no policies of its own in {facts.where()}")

    return facts.each("iam.users", judge, what="IAM users")
