"""Notifications: real SMTP (aiosmtpd, STARTTLS, AUTH) and HTTP webhook servers on 127.0.0.1."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from itops.model import Evidence, Result, Run, Severity, Status
from itops.report.diff import diff_results
from itops.scheduler.config import EmailSpec, NotifierSpec, NotifyRule, WebhookSpec
from itops.scheduler.notify import JobEvent, compose, deliver, with_retries

NOW = time.time()


def _result(run_id: str, check: str, target: str, status: Status, message: str = "msg", resource: str = "") -> Result:
    return Result(
        run_id=run_id,
        check_id=check,
        target=target,
        resource=resource,
        status=status,
        severity=Severity.HIGH,
        message=message,
        evidence=Evidence(),
    )


def _event(tmp_path: Path, *, previous: bool = True, report: bool = True) -> JobEvent:
    prev_run = Run(
        id="20260101T000000Z-aaaaaa",
        kind="backup",
        started=NOW - 7200,
        finished=NOW - 7190,
        counts={"PASS": 1, "FAIL": 1},
    )
    run = Run(
        id="20260101T010000Z-bbbbbb", kind="backup", started=NOW - 60, finished=NOW - 50, counts={"PASS": 1, "FAIL": 2}
    )
    before = [
        _result(prev_run.id, "backup.within_rpo", "files-stale", Status.FAIL, "newest backup is 3d old, RPO 26h"),
        _result(prev_run.id, "backup.within_rpo", "files-db", Status.PASS),
        _result(prev_run.id, "backup.integrity_ok", "files-logs", Status.FAIL, "gzip -t failed"),
    ]
    after = [
        _result(run.id, "backup.within_rpo", "files-stale", Status.FAIL, "newest backup is 3d old, RPO 26h"),
        _result(run.id, "backup.within_rpo", "files-db", Status.FAIL, "newest backup is 2d old, RPO 26h"),
        _result(run.id, "backup.integrity_ok", "files-logs", Status.PASS, "gzip -t ok"),
    ]
    report_path = tmp_path / "nightly-report.html"
    report_path.write_text("<html><body>the report</body></html>")
    return JobEvent(
        job="nightly-backups",
        command="backup-verify",
        where="inventory/prod.yaml",
        state="complete",
        exit_code=1,
        started=NOW - 60,
        finished=NOW - 50,
        run=run,
        results=after,
        previous_run=prev_run if previous else None,
        previous_exit=1 if previous else None,
        diff=diff_results(prev_run, before, run, after) if previous else None,
        since={
            ("backup.within_rpo", "files-stale", ""): (prev_run.started, prev_run.id),
            ("backup.within_rpo", "files-db", ""): (run.started, run.id),
        },
        report_path=report_path if report else None,
        report_url="https://itops.example.com/reports/nightly-report.html" if report else None,
    )


def test_message_says_what_failed_where_since_when_and_links_the_report(tmp_path):
    msg = compose(_event(tmp_path))
    assert msg.subject.startswith("[itops] FAILED: job nightly-backups (backup-verify) - 2 failures, 1 new, 1 fixed")
    text = msg.text
    assert "NEW FAILURES (1)" in text and "files-db  backup.within_rpo: newest backup is 2d old" in text
    assert "STILL FAILING (1)" in text
    assert "files-stale  backup.within_rpo: newest backup is 3d old, RPO 26h  [failing since" in text
    assert "run 20260101T000000Z-aaaaaa]" in text  # since when: the first run of the streak
    assert "FIXED (1)" in text and "files-logs" in text
    assert "Report: https://itops.example.com/reports/nightly-report.html" in text
    doc = msg.document
    assert doc["schema"] == "itops.notification/1" and doc["verdict"] == "FAILED"
    assert [f["target"] for f in doc["new_failures"]] == ["files-db"]
    assert doc["failing"][1]["since_run"] == "20260101T000000Z-aaaaaa"


def test_change_detection(tmp_path):
    ev = _event(tmp_path)
    assert ev.changed  # a new failure and a fix
    first = _event(tmp_path, previous=False)
    assert first.changed  # the first run, with failures
    same_run = Run(id="r2", kind="backup", started=NOW, finished=NOW)
    results = [_result("r2", "backup.within_rpo", "a", Status.FAIL)]
    prev = [_result("r1", "backup.within_rpo", "a", Status.FAIL)]
    steady = JobEvent(
        "j",
        "backup-verify",
        "inv",
        "complete",
        1,
        NOW,
        NOW,
        run=same_run,
        results=results,
        previous_run=same_run,
        previous_exit=1,
        diff=diff_results(same_run, prev, same_run, results),
    )
    assert not steady.changed  # still failing the same way: no change
    ok = JobEvent("j", "audit", "inv", "complete", 0, NOW, NOW, previous_exit=0)
    assert not ok.changed and not ok.failed
    broke = JobEvent("j", "audit", "inv", "error", None, NOW, NOW, previous_exit=0, error="could not start")
    assert broke.changed and broke.failed


def _email(sink, **kw) -> NotifierSpec:
    spec = {
        "host": "127.0.0.1",
        "port": sink.port,
        "starttls": False,
        "from": "itops@example.com",
        "to": ["ops@example.com", "dba@example.com"],
        **kw,
    }
    return NotifierSpec(name="mail", email=EmailSpec.model_validate(spec), retries=1, backoff=0.01)


def test_email_reaches_the_local_smtp_server_with_the_report_attached(smtp, tmp_path):
    records = deliver(_event(tmp_path), [NotifyRule(to="mail", when="failure")], {"mail": _email(smtp)})
    assert [(r.ok, r.attempts) for r in records] == [(True, 1)]
    (mail,) = smtp.wait_for(1)
    assert mail["Subject"].startswith("[itops] FAILED: job nightly-backups")
    assert mail["To"] == "ops@example.com, dba@example.com"
    body = mail.get_body(("plain",)).get_content()
    assert "files-db" in body and "failing since" in body
    (attachment,) = list(mail.iter_attachments())
    assert attachment.get_filename() == "nightly-report.html"
    assert b"the report" in attachment.get_content().encode()


def test_starttls_and_login_with_the_password_from_the_environment(smtp_tls, tmp_path, monkeypatch):
    monkeypatch.setenv("ITOPS_TEST_SMTP_PW", "mail-secret-1234")
    spec = _email(
        smtp_tls, starttls=True, cafile=str(smtp_tls.cafile), username="itops", password_env="ITOPS_TEST_SMTP_PW"
    )
    records = deliver(_event(tmp_path), [NotifyRule(to="mail", when="always")], {"mail": spec})
    assert records[0].ok, records[0].error
    assert smtp_tls.wait_for(1) and smtp_tls.logins == ["itops"]


def test_password_file_and_wrong_password_is_not_retried(smtp_tls, tmp_path):
    pw = tmp_path / "smtp-password"
    pw.write_text("wrong-password\n")
    pw.chmod(0o600)
    spec = _email(smtp_tls, starttls=True, cafile=str(smtp_tls.cafile), username="itops", password_file=str(pw))
    spec = spec.model_copy(update={"retries": 3})
    (record,) = deliver(_event(tmp_path), [NotifyRule(to="mail", when="always")], {"mail": spec})
    assert not record.ok and record.attempts == 1 and "authentication failed" in record.error
    assert smtp_tls.messages == []


def test_untrusted_certificate_is_refused(smtp_tls, tmp_path, monkeypatch):
    monkeypatch.setenv("ITOPS_TEST_SMTP_PW", "mail-secret-1234")
    spec = _email(smtp_tls, starttls=True, username="itops", password_env="ITOPS_TEST_SMTP_PW")  # no cafile
    (record,) = deliver(_event(tmp_path), [NotifyRule(to="mail", when="always")], {"mail": spec})
    assert not record.ok and "not trusted" in record.error


def _hook(url: str, fmt: str = "slack", retries: int = 2) -> NotifierSpec:
    return NotifierSpec(name="hook", webhook=WebhookSpec(url=url, format=fmt), retries=retries, backoff=0.01)


def test_webhook_receives_slack_and_generic_json(hook_factory, tmp_path):
    hook = hook_factory()
    notifiers = {"slack": _hook(hook.url), "json": _hook(hook.url, "json")}
    rules = [NotifyRule(to="slack", when="change"), NotifyRule(to="json", when="always")]
    records = deliver(_event(tmp_path), rules, notifiers)
    assert [r.ok for r in records] == [True, True]
    slack, generic = hook.wait_for(2)
    assert set(slack["json"]) == {"text", "username"} and "FAILED: job nightly-backups" in slack["json"]["text"]
    assert slack["type"] == "application/json"
    assert generic["json"]["schema"] == "itops.notification/1"
    assert generic["json"]["report_url"].endswith("nightly-report.html")


def test_webhook_500_is_retried_with_backoff_then_recorded(hook_factory, tmp_path):
    hook = hook_factory([500])
    waits: list[float] = []
    (record,) = deliver(
        _event(tmp_path), [NotifyRule(to="hook", when="always")], {"hook": _hook(hook.url)}, sleep=waits.append
    )
    assert not record.ok and record.attempts == 3 and "HTTP 500" in record.error
    assert len(hook.posts) == 3 and waits == [0.01, 0.02]


def test_webhook_recovers_after_a_503(hook_factory, tmp_path):
    hook = hook_factory([503, 200])
    (record,) = deliver(
        _event(tmp_path), [NotifyRule(to="hook", when="always")], {"hook": _hook(hook.url)}, sleep=lambda s: None
    )
    assert record.ok and record.attempts == 2


def test_webhook_4xx_is_not_retried(hook_factory, tmp_path):
    hook = hook_factory([404])
    (record,) = deliver(
        _event(tmp_path), [NotifyRule(to="hook", when="always")], {"hook": _hook(hook.url)}, sleep=lambda s: None
    )
    assert not record.ok and record.attempts == 1 and len(hook.posts) == 1


def test_rules_pick_what_is_sent(hook_factory, tmp_path):
    hook = hook_factory()
    ok = JobEvent("j", "audit", "inv", "complete", 0, NOW, NOW, previous_exit=0)
    rules = [NotifyRule(to="hook", when="failure"), NotifyRule(to="hook", when="change")]
    assert deliver(ok, rules, {"hook": _hook(hook.url)}) == []
    assert len(deliver(ok, [NotifyRule(to="hook", when="always")], {"hook": _hook(hook.url)})) == 1


def test_with_retries_gives_up_after_the_budget():
    calls = []

    def send() -> None:
        calls.append(1)
        raise ConnectionRefusedError("refused")

    attempts, error = with_retries(send, retries=4, backoff=1.0, sleep=lambda s: None)
    assert attempts == 5 and len(calls) == 5 and "refused" in error


@pytest.mark.parametrize("when", ["always"])
def test_webhook_url_from_env_is_a_secret(hook_factory, tmp_path, monkeypatch, when):
    hook = hook_factory()
    monkeypatch.setenv("ITOPS_TEST_HOOK_URL", hook.url)
    spec = NotifierSpec(name="hook", webhook=WebhookSpec(url_env="ITOPS_TEST_HOOK_URL"), retries=0)
    (record,) = deliver(_event(tmp_path), [NotifyRule(to="hook", when=when)], {"hook": spec})
    assert record.ok and json.dumps(hook.wait_for(1)[0]["json"])


def test_failed_notifications_never_change_the_jobs_result(hook_factory, tmp_path):
    """A job run by the scheduler code path: its exit status and run survive a 500 webhook and a dead SMTP server."""
    import socket
    import textwrap

    from itops.scheduler import load_schedule
    from itops.scheduler.execute import JobContext, execute_job
    from itops.store import Store

    hook = hook_factory([500])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    (tmp_path / "tick.yaml").write_text(
        textwrap.dedent("""\
        name: tick
        description: a local step
        systems: [none]
        rto: 1m
        rpo: 1h
        owner: tests
        steps: [{name: work, local: "true"}]
    """)
    )
    (tmp_path / "schedule.yaml").write_text(
        textwrap.dedent(f"""\
        version: 1
        store: store
        notifiers:
          hook: {{webhook: {{url: "{hook.url}", format: json}}, retries: 2, backoff: 0.01s}}
          mail: {{email: {{host: 127.0.0.1, port: {dead_port}, starttls: false, from: a@example.com,
                         to: [b@example.com], timeout: 2s}}, retries: 1, backoff: 0.01s}}
        jobs:
          tick: {{cron: "0 3 * * *", command: dr-drill, playbook: tick.yaml,
                 notify: [{{to: hook, when: always}}, {{to: mail, when: always}}]}}
    """)
    )
    ctx = JobContext.create(load_schedule(tmp_path / "schedule.yaml"))
    outcome = execute_job(ctx, "tick")
    assert outcome.state == "complete" and outcome.exit_code == 0 and outcome.run_id
    assert Store(tmp_path / "store").get_run(outcome.run_id).exit_code == 0
    by = {n["notifier"]: n for n in outcome.notifications}
    assert not by["hook"]["ok"] and by["hook"]["attempts"] == 3 and len(hook.posts) == 3
    assert not by["mail"]["ok"] and by["mail"]["attempts"] == 2 and "refused" in by["mail"]["error"].lower()
    (row,) = ctx.history.rows("tick")
    assert row.exit_code == 0 and row.notifications == outcome.notifications


HOSTILE = "<!channel> <!here> <@U123> <http://evil.example|click> & ```*bold*```"


def test_slack_webhook_text_is_escaped_for_slack_markup(hook_factory, tmp_path):
    """Text from hosts (a check message, the command's output, an error) must not ping or link in Slack."""
    event = _event(tmp_path)
    event.results = [*event.results, _result(event.run.id, "files.motd", "web1", Status.FAIL, HOSTILE)]
    event.error = f"host said {HOSTILE}"
    hook = hook_factory()
    (record,) = deliver(event, [NotifyRule(to="hook", when="always")], {"hook": _hook(hook.url)})
    assert record.ok, record.error
    (post,) = hook.wait_for(1)
    text = post["json"]["text"]
    assert "&lt;!channel&gt; &lt;!here&gt; &lt;@U123&gt; &lt;http://evil.example|click&gt; &amp;" in text
    assert "<" not in text and ">" not in text  # nothing Slack could read as a mention or a link
    assert text.count("```") == 2  # host text cannot close the code block and format the rest
    assert text.startswith("*[itops] FAILED") and text.endswith("\n```")


def test_slack_escaping_of_an_unrun_command_output(hook_factory, tmp_path):
    event = JobEvent("j", "audit", "inv", "error", None, NOW, NOW, stderr=f"line one\n{HOSTILE}\n")
    hook = hook_factory()
    deliver(event, [NotifyRule(to="hook", when="always")], {"hook": _hook(hook.url)})
    (post,) = hook.wait_for(1)
    assert "&lt;!here&gt;" in post["json"]["text"] and "<!" not in post["json"]["text"]


def _schedule(tmp_path: Path, email: str) -> Path:
    (tmp_path / "tick.yaml").write_text(
        "name: tick\ndescription: d\nsystems: [none]\nrto: 1m\nrpo: 1h\n"
        "owner: tests\nsteps: [{name: work, local: 'true'}]\n"
    )
    path = tmp_path / "schedule.yaml"
    path.write_text(
        "version: 1\nnotifiers:\n  mail:\n    email: " + email + "\n"
        "jobs:\n  tick: {cron: '0 3 * * *', command: dr-drill, playbook: tick.yaml, notify: [mail]}\n"
    )
    return path


def test_smtp_login_without_tls_is_refused_at_load(smtp_plain_auth, tmp_path):
    from itops.errors import ConfigError
    from itops.scheduler import load_schedule

    email = (
        f"{{host: 127.0.0.1, port: {smtp_plain_auth.port}, starttls: false, from: a@example.com, "
        "to: [b@example.com], username: itops, password_env: ITOPS_TEST_SMTP_PW}"
    )
    with pytest.raises(ConfigError) as err:
        load_schedule(_schedule(tmp_path, email))
    (problem,) = err.value.problems
    assert problem.path == "notifiers.mail.email" and problem.line == 4
    assert "allow_plaintext: true" in problem.message and "in clear" in problem.message
    assert "starttls: true" in problem.message


def test_smtp_login_without_tls_never_reaches_the_server(smtp_plain_auth, tmp_path, monkeypatch):
    """Even a spec that skipped validation (model_copy) does not log in over a clear connection."""
    monkeypatch.setenv("ITOPS_TEST_SMTP_PW", "mail-secret-1234")
    spec = _email(smtp_plain_auth, starttls=True, username="itops", password_env="ITOPS_TEST_SMTP_PW")
    assert spec.email is not None
    spec = spec.model_copy(update={"email": spec.email.model_copy(update={"starttls": False})})
    (record,) = deliver(_event(tmp_path), [NotifyRule(to="mail", when="always")], {"mail": spec})
    assert not record.ok and "allow_plaintext" in record.error
    assert smtp_plain_auth.passwords_seen == [] and smtp_plain_auth.messages == []


def test_smtp_plaintext_login_when_allowed(smtp_plain_auth, tmp_path, monkeypatch):
    from itops.scheduler import load_schedule

    monkeypatch.setenv("ITOPS_TEST_SMTP_PW", "mail-secret-1234")
    email = (
        f"{{host: 127.0.0.1, port: {smtp_plain_auth.port}, starttls: false, allow_plaintext: true, "
        "from: a@example.com, to: [b@example.com], username: itops, password_env: ITOPS_TEST_SMTP_PW}"
    )
    schedule = load_schedule(_schedule(tmp_path, email))
    (record,) = deliver(_event(tmp_path), [NotifyRule(to="mail", when="always")], schedule.notifiers)
    assert record.ok, record.error
    assert smtp_plain_auth.logins == ["itops"] and smtp_plain_auth.wait_for(1)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604], ids=oct)
