"""Built-in scheduler notification channels: email (SMTP) and webhook (Slack or JSON)."""

from __future__ import annotations

from itops.hookspecs import hookimpl
from itops.plugins import NotifierChannel
from itops.scheduler.notify import send_email_channel, send_webhook_channel


@hookimpl
def itops_notifiers() -> list[NotifierChannel]:
    return [NotifierChannel("email", send_email_channel), NotifierChannel("webhook", send_webhook_channel)]
