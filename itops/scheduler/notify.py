"""Notifications of scheduled jobs: email (SMTP with STARTTLS) and webhooks (Slack-compatible or JSON).

A job's result is decided before anything is sent; sending only reads it. Each delivery is
retried with exponential backoff on errors that may pass (connection refused, timeouts,
HTTP 5xx/429, SMTP 4xx) and given up at once on those that will not (HTTP 4xx, SMTP 5xx,
authentication). A delivery that still fails is logged and recorded in the job's history;
it never changes the job's exit status or hides its result.

The message says what failed (check, severity, message), where (target, resource), since
when (the first of the job's consecutive runs in which it failed), what changed since the
job's previous run (new failures, fixed), and links the rendered report (``reports.url``)
or attaches it (email).
"""

from __future__ import annotations

import functools
import json
import logging
import mimetypes
import os
import re
import smtplib
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from itops import plugins
from itops.errors import SecretFileError
from itops.model import Result, Run, Status
from itops.redact import redact, register_secret
from itops.report.diff import RunDiff
from itops.scheduler.config import PLAINTEXT_LOGIN, EmailSpec, NotifierSpec, NotifyRule, WebhookSpec
from itops.secretfile import read_secret_file

log = logging.getLogger(__name__)

MAX_BACKOFF = 300.0
MAX_LISTED = 25  # failures listed in one message; the report has them all
EXIT_MEANING = {
    0: "ok",
    1: "failures found",
    2: "usage error",
    3: "incomplete",
    4: "invalid configuration",
    70: "internal error",
}

Key = tuple[str, str, str]


@dataclass
class JobEvent:
    """One finished execution of a job, as the notifications describe it."""

    job: str
    command: str
    where: str  # the inventory / playbook / store the job works on
    state: str
    exit_code: int | None
    started: float
    finished: float
    run: Run | None = None
    results: Sequence[Result] = ()
    previous_run: Run | None = None
    previous_exit: int | None = None  # the job's previous execution (None: first, or unknown)
    diff: RunDiff | None = None
    since: dict[Key, tuple[float, str]] = field(default_factory=dict)  # failing key -> (first failing, run id)
    report_path: Path | None = None
    report_url: str | None = None
    error: str = ""
    stderr: str = ""

    @property
    def failed(self) -> bool:
        return self.state != "complete" or self.exit_code != 0

    @property
    def failures(self) -> list[Result]:
        return [r for r in self.results if r.status is Status.FAIL]

    def new_failures(self) -> list[Result]:
        if self.diff is None:
            return self.failures if self.previous_run is None else []
        return [c.current for k in ("new_failures", "regressed") for c in self.diff.changes[k]]

    def fixed(self) -> list[Result]:
        return [c.current for c in self.diff.changes["fixed"]] if self.diff else []

    @property
    def changed(self) -> bool:
        """New failures, regressions, fixes, new errors/unreachable targets, or the job's verdict flipped."""
        if self.diff is not None:
            keys = ("new_failures", "regressed", "fixed", "newly_unreachable", "new_errors")
            if any(self.diff.changes[k] for k in keys):
                return True
        if self.previous_exit is None:
            return self.failed and self.previous_run is None  # the job's first run: a change only when wrong
        return (self.previous_exit == 0) == self.failed


def wanted(rule: NotifyRule, event: JobEvent) -> bool:
    if rule.when == "always":
        return True
    if rule.when == "failure":
        return event.failed
    return event.changed


# --- the message --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    subject: str
    text: str
    document: dict[str, Any]


def _ts(value: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(value)) if value else "-"


def _where(r: Result) -> str:
    return f"{r.target} ({r.resource})" if r.resource else r.target


def _item(r: Result, since: tuple[float, str] | None) -> dict[str, Any]:
    return {
        "check_id": r.check_id,
        "target": r.target,
        "resource": r.resource,
        "severity": r.severity.value,
        "status": r.status.value,
        "message": redact(r.message),
        "since": _ts(since[0]) if since else None,
        "since_run": since[1] if since else None,
    }


