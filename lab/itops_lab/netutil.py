"""Network helpers of the lab: key pairs, free, closed and silent ports, and banner reads on 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

LOCALHOST = "127.0.0.1"


def generate_ed25519(path: Path, comment: str) -> paramiko.Ed25519Key:
    """Write an OpenSSH-format ed25519 key pair (``path``, ``path.pub``) and return it loaded by paramiko."""
    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(private)
    path.with_name(path.name + ".pub").write_bytes(public + b" " + comment.encode() + b"\n")
    return paramiko.Ed25519Key(filename=str(path))


def free_port() -> int:
    """A port nothing listens on right now (bind to port 0); the caller must tolerate losing a race."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        return int(sock.getsockname()[1])


def closed_port() -> int:
    """A port on 127.0.0.1 with nothing listening: connecting to it is refused."""
    return free_port()


@contextlib.contextmanager
def silent_port(max_seconds: float = 300.0) -> Iterator[int]:
    """A listening port that accepts connections and never sends an SSH banner (a hung service)."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind((LOCALHOST, 0))
    listener.listen(64)
    listener.settimeout(0.2)
    stop = threading.Event()
    accepted: list[socket.socket] = []

    def serve() -> None:
        deadline = time.monotonic() + max_seconds
        while not stop.is_set() and time.monotonic() < deadline:
            with contextlib.suppress(TimeoutError, OSError):
                conn, _ = listener.accept()
                accepted.append(conn)

    thread = threading.Thread(target=serve, name="itops-lab-silent-port", daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(timeout=2.0)
        for conn in accepted:
            conn.close()
        listener.close()


def read_banner(port: int, timeout: float = 1.0) -> bytes:
    """The first line a server on 127.0.0.1:``port`` sends ('' if it sends nothing in time)."""
    data = b""
    with socket.create_connection((LOCALHOST, port), timeout=timeout) as sock:
        deadline = time.monotonic() + timeout
        while b"\n" not in data and len(data) < 512 and time.monotonic() < deadline:
            try:
                chunk = sock.recv(512)
            except TimeoutError:
                break
            if not chunk:
                break
            data += chunk
    return data.split(b"\n", 1)[0].rstrip(b"\r")
