"""Non-root login users for lab hosts (auditing as ``ops`` with or without sudo).

A login to a chrooted lab host needs the user in two account databases:

* sshd resolves the login name (uid, home, shell) in THIS machine's /etc/passwd, /etc/shadow and
  /etc/group before it chroots: an unknown name is "Invalid user", and with ``UsePAM no`` a
  ``!``-locked shadow entry is refused too.
* everything after the chroot (``id``, ``sudo``, the checks) reads the host root's own files.

:func:`add_user` writes the root's side (passwd, group, shadow, home, ``/etc/sudoers.d``).
:func:`expose_users` gives one running sshd copies of this machine's account files with the users
appended, bind-mounted over /etc/* in that sshd's PRIVATE mount namespace (the fleet starts sshd
under ``unshare --mount`` when run as root), so this machine's own files are never changed. The
bind mounts live as long as that sshd: call it again after ``Fleet.restart_host``.

Password logins: give the :class:`LabUser` a ``password_hash`` (:func:`sha512_crypt`) and start
the host with ``LabHostSpec(sshd_options=("PasswordAuthentication yes",))``. sshd without PAM has no
keyboard-interactive password device; for that method start it with ``UsePAM yes`` and call
:func:`expose_pam`, which binds a minimal pam_unix-only ``/etc/pam.d/sshd`` the same way (this
machine's own PAM stack may need a login session manager, loginuid or SELinux that a lab lacks).

The fleet's one shared ``AuthorizedKeysFile`` is read by sshd with the user's uid, so a non-root
login works only when every directory above it is traversable by others: pytest's tmp_path
(under a 0700 ``/tmp/pytest-of-root``) is not. :func:`expose_users` checks this up front.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from itops_lab.fleet import LabHost
from itops_lab.plant import LabError, plant, plant_dir

#: shadow password field of an account that can log in with a key but has no usable password
#: (``*``, not ``!``: sshd without PAM refuses ``!``-locked accounts even for public keys)
NO_PASSWORD = "*"
_ACCOUNT_DBS = ("passwd", "group", "shadow")


@dataclass(frozen=True)
class LabUser:
    """A login account for a lab host: name, ids, shell and an optional sudoers rule."""

    name: str
    uid: int
    shell: str = "/bin/sh"
    #: written to /etc/sudoers.d/<name> when set, e.g. ``"ops ALL=(ALL) NOPASSWD: ALL"``
    sudoers: str | None = None
    #: shadow password field: a crypt(3) hash (:func:`sha512_crypt`) lets the user log in with that
    #: password; the default :data:`NO_PASSWORD` allows keys only
    password_hash: str = NO_PASSWORD

    @property
    def home(self) -> str:
        return f"/home/{self.name}"

    def entries(self) -> dict[str, str]:
        """The account's line in each of passwd, group and shadow (a private group, gid == uid)."""
        return {
            "passwd": f"{self.name}:x:{self.uid}:{self.uid}:{self.name}:{self.home}:{self.shell}",
            "group": f"{self.name}:x:{self.uid}:",
            "shadow": f"{self.name}:{self.password_hash}:19700:0:99999:7:::",
        }


def add_user(root: Path, user: LabUser) -> None:
    """Add ``user`` to the host root ``root``: account lines, a 0750 home and its sudoers rule."""
    for db, line in user.entries().items():
        target = root / "etc" / db
        st, text = target.stat(), target.read_text()
        if user.name in {entry.split(":", 1)[0] for entry in text.splitlines()}:
            raise LabError(f"{root}/etc/{db} already has an entry {user.name!r}")
        text += ("" if text.endswith("\n") or not text else "\n") + line + "\n"
        plant(root, f"/etc/{db}", text, mode=stat.S_IMODE(st.st_mode), owner=st.st_uid, group=st.st_gid)
    plant_dir(root, user.home, 0o750, owner=user.uid, group=user.uid)
    if user.sudoers is not None:
        # sudo ignores sudoers.d files that are group/world writable; 0440 as visudo makes them
        plant(root, f"/etc/sudoers.d/{user.name}", user.sudoers + "\n", mode=0o440)