def compose(event: JobEvent) -> Message:
    """Subject, plain text and JSON document for one job event."""
    failures = sorted(event.failures, key=lambda r: (-r.severity.rank, r.target, r.check_id))
    new_keys = {r.key for r in event.new_failures()}
    fixed = event.fixed()
    meaning = EXIT_MEANING.get(event.exit_code or 0, "") if event.exit_code is not None else event.state
    if not event.failed:
        verdict = "FIXED" if fixed else "OK"
    elif event.state not in ("complete",):
        verdict = event.state.upper()
    else:
        verdict = "FAILED"
    counts = f"{len(failures)} failure{'s' if len(failures) != 1 else ''}"
    extra = f", {len(new_keys)} new" if new_keys else ""
    extra += f", {len(fixed)} fixed" if fixed else ""
    subject = f"[itops] {verdict}: job {event.job} ({event.command}) - {counts}{extra}"
    lines = [
        f"Job {event.job} ({event.command} on {event.where}) finished: exit {event.exit_code} ({meaning}), "
        f"state {event.state}.",
        f"Started {_ts(event.started)}, took {event.finished - event.started:.1f}s.",
    ]
    if event.run is not None:
        lines.append(
            f"Run {event.run.id} (kind {event.run.kind}); counts: "
            + ", ".join(f"{k} {v}" for k, v in event.run.counts.items() if v)
        )
    if event.previous_run is not None:
        prev = event.previous_run
        lines.append(
            f"Compared with the job's previous run {prev.id} ({_ts(prev.started)}): "
            f"{len(new_keys)} new failure(s), {len(fixed)} fixed."
        )
    if event.error:
        lines += ["", f"ERROR: {redact(event.error)}"]
    if event.run is None and event.stderr.strip():
        tail = redact(event.stderr).strip().splitlines()[-10:]
        lines += ["", "Last output of the command:", *("  " + ln for ln in tail)]

    def section(title: str, items: Sequence[Result], with_since: bool) -> None:
        if not items:
            return
        lines.extend(["", f"{title} ({len(items)})"])
        for r in items[:MAX_LISTED]:
            since = event.since.get(r.key) if with_since else None
            tail = f"  [failing since {_ts(since[0])}, run {since[1]}]" if since else ""
            lines.append(f"  [{r.severity.value}] {_where(r)}  {r.check_id}: {redact(r.message)}{tail}")
        if len(items) > MAX_LISTED:
            lines.append(f"  ... and {len(items) - MAX_LISTED} more (see the report)")

    section("NEW FAILURES", [r for r in failures if r.key in new_keys], True)
    section("STILL FAILING", [r for r in failures if r.key not in new_keys], True)
    section("FIXED", fixed, False)
    not_assessed = [r for r in event.results if r.status in (Status.ERROR, Status.UNREACHABLE)]
    section("NOT ASSESSED (error / unreachable)", not_assessed, False)
    if event.report_url:
        lines += ["", f"Report: {event.report_url}"]
    elif event.report_path is not None:
        lines += ["", f"Report: {event.report_path} (attached to e-mails)"]
    doc = {
        "schema": "itops.notification/1",
        "job": event.job,
        "command": event.command,
        "where": event.where,
        "verdict": verdict,
        "state": event.state,
        "exit_code": event.exit_code,
        "started": _ts(event.started),
        "finished": _ts(event.finished),
        "run_id": event.run.id if event.run else None,
        "previous_run_id": event.previous_run.id if event.previous_run else None,
        "counts": event.run.counts if event.run else {},
        "new_failures": [_item(r, event.since.get(r.key)) for r in failures if r.key in new_keys],
        "failing": [_item(r, event.since.get(r.key)) for r in failures],
        "fixed": [_item(r, None) for r in fixed],
        "error": redact(event.error) or None,
        "report_url": event.report_url,
        "report_file": str(event.report_path) if event.report_path else None,
    }
    return Message(subject, "\n".join(lines) + "\n", doc)


# --- delivery -----------------------------------------------------------------------------------------


class PermanentError(Exception):
    """A delivery error that retrying will not fix (HTTP 4xx, SMTP 5xx, bad credentials)."""


