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
import json
import os
import pwd
import secrets
import shutil
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType

from itops_lab.plant import (
    DEBIAN_PLANTABLE_DEBS,
    LabError,
    _in_chroot,
    _unshare_inode,
    apply_profile,
    plant,
    resolve_in_root,
)
from itops_lab.procs import stop_processes_inside
from itops_lab.profiles import (
    RootProfile,
)

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


class RootKind(enum.StrEnum):
    """Which base a host root is made from."""

    DEBIAN = "debian"
    BUSYBOX = "busybox"


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
        """Remove every root made here (unmounting /proc and any bind mounts first).

        Every process still running inside a root is stopped first: a probe that outlived its
        session (it ends at its own ``timeout``), or a daemon that something run in a chroot
        started, which left the sshd's process tree so the fleet's stop cannot see it. A process
        that was listening on a TCP port is then reported as a :class:`LabError`: a service started
        from a Debian root listens on its default port of this machine (sshd on 0.0.0.0:22), and
        would have outlived the lab.
        """
        leftover = stop_processes_inside(self.run_dir)
        remove_tree(self.run_dir)
        self.roots.clear()
        listeners = [str(p) for p in leftover if p.ports]
        if listeners:
            raise LabError(
                "a process started inside a lab host's root was listening (now stopped): " + "; ".join(listeners),
                hint="something run in a chroot started a service; lab hosts must not start services",
            )

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
            stop_processes_inside(entry)
            remove_tree(entry)
            removed.append(entry)
    return removed
