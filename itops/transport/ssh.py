"""SSH transport on paramiko: strict host keys, bounded timeouts, one connection per host.

We drive ``paramiko.Transport`` directly (not ``SSHClient``) to own every step:
the TCP socket is opened here with TCP_NODELAY (paramiko leaves Nagle on, which
costs tens of milliseconds per round trip), host keys are checked against the
merged known_hosts files before any credential is sent, and each of connect,
banner, handshake, auth and command has its own timeout.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

import paramiko

from itops.errors import AuthFailed, HostUnreachable, SecretFileError, TransportError
from itops.secretfile import read_secret_file
from itops.transport.base import (
    BATCH_COMMAND,
    STREAM_ENDED,
    BatchOutcome,
    StderrTail,
    pump_frames,
    stream_end_problem,
)
from itops.transport.batch import DEFAULT_MAX_PROBE_OUTPUT, BatchScript
from itops.transport.known_hosts import KnownHosts, fingerprint_of
from itops.transport.readahead import ReadAheadSocket

__all__ = ["KnownHosts", "SSHConnection", "SSHTarget", "fingerprint", "read_password_file"]

log = logging.getLogger(__name__)

#: Ciphers offered first, in this order, when paramiko supports them (the rest follow in paramiko's order).
PREFERRED_CIPHERS = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
#: Tried, like OpenSSH does, when the inventory names no identity_file (after ssh-agent's keys).
DEFAULT_IDENTITIES = ("~/.ssh/id_ed25519", "~/.ssh/id_ecdsa", "~/.ssh/id_rsa")


@dataclass(frozen=True)
class SSHTarget:
    """Everything needed to reach one host (built from the inventory)."""

    name: str
    address: str
    port: int = 22
    user: str = "root"
    identity_file: str | None = None
    known_hosts: tuple[str, ...] = ()
    connect_timeout: float = 10.0
    banner_timeout: float = 10.0
    auth_timeout: float = 10.0
    password: str | None = None  # resolved from password_env/password_file, never from YAML
    sudo: bool = False
    jump: SSHTarget | None = None

    @property
    def known_hosts_name(self) -> str:
        """The name OpenSSH files the key under: ``host`` on port 22, else ``[host]:port``."""
        return self.address if self.port == 22 else f"[{self.address}]:{self.port}"


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH-style SHA256 fingerprint of a public key."""
    return fingerprint_of(key.asbytes())


def read_password_file(path: str) -> str:
    """The SSH password kept in ``path`` (``password_file``), without its trailing newline.

    A file that group or others may access is refused (:func:`itops.secretfile.read_secret_file`);
    raises AuthFailed naming the path and mode (never the content).
    """
    try:
        return read_secret_file(path, "password_file")
    except SecretFileError as exc:
        raise AuthFailed(str(exc), hint=exc.hint) from exc


