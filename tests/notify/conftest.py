"""Local SMTP and webhook servers for the notification tests (see servers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import HookServer, SmtpSink, start_hook, start_smtp


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    controller, sink = start_smtp()
    yield sink
    controller.stop()


@pytest.fixture
def smtp_tls(tmp_path: Path) -> Iterator[SmtpSink]:
    controller, sink = start_smtp(tmp_path, user="itops", password="mail-secret-1234")
    yield sink
    controller.stop()


@pytest.fixture
def smtp_plain_auth() -> Iterator[SmtpSink]:
    """AUTH offered without any TLS: a login here sends the password in clear."""
    controller, sink = start_smtp(user="itops", password="mail-secret-1234")
    yield sink
    controller.stop()


@pytest.fixture
def hook_factory() -> Iterator:
    hooks: list[HookServer] = []

    def make(statuses: list[int] | None = None) -> HookServer:
        hook = start_hook(statuses)
        hooks.append(hook)
        return hook

    yield make
    for hook in hooks:
        assert hook.server is not None
        hook.server.shutdown()
        hook.server.server_close()
