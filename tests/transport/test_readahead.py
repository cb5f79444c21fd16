"""ReadAheadSocket on a real socket pair: what recv(n) returns (never more than n, in order, b"" at
end of stream, the socket's timeout only when nothing is buffered) and how much it holds. Every SSH
test against the lab's sshd (tests/transport/test_ssh_lab.py and the audits) runs through it too."""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Iterator

import pytest

from itops.transport.readahead import READ_AHEAD, ReadAheadSocket


@pytest.fixture
def pair() -> Iterator[tuple[ReadAheadSocket, socket.socket]]:
    a, b = socket.socketpair()
    a.settimeout(5)
    try:
        yield ReadAheadSocket(a), b
    finally:
        a.close()
        b.close()


def test_small_reads_come_from_one_system_read_in_order(pair: tuple[ReadAheadSocket, socket.socket]) -> None:
    ra, peer = pair
    peer.sendall(b"0123456789abcdef")
    assert ra.recv(4) == b"0123"
    assert ra.buffered() == 12  # the rest was read with the first call
    assert ra.recv(5) == b"45678"
    assert ra.recv(100) == b"9abcdef"  # never more than is buffered, even if more is asked
    assert ra.buffered() == 0


def test_never_more_than_asked_and_every_byte_once(pair: tuple[ReadAheadSocket, socket.socket]) -> None:
    ra, peer = pair
    rng = random.Random(7)
    data = rng.randbytes(3 * READ_AHEAD + 123)
    sender = threading.Thread(target=lambda: (peer.sendall(data), peer.shutdown(socket.SHUT_WR)))
    sender.start()
    got = bytearray()
    for _ in range(100_000):
        n = rng.choice([1, 4, 16, 700, 32_768, 2 * READ_AHEAD])
        chunk = ra.recv(n)
        assert len(chunk) <= n
        if not chunk:
            break
        got += chunk
    sender.join(10)
    assert bytes(got) == data
    assert ra.buffered() == 0 and ra.recv(16) == b""  # end of stream stays b""


def test_timeout_only_when_nothing_is_buffered(pair: tuple[ReadAheadSocket, socket.socket]) -> None:
    ra, peer = pair
    ra.settimeout(0.05)
    peer.sendall(b"abc")
    assert ra.recv(1) == b"a"
    assert ra.recv(10) == b"bc"  # buffered bytes are handed out without waiting
    with pytest.raises(TimeoutError):
        ra.recv(1)
    peer.sendall(b"z")
    assert ra.recv(1) == b"z"


def test_other_socket_calls_reach_the_socket(pair: tuple[ReadAheadSocket, socket.socket]) -> None:
    ra, peer = pair
    ra.settimeout(1.5)
    assert ra.gettimeout() == 1.5
    assert ra.send(b"hi") == 2 and peer.recv(2) == b"hi"
    assert ra.fileno() >= 0 and ra._closed is False
    ra.close()
    assert ra._closed is True
