"""Per-host file systems for the lab: sshd ``ChrootDirectory`` roots that differ between hosts.

Two kinds of root:

* ``debian``: a real Debian bookworm (``debootstrap --variant=minbase``) built ONCE into a cache
  directory and copied per host with hard links; then every file outside ``usr/`` and the apt lists
  (which hold nearly all of the bytes) gets its own inode. Every helper here writes a new file and
  renames it into place, or copies a still-shared file before chmod/chown, so planted changes never
  reach the cache through a shared inode.
* ``busybox``: a static busybox plus a few hand-written files in /etc; built in a few milliseconds
  for tests that only need a shell and some files.

A :class:`RootProfile` makes one root differ from another: ``HARDENED``/``WEAK`` for the demo, and
``CLEAN`` (every root-dependent host check passes) with the planted profiles derived from it for
the audit acceptance test (tests/checks/test_planted_lab.py).

sshd refuses a ``ChrootDirectory`` unless the directory and every parent are root-owned and not
group/world-writable, which rules out anything under /tmp or /var/tmp; roots therefore live under
the cache directory (``$ITOPS_LAB_CACHE`` or ``/var/cache/itops-lab``).
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import functools
import json
import os
import pwd
import re
import secrets
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import TracebackType
from typing import Any

from itops.errors import ItopsError

DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
# openssh-server, procps, iproute2: what the lab itself needs (sshd -T, ps, ss). The rest is what a
# CIS-hardened Debian server has and its checks look for: sudo, cron + logrotate (scheduled
# rotation), kmod (modprobe.d policy), nftables (a firewall tool), auditd, netbase.
DEBIAN_INCLUDE = (
    "openssh-server",
    "procps",
    "iproute2",
    "sudo",
    "cron",
    "logrotate",
    "kmod",
    "nftables",
    "auditd",
    "netbase",
)
# Downloaded (not installed) into var/cache/apt/archives at build time, so that a profile can
# install them for real (``RootProfile.install_debs``) without network access later.
DEBIAN_PLANTABLE_DEBS = ("telnet", "inetutils-telnet")
# Bump when the post-processing in _finish_debian_root changes: the cache then rebuilds.
DEBIAN_RECIPE_VERSION = 2
RECIPE_MARKER = ".itops-lab-recipe.json"
OWNERS_FILE = "owners"  # in a run directory: PIDs that keep its roots in use
# Stay hard-linked to the cache in host roots (the bulk of the bytes; apt replaces list files and
# its binary caches by rename, dpkg only reads the cached .debs); every other regular file gets
# its own inode.
HARDLINKED_PATHS = ("usr", "var/lib/apt/lists", "var/cache/apt")
BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox")
_DEBOOTSTRAP_OPTIONS = ("--variant=minbase", "--include=" + ",".join(DEBIAN_INCLUDE))
_DEV_LINKS = {
    "fd": "/proc/self/fd",
    "stdin": "/proc/self/fd/0",
    "stdout": "/proc/self/fd/1",
    "stderr": "/proc/self/fd/2",
}
_DEV_NODES = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8), "urandom": (1, 9)}


class LabError(ItopsError):
    """The lab could not be set up (missing tool, bad directory, sshd did not start)."""


class RootKind(enum.StrEnum):
    """Which base a host root is made from."""

    DEBIAN = "debian"
    BUSYBOX = "busybox"


@dataclass(frozen=True)
class PlantedFile:
    """A file a profile writes into a root.

    Owner and group are names in the ROOT's passwd/group, or numbers (a number no account has is
    how an unowned file is planted). ``copy_of`` takes the bytes from another file of the root
    instead of ``content`` (e.g. a SUID copy of /bin/dash).
    """

    content: str | bytes = ""
    mode: int = 0o644
    owner: str | int = "root"
    group: str | int = "root"
    copy_of: str = ""


@dataclass(frozen=True)
class PlantedDir:
    """A directory a profile creates (or re-modes) in a root; owner/group as in :class:`PlantedFile`."""

    mode: int = 0o755
    owner: str | int = "root"
    group: str | int = "root"


@dataclass(frozen=True)
class RootProfile:
    """What makes one host root differ from another.

    :func:`apply_profile` applies the fields in this order: ``install_debs``, ``sshd_options``,
    extra accounts, ``line_edits``, ``appended``, ``strip_modes``, ``dirs``, ``files``,
    ``removed``, ``kernel_modules``, ``file_modes``; so a planted file or mode always wins over the
    blanket ``strip_modes``, and ``file_modes`` (applied last) over everything.
    """

    name: str
    sshd_options: Mapping[str, str] = field(default_factory=dict)
    # path -> (mode, owner name, group name); names resolve in the ROOT's passwd/group
    file_modes: Mapping[str, tuple[int, str, str]] = field(default_factory=dict)
    extra_passwd: tuple[str, ...] = ()
    extra_shadow: tuple[str, ...] = ()
    extra_group: tuple[str, ...] = ()
    description: str = ""
    # names from DEBIAN_PLANTABLE_DEBS, installed for real with dpkg (Debian roots only)
    install_debs: tuple[str, ...] = ()
    # path -> ((regex, replacement), ...): re.sub with MULTILINE; a pattern that matches nothing is
    # an error (the recipe's files changed under the profile)
    line_edits: Mapping[str, tuple[tuple[str, str], ...]] = field(default_factory=dict)
    appended: Mapping[str, str] = field(default_factory=dict)  # path -> text added at the end
    # directory -> permission bits cleared on every regular file below it (e.g. o+rwx of logs)
    strip_modes: Mapping[str, int] = field(default_factory=dict)
    dirs: Mapping[str, PlantedDir] = field(default_factory=dict)
    files: Mapping[str, PlantedFile] = field(default_factory=dict)
    removed: tuple[str, ...] = ()
    # modules the running kernel "ships": an (empty) .ko under /lib/modules/$(uname -r), indexed
    # with depmod, so modprobe in the root resolves them as on a real host (Debian roots only)
    kernel_modules: tuple[str, ...] = ()

    def derive(self, name: str, *, description: str = "", drop: Iterable[str] = (), **changes: object) -> RootProfile:
        """A new profile: this one with ``changes`` merged in.

        Tuples are extended; mappings are updated key by key, except that ``line_edits`` and
        ``appended`` of a path already present add to the inherited ones (edits run after them).
        ``drop`` names keys to leave out of the inherited mappings and tuples (an sshd keyword, a
        file path), so a planted profile can undo one hardening step of its parent.
        """
        dropped = set(drop)
        merged: dict[str, Any] = {"name": name, "description": description}
        for f in fields(self):
            if f.name in ("name", "description"):
                continue
            mine: Any = getattr(self, f.name)
            theirs: Any = changes.pop(f.name, None)
            if isinstance(mine, Mapping):
                value = {k: v for k, v in mine.items() if k not in dropped}
                for k, v in (theirs or {}).items():
                    value[k] = value[k] + v if f.name in ("line_edits", "appended") and k in value else v
                merged[f.name] = value
            else:
                merged[f.name] = tuple(x for x in mine if x not in dropped) + tuple(theirs or ())
        if changes:
            raise TypeError(f"unknown RootProfile fields: {', '.join(sorted(changes))}")
        return RootProfile(**merged)


HARDENED = RootProfile(
    name="hardened",
    sshd_options={
        "PermitRootLogin": "no",
        "PasswordAuthentication": "no",
        "PermitEmptyPasswords": "no",
        "MaxAuthTries": "4",
        "X11Forwarding": "no",
    },
    file_modes={"/etc/shadow": (0o640, "root", "shadow"), "/etc/passwd": (0o644, "root", "root")},
)
WEAK = RootProfile(
    name="weak",
    sshd_options={
        "PermitRootLogin": "yes",
        "PasswordAuthentication": "yes",
        "PermitEmptyPasswords": "yes",
        "MaxAuthTries": "10",
        "X11Forwarding": "yes",
    },
    file_modes={"/etc/shadow": (0o644, "root", "shadow"), "/etc/passwd": (0o644, "root", "root")},
    extra_passwd=(
        "toor:x:0:0:second root:/root:/bin/sh",
        "guest:x:1001:1001:guest:/home/guest:/bin/sh",
    ),
    extra_shadow=("toor:*:19700:0:99999:7:::", "guest::19700:0:99999:7:::"),
    extra_group=("guest:x:1001:",),
)

# --------------------------------------------------------------------------- audit lab profiles
# CLEAN is a Debian root hardened until every check that depends on the root's own files passes;
# each planted profile is CLEAN plus a documented set of deliberate misconfigurations.
# tests/lab_hosts.py pairs every profile with the check ids it must (and only it must) fail.

STRONG_SSH_CIPHERS = (
    "chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr"
)
STRONG_SSH_MACS = "hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-512,hmac-sha2-256"
STRONG_SSH_KEX = (
    "sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,"
    "diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group-exchange-sha256"
)
LEGAL_BANNER = "Authorised use only. Activity on this system is monitored and recorded.\n"
# a syntactically plausible yescrypt hash; the audit never sees it (the shadow probe says "set")
_FAKE_HASH = "$y$j9T$itopslab0000000000000$0000000000000000000000000000000000000000000"
_CRON_DIRS = ("/etc/cron.hourly", "/etc/cron.daily", "/etc/cron.weekly", "/etc/cron.monthly", "/etc/cron.d")

CLEAN = RootProfile(
    name="clean",
    description="CIS-style hardened Debian 12 server: every root-dependent host check passes",
    sshd_options={
        "PermitRootLogin": "no",
        "PasswordAuthentication": "no",
        "KbdInteractiveAuthentication": "no",
        "PermitEmptyPasswords": "no",
        "HostbasedAuthentication": "no",
        "IgnoreRhosts": "yes",
        "PermitUserEnvironment": "no",
        "GSSAPIAuthentication": "no",
        "UsePAM": "yes",
        "MaxAuthTries": "4",
        "MaxSessions": "10",
        "MaxStartups": "10:30:60",
        "LoginGraceTime": "60",
        "ClientAliveInterval": "15",
        "ClientAliveCountMax": "3",
        "LogLevel": "VERBOSE",
        "Banner": "/etc/issue.net",
        "DisableForwarding": "yes",
        "X11Forwarding": "no",
        "Ciphers": STRONG_SSH_CIPHERS,
        "MACs": STRONG_SSH_MACS,
        "KexAlgorithms": STRONG_SSH_KEX,
    },
    # one interactive administrator, as a real server has: password aged per policy, in group sudo
    extra_group=("alice:x:1000:",),
    extra_passwd=("alice:x:1000:1000:Alice Admin,,,:/home/alice:/bin/bash",),
    extra_shadow=(f"alice:{_FAKE_HASH}:19700:1:365:7:::",),
    line_edits={
        "/etc/login.defs": (
            (r"^PASS_MAX_DAYS\s+\S+", "PASS_MAX_DAYS\t365"),
            (r"^PASS_MIN_DAYS\s+\S+", "PASS_MIN_DAYS\t1"),
            (r"^PASS_WARN_AGE\s+\S+", "PASS_WARN_AGE\t7"),
            (r"^UMASK\s+\S+", "UMASK\t\t027"),
        ),
        "/etc/group": ((r"^sudo:x:27:$", "sudo:x:27:alice"),),
    },
    strip_modes={"/var/log": 0o007},  # dpkg.log, alternatives.log, faillog ... are o+r as installed
    dirs={"/home/alice": PlantedDir(0o750, "alice", "alice")},
    files={
        "/etc/issue.net": PlantedFile(LEGAL_BANNER),
        "/etc/security/limits.d/60-coredump.conf": PlantedFile("* hard core 0\n"),
        "/etc/modprobe.d/cramfs.conf": PlantedFile("install cramfs /bin/false\nblacklist cramfs\n"),
    },
    kernel_modules=("cramfs",),  # a Debian kernel ships it; the modprobe.d policy above disables it
    file_modes={
        "/etc/ssh/sshd_config": (0o600, "root", "root"),
        "/etc/crontab": (0o600, "root", "root"),
        **{d: (0o700, "root", "root") for d in _CRON_DIRS},
    },
)

SSH_DRIFT = CLEAN.derive(
    "ssh-drift",
    description="sshd configuration drift: legacy algorithms, a cloud-init drop-in, a Match override",
    # Banner: back to the default (none); PermitUserEnvironment: now decided by the drop-in below
    drop=("Banner", "PermitUserEnvironment"),
    sshd_options={
        "Ciphers": STRONG_SSH_CIPHERS + ",aes128-cbc",
        "MACs": STRONG_SSH_MACS + ",hmac-sha1",
        "KexAlgorithms": STRONG_SSH_KEX + ",diffie-hellman-group14-sha1",
        "LogLevel": "QUIET",
        "MaxStartups": "100:30:200",
        "ClientAliveCountMax": "0",  # 0 turns the cut-off of unresponsive clients off
        "HostbasedAuthentication": "yes",
        "X11Forwarding": "yes",  # NOT a finding: DisableForwarding yes still turns X11 forwarding off
    },
    files={
        # PasswordAuthentication is NOT a finding: sshd_config sets it first and the first value wins
        "/etc/ssh/sshd_config.d/50-cloud-init.conf": PlantedFile(
            "PasswordAuthentication yes\nPermitUserEnvironment yes\n", mode=0o600
        ),
        "/etc/apt/sources.list.d/vendor.list": PlantedFile(
            "deb [trusted=yes] http://apt.vendor.example/debian bookworm main\n"
        ),
    },
    appended={"/etc/ssh/sshd_config": "\nMatch Address 192.0.2.0/24\n    PermitRootLogin yes\n"},
    file_modes={
        "/etc/ssh/sshd_config": (0o644, "root", "root"),
        "/etc/ssh/ssh_host_ed25519_key": (0o644, "root", "root"),
        "/etc/ssh/ssh_host_rsa_key.pub": (0o664, "root", "root"),
        "/etc/issue.net": (0o664, "root", "root"),
    },
)

ACCOUNT_DRIFT = CLEAN.derive(
    "account-drift",
    description="local account and privilege drift: extra UID 0, empty and unshadowed passwords, sudo",
    extra_group=("wheel:x:0:alice", "guest:x:1001:"),
    extra_passwd=(
        "toor:x:0:0:second root:/root:/bin/sh",
        "guest:x:1001:1001:guest:/home/guest:/bin/sh",
        "svc:x:998:998:service account:/var/lib/svc:/bin/bash",  # no group 998 either
        f"olduser:{_FAKE_HASH}:1002:1001:old account:/home/olduser:/usr/sbin/nologin",
    ),
    extra_shadow=("toor:*:19700:1:365:7:::", "guest::19700:1:365:7:::", "svc:!:19700:1:365:7:::"),
    line_edits={
        "/etc/login.defs": ((r"^PASS_MAX_DAYS\s+\S+", "PASS_MAX_DAYS\t99999"), (r"^UMASK\s+\S+", "UMASK\t\t022")),
        "/etc/group": ((r"^shadow:x:42:$", "shadow:x:42:alice"),),
        "/etc/shadow": ((r"^(alice:[^:]*:\d+:)1:", r"\g<1>0:"),),
    },
    appended={"/root/.profile": 'PATH="$PATH:/opt/tools"\n'},
    dirs={
        "/home/alice": PlantedDir(0o755, "alice", "alice"),
        "/home/guest": PlantedDir(0o700, "guest", "guest"),
        "/opt/tools": PlantedDir(0o755, "alice", "alice"),
    },
    files={
        "/etc/sudoers.d/90-alice": PlantedFile(
            "alice ALL=(ALL:ALL) NOPASSWD: ALL\nDefaults:alice !authenticate\n", mode=0o440
        ),
    },
    file_modes={"/etc/shadow": (0o644, "root", "shadow"), "/etc/gshadow-": (0o644, "root", "shadow")},
)

NEGLECTED = CLEAN.derive(
    "neglected",
    description="a neglected server: loose cron and log permissions, stray files, legacy client, old release",
    drop=("/etc/modprobe.d/cramfs.conf", "/etc/security/limits.d/60-coredump.conf"),
    install_debs=("telnet", "inetutils-telnet"),
    dirs={"/srv/upload": PlantedDir(0o777)},
    files={
        "/var/log/auth.log": PlantedFile("", mode=0o644),
        "/etc/systemd/journald.conf": PlantedFile("[Journal]\nCompress=no\n"),
        "/usr/local/bin/.helper": PlantedFile(mode=0o4755, copy_of="/bin/dash"),
        "/usr/local/etc/app.conf": PlantedFile("listen=0.0.0.0\n", mode=0o666),
        "/opt/vendor/agent.bin": PlantedFile("#!/bin/sh\n", mode=0o755, owner=4242, group=4242),
        "/etc/os-release": PlantedFile(
            'PRETTY_NAME="Debian GNU/Linux 10 (buster)"\nNAME="Debian GNU/Linux"\nVERSION_ID="10"\n'
            'VERSION="10 (buster)"\nVERSION_CODENAME=buster\nID=debian\n'
        ),
    },
    removed=("/etc/cron.daily/logrotate",),
    file_modes={
        "/etc/crontab": (0o644, "root", "root"),
        "/etc/cron.d": (0o755, "root", "root"),
        "/etc/security/opasswd": (0o644, "root", "root"),
        "/etc/passwd-": (0o664, "root", "root"),
    },
)

PROFILES = {p.name: p for p in (HARDENED, WEAK, CLEAN, SSH_DRIFT, ACCOUNT_DRIFT, NEGLECTED)}


def default_cache_dir() -> Path:
    """Where the Debian base and the host roots live: ``$ITOPS_LAB_CACHE`` or /var/cache/itops-lab."""
    return Path(os.environ.get("ITOPS_LAB_CACHE") or "/var/cache/itops-lab")


def debootstrap_command(target: Path) -> list[str]:
    """The debootstrap command line the Debian base is built with."""
    return ["debootstrap", *_DEBOOTSTRAP_OPTIONS, DEBIAN_SUITE, str(target), DEBIAN_MIRROR]


def _debian_recipe() -> dict[str, object]:
    """What the cache marker records; any difference from a cached build means a rebuild."""
    return {
        "version": DEBIAN_RECIPE_VERSION,
        "debootstrap": ["debootstrap", *_DEBOOTSTRAP_OPTIONS, DEBIAN_SUITE, DEBIAN_MIRROR],
        "plantable_debs": list(DEBIAN_PLANTABLE_DEBS),
    }


def read_recipe_marker(base: Path) -> dict[str, object] | None:
    """The marker a finished build left in ``base`` (recipe, build seconds), or None."""
    try:
        data = json.loads((base / RECIPE_MARKER).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def ensure_debian_base(cache_dir: Path | None = None, *, timeout: float = 1800.0) -> Path:
    """Return a Debian bookworm root in the cache, running debootstrap only when it is missing.

    The build goes to a temporary directory that is renamed into place when complete, and a
    marker records the recipe, so an interrupted build or a changed recipe means a rebuild, never
    a half-built root. A lock file serialises concurrent callers (parallel test sessions).
    """
    cache = cache_dir or default_cache_dir()
    base = cache / f"debian-{DEBIAN_SUITE}"
    recipe = _debian_recipe()
    if _marker_matches(base, recipe):
        return base
    if shutil.which("debootstrap") is None:
        raise LabError("debootstrap is not installed", hint="run scripts/install-system-deps.sh")
    _make_root_owned_dir(cache)
    with _file_lock(cache / ".build.lock", timeout=timeout):
        if _marker_matches(base, recipe):
            return base
        build = Path(tempfile.mkdtemp(prefix=".build-", dir=cache))
        os.chmod(build, 0o755)  # noqa: S103 - becomes a chroot base: must be world-readable
        log = cache / "debootstrap.log"
        started = time.monotonic()
        try:
            with log.open("wb") as out:
                proc = subprocess.run(debootstrap_command(build), stdout=out, stderr=subprocess.STDOUT, timeout=timeout)
            if proc.returncode != 0:
                raise LabError(f"debootstrap failed (exit {proc.returncode})", hint=f"see {log}")
            _finish_debian_root(build)
            marker = dict(recipe, build_seconds=round(time.monotonic() - started, 1), built_at=time.time())
            (build / RECIPE_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
            if base.exists():
                old = cache / f".old-{secrets.token_hex(4)}"
                os.rename(base, old)
                os.rename(build, base)
                remove_tree(old)
            else:
                os.rename(build, base)
        except BaseException:
            remove_tree(build)
            raise
    return base


def _marker_matches(base: Path, recipe: Mapping[str, object]) -> bool:
    marker = read_recipe_marker(base)
    return marker is not None and all(marker.get(k) == v for k, v in recipe.items())


def _finish_debian_root(root: Path) -> None:
    for deb in (root / "var/cache/apt/archives").glob("*.deb"):
        deb.unlink()
    # openssh-server's postinst generates host keys; `sshd -T` inside the chroot needs them.
    if not list((root / "etc/ssh").glob("ssh_host_*_key")):
        subprocess.run(["ssh-keygen", "-A", "-f", str(root)], check=True, capture_output=True)
    # sshd (even `sshd -T`) insists on its privilege separation directory; systemd makes it at boot.
    (root / "run/sshd").mkdir(mode=0o755, parents=True, exist_ok=True)
    ensure_dev_nodes(root)
    if not (root / "usr/bin/apt-get").exists():
        return  # not a full Debian tree (a stand-in for debootstrap): nothing to run apt with
    download = "cd /var/cache/apt/archives && apt-get -q download " + " ".join(DEBIAN_PLANTABLE_DEBS)
    _in_chroot(root, ["sh", "-c", download], what="downloading the plantable packages")
    # What `apt-get update` leaves on a real host: without the binary caches every apt command
    # (the security-updates probe) spends seconds rebuilding them from the package lists.
    _in_chroot(root, ["apt-cache", "gencaches"], what="building the apt caches")


def _in_chroot(root: Path, command: list[str], *, what: str, timeout: float = 600.0) -> str:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"}
    proc = subprocess.run(["chroot", str(root), *command], capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        output = (proc.stderr or proc.stdout).strip()[-500:]
        raise LabError(f"{what} in {root} failed (exit {proc.returncode}): {output}")
    return proc.stdout


@contextlib.contextmanager
def _file_lock(path: Path, *, timeout: float) -> Iterator[None]:
    deadline = time.monotonic() + timeout
    with path.open("a") as fh:
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise LabError(f"timed out after {timeout:.0f}s waiting for lock {path}") from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _make_root_owned_dir(path: Path) -> None:
    path.mkdir(mode=0o755, parents=True, exist_ok=True)
    st = path.stat()
    if st.st_uid != 0 or st.st_mode & 0o022:
        os.chown(path, 0, 0)
        os.chmod(path, 0o755)  # noqa: S103 - sshd requires root-owned, not writable by others


def check_chroot_path(path: Path) -> None:
    """Raise LabError unless sshd will accept ``path`` as ChrootDirectory (root-owned, not g/o-writable)."""
    path = path.resolve()
    for component in [path, *path.parents]:
        st = component.stat()
        if st.st_uid != 0 or st.st_mode & 0o022:
            raise LabError(
                f"{component} is not usable in a chroot path (owner uid {st.st_uid}, mode {stat.filemode(st.st_mode)})",
                hint="sshd needs every directory up to the root to be root-owned and not group/world "
                "writable; point ITOPS_LAB_CACHE at such a directory (not under /tmp)",
            )


def ensure_dev_nodes(root: Path) -> None:
    """Create /dev/null and friends in ``root`` (mknod; bind mounts if mknod is not permitted)."""
    dev = root / "dev"
    dev.mkdir(mode=0o755, exist_ok=True)
    for name, (major, minor) in _DEV_NODES.items():
        node = dev / name
        if node.exists() or node.is_symlink():
            continue
        try:
            os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
            os.chmod(node, 0o666)  # noqa: S103 - like the real /dev/null; mknod honours the umask
        except PermissionError:
            node.touch(mode=0o666)
            subprocess.run(["mount", "--bind", f"/dev/{name}", str(node)], check=True, capture_output=True)
    for name, target in _DEV_LINKS.items():
        if not (dev / name).is_symlink() and not (dev / name).exists():
            (dev / name).symlink_to(target)


def mounts_under(path: Path) -> list[Path]:
    """Mount points at or below ``path``, deepest first (from /proc/self/mountinfo)."""
    prefix = str(path.resolve())
    found: list[Path] = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(Path(point))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def remove_tree(path: Path) -> None:
    """Unmount everything below ``path``, then delete it without crossing into other file systems."""
    if not path.exists() and not path.is_symlink():
        return
    resolved = path.resolve()
    if len(resolved.parts) < 3:
        raise LabError(f"refusing to remove {resolved}: too close to /")
    for point in mounts_under(resolved):
        if subprocess.run(["umount", str(point)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(point)], capture_output=True)
    # --one-file-system: should an unmount have failed, never descend into the host's /proc or /dev.
    subprocess.run(["rm", "-rf", "--one-file-system", str(resolved)], capture_output=True, timeout=300)


# --------------------------------------------------------------------------- file helpers


def resolve_in_root(root: Path, path: str, *, follow_last: bool = False) -> Path:
    """Map an absolute path inside ``root`` to the host path, following symlinks as the chroot would."""
    parts = [p for p in path.split("/") if p not in ("", ".")]
    current = root
    hops = 0
    while parts:
        name = parts.pop(0)
        if name == "..":
            current = current.parent if current != root else root
            continue
        candidate = current / name
        if candidate.is_symlink() and (parts or follow_last):
            hops += 1
            if hops > 40:
                raise LabError(f"too many symlinks resolving {path} in {root}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                current = root
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        current = candidate
    return current


def _id_from(root: Path, db: str, name: str | int) -> int:
    if isinstance(name, int):
        return name
    for line in (root / "etc" / db).read_text().splitlines():
        fields = line.split(":")
        if len(fields) > 2 and fields[0] == name:
            return int(fields[2])
    raise LabError(f"no {db} entry {name!r} in {root}/etc/{db}")


def plant(
    root: Path,
    path: str,
    content: str | bytes,
    *,
    mode: int = 0o644,
    owner: str | int = "root",
    group: str | int = "root",
) -> Path:
    """Write ``content`` to ``path`` inside ``root`` as a NEW file renamed into place.

    Owner and group are names looked up in the root's own /etc/passwd and /etc/group (or numeric
    ids). A symlink at ``path`` is replaced by the file, never written through.
    """
    target = resolve_in_root(root, path)
    target.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    data = content.encode() if isinstance(content, str) else content
    uid, gid = _id_from(root, "passwd", owner), _id_from(root, "group", group)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            os.fchown(fh.fileno(), uid, gid)
            os.fchmod(fh.fileno(), mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return target


def _unshare_inode(target: Path) -> None:
    """Give a hard-linked regular file its own inode, so chmod/chown cannot touch the cache."""
    st = target.lstat()
    if not stat.S_ISREG(st.st_mode) or st.st_nlink < 2:
        return
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out, target.open("rb") as src:
            shutil.copyfileobj(src, out)
            os.fchown(out.fileno(), st.st_uid, st.st_gid)
            os.fchmod(out.fileno(), stat.S_IMODE(st.st_mode))
        os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))  # checks may look at mtimes
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def plant_mode(root: Path, path: str, mode: int) -> Path:
    """chmod ``path`` inside ``root`` (copying it first if it shares an inode with the cache)."""
    target = resolve_in_root(root, path, follow_last=True)
    _unshare_inode(target)
    os.chmod(target, mode)
    return target


def plant_owner(root: Path, path: str, owner: str | int, group: str | int) -> Path:
    """chown ``path`` inside ``root`` to names from the root's passwd/group (copy-on-write)."""
    target = resolve_in_root(root, path, follow_last=True)
    _unshare_inode(target)
    os.chown(target, _id_from(root, "passwd", owner), _id_from(root, "group", group), follow_symlinks=False)
    return target


