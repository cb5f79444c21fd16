"""Planting files into lab host roots: every write replaces the file (new inode) so a change never
reaches the shared Debian cache through a hard link; owners resolve in the root's own passwd/group.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from itops.errors import ItopsError
from itops_lab.profiles import RootProfile

# Downloaded (not installed) into var/cache/apt/archives at build time, so that a profile can
# install them for real (``RootProfile.install_debs``) without network access later.
DEBIAN_PLANTABLE_DEBS = ("telnet", "inetutils-telnet")


class LabError(ItopsError):
    """The lab could not be set up (missing tool, bad directory, sshd did not start)."""


def _in_chroot(root: Path, command: list[str], *, what: str, timeout: float = 600.0) -> str:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"}
    proc = subprocess.run(["chroot", str(root), *command], capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        output = (proc.stderr or proc.stdout).strip()[-500:]
        raise LabError(f"{what} in {root} failed (exit {proc.returncode}): {output}")
    return proc.stdout


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


# where a Debian kernel keeps a module that is not a file system (kernel/fs/NAME/ otherwise)
_MODULE_DIRS = {"usb-storage": "drivers/usb/storage"}


def plant_kernel_modules(root: Path, modules: Iterable[str]) -> None:
    """Give the root a module tree for the RUNNING kernel (chroots share it) holding ``modules``.

    The .ko files are empty: modprobe in the root only needs depmod's index to resolve a name
    (``modprobe -n`` never loads anything); depmod's complaint about their missing symbols is expected.
    """
    release = os.uname().release
    tree = f"/lib/modules/{release}"
    for name in modules:
        plant(root, f"{tree}/kernel/{_MODULE_DIRS.get(name, f'fs/{name}')}/{name}.ko", b"")
    subprocess.run(
        ["chroot", str(root), "depmod", release],
        capture_output=True,
        timeout=60,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"},
    )
    if not resolve_in_root(root, f"{tree}/modules.dep.bin", follow_last=True).exists():
        raise LabError(f"depmod did not index the planted modules in {root}{tree}")


# --------------------------------------------------------------------------- root builders