def _open_socket(target: SSHTarget) -> socket.socket:
    try:
        sock = socket.create_connection((target.address, target.port), timeout=target.connect_timeout)
    except socket.gaierror as exc:
        raise HostUnreachable(f"DNS lookup failed for {target.address}: {exc.strerror}") from exc
    except ConnectionRefusedError as exc:
        raise HostUnreachable(f"connection refused by {target.address}:{target.port}") from exc
    except TimeoutError as exc:
        raise HostUnreachable(
            f"timed out connecting to {target.address}:{target.port} after {target.connect_timeout:g}s"
        ) from exc
    except OSError as exc:
        raise HostUnreachable(f"cannot connect to {target.address}:{target.port}: {exc.strerror or exc}") from exc
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class SSHConnection:
    """One authenticated SSH transport to a host, reused for every batch of the run."""

    def __init__(self, target: SSHTarget, known_hosts: KnownHosts, via: SSHConnection | None = None) -> None:
        """Connect, verify the host key and authenticate; ``via`` is an open jump host connection
        (owned by the caller; when None and ``target.jump`` is set, one is opened and owned here)."""
        self.target = target
        self._jump: SSHConnection | None = None
        self.host_key_fingerprint = ""
        sock: ReadAheadSocket | paramiko.Channel
        if via is None and target.jump is not None:
            via = self._jump = SSHConnection(target.jump, known_hosts)
        if via is not None:
            sock = via.open_tunnel(target.address, target.port, target.connect_timeout)
        else:
            sock = ReadAheadSocket(_open_socket(target))
        # paramiko only calls recv, send, settimeout, close (and reads _closed) on its socket
        self.transport = paramiko.Transport(cast(socket.socket, sock))
        try:
            self._handshake(known_hosts)
            self._authenticate()
        except BaseException:
            self.close()
            raise

    def _handshake(self, known_hosts: KnownHosts) -> None:
        t, target = self.transport, self.target
        t.banner_timeout = target.banner_timeout
        t.handshake_timeout = target.connect_timeout
        t.auth_timeout = target.auth_timeout
        opts = t.get_security_options()
        # AES-GCM first when the server offers it (CTR + HMAC next, as paramiko orders them): an AEAD
        # cipher, whose tag paramiko checks in C, where CTR's HMAC is compared byte by byte in Python
        # for every packet (~5 % of the auditor's CPU per host)
        opts.ciphers = [c for c in opts.ciphers if c in PREFERRED_CIPHERS] + [
            c for c in opts.ciphers if c not in PREFERRED_CIPHERS
        ]
        known = known_hosts.known_types(target.known_hosts_name)
        if known:
            # negotiate a host key type we can verify, as OpenSSH does
            opts.key_types = [k for k in known if k in opts.key_types] + [k for k in opts.key_types if k not in known]
        try:
            t.start_client(timeout=target.connect_timeout)
        except paramiko.SSHException as exc:
            text = str(exc)
            if "banner" in text.lower():
                raise HostUnreachable(
                    f"{target.address}:{target.port} accepted TCP but sent no SSH banner "
                    f"within {target.banner_timeout:g}s"
                ) from exc
            raise HostUnreachable(f"SSH handshake with {target.address}:{target.port} failed: {text}") from exc
        except (EOFError, OSError) as exc:
            raise HostUnreachable(
                f"connection to {target.address}:{target.port} closed during SSH handshake ({exc or 'EOF'})"
            ) from exc
        if not t.is_active() or not t.remote_version:
            cause = t.get_exception()
            text = str(cause or "")
            if cause is None or "banner" in text.lower():
                raise HostUnreachable(
                    f"{target.address}:{target.port} accepted TCP but sent no SSH banner "
                    f"within {target.banner_timeout:g}s"
                )
            raise HostUnreachable(f"SSH handshake with {target.address}:{target.port} failed: {text}")
        try:
            key = t.get_remote_server_key()
        except paramiko.SSHException as exc:
            raise HostUnreachable(f"SSH handshake with {target.address}:{target.port} failed: {exc}") from exc
        known_hosts.verify(target.known_hosts_name, key)
        self.host_key_fingerprint = f"{key.get_name()} {fingerprint(key)}"

    def _authenticate(self) -> None:
        t, target = self.transport, self.target
        tried: list[str] = []
        keys: list[tuple[str, paramiko.PKey]] = []
        # an explicit identity file, else OpenSSH's default identities that exist
        explicit = [target.identity_file] if target.identity_file else []
        candidates = explicit or [f for f in DEFAULT_IDENTITIES if os.path.isfile(os.path.expanduser(f))]
        for identity in candidates:
            path = os.path.expanduser(identity)
            try:
                keys.append((f"key file {path}", _load_key(path)))
            except FileNotFoundError:
                tried.append(f"key file {path} (missing)")
            except (paramiko.SSHException, OSError, ValueError) as exc:
                tried.append(f"key file {path} (unreadable: {exc})")
        if os.environ.get("SSH_AUTH_SOCK"):
            try:
                agent_keys = paramiko.Agent().get_keys()
            except paramiko.SSHException:
                agent_keys = ()
            keys.extend((f"agent key {fingerprint(k)}", k) for k in agent_keys)
        for label, key in keys:
            try:
                t.auth_publickey(target.user, key)
            except paramiko.BadAuthenticationType as exc:
                # the server takes no keys at all: offering the next one would only use up MaxAuthTries
                tried.append(f"{label} (server does not accept keys: it allows {_methods(exc)})")
                break
            except paramiko.AuthenticationException:
                tried.append(label)
                continue
            except paramiko.SSHException as exc:
                raise AuthFailed(f"authentication to {target.user}@{target.address} failed: {exc}") from exc
            if t.is_authenticated():
                return
        if target.password is not None and self._authenticate_with_password(target.password, tried):
            return
        if target.password is not None:
            hint = (
                "check the secret in password_env / password_file is this user's current password, "
                "and identity_file / ssh-agent if a key should have worked"
            )
        else:
            hint = "check identity_file / ssh-agent and that the key is in the user's authorized_keys"
        raise AuthFailed(
            f"authentication failed for {target.user}@{target.address}:{target.port} "
            f"(tried: {', '.join(tried) or 'nothing: no identity file, agent or password'})",
            hint=hint,
        )

    def _authenticate_with_password(self, password: str, tried: list[str]) -> bool:
        """Log in with ``password``: SSH "password" auth, or, when the server allows only
        keyboard-interactive for it (``UsePAM yes`` with ``PasswordAuthentication no``, Debian's
        usual sshd), the answer to its password prompt, as OpenSSH's client does.

        True once authenticated; otherwise appends why not to ``tried``. Never puts the password in
        a message.
        """
        t, target = self.transport, self.target
        try:
            # fallback=False: paramiko's own fallback would type the password into ANY single prompt
            t.auth_password(target.user, password, fallback=False)
            if t.is_authenticated():
                return True
            tried.append("password (the server wants more than a password)")
            return False
        except paramiko.BadAuthenticationType as exc:
            if "keyboard-interactive" not in exc.allowed_types:
                tried.append(f"password (the server does not accept passwords: it allows {_methods(exc)})")
                return False
        except paramiko.AuthenticationException:
            tried.append("password (rejected)")
            return False
        except paramiko.SSHException as exc:
            raise AuthFailed(f"password authentication to {target.user}@{target.address} failed: {exc}") from exc
        answers = PasswordPromptAnswers(password)
        try:
            t.auth_interactive(target.user, answers)
            if t.is_authenticated():
                return True
        except paramiko.AuthenticationException:
            pass
        except paramiko.SSHException as exc:
            raise AuthFailed(
                f"keyboard-interactive authentication to {target.user}@{target.address} failed: {exc}"
            ) from exc
        tried.append(f"password by keyboard-interactive ({answers.outcome()})")
        return False

    def open_tunnel(self, address: str, port: int, timeout: float) -> paramiko.Channel:
        """A direct-tcpip channel through this host (used when it is another host's jump)."""
        try:
            return self.transport.open_channel("direct-tcpip", (address, port), ("127.0.0.1", 0), timeout=timeout)
        except (paramiko.SSHException, OSError) as exc:
            raise HostUnreachable(
                f"jump host {self.target.name} could not open a tunnel to {address}:{port}: {exc}"
            ) from exc

    def run_batch(
        self,
        batch: BatchScript,
        *,
        idle_timeout: float,
        total_timeout: float,
        max_output: int = DEFAULT_MAX_PROBE_OUTPUT,
    ) -> BatchOutcome:
        """Send the whole batch as ONE exec (``sh -s``, or ``sudo -n sh -s``, reading the script on stdin).

        A probe sending more than ``max_output`` bytes is an error result of its own (its output is
        drained and dropped); the script's own stderr is read as it comes and only its tail kept.

        Raises TransportError when the script could not be started or ended before its first probe
        (e.g. sudo refused), with the reason taken from the exit status and stderr.
        """
        started = time.monotonic()
        try:
            chan = self.transport.open_session(timeout=self.target.connect_timeout)
            chan.exec_command(BATCH_COMMAND[self.target.sudo])
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise TransportError(f"could not start the probe script on {self.target.name}: {exc}") from exc
        send_failed: Exception | None = None
        try:
            chan.sendall(batch.script)
            chan.shutdown_write()
        except (paramiko.SSHException, OSError, EOFError) as exc:
            # sudo may refuse and close the channel before the script is sent: its reason comes below
            send_failed = exc

        lost: list[str] = []
        stderr_tail = StderrTail()

        def read(wait: float) -> bytes | None:
            try:
                # stdout and stderr share the channel's window: stderr left unread would stall stdout
                while chan.recv_stderr_ready():
                    stderr_tail.add(chan.recv_stderr(65536))
                chan.settimeout(wait)
                return chan.recv(65536)
            except TimeoutError:
                return None
            except (paramiko.SSHException, OSError, EOFError) as exc:
                lost.append(f"connection lost during the probe script: {exc}")
                return b""

        stderr = b""
        exit_status: int | None = None
        try:
            parser, problem = pump_frames(
                batch, read, idle_timeout=idle_timeout, total_timeout=total_timeout, max_output=max_output
            )
            problem = lost[0] if lost else problem
            if problem in ("", STREAM_ENDED):
                exit_status = _exit_and_stderr(chan, stderr_tail)
            stderr = stderr_tail.bytes()
        finally:
            chan.close()
        if problem == STREAM_ENDED:
            if send_failed is not None and exit_status is None and not stderr and not parser.results:
                raise TransportError(f"could not start the probe script on {self.target.name}: {send_failed}")
            problem = stream_end_problem(parser, exit_status, stderr, user=self.target.user, sudo=self.target.sudo)
        return BatchOutcome(
            results=parser.complete(problem or "batch ended early"),
            exit_status=exit_status,
            stderr=stderr[-4000:],
            complete=not problem,
            problem=problem,
            timings={"batch": time.monotonic() - started},
        )

    def is_active(self) -> bool:
        """Whether the SSH transport is still up (a dead jump host's connection is not)."""
        return bool(self.transport.is_active())

    def close(self) -> None:
        """Close the connection (and a jump connection this one opened); never raises.

        Closing a transport whose tunnel or jump host is already gone can raise EOFError or
        SSHException from paramiko; the results gathered over it are kept either way.
        """
        for closable in (self.transport, self._jump):
            if closable is None:
                continue
            try:
                closable.close()
            except (OSError, EOFError, paramiko.SSHException) as exc:
                log.debug("closing the connection to %s: %s", self.target.name, exc)