def set_sshd_options(root: Path, options: Mapping[str, str]) -> Path:
    """Set keywords in the root's /etc/ssh/sshd_config so that each is stated exactly once.

    An existing active line for a keyword is replaced in place; a missing one is added at the top,
    before any Include or Match block (sshd keeps the FIRST value it reads).
    """
    config = resolve_in_root(root, "/etc/ssh/sshd_config", follow_last=True)
    lines = config.read_text().splitlines() if config.exists() else []
    wanted = {k.lower(): (k, v) for k, v in options.items()}
    seen: set[str] = set()
    out: list[str] = []
    for line in lines:
        words = line.split()
        key = words[0].lower() if words and not words[0].startswith("#") else ""
        if key in wanted:
            if key not in seen:
                out.append(" ".join(wanted[key]))
                seen.add(key)
            continue
        out.append(line)
    missing = [" ".join(kv) for k, kv in wanted.items() if k not in seen]
    plant(root, "/etc/ssh/sshd_config", "\n".join(missing + out) + "\n", mode=0o644)
    return config


def apply_profile(root: Path, profile: RootProfile) -> None:
    """Make ``root`` look like ``profile`` (see :class:`RootProfile` for the order of the steps)."""
    if profile.install_debs:
        install_debs(root, profile.install_debs)
    if profile.sshd_options:
        set_sshd_options(root, profile.sshd_options)
    for db, extra in (
        ("group", profile.extra_group),
        ("passwd", profile.extra_passwd),
        ("shadow", profile.extra_shadow),
    ):
        if extra:
            _rewrite(root, f"/etc/{db}", functools.partial(_appended, "".join(line + "\n" for line in extra)))
    for path, edits in profile.line_edits.items():
        _rewrite(root, path, functools.partial(_edited, path, edits))
    for path, extra_text in profile.appended.items():
        _rewrite(root, path, functools.partial(_appended, extra_text))
    for top, bits in profile.strip_modes.items():
        strip_modes(root, top, bits)
    for path, d in profile.dirs.items():
        plant_dir(root, path, d.mode, d.owner, d.group)
    for path, f in profile.files.items():
        content = resolve_in_root(root, f.copy_of, follow_last=True).read_bytes() if f.copy_of else f.content
        plant(root, path, content, mode=f.mode, owner=f.owner, group=f.group)
    for path in profile.removed:
        resolve_in_root(root, path).unlink(missing_ok=True)
    if profile.kernel_modules:
        plant_kernel_modules(root, profile.kernel_modules)
    for path, (mode, owner, group) in profile.file_modes.items():
        plant_owner(root, path, owner, group)
        plant_mode(root, path, mode)