def expose_users(host: LabHost, users: Sequence[LabUser], workdir: Path, authorized_keys: Path) -> None:
    """Make the running sshd of ``host`` accept logins as ``users`` (see the module docstring).

    Raises LabError when sshd does not run in a mount namespace of its own (binding over /etc
    would then change this machine), or when ``authorized_keys`` is not readable by other users.
    """
    pid = _private_namespace_pid(host)
    _require_readable_by_others(authorized_keys)
    # a uid shared with one of this machine's users would let either signal the other's processes
    entries = [line.split(":") for line in Path("/etc/passwd").read_text().splitlines() if line.count(":") >= 2]
    names, uids = {e[0] for e in entries}, {e[2] for e in entries}
    clash = sorted(u.name for u in users if u.name in names or str(u.uid) in uids)
    if clash:
        raise LabError(f"name or uid already used on this machine by: {', '.join(clash)}")
    folder = workdir / f"accounts-{host.name}"
    folder.mkdir(mode=0o755, parents=True, exist_ok=True)
    for db in _ACCOUNT_DBS:
        source = Path("/etc") / db
        extra = "".join(u.entries()[db] + "\n" for u in users)
        text = source.read_text()
        copy = folder / db
        copy.write_text(text + ("" if text.endswith("\n") or not text else "\n") + extra)
        st = source.stat()
        os.chown(copy, st.st_uid, st.st_gid)
        os.chmod(copy, stat.S_IMODE(st.st_mode))
        _bind(pid, host, copy, source)


#: The lab's PAM stack for sshd: passwords from the (bind-mounted) /etc/shadow and nothing else.
#: ``nodelay``: no 2-second pause after a wrong password, which only slows the tests down.
LAB_PAM_SSHD = """\
auth     required pam_unix.so nodelay
account  required pam_unix.so
session  required pam_permit.so
password required pam_deny.so
"""


def sha512_crypt(password: str) -> str:
    """A ``$6$`` (SHA-512 crypt) shadow hash of ``password``, made by ``openssl passwd -6``.

    The password goes through stdin, never argv, so other processes cannot read it from /proc.
    """
    proc = subprocess.run(
        ["openssl", "passwd", "-6", "-stdin"], input=password + "\n", capture_output=True, text=True, timeout=10
    )
    hashed = proc.stdout.strip()
    if proc.returncode != 0 or not hashed.startswith("$6$"):
        raise LabError(f"openssl passwd -6 failed: {proc.stderr.strip()}", hint="apt-get install openssl")
    return hashed


def expose_pam(host: LabHost, workdir: Path) -> None:
    """Give the running sshd of ``host`` :data:`LAB_PAM_SSHD` as its /etc/pam.d/sshd.

    Only that sshd's private mount namespace sees it (as with :func:`expose_users`); it matters
    only when the host was started with ``UsePAM yes``.
    """
    pid = _private_namespace_pid(host)
    folder = workdir / f"pam-{host.name}"
    folder.mkdir(mode=0o755, parents=True, exist_ok=True)
    copy = folder / "sshd"
    copy.write_text(LAB_PAM_SSHD)
    os.chmod(copy, 0o644)
    _bind(pid, host, copy, Path("/etc/pam.d/sshd"))


def _private_namespace_pid(host: LabHost) -> int:
    pid = host.pid
    if pid is None:
        raise LabError(f"lab host {host.name} is not running")
    if os.readlink(f"/proc/{pid}/ns/mnt") == os.readlink("/proc/self/ns/mnt"):
        raise LabError(
            f"sshd of lab host {host.name} shares this machine's mount namespace",
            hint="start the fleet as root with isolate=True (needs unshare)",
        )
    return pid


def _bind(pid: int, host: LabHost, copy: Path, target: Path) -> None:
    proc = subprocess.run(
        ["nsenter", "-t", str(pid), "-m", "--", "mount", "--bind", str(copy), str(target)],
        capture_output=True,
        text=True,
        timeout=10,
    )
    if proc.returncode != 0:
        raise LabError(f"binding {copy} over {target} for lab host {host.name} failed: {proc.stderr.strip()}")


def _require_readable_by_others(path: Path) -> None:
    path = path.resolve()
    if not path.stat().st_mode & stat.S_IROTH:
        raise LabError(f"{path} is not readable by other users: sshd reads it as the login user")
    for parent in path.parents:
        if not parent.stat().st_mode & stat.S_IXOTH:
            raise LabError(
                f"{parent} is not traversable by other users, so sshd cannot read {path} for a non-root login",
                hint="start the fleet in a directory every user may traverse (chmod o+x), not under pytest's tmp_path",
            )