@dataclass
class Delivery:
    """What one notification did; stored in the job's history."""

    notifier: str
    channel: str
    when: str
    ok: bool
    attempts: int
    error: str = ""
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _secret(env: str | None, file: str | None, base: Path | None, file_key: str) -> str | None:
    """The secret from ``env`` or from ``file`` (``file_key``: refused unless private, as SSH's password_file)."""
    value = None
    if env:
        value = os.environ.get(env)
        if not value:
            raise PermanentError(f"environment variable {env} is not set")
    elif file:
        path = Path(file).expanduser()
        path = path if path.is_absolute() or base is None else base / path
        try:
            value = read_secret_file(path, file_key).strip()
        except SecretFileError as exc:
            raise PermanentError(f"{exc}; {exc.hint}" if exc.hint else str(exc)) from exc
    if value:
        register_secret(value)
    return value


def send_email(spec: EmailSpec, message: Message, attachment: Path | None, base: Path | None = None) -> None:
    """One SMTP delivery (STARTTLS unless ``ssl``/``starttls: false``); raises on failure.

    A login without TLS happens only with ``allow_plaintext``; otherwise it is refused before connecting.
    """
    mail = EmailMessage()
    mail["Subject"] = message.subject
    mail["From"] = spec.sender
    mail["To"] = ", ".join(spec.to)
    mail["X-Itops-Job"] = str(message.document.get("job", ""))
    mail.set_content(message.text)
    if attachment is not None and spec.attach_report and attachment.is_file():
        ctype = mimetypes.guess_type(attachment.name)[0] or "application/octet-stream"
        main, _, sub = ctype.partition("/")
        mail.add_attachment(attachment.read_bytes(), maintype=main, subtype=sub, filename=attachment.name)
    if spec.plaintext_login and not spec.allow_plaintext:  # validation refuses it; a copied spec may not be
        raise PermanentError(PLAINTEXT_LOGIN)
    password = _secret(spec.password_env, spec.password_file, base, "password_file")
    context = ssl.create_default_context(cafile=spec.cafile)
    try:
        smtp: smtplib.SMTP
        if spec.ssl:
            smtp = smtplib.SMTP_SSL(spec.host, spec.port, timeout=spec.timeout, context=context)
        else:
            smtp = smtplib.SMTP(spec.host, spec.port, timeout=spec.timeout)
        with smtp:
            smtp.ehlo()
            if spec.starttls:
                smtp.starttls(context=context)
                smtp.ehlo()
            if spec.username:
                smtp.login(spec.username, password or "")
            smtp.send_message(mail)
    except smtplib.SMTPAuthenticationError as exc:
        raise PermanentError(f"SMTP authentication failed: {exc.smtp_code} {exc.smtp_error!r}") from exc
    except smtplib.SMTPNotSupportedError as exc:
        raise PermanentError(f"SMTP server: {exc}") from exc
    except smtplib.SMTPResponseException as exc:
        if exc.smtp_code >= 500:
            raise PermanentError(f"SMTP server refused: {exc.smtp_code} {exc.smtp_error!r}") from exc
        raise
    except smtplib.SMTPRecipientsRefused as exc:
        raise PermanentError(f"SMTP server refused the recipients: {exc.recipients}") from exc
    except ssl.SSLCertVerificationError as exc:
        raise PermanentError(f"TLS certificate of {spec.host} not trusted: {exc.verify_message}") from exc


_SLACK_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_FENCE = re.compile(r"`{3,}")


def slack_escape(text: str) -> str:
    """``text`` shown as itself in Slack: no mention, channel ping or link, and no end of the code block.

    Slack reads ``<!channel>``, ``<@U123>`` and ``<http://x|label>`` as markup and asks clients to
    escape exactly ``&``, ``<`` and ``>`` (api.slack.com/reference/surfaces/formatting#escaping).
    A run of three backticks would close the code block the message is shown in, so it is split
    with zero-width spaces.
    """
    return _FENCE.sub(lambda m: "\u200b".join(m.group()), text.translate(_SLACK_ESCAPES))


def webhook_payload(spec: WebhookSpec, message: Message) -> dict[str, Any]:
    """The JSON body: the ``itops.notification/1`` document as is, or Slack text with every piece escaped."""
    if spec.format == "json":
        return message.document
    subject, text = slack_escape(message.subject), slack_escape(message.text.strip())
    return {"text": f"*{subject}*\n```\n{text}\n```", "username": "itops"}


