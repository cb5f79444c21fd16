"""A fleet of real OpenSSH sshd processes on 127.0.0.1, one per lab host.

Every host gets its own port, ed25519 host key, sshd_config, pid file and log, and optionally a
``ChrootDirectory`` (see :mod:`itops.lab.roots`) so hosts differ in what a remote command sees,
and optionally file systems of its own (:class:`LabMount`: a tmpfs on /tmp, /dev/shm, ...) mounted
inside that root in the host's private mount namespace. One client key pair, an
``authorized_keys`` and a ``known_hosts`` are shared by the fleet, and
:meth:`Fleet.write_inventory` writes an itops inventory pointing at all of it.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import pwd
import re
import shlex
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import paramiko
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from itops.lab.plant import LabError, resolve_in_root
from itops.lab.roots import RECIPE_MARKER, check_chroot_path

SSHD = "/usr/sbin/sshd"
LOCALHOST = "127.0.0.1"
_BIND_RETRIES = 5
_STOP_GRACE = 5.0
#: file system types a :class:`LabMount` may have: tmpfs needs no device and vanishes with the namespace
LAB_MOUNT_FSTYPES = frozenset({"tmpfs"})
_MOUNT_OPTIONS_RE = re.compile(r"[A-Za-z0-9_.:+=-]+(,[A-Za-z0-9_.:+=-]+)*")


@dataclass(frozen=True)
class LabMount:
    """A file system of a lab host's own, mounted at ``target`` inside its root.

    ``target`` is the path as the chroot sees it (``/tmp``); ``options`` is what ``mount -o`` takes
    (``"nodev,nosuid,noexec,size=16m"``; empty: the defaults). The mount lives only in the host's
    private mount namespace (see :func:`_isolated`), so it needs no unmounting and no other host or
    process of this machine sees it. Invalid values raise :class:`LabError` here, at construction.
    """

    target: str
    fstype: str = "tmpfs"
    options: str = ""

    def __post_init__(self) -> None:
        if self.fstype not in LAB_MOUNT_FSTYPES:
            raise LabError(
                f"lab mount {self.target!r}: unsupported file system type {self.fstype!r}",
                hint=f"use one of: {', '.join(sorted(LAB_MOUNT_FSTYPES))}",
            )
        parts = self.target.split("/")
        if (
            not self.target.startswith("/")
            or not posixpath.normpath(self.target).strip("/")
            or ".." in parts
            or any(c in self.target for c in "\0\n")
        ):
            raise LabError(
                f"bad lab mount target {self.target!r}",
                hint="an absolute path below / inside the host's root, without '..' or newlines",
            )
        if self.options and not _MOUNT_OPTIONS_RE.fullmatch(self.options):
            raise LabError(
                f"lab mount {self.target!r}: bad mount options {self.options!r}",
                hint="comma-separated mount -o options such as nodev,nosuid,noexec,size=16m",
            )


@dataclass(frozen=True)
class LabHostSpec:
    """What one lab host should be: its name, inventory groups/tags/vars, optional chroot root and
    the file systems mounted inside that root (``mounts``; they need ``root`` and an isolated fleet)."""

    name: str
    groups: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    root: Path | None = None
    known: bool = True  # False: the host key is left out of known_hosts (an "unknown host")
    vars: Mapping[str, Any] = field(default_factory=dict)
    mount_proc: bool = True  # with a root: mount /proc inside it (in the host's private mount namespace)
    # without a root: hide this machine's /root (its dotfiles, e.g. a slow .bashrc that bash sources
    # for every ssh command) behind an empty lab directory, in the host's private mount namespace
    private_home: bool = True
    #: extra sshd_config lines, e.g. ``("PasswordAuthentication yes",)``: one whose keyword the lab
    #: config already sets replaces that line (sshd keeps the FIRST value it reads); others are appended
    sshd_options: tuple[str, ...] = ()
    #: file systems mounted inside ``root``, in order, after the root's bind mount and its /proc
    mounts: tuple[LabMount, ...] = ()


@dataclass
class LabHost:
    """One running sshd: where it listens, its host key, its files and its process."""

    spec: LabHostSpec
    port: int
    host_key: paramiko.PKey
    directory: Path
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def root(self) -> Path | None:
        return self.spec.root

    @property
    def fingerprint(self) -> str:
        """SHA256 fingerprint of the host key, as ``ssh-keygen -l`` prints it."""
        return str(self.host_key.fingerprint)

    @property
    def key_path(self) -> Path:
        return self.directory / "ssh_host_ed25519_key"

    @property
    def config_path(self) -> Path:
        return self.directory / "sshd_config"

    @property
    def log_path(self) -> Path:
        return self.directory / "sshd.log"

    @property
    def pid_path(self) -> Path:
        return self.directory / "sshd.pid"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def known_hosts_line(self) -> str:
        return f"[{LOCALHOST}]:{self.port} {self.host_key.get_name()} {self.host_key.get_base64()}"

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


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


def _sshd_config(host: LabHost, authorized_keys: Path, log_level: str) -> str:
    lines = [
        f"Port {host.port}",
        f"ListenAddress {LOCALHOST}",
        f"HostKey {host.key_path}",
        f"PidFile {host.pid_path}",
        f"AuthorizedKeysFile {authorized_keys}",
        # the lab's files live under pytest's tmp dirs (world-writable /tmp above them)
        "StrictModes no",
        "PermitRootLogin prohibit-password",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        # 50+ clients connecting at once must not be dropped as a suspected flood
        "MaxStartups 200:30:300",
        "MaxSessions 100",
        "LoginGraceTime 30",
        "UseDNS no",
        "PrintMotd no",
        "PrintLastLog no",
        "Subsystem sftp internal-sftp",
        f"LogLevel {log_level}",
    ]
    if host.root is not None:
        lines.append(f"ChrootDirectory {host.root}")
    for option in host.spec.sshd_options:
        keyword = _sshd_keyword(option)
        at = next((i for i, line in enumerate(lines) if _sshd_keyword(line) == keyword), None)
        if at is None or keyword == "match":
            lines.append(option)
        else:
            lines[at] = option
    return "\n".join(lines) + "\n"


def _sshd_keyword(line: str) -> str:
    return line.split(None, 1)[0].lower() if line.strip() else ""


def _isolated(host: LabHost, command: list[str]) -> list[str]:
    """Wrap ``command`` so sshd runs in its own UTS and mount namespaces.

    ``hostname`` then answers the lab host's name, and the root (bound onto itself), its /proc and
    the spec's ``mounts`` (or, without a root, an empty /root) are mounted privately: the mounts
    disappear with the last process of the namespace, so nothing is left to unmount.
    Every path and option reaches the shell through ``shlex.quote``. A missing mount point is
    created in the host's root (see :func:`_mount_point`), never in the cached Debian base.
    ``unshare`` (no --fork) and ``sh`` both exec, so the PID we hold is sshd's PID.
    """
    steps = ['hostname "$0"']
    if host.root is not None:
        # the root becomes a mount point of its own, as a container's / is: seen from inside the
        # chroot the mount table then has a "/" entry and df can measure it
        steps.append(f"mount --bind {shlex.quote(str(host.root))} {shlex.quote(str(host.root))}")
    if host.root is not None and host.spec.mount_proc:
        steps.append(f"mount -t proc -o nosuid,nodev,noexec proc {shlex.quote(str(host.root / 'proc'))}")
    if host.spec.mounts and host.root is None:
        raise LabError(f"lab host {host.name}: mounts need a root", hint="give the LabHostSpec a root")
    if host.root is not None:
        for mount in host.spec.mounts:
            point = _mount_point(host.root, mount, host.spec.mount_proc)
            fstype = shlex.quote(mount.fstype)
            options = f" -o {shlex.quote(mount.options)}" if mount.options else ""
            steps.append(f"mount -t {fstype}{options} {fstype} {shlex.quote(str(point))}")
    if host.root is None and host.spec.private_home:
        home = host.directory / "home"
        home.mkdir(mode=0o700, exist_ok=True)
        steps.append(f"mount --bind {shlex.quote(str(home))} {shlex.quote(pwd.getpwnam('root').pw_dir)}")
    script = " && ".join(steps) + ' && exec "$@"'
    return [
        "unshare",
        "--uts",
        "--mount",
        "--propagation",
        "private",
        "--",
        "/bin/sh",
        "-c",
        script,
        host.name,
        *command,
    ]


def _mount_point(root: Path, mount: LabMount, mount_proc: bool) -> Path:
    """Where ``mount`` goes on this machine: its target resolved inside ``root`` as the chroot would
    (a symlink in the root never leads outside it), created (0755) when missing."""
    if (root / RECIPE_MARKER).exists():
        # the cached Debian base: a host root is a copy of it, and the base must stay untouched
        raise LabError(f"{root} is the cached Debian base, not a host root", hint="use HostRoots.create() for a copy")
    point = resolve_in_root(root, mount.target, follow_last=True)
    if point == root or (mount_proc and (point == root / "proc" or root / "proc" in point.parents)):
        raise LabError(f"lab mount target {mount.target!r} would cover the root or its /proc")
    if point.exists() and not point.is_dir():
        raise LabError(f"lab mount target {mount.target!r} exists in {root} and is not a directory")
    point.mkdir(mode=0o755, parents=True, exist_ok=True)
    return point


class Fleet:
    """Running lab hosts plus the shared client key, authorized_keys and known_hosts."""

    def __init__(
        self, workdir: Path, *, startup_timeout: float = 10.0, log_level: str = "INFO", isolate: bool | None = None
    ) -> None:
        self.workdir = workdir
        if isolate is None:
            isolate = os.geteuid() == 0 and shutil.which("unshare") is not None
        self.isolate = isolate
        self.startup_timeout = startup_timeout
        self.log_level = log_level
        self.hosts: dict[str, LabHost] = {}
        self.inventory_path: Path | None = None
        client = workdir / "client"
        client.mkdir(parents=True, exist_ok=True)
        self.client_key_path = client / "id_ed25519"
        self.known_hosts_path = client / "known_hosts"
        self.authorized_keys_path = client / "authorized_keys"
        self.client_key = generate_ed25519(self.client_key_path, "itops-lab-client")
        self.authorized_keys_path.write_text(
            f"{self.client_key.get_name()} {self.client_key.get_base64()} itops-lab-client\n"
        )

    # ------------------------------------------------------------------ access

    def __getitem__(self, name: str) -> LabHost:
        return self.hosts[name]

    def __iter__(self) -> Iterator[LabHost]:
        return iter(self.hosts.values())

    def __len__(self) -> int:
        return len(self.hosts)

    @property
    def pids(self) -> list[int]:
        """PIDs of the sshd listeners this fleet started and has not stopped."""
        return [h.process.pid for h in self.hosts.values() if h.process and h.process.poll() is None]

    # ------------------------------------------------------------------ start / stop

    def start(self, specs: Sequence[LabHostSpec]) -> None:
        """Start one sshd per spec and wait until every one sends its SSH banner."""
        new: list[LabHost] = []
        for spec in specs:
            if spec.name in self.hosts or not spec.name or "/" in spec.name:
                raise LabError(f"bad or duplicate lab host name {spec.name!r}")
            if spec.mounts and (spec.root is None or not self.isolate):
                raise LabError(
                    f"lab host {spec.name}: mounts need a root and an isolated fleet",
                    hint="run as root with unshare installed (isolate=True), and give the host a root",
                )
            if spec.root is not None:
                check_chroot_path(spec.root)
            directory = self.workdir / "hosts" / spec.name
            directory.mkdir(parents=True, exist_ok=True)
            host = LabHost(
                spec=spec,
                port=0,
                host_key=generate_ed25519(directory / "ssh_host_ed25519_key", f"itops-lab-{spec.name}"),
                directory=directory,
            )
            self.hosts[spec.name] = host
            new.append(host)
        self._launch_and_wait(new, keep_port=False)
        self.write_known_hosts()
        self.write_ssh_config()

    def _spawn(self, host: LabHost, port: int) -> None:
        host.port = port
        host.pid_path.unlink(missing_ok=True)
        host.config_path.write_text(_sshd_config(host, self.authorized_keys_path, self.log_level))
        if host._log is None:
            host._log = host.log_path.open("ab")
        command = [SSHD, "-D", "-e", "-f", str(host.config_path)]
        if self.isolate:
            command = _isolated(host, command)
        host.process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=host._log,
            stderr=host._log,
            start_new_session=True,  # a Ctrl-C in the terminal goes to us, and we stop sshd in order
        )

    def _launch_and_wait(self, hosts: list[LabHost], *, keep_port: bool) -> None:
        attempts = dict.fromkeys((h.name for h in hosts), 0)
        for host in hosts:
            self._spawn(host, host.port if keep_port else free_port())
        pending = {h.name: h for h in hosts}
        deadline = time.monotonic() + self.startup_timeout
        try:
            while pending:
                for name, host in list(pending.items()):
                    assert host.process is not None
                    if host.process.poll() is not None:
                        attempts[name] += 1
                        if "Address already in use" not in host.log_tail() or attempts[name] > _BIND_RETRIES:
                            raise LabError(
                                f"sshd for lab host {name} exited ({host.process.returncode}):\n{host.log_tail()}",
                                hint=f"full log: {host.log_path}",
                            )
                        if keep_port:
                            time.sleep(0.2)  # the old listener may still be closing
                        self._spawn(host, host.port if keep_port else free_port())
                    elif self._is_ready(host):
                        del pending[name]
                if pending and time.monotonic() > deadline:
                    names = ", ".join(sorted(pending))
                    raise LabError(
                        f"sshd not ready after {self.startup_timeout}s: {names}",
                        hint=f"see logs under {self.workdir / 'hosts'}",
                    )
                if pending:
                    time.sleep(0.05)
        except BaseException:
            self.stop()
            raise

    @staticmethod
    def _is_ready(host: LabHost) -> bool:
        # The pid file appears once OUR sshd has bound its port; only then can the banner be trusted
        # (another fleet's sshd may have won the race for that port).
        try:
            if int(host.pid_path.read_text().strip() or 0) != (host.pid or -1):
                return False
            return read_banner(host.port, timeout=1.0).startswith(b"SSH-2.0-")
        except (OSError, ValueError):
            return False

    def stop_host(self, name: str) -> None:
        """Stop one host's sshd and every process it forked (connections, sessions)."""
        host = self.hosts[name]
        if host.process is not None:
            stop_processes([host.process.pid])
            with contextlib.suppress(subprocess.TimeoutExpired):
                host.process.wait(timeout=1.0)  # reap it
            host.process = None

    def stop(self) -> None:
        """Stop every sshd of this fleet (SIGTERM, SIGKILL after a grace period) and their children."""
        started = {h.name: h.process for h in self.hosts.values() if h.process is not None}
        stop_processes([p.pid for p in started.values()])
        for host in self.hosts.values():
            if host.process is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    host.process.wait(timeout=1.0)
                host.process = None
            if host._log is not None:
                host._log.close()
                host._log = None

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # ------------------------------------------------------------------ test helpers

    def rotate_host_key(self, name: str) -> LabHost:
        """Restart ``name`` on the same port with a NEW host key; known_hosts keeps the old one."""
        host = self.hosts[name]
        self.stop_host(name)
        host.host_key = generate_ed25519(host.key_path, f"itops-lab-{name}-rotated")
        self._launch_and_wait([host], keep_port=True)
        return host

    def restart_host(self, name: str) -> LabHost:
        """Restart ``name`` on the same port with the same key (e.g. after it was stopped)."""
        host = self.hosts[name]
        self.stop_host(name)
        self._launch_and_wait([host], keep_port=True)
        return host

    # ------------------------------------------------------------------ client-side files

    def write_known_hosts(self) -> Path:
        """Write known_hosts with the CURRENT key of every host whose spec says ``known``."""
        lines = [h.known_hosts_line() for h in self.hosts.values() if h.spec.known]
        self.known_hosts_path.write_text("".join(line + "\n" for line in lines))
        return self.known_hosts_path

    def write_ssh_config(self) -> Path:
        """An OpenSSH client config so a human can ``ssh -F <workdir>/ssh_config <host>``."""
        blocks = [
            f"Host {h.name}\n  HostName {LOCALHOST}\n  Port {h.port}\n  User root\n"
            f"  IdentityFile {self.client_key_path}\n  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {self.known_hosts_path}\n  StrictHostKeyChecking yes\n"
            for h in self.hosts.values()
        ]
        path = self.workdir / "ssh_config"
        path.write_text("\n".join(blocks))
        return path

    def inventory(self, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The itops inventory (as a dict) for this fleet, with ``extra`` deep-merged into it."""
        groups: dict[str, dict[str, Any]] = {}
        hosts: dict[str, dict[str, Any]] = {}
        for host in self.hosts.values():
            for group in host.spec.groups:
                groups.setdefault(group, {"hosts": []})["hosts"].append(host.name)
            entry: dict[str, Any] = {
                "address": LOCALHOST,
                "port": host.port,
                "site": "lab",
                "groups": list(host.spec.groups),
                "tags": list(host.spec.tags),
            }
            if host.spec.vars:
                entry["vars"] = dict(host.spec.vars)
            hosts[host.name] = entry
        doc: dict[str, Any] = {
            "version": 1,
            "defaults": {
                "ssh": {
                    "user": "root",
                    "identity_file": str(self.client_key_path),
                    "known_hosts": [str(self.known_hosts_path)],
                    "connect_timeout": 5,
                    "command_timeout": 20,
                },
                "concurrency": 32,
            },
            "sites": {"lab": {"description": "local sshd lab"}},
            "groups": groups,
            "hosts": hosts,
        }
        return _deep_merge(doc, extra or {})

    def write_inventory(self, path: Path | None = None, extra: Mapping[str, Any] | None = None) -> Path:
        """Write :meth:`inventory` as YAML (default ``<workdir>/inventory.yaml``) and return its path."""
        path = path or self.workdir / "inventory.yaml"
        path.write_text(yaml.safe_dump(self.inventory(extra), sort_keys=False, default_flow_style=None))
        self.inventory_path = path
        return path

    def state(self) -> dict[str, Any]:
        """What ``python -m itops.lab down`` needs to find and stop these processes later."""
        return {
            "workdir": str(self.workdir),
            "hosts": {
                h.name: {
                    "pid": h.pid,
                    "port": h.port,
                    "config": str(h.config_path),
                    "root": str(h.root) if h.root else None,
                    "fingerprint": h.fingerprint,
                }
                for h in self.hosts.values()
            },
        }


def _deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            base[key] = _deep_merge(base[key], value)
        else:
            base[key] = value
    return base


def start_fleet(
    workdir: Path,
    hosts: Iterable[LabHostSpec],
    *,
    startup_timeout: float = 10.0,
    log_level: str = "INFO",
    isolate: bool | None = None,
) -> Fleet:
    """Start one sshd per host spec on 127.0.0.1 and return the running :class:`Fleet`.

    Use it as a context manager (or call ``stop()``) so the processes end with the caller.
    ``isolate`` (default: when root and ``unshare`` exists) gives each sshd its own hostname and a
    private /proc mount inside its root, plus the spec's ``mounts`` (which require it).
    """
    if not os.access(SSHD, os.X_OK):
        raise LabError(f"{SSHD} not found", hint="apt-get install openssh-server")
    workdir.mkdir(parents=True, exist_ok=True)
    fleet = Fleet(workdir, startup_timeout=startup_timeout, log_level=log_level, isolate=isolate)
    fleet.start(list(hosts))
    return fleet


# ---------------------------------------------------------------------- process handling


def _proc_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, start time in clock ticks), from /proc."""
    table: dict[int, tuple[int, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        table[int(entry)] = (int(fields[1]), int(fields[19]))
    return table


def descendants(pids: Iterable[int]) -> dict[int, int]:
    """Every live process below ``pids`` in the process tree, mapped to its start time."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found: dict[int, int] = {}
    queue = list(pids)
    while queue and len(found) < 100_000:
        for child in children.get(queue.pop(), []):
            if child not in found:
                found[child] = table[child][1]
                queue.append(child)
    return found


def _alive(pid: int, start_time: int | None = None) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    if fields[0] == "Z":
        return False
    return start_time is None or int(fields[19]) == start_time


def stop_processes(pids: Sequence[int], *, grace: float = _STOP_GRACE) -> None:
    """SIGTERM ``pids`` and their descendants, SIGKILL whatever is left after ``grace`` seconds.

    Descendants are recorded with their start time first, so a recycled PID is never signalled.
    """
    table = _proc_table()
    targets = {pid: table[pid][1] for pid in pids if pid in table}
    targets.update(descendants(targets))
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid, started in targets.items():
            if _alive(pid, started):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(_alive(p, s) for p, s in targets.items()):
            time.sleep(0.05)
        if not any(_alive(p, s) for p, s in targets.items()):
            return
