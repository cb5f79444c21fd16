"""A socket wrapper that serves paramiko's small reads from one large read.

paramiko's packetizer reads every SSH packet from its socket in two exact-size ``recv`` calls (the
first block, then the rest), and with the socket's timeout set each ``recv`` is a ``poll`` and a
``recv`` system call and two trips through the GIL. A batch's output arrives as many small packets
(every frame marker is a write of its own on the host), so those calls were a large part of the
auditor's CPU per host. :class:`ReadAheadSocket` asks the kernel for up to :data:`READ_AHEAD`
bytes whenever its buffer is empty and hands out what is asked from that buffer, so one system
call serves every packet that had arrived.

The semantics paramiko relies on are kept: ``recv(n)`` returns at most ``n`` bytes, ``b""`` only
at end of stream, and raises the socket's timeout only when nothing at all is buffered. At most
:data:`READ_AHEAD` bytes are held, whatever the host sends.
"""

from __future__ import annotations

import socket
from typing import Any

__all__ = ["READ_AHEAD", "ReadAheadSocket"]

#: the most one system call reads (and the buffer holds) per connection
READ_AHEAD = 64 * 1024


class ReadAheadSocket:
    """``sock`` with a read-ahead buffer in front of ``recv``; everything else goes to ``sock``."""

    __slots__ = ("_buf", "_pos", "_sock")

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buf = b""
        self._pos = 0

    def recv(self, n: int) -> bytes:
        """At most ``n`` bytes: from the buffer while it holds any, else from one read of the socket."""
        pos = self._pos
        buf = self._buf
        if pos < len(buf):
            end = pos + n
            self._pos = end
            return buf[pos:end]
        data = self._sock.recv(READ_AHEAD if n < READ_AHEAD else n)
        if len(data) <= n:
            self._buf = b""
            self._pos = 0
            return data
        self._buf = data
        self._pos = n
        return data[:n]

    def buffered(self) -> int:
        """How many bytes were read from the socket and not yet handed out."""
        return max(0, len(self._buf) - self._pos)

    def send(self, data: bytes) -> int:
        return self._sock.send(data)

    def settimeout(self, timeout: float | None) -> None:
        self._sock.settimeout(timeout)

    def close(self) -> None:
        self._sock.close()

    def __getattr__(self, name: str) -> Any:  # fileno, gettimeout, _closed, getpeername, ...
        return getattr(self._sock, name)
