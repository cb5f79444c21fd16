"""Real local servers the notification tests deliver to: SMTP (aiosmtpd) and HTTP webhooks, on 127.0.0.1.

Both run in threads of the test process and are stopped by their fixtures; every wait is bounded.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import ipaddress
import json
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass
class SmtpSink:
    """Messages received by an aiosmtpd server on 127.0.0.1."""

    port: int = 0
    messages: list[EmailMessage] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    passwords_seen: list[str] = field(default_factory=list)
    cafile: Path | None = None

    def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.messages)


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.sink.messages.append(msg)  # type: ignore[arg-type]
        return "250 OK"


def self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (and its key), so STARTTLS can be verified against it as the CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp.crt", directory / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def start_smtp(tmp: Path | None = None, *, user: str = "", password: str = "") -> tuple[Controller, SmtpSink]:
    """An SMTP server on 127.0.0.1; with ``tmp`` it offers STARTTLS (required) and, with ``user``, AUTH.

    With ``user`` and no ``tmp`` it takes AUTH over the unencrypted connection, as a badly set up
    relay would: every password it is given is recorded in ``SmtpSink.passwords_seen``."""
    sink = SmtpSink()
    kwargs: dict[str, Any] = {}
    if tmp is not None:
        cert, key = self_signed(tmp)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        kwargs.update(tls_context=context, require_starttls=True)
        sink.cafile = cert
    if user:

        def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
            if isinstance(auth_data, LoginPassword):
                sink.passwords_seen.append(auth_data.password.decode())
            ok = (
                isinstance(auth_data, LoginPassword)
                and auth_data.login.decode() == user
                and auth_data.password.decode() == password
            )
            if ok:
                sink.logins.append(user)
            return AuthResult(success=ok, handled=False)

        kwargs.update(authenticator=authenticator, auth_require_tls=tmp is not None)
    for attempt in range(5):  # a free port can be taken between finding and binding it
        port = _free_port()
        controller = Controller(_Handler(sink), hostname="127.0.0.1", port=port, ready_timeout=10, **kwargs)
        try:
            controller.start()
        except (OSError, RuntimeError):
            if attempt == 4:
                raise
            continue
        sink.port = port
        return controller, sink
    raise AssertionError("unreachable")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class HookServer:
    """A webhook receiver: answers each POST with the next status of ``statuses`` (the last repeats)."""

    statuses: list[int] = field(default_factory=lambda: [200])
    posts: list[dict[str, Any]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while len(self.posts) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.posts)


def start_hook(statuses: list[int] | None = None) -> HookServer:
    hook = HookServer(statuses or [200])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            hook.posts.append({"path": self.path, "json": json.loads(body), "type": self.headers["Content-Type"]})
            status = hook.statuses[min(len(hook.posts), len(hook.statuses)) - 1]
            self.send_response(status)
            self.end_headers()
            self.wfile.write(b"ok" if status < 300 else b"error")

        def log_message(self, *args: Any) -> None:
            return None

    hook.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=hook.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    return hook