#: identity files already parsed, by path and what the file was (inode, size, mtime): a run opens one
#: connection per host with the same key, and parsing it each time cost ~0.2 ms per host
_KEYS: dict[str, tuple[tuple[int, int, int], paramiko.PKey]] = {}
_KEYS_KEPT = 32
_keys_lock = threading.Lock()


def _load_key(path: str) -> paramiko.PKey:
    """The private key in ``path``, parsed again only when the file changed (a rotated key is read anew)."""
    st = os.stat(path)
    stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
    with _keys_lock:
        known = _KEYS.get(path)
        if known is not None and known[0] == stamp:
            return known[1]
    key = paramiko.PKey.from_path(path)
    with _keys_lock:
        if len(_KEYS) >= _KEYS_KEPT:
            _KEYS.clear()
        _KEYS[path] = (stamp, key)
    return key


def _methods(exc: paramiko.BadAuthenticationType) -> str:
    return ", ".join(exc.allowed_types) or "nothing"


#: A keyboard-interactive prompt that asks for the login password: "Password: " (PAM's pam_unix),
#: "ops@host's password: ", "Password for ops@REALM: " and a few translations of "password".
_PASSWORD_PROMPT = re.compile(r"(?i)\b(password|passwort|passwd|mot de passe|contraseña|senha)\b")
#: ... but not a password change (an expired password) or a second factor that mentions a password.
_NOT_THE_PASSWORD = re.compile(r"(?i)\b(new|retype|again|confirm|repeat|one[- ]time|otp|code|token|pin)\b")