def _rewrite(root: Path, path: str, change: Callable[[str], str]) -> None:
    """Replace a text file of the root by ``change(text)`` (a new inode), keeping mode and owner."""
    file = resolve_in_root(root, path, follow_last=True)
    st = file.stat()
    text = file.read_text()
    if text and not text.endswith("\n"):
        text += "\n"
    plant(root, path, change(text), mode=stat.S_IMODE(st.st_mode), owner=st.st_uid, group=st.st_gid)


def _appended(extra: str, text: str) -> str:
    return text + extra


def _edited(path: str, edits: Iterable[tuple[str, str]], text: str) -> str:
    for pattern, replacement in edits:
        text, n = re.subn(pattern, replacement, text, flags=re.MULTILINE)
        if n == 0:
            raise LabError(f"profile edit {pattern!r} matches nothing in {path}")
    return text


def plant_dir(root: Path, path: str, mode: int, owner: str | int = "root", group: str | int = "root") -> Path:
    """Create (or re-mode) directory ``path`` inside ``root``, owned by names from the root's passwd/group."""
    target = resolve_in_root(root, path, follow_last=True)
    target.mkdir(mode=0o755, parents=True, exist_ok=True)
    os.chown(target, _id_from(root, "passwd", owner), _id_from(root, "group", group))
    os.chmod(target, mode)  # after chown, which clears set-id bits
    return target


