"""How one lab sshd is configured and started: its sshd_config and its private namespaces and mounts.

:func:`sshd_config` writes the lab's sshd_config for a host (with the spec's extra options);
:func:`isolated` wraps the sshd command so it runs in its own UTS and mount namespaces, with its
root bound onto itself, /proc and any :class:`LabMount` mounted inside it.
"""

from __future__ import annotations

import posixpath
import pwd
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from itops_lab.netutil import LOCALHOST
from itops_lab.plant import LabError, resolve_in_root
from itops_lab.roots import RECIPE_MARKER

if TYPE_CHECKING:
    from itops_lab.fleet import LabHost

SSHD = "/usr/sbin/sshd"
#: Debian's sshd (compiled with --with-privsep-path) refuses to start without this directory. The
#: system's sshd service creates it at boot (tmpfiles.d); a fresh machine whose ssh service never
#: ran (a container, a CI runner) lacks it, so the lab creates it as the service would.
PRIVSEP_DIR = Path("/run/sshd")
#: file system types a :class:`LabMount` may have: tmpfs needs no device and vanishes with the namespace
LAB_MOUNT_FSTYPES = frozenset({"tmpfs"})
_MOUNT_OPTIONS_RE = re.compile(r"[A-Za-z0-9_.:+=-]+(,[A-Za-z0-9_.:+=-]+)*")


def ensure_privsep_dir(path: Path = PRIVSEP_DIR) -> None:
    """Create sshd's privilege separation directory (root-owned, 0755) when it is missing."""
    if not path.is_dir():
        path.mkdir(mode=0o755, parents=True, exist_ok=True)


@dataclass(frozen=True)
class LabMount:
    """A file system of a lab host's own, mounted at ``target`` inside its root.

    ``target`` is the path as the chroot sees it (``/tmp``); ``options`` is what ``mount -o`` takes
    (``"nodev,nosuid,noexec,size=16m"``; empty: the defaults). The mount lives only in the host's
    private mount namespace (see :func:`isolated`), so it needs no unmounting and no other host or
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


def sshd_config(host: LabHost, authorized_keys: Path, log_level: str) -> str:
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


def isolated(host: LabHost, command: list[str]) -> list[str]:
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
