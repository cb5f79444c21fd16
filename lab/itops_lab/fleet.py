"""A fleet of real OpenSSH sshd processes on 127.0.0.1, one per lab host.

Every host gets its own port, ed25519 host key, sshd_config, pid file and log, and optionally a
``ChrootDirectory`` (see :mod:`itops_lab.roots`) so hosts differ in what a remote command sees,
and optionally file systems of its own (:class:`~itops_lab.sshd.LabMount`: a tmpfs on /tmp, /dev/shm,
...) mounted inside that root in the host's private mount namespace (:mod:`itops_lab.sshd`). One client key pair, an
``authorized_keys`` and a ``known_hosts`` are shared by the fleet, and
:meth:`Fleet.write_inventory` writes an itops inventory pointing at all of it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import paramiko
import yaml

from itops_lab.netutil import LOCALHOST, free_port, generate_ed25519, read_banner
from itops_lab.plant import LabError
from itops_lab.procs import stop_processes
from itops_lab.roots import check_chroot_path
from itops_lab.sshd import SSHD, LabMount, ensure_privsep_dir, isolated, sshd_config

_BIND_RETRIES = 5


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
        host.config_path.write_text(sshd_config(host, self.authorized_keys_path, self.log_level))
        if host._log is None:
            host._log = host.log_path.open("ab")
        ensure_privsep_dir()
        command = [SSHD, "-D", "-e", "-f", str(host.config_path)]
        if self.isolate:
            command = isolated(host, command)
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
        """What ``python -m itops_lab down`` needs to find and stop these processes later."""
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