def strip_modes(root: Path, path: str, bits: int) -> list[Path]:
    """Clear ``bits`` on every regular file below ``path`` in ``root``; returns the files changed."""
    changed: list[Path] = []
    for top, _dirs, files in os.walk(resolve_in_root(root, path, follow_last=True)):
        for name in files:
            file = Path(top) / name
            st = file.lstat()
            if stat.S_ISREG(st.st_mode) and st.st_mode & bits:
                _unshare_inode(file)
                os.chmod(file, stat.S_IMODE(st.st_mode) & ~bits)
                changed.append(file)
    return changed


def install_debs(root: Path, packages: Iterable[str]) -> None:
    """Install packages whose .deb the recipe downloaded (:data:`DEBIAN_PLANTABLE_DEBS`) with dpkg in the root.

    dpkg unpacks to a new file and renames it into place, and adds names to the HOST's own copies
    of the directories, so files hard-linked to the cache are never written.
    """
    archives = root / "var/cache/apt/archives"
    debs = []
    for name in packages:
        found = sorted(archives.glob(f"{name}_*.deb"))
        if name not in DEBIAN_PLANTABLE_DEBS or not found:
            raise LabError(f"no cached .deb for {name!r} in {archives}", hint="add it to DEBIAN_PLANTABLE_DEBS")
        debs.append("/" + str(found[-1].relative_to(root)))
    _in_chroot(root, ["dpkg", "--force-confold", "-i", *debs], what="installing " + ", ".join(packages))