def send_webhook(spec: WebhookSpec, message: Message, base: Path | None = None) -> None:
    """One HTTP POST; raises PermanentError on 4xx (except 408/429), another error when a retry may help."""
    url = spec.url or _secret(spec.url_env, spec.url_file, base, "url_file")
    if not url:
        raise PermanentError("no webhook URL")
    body = json.dumps(webhook_payload(spec, message)).encode()
    request = urllib.request.Request(  # noqa: S310 - the scheme is validated (http/https) below
        url, data=body, method="POST", headers={"Content-Type": "application/json", "User-Agent": "itops"}
    )
    if not url.startswith(("http://", "https://")):
        raise PermanentError("webhook URL must be http:// or https://")
    try:
        with urllib.request.urlopen(request, timeout=spec.timeout) as response:  # noqa: S310
            response.read(65536)
    except urllib.error.HTTPError as exc:
        if 400 <= exc.code < 500 and exc.code not in (408, 429):
            raise PermanentError(f"webhook answered HTTP {exc.code} {exc.reason}") from exc
        raise OSError(f"webhook answered HTTP {exc.code} {exc.reason}") from exc


def with_retries(
    send: Callable[[], None], retries: int, backoff: float, sleep: Callable[[float], None] = time.sleep
) -> tuple[int, str]:
    """Call ``send`` until it works, at most ``1 + retries`` times; returns (attempts, last error or '')."""
    error = ""
    for attempt in range(1, retries + 2):
        try:
            send()
            return attempt, ""
        except PermanentError as exc:
            return attempt, str(exc)
        except (OSError, smtplib.SMTPException, ssl.SSLError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            if attempt <= retries:
                wait = min(MAX_BACKOFF, backoff * 2 ** (attempt - 1))
                log.info("notification attempt %d failed (%s); retrying in %.1fs", attempt, error, wait)
                sleep(wait)
    return retries + 1, error


def channel_of(spec: NotifierSpec) -> str:
    """The channel a notifier is configured for (``email`` or ``webhook``)."""
    return "email" if spec.email is not None else "webhook"


def send_email_channel(spec: NotifierSpec, message: Message, attachment: Path | None, base: Path | None) -> None:
    """The ``email`` channel (:mod:`itops.default_plugins.notifiers`)."""
    assert spec.email is not None
    send_email(spec.email, message, attachment, base)


def send_webhook_channel(spec: NotifierSpec, message: Message, attachment: Path | None, base: Path | None) -> None:
    """The ``webhook`` channel (:mod:`itops.default_plugins.notifiers`); a webhook takes no attachment."""
    assert spec.webhook is not None
    send_webhook(spec.webhook, message, base)


def deliver(
    event: JobEvent,
    rules: Sequence[NotifyRule],
    notifiers: dict[str, NotifierSpec],
    *,
    base: Path | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Delivery]:
    """Send ``event`` to every notifier whose rule wants it; never raises."""
    out: list[Delivery] = []
    message: Message | None = None
    for rule in rules:
        if not wanted(rule, event):
            continue
        spec = notifiers[rule.to]
        message = message or compose(event)
        msg = message
        t0 = time.monotonic()
        channel = channel_of(spec)
        send: Callable[[], None] = functools.partial(
            plugins.notifiers()[channel].send, spec, msg, event.report_path, base
        )
        try:
            attempts, error = with_retries(send, spec.retries, spec.backoff, sleep)
        except Exception as exc:  # a bug in sending must not take the job's result with it
            log.exception("notification %s crashed", spec.name)
            attempts, error = 1, f"internal error: {type(exc).__name__}: {exc}"
        record = Delivery(
            spec.name, channel, rule.when, not error, attempts, redact(error), round(time.monotonic() - t0, 3)
        )
        if error:
            log.error(
                "notification %s (%s) for job %s failed after %d attempt(s): %s",
                spec.name,
                channel,
                event.job,
                attempts,
                record.error,
            )
        else:
            log.info("notified %s (%s) about job %s", spec.name, channel, event.job)
        out.append(record)
    return out
