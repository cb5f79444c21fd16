"""One connection pool per run: how audits, backup verification and drills reach hosts.

The pool turns an inventory host into an open :class:`~itops.transport.base.HostConnection`
through the transport table :data:`TRANSPORTS` (name → opener; adding a transport is one entry,
as in testinfra's backend map). What it shares for the whole run:

- one :class:`~itops.transport.known_hosts.KnownHosts` per list of known_hosts files;
- one connection per jump host, shared by every host behind it (chained jumps too: each hop is
  itself a shared connection opened through the previous one), and reused when the jump host
  is itself a target;
- the failure of a jump host: a dead bastion is tried once per run, and every host behind it
  gets that failure (UNREACHABLE, naming the jump host) without another attempt;
- the open connections, so :meth:`ConnectionPool.interrupt` can close them all at once (a stop
  request ends the batches in flight) and :meth:`ConnectionPool.close` ends the run cleanly.

Callers take a connection with :meth:`ConnectionPool.connect` and give it back with
:meth:`ConnectionPool.release` (or use :meth:`ConnectionPool.lease`); ``keep=True`` keeps it
open for the pool's life (a drill's steps reuse one connection per host).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType

from itops.errors import AuthFailed, HostKeyRejected, ItopsError
from itops.inventory import Host
from itops.redact import register_secret
from itops.transport.base import HostConnection
from itops.transport.local import LocalConnection
from itops.transport.ssh import KnownHosts, SSHConnection, SSHTarget, read_password_file

__all__ = [
    "TRANSPORTS",
    "ConnectionPool",
    "Opener",
    "target_for",
    "unreachable_reason",
]

log = logging.getLogger(__name__)

#: Opens a connection to an inventory host (None: this machine) with what the pool shares.
Opener = Callable[["ConnectionPool", "Host | None"], HostConnection]

#: Jump chains longer than this are cut (the inventory refuses cycles; this bounds the recursion).
MAX_JUMP_DEPTH = 8


def _open_ssh(pool: ConnectionPool, host: Host | None) -> HostConnection:
    if host is None:
        return _open_local(pool, None)
    target = target_for(host, pool.hosts)
    via = pool.jump(host.jump) if host.jump else None
    return SSHConnection(target, pool.known_hosts(target.known_hosts), via=via)


def _open_local(pool: ConnectionPool, host: Host | None) -> HostConnection:
    return LocalConnection(sudo=bool(host.ssh.sudo) if host is not None else False)


#: The transports by name. ``ssh`` reaches inventory hosts (through their jump hosts); ``local``
#: runs every host's work on this machine (``itops audit --local``). Work for no host (a backup
#: without ``host``, a drill's ``local`` restore) always runs locally.
TRANSPORTS: dict[str, Opener] = {
    "ssh": _open_ssh,
    "local": _open_local,
}


class ConnectionPool:
    """The connections of one run (see the module docstring); thread-safe."""

    def __init__(
        self,
        hosts: Mapping[str, Host],
        *,
        transport: str = "ssh",
        tofu_file: str | None = None,
    ) -> None:
        """``hosts``: the inventory's hosts (jump hosts resolve among them); ``transport``: a
        :data:`TRANSPORTS` key; ``tofu_file``: trust-on-first-use known_hosts file, if any."""
        if transport not in TRANSPORTS:
            raise ValueError(f"unknown transport {transport!r} (known: {', '.join(TRANSPORTS)})")
        self.hosts = hosts
        self.transport = transport
        self.tofu_file = tofu_file
        #: host name -> host key fingerprint of every target connected through this pool
        self.host_keys: dict[str, str] = {}
        self._lock = threading.Lock()
        self._known: dict[tuple[str, ...], KnownHosts] = {}
        self._jump_names = {h.jump for h in hosts.values() if h.jump}
        self._shared: dict[str, HostConnection] = {}
        self._shared_locks: dict[str, threading.Lock] = {}
        self._failures: dict[str, ItopsError] = {}
        self._leased: dict[int, HostConnection] = {}

    # -- what the openers share ------------------------------------------------------------------
    def known_hosts(self, files: Sequence[str]) -> KnownHosts:
        """The merged known_hosts of ``files`` (one per list of files for the whole run)."""
        key = tuple(files)
        with self._lock:
            if key not in self._known:
                self._known[key] = KnownHosts(files, self.tofu_file)
            return self._known[key]

    def jump(self, name: str) -> SSHConnection:
        """The shared connection to jump host ``name``; raises its remembered failure, named as the
        jump host's, without trying again."""
        try:
            conn = self._shared_connection(name, remember_failure=True)
        except ItopsError as exc:
            raise type(exc)(f"jump host {name}: {exc}", exc.hint) from exc
        if not isinstance(conn, SSHConnection):
            raise ItopsError(f"jump host {name} is not reached over SSH (transport {self.transport})")
        return conn

    # -- taking and giving back connections -------------------------------------------------------
    def connect(self, name: str | None, *, keep: bool = False) -> HostConnection:
        """An open connection to inventory host ``name`` (None: this machine).

        A jump host's connection is the shared one (its failure remembered), as is any host's
        with ``keep=True`` (later calls, with or without ``keep``, get the same connection while it
        is alive). Otherwise the connection is the caller's until :meth:`release`. Raises ItopsError (HostUnreachable,
        AuthFailed, HostKeyRejected ...) when the host cannot be reached.
        """
        with self._lock:
            kept = self._shared.get(name) if name is not None else None
        if name is None:
            conn = _open_local(self, None)
        elif name in self._jump_names or keep or (kept is not None and kept.is_active()):
            conn = self._shared_connection(name, remember_failure=name in self._jump_names)
        else:
            conn = self._open(name)
            with self._lock:
                self._leased[id(conn)] = conn
        if name is not None:
            with self._lock:
                self.host_keys[name] = conn.host_key_fingerprint
        return conn

    def release(self, conn: HostConnection) -> None:
        """Give back a connection from :meth:`connect`: closed unless the pool shares it."""
        with self._lock:
            owned = self._leased.pop(id(conn), None) is not None
            shared = any(c is conn for c in self._shared.values())
        if owned or not shared:
            _close(conn)

    @contextlib.contextmanager
    def lease(self, name: str | None, *, keep: bool = False) -> Iterator[HostConnection]:
        """:meth:`connect` for a ``with`` block, released at its end."""
        conn = self.connect(name, keep=keep)
        try:
            yield conn
        finally:
            self.release(conn)

    def interrupt(self) -> None:
        """Close every open connection now, so the batches running over them end (a stop request).

        The pool stays usable (a drill's rollbacks open new connections after an interrupt);
        remembered jump failures stay remembered.
        """
        with self._lock:
            conns = [*self._leased.values(), *self._shared.values()]
            self._leased.clear()
            self._shared.clear()
        for conn in conns:
            _close(conn)

    def close(self) -> None:
        """Close every connection of the run (the end of the run); never raises."""
        self.interrupt()

    def __enter__(self) -> ConnectionPool:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # -- internals --------------------------------------------------------------------------------
    def _open(self, name: str) -> HostConnection:
        return TRANSPORTS[self.transport](self, self.hosts[name])

    def _shared_connection(self, name: str, *, remember_failure: bool) -> HostConnection:
        with self._lock:
            lock = self._shared_locks.setdefault(name, threading.Lock())
        with lock:  # one attempt at a time per host: the others wait for its connection or failure
            failed = self._failures.get(name)
            if failed is not None:
                raise failed
            with self._lock:
                conn = self._shared.get(name)
            if conn is not None and conn.is_active():
                return conn
            try:
                conn = self._open(name)
            except ItopsError as exc:
                if remember_failure:
                    self._failures[name] = exc
                raise
            with self._lock:
                old = self._shared.get(name)
                self._shared[name] = conn
        if old is not None:
            _close(old)
        return conn