def plant_kernel_modules(root: Path, modules: Iterable[str]) -> None:
    """Give the root a module tree for the RUNNING kernel (chroots share it) holding ``modules``.

    The .ko files are empty: modprobe in the root only needs depmod's index to resolve a name
    (``modprobe -n`` never loads anything); depmod's complaint about their missing symbols is expected.
    """
    release = os.uname().release
    tree = f"/lib/modules/{release}"
    for name in modules:
        plant(root, f"{tree}/kernel/fs/{name}/{name}.ko", b"")
    subprocess.run(
        ["chroot", str(root), "depmod", release],
        capture_output=True,
        timeout=60,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"},
    )
    if not resolve_in_root(root, f"{tree}/modules.dep.bin", follow_last=True).exists():
        raise LabError(f"depmod did not index the planted modules in {root}{tree}")


# --------------------------------------------------------------------------- root builders


def copy_debian_base(base: Path, dest: Path) -> None:
    """Copy the cached Debian root to ``dest`` cheaply: hard-link everything, then give every file
    outside :data:`HARDLINKED_PATHS` its own inode, so in-place writes there stay in this host."""
    proc = subprocess.run(["cp", "-al", f"{base}/.", str(dest)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise LabError(f"copying {base} to {dest} failed: {proc.stderr.strip()[:500]}")
    (dest / RECIPE_MARKER).unlink(missing_ok=True)
    keep = {dest / p for p in HARDLINKED_PATHS}
    for top, dirs, files in os.walk(dest):
        here = Path(top)
        dirs[:] = [d for d in dirs if here / d not in keep]
        for name in files:
            _unshare_inode(here / name)
    ensure_dev_nodes(dest)


_GETENT = r"""#!/bin/sh
# getent for the busybox lab root: passwd and group databases from the flat files only.
db=$1; shift
case $db in passwd|group) ;; *) echo "getent: unsupported database $db" >&2; exit 1;; esac
[ $# -eq 0 ] && exec cat /etc/$db
rc=0
for key in "$@"; do
  awk -F: -v k="$key" '$1 == k || $3 == k { print; found = 1; exit } END { exit !found }' /etc/$db || rc=2
done
exit $rc
"""

_SHELL_SHIM = '#!/bin/sh\n# The host\'s login shell for root, mapped onto busybox sh.\nexec /bin/sh "$@"\n'

_BUSYBOX_FILES = {  # all root-owned 0644 unless _BUSYBOX_MODES says otherwise
    "/etc/passwd": "root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    "sshd:x:100:65534::/run/sshd:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
    "/etc/group": "root:x:0:\ndaemon:x:1:\nshadow:x:42:\nnogroup:x:65534:\n",
    "/etc/shadow": "root:*:19700:0:99999:7:::\ndaemon:*:19700:0:99999:7:::\nsshd:*:19700:0:99999:7:::\n"
    "nobody:*:19700:0:99999:7:::\n",
    "/etc/os-release": 'PRETTY_NAME="itops lab busybox"\nNAME="itops-lab-busybox"\nID=itops-lab-busybox\n'
    "ID_LIKE=debian\nVERSION_ID=1\n",
    "/etc/ssh/sshd_config": "Include /etc/ssh/sshd_config.d/*.conf\nKbdInteractiveAuthentication no\nUsePAM yes\n"
    "PrintMotd no\nAcceptEnv LANG LC_*\nSubsystem sftp /usr/lib/openssh/sftp-server\n",
    "/etc/hosts": "127.0.0.1 localhost\n",
    "/etc/nsswitch.conf": "passwd: files\ngroup: files\nshadow: files\nhosts: files\n",
    "/usr/bin/getent": _GETENT,
}
_BUSYBOX_MODES = {"/etc/shadow": (0o640, "shadow"), "/usr/bin/getent": (0o755, "root")}
_BUSYBOX_DIRS = dict.fromkeys(("bin", "sbin", "usr/bin", "usr/sbin", "home", "var/log", "run/sshd"), 0o755)
_BUSYBOX_DIRS.update({"etc/ssh/sshd_config.d": 0o755, "root": 0o700, "tmp": 0o1777, "var/tmp": 0o1777, "proc": 0o555})


def find_static_busybox() -> Path:
    """The host's busybox, which must be statically linked to run inside a bare root."""
    for candidate in BUSYBOX_CANDIDATES:
        path = Path(candidate)
        if path.is_file():
            with path.open("rb") as fh:
                head = fh.read(1 << 16)
            if b"ld-linux" not in head:  # a dynamic ELF names its interpreter near the start
                return path
    raise LabError(
        "no statically linked busybox found", hint="apt-get install busybox-static (scripts/install-system-deps.sh)"
    )


def build_busybox_root(dest: Path, *, hostname: str = "lab") -> None:
    """Make a minimal root at ``dest``: busybox applets, accounts, sshd_config, os-release, /dev."""
    busybox = find_static_busybox()
    dest.mkdir(mode=0o755)
    for d, mode in _BUSYBOX_DIRS.items():
        (dest / d).mkdir(parents=True, exist_ok=True)
        os.chmod(dest / d, mode)
    shutil.copy2(busybox, dest / "bin/busybox")
    applets = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=True)
    for applet in applets.stdout.split():
        link = dest / "bin" / applet
        if applet != "busybox" and not link.exists():
            link.symlink_to("busybox")
    # plant() resolves owner names in the root's own account files, so those come first.
    for db in ("passwd", "group"):
        (dest / "etc" / db).write_text(_BUSYBOX_FILES[f"/etc/{db}"])
    for path, content in _BUSYBOX_FILES.items():
        mode, group = _BUSYBOX_MODES.get(path, (0o644, "root"))
        plant(dest, path, content, mode=mode, group=group)
    plant(dest, "/etc/hostname", hostname + "\n")
    # sshd runs `<root's host login shell> -c command`, so that shell must exist in the chroot.
    shell = _host_root_shell()
    if not resolve_in_root(dest, shell, follow_last=True).exists():
        plant(dest, shell, _SHELL_SHIM, mode=0o755)
    ensure_dev_nodes(dest)


def _host_root_shell() -> str:
    return pwd.getpwnam("root").pw_shell or "/bin/sh"


# --------------------------------------------------------------------------- per-run manager


class HostRoots:
    """Creates host roots under one run directory and removes all of them (unmounting) on close().

    Run directories of processes that died without cleaning up are swept on construction.
    """

    def __init__(self, parent: Path | None = None, *, cache_dir: Path | None = None) -> None:
        self.cache_dir = cache_dir or default_cache_dir()
        self.parent = parent or (self.cache_dir / "hosts")
        _make_root_owned_dir(self.cache_dir)
        _make_root_owned_dir(self.parent)
        check_chroot_path(self.parent)
        sweep_stale_roots(self.parent)
        self.run_dir = self.parent / f"{os.getpid()}-{secrets.token_hex(4)}"
        self.run_dir.mkdir(mode=0o755)
        self.set_owners([os.getpid()])
        self.roots: dict[str, Path] = {}
        self.copy_seconds: dict[str, float] = {}

    def create(self, name: str, kind: RootKind = RootKind.BUSYBOX, profile: RootProfile | None = None) -> Path:
        """Make the root for host ``name`` (optionally shaped by ``profile``) and return its path."""
        if name in self.roots or "/" in name:
            raise LabError(f"bad or duplicate host root name {name!r}")
        dest = self.run_dir / name
        started = time.monotonic()
        if kind is RootKind.DEBIAN:
            copy_debian_base(ensure_debian_base(self.cache_dir), dest)
            plant(dest, "/etc/hostname", name + "\n")
        else:
            build_busybox_root(dest, hostname=name)
        self.copy_seconds[name] = time.monotonic() - started
        self.roots[name] = dest
        if profile is not None:
            apply_profile(dest, profile)
        return dest

    def set_owners(self, pids: Iterable[int]) -> None:
        """Record which processes keep these roots in use (a detached lab: its sshd PIDs), so that
        :func:`sweep_stale_roots` leaves them alone while any of them lives."""
        (self.run_dir / OWNERS_FILE).write_text("".join(f"{p}\n" for p in pids))

    def close(self) -> None:
        """Remove every root made here (unmounting /proc and any bind mounts first)."""
        remove_tree(self.run_dir)
        self.roots.clear()

    def __enter__(self) -> HostRoots:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


def sweep_stale_roots(parent: Path) -> list[Path]:
    """Remove run directories (``<pid>-<hex>``) whose creating process no longer exists."""
    removed: list[Path] = []
    for entry in sorted(parent.iterdir())[:1000]:
        pid_text = entry.name.split("-", 1)[0]
        if not entry.is_dir() or not pid_text.isdigit():
            continue
        try:
            owners = (entry / OWNERS_FILE).read_text().split()
        except OSError:
            owners = [pid_text]
        if not any(Path(f"/proc/{p}").exists() for p in owners if p.isdigit()):
            remove_tree(entry)
            removed.append(entry)
    return removed