class PasswordPromptAnswers:
    """The ``auth_interactive`` handler: types the password into the server's password prompt.

    Only a prompt with echo off that asks for the password (not a new one, a one-time code or a
    token) gets it, and only once per attempt: a second ask means the first answer was wrong. Any
    other prompt is answered with an empty string, so the attempt fails and :meth:`outcome` says
    which prompt was declined.
    """

    def __init__(self, password: str) -> None:
        """Remember ``password`` for the one prompt that may receive it."""
        self._password = password
        self.answered = 0
        self.declined: list[str] = []

    def __call__(self, title: str, instructions: str, prompts: Sequence[tuple[str, bool]]) -> list[str]:
        answers: list[str] = []
        for prompt, echo in prompts:
            if not echo and self.answered == 0 and is_password_prompt(prompt):
                answers.append(self._password)
                self.answered += 1
            else:
                self.declined.append(prompt.strip())
                answers.append("")
        return answers

    def outcome(self) -> str:
        """Why the attempt failed, for the auth error message (quotes prompts, never answers)."""
        if self.declined:
            asked = ", ".join(repr(p[:60]) for p in self.declined[:3])
            why = "the password was rejected, then it" if self.answered else "it"
            return f"{why} asked {asked}, which itops does not answer: only the login password, once"
        if self.answered:
            return "rejected"
        return "the server asked for no password"


def is_password_prompt(prompt: str) -> bool:
    """Whether a keyboard-interactive ``prompt`` asks for the current login password."""
    return bool(_PASSWORD_PROMPT.search(prompt)) and not _NOT_THE_PASSWORD.search(prompt)


def _exit_and_stderr(chan: paramiko.Channel, stderr: StderrTail, wait: float = 5.0) -> int | None:
    """The exit status (None if none came within ``wait`` seconds); the rest of stderr goes to ``stderr``.

    sshd sends the exit status after all of stderr, so once it is here stderr is complete.
    """
    deadline = time.monotonic() + wait
    while not chan.exit_status_ready() and not chan.closed and time.monotonic() < deadline:
        while chan.recv_stderr_ready():
            stderr.add(chan.recv_stderr(65536))
        chan.status_event.wait(0.02)  # set when the exit status (or the channel's close) arrives
    exit_status = chan.recv_exit_status() if chan.exit_status_ready() else None
    while chan.recv_stderr_ready():
        stderr.add(chan.recv_stderr(65536))
    return exit_status