def test_smtp_password_file_readable_by_others_is_refused(smtp_tls, tmp_path, mode):
    """The same 0600 rule as the SSH password_file: a right password in an open file is not used."""
    pw = tmp_path / "smtp-password"
    pw.write_text("mail-secret-1234\n")
    pw.chmod(mode)
    spec = _email(smtp_tls, starttls=True, cafile=str(smtp_tls.cafile), username="itops", password_file=str(pw))
    (record,) = deliver(_event(tmp_path), [NotifyRule(to="mail", when="always")], {"mail": spec})
    assert not record.ok and record.attempts == 1
    assert f"password_file {pw}" in record.error and f"{mode:04o}" in record.error
    assert f"chmod 600 {pw}" in record.error and "mail-secret-1234" not in record.error
    assert smtp_tls.logins == [] and smtp_tls.messages == []
    pw.chmod(0o600)
    (record,) = deliver(_event(tmp_path), [NotifyRule(to="mail", when="always")], {"mail": spec})
    assert record.ok, record.error
    assert smtp_tls.logins == ["itops"]


def test_webhook_url_file_readable_by_others_is_refused(hook_factory, tmp_path):
    hook = hook_factory()
    url_file = tmp_path / "hook-url"
    url_file.write_text(hook.url + "\n")
    url_file.chmod(0o644)
    spec = NotifierSpec(name="hook", webhook=WebhookSpec(url_file="hook-url"), retries=2, backoff=0.01)
    (record,) = deliver(_event(tmp_path), [NotifyRule(to="hook", when="always")], {"hook": spec}, base=tmp_path)
    assert not record.ok and record.attempts == 1
    assert f"url_file {url_file}" in record.error and f"chmod 600 {url_file}" in record.error
    assert hook.url not in record.error and hook.posts == []
    url_file.chmod(0o600)
    (record,) = deliver(_event(tmp_path), [NotifyRule(to="hook", when="always")], {"hook": spec}, base=tmp_path)
    assert record.ok, record.error
    assert len(hook.wait_for(1)) == 1