def _close(conn: HostConnection) -> None:
    try:
        conn.close()
    except Exception:  # closing a half-dead transport may raise anything; the results are kept
        log.debug("error closing a connection", exc_info=True)


# -- inventory host -> SSH target ------------------------------------------------------------------
def target_for(host: Host, hosts: Mapping[str, Host], _depth: int = 0) -> SSHTarget:
    """The SSH target of an inventory host, with its jump chain resolved."""
    s = host.ssh
    jump = None
    if host.jump and _depth < MAX_JUMP_DEPTH:
        jump = target_for(hosts[host.jump], hosts, _depth + 1)
    elif host.via is not None and _depth < MAX_JUMP_DEPTH:  # a ProxyJump hop of the ssh config, not an inventory host
        jump = target_for(host.via, hosts, _depth + 1)
    return SSHTarget(
        name=host.name,
        address=host.address,
        port=int(s.port),
        user=s.user,
        identity_file=s.identity_file,
        known_hosts=tuple(s.known_hosts),
        connect_timeout=float(s.connect_timeout),
        banner_timeout=float(s.banner_timeout),
        auth_timeout=float(s.auth_timeout),
        password=_read_secret(s.password_env, s.password_file),
        sudo=bool(s.sudo),
        jump=jump,
    )


def _read_secret(env: str | None, file: str | None) -> str | None:
    """The SSH password from ``password_env`` or ``password_file`` (registered for redaction).

    An unset variable is warned about (a key may still get in); a password file that other users
    may read is refused with AuthFailed, as OpenSSH refuses such a private key.
    """
    value: str | None = None
    if env:
        value = os.environ.get(env)
        if not value:
            _warn_once(f"password_env {env} is not set (or empty) in itops' environment: no password will be tried")
    elif file:
        value = read_password_file(file)
    if value:
        register_secret(value)
    return value


_warned: set[str] = set()
_warned_lock = threading.Lock()


def _warn_once(message: str) -> None:
    with _warned_lock:
        if message in _warned:
            return
        _warned.add(message)
    log.warning("%s", message)


def unreachable_reason(exc: ItopsError) -> str:
    """The UNREACHABLE message for a connection failure, naming the kind (host key, auth, network)."""
    if isinstance(exc, HostKeyRejected):
        return f"host key rejected: {exc}"
    if isinstance(exc, AuthFailed):
        return f"auth failed: {exc}"
    return f"unreachable: {exc}"
