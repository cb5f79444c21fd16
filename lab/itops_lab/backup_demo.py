"""Demo and test backups: real gzip/tar/zstd archives with planted ages and faults, and their inventory entries.

:func:`plant_demo_backups` writes a set of file backups into a lab host's root (or a folder
on this machine) and returns the ``backups:`` entries that describe them. Some are healthy,
some carry one planted fault each; :data:`DEMO_FAULTS` says which check must FAIL on which
backup and what its message must contain. ``python -m itops_lab up --backups`` uses this so
the demo verifies the lab's backups too; the tests use it against real lab hosts.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import random
import shutil
import subprocess
import tarfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from itops_lab.plant import plant, resolve_in_root

DEMO_BASE = "/var/backups/itops-demo"
DEMO_SCRATCH = "/var/tmp/itops-restore"  # noqa: S108 - parent of mktemp -d scratch folders
HOUR = 3600.0
DAY = 86400.0
APP_CONF = b"# app.conf planted by itops demo\nlisten = 0.0.0.0:8080\nworkers = 4\n"
APP_CONF_SHA256 = hashlib.sha256(APP_CONF).hexdigest()

#: (backup name, check id) -> a fragment its FAIL message must contain. Every other result is PASS or SKIPPED.
DEMO_FAULTS: Mapping[tuple[str, str], str] = {
    ("files-stale", "backup.within_rpo"): "newest backup is 3d 4h old, RPO 26h",
    ("files-corrupt", "backup.integrity_ok"): "gzip -t failed: unexpected end of file",
    ("files-shrunk", "backup.size_ok"): "newest copy 1.2 MB is 61% smaller than the previous 3.1 MB (max shrink 20%)",
    ("files-few", "backup.copies_retained"): "only 1 copy retained, at least 3 required",
    ("files-missing", "backup.within_rpo"): "does not exist",
    ("files-missing", "backup.copies_retained"): "only 0 copies retained, at least 2 required",
    ("files-slow", "backup.restore_within_rto"): "RTO 1ms",
    ("files-badrestore", "backup.restore_test_passed"): "expected file etc/app/missing.conf is missing",
}
#: Extra FAILs when every backup is restored (``--restore-test``): the truncated archive cannot be.
DEMO_RESTORE_ALL_FAULTS: Mapping[tuple[str, str], str] = {
    ("files-corrupt", "backup.restore_test_passed"): "restore failed",
    ("files-missing", "backup.restore_test_passed"): "no backup file to restore",
}


def _tar(members: Mapping[str, bytes], mtime: float) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name in sorted({str(Path(m).parent) for m in members} - {"."}):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(mtime)
            tar.addfile(info)
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, int(mtime)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _gz(data: bytes, mtime: float) -> bytes:
    return gzip.compress(data, compresslevel=1, mtime=int(mtime))


def _zst(data: bytes) -> bytes:
    return subprocess.run(["zstd", "-q", "-c", "-1"], input=data, capture_output=True, check=True).stdout


class _Planter:
    """Writes files into a host root (owned by the root's own root user) or a folder here."""

    def __init__(self, root: Path | None) -> None:
        self.root = root

    def write(self, path: str, data: bytes, mtime: float) -> None:
        if self.root is not None:
            plant(self.root, path, data, mode=0o600)
            target = resolve_in_root(self.root, path)
        else:
            target = Path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            target.chmod(0o600)
        os.utime(target, (mtime, mtime))

    def has_zstd(self) -> bool:
        if self.root is None:
            return shutil.which("zstd") is not None
        if resolve_in_root(self.root, "/usr/bin/zstd", follow_last=True).exists():
            return True
        host_zstd = shutil.which("zstd")
        libc = resolve_in_root(self.root, "/lib/x86_64-linux-gnu/libzstd.so.1", follow_last=True)
        if host_zstd is None or not libc.exists():
            return False  # a busybox root: no shared libraries for the host's zstd
        plant(self.root, "/usr/bin/zstd", Path(host_zstd).read_bytes(), mode=0o755)
        return True


def plant_demo_backups(
    root: Path | None,
    *,
    host: str | None,
    base: str = DEMO_BASE,
    scratch: str = DEMO_SCRATCH,
    now: float | None = None,
    seed: int = 7,
) -> dict[str, dict[str, Any]]:
    """Plant the demo file backups and return their inventory ``backups:`` entries.

    ``root``: a lab host's root (paths inside it, as the host sees them), or None to write on
    this machine (for a lab host without a root, or ``host=None`` for local backups).
    ``host``: the inventory host the entries name (None: local backups).
    """
    now = time.time() if now is None else now
    rnd = random.Random(seed)
    p = _Planter(root)
    entries: dict[str, dict[str, Any]] = {}

    def entry(name: str, path: str, **kw: Any) -> None:
        e: dict[str, Any] = {"kind": "file", "path": path, "rpo": "26h"}
        if host is not None:
            e["host"] = host
        e.update(kw)
        entries[name] = e

    def stamp(t: float) -> str:
        return time.strftime("%Y%m%d-%H%M", time.gmtime(t))

    # healthy: three daily copies, a sha256 manifest, a restore test with a named checksum
    folder = f"{base}/fresh"
    sums = []
    for i, age in enumerate((50 * HOUR, 26 * HOUR, 2 * HOUR)):
        t = now - age
        data = _gz(_tar({"etc/app/app.conf": APP_CONF, "var/lib/app/data.bin": rnd.randbytes(20_000 + i)}, t), t)
        name = f"app-{stamp(t)}.tar.gz"
        p.write(f"{folder}/{name}", data, t)
        sums.append(f"{hashlib.sha256(data).hexdigest()}  {name}\n")
    p.write(f"{folder}/SHA256SUMS", "".join(sums).encode(), now - 2 * HOUR)
    entry(
        "files-fresh",
        f"{folder}/app-*.tar.gz",
        min_size="10KB",
        min_copies=3,
        max_shrink_pct=20,
        manifest="SHA256SUMS",
        restore_test={
            "into": scratch,
            "rto": "5m",
            "expect_files": ["etc/app/app.conf"],
            "verify": [{"path": "etc/app/app.conf", "sha256": APP_CONF_SHA256}],
        },
    )

    # stale: the newest copy is 3d 4h old
    folder = f"{base}/stale"
    for age in (4 * DAY + 4 * HOUR, 3 * DAY + 4 * HOUR):
        t = now - age
        p.write(f"{folder}/db-{stamp(t)}.sql.gz", _gz(b"-- dump\n" + rnd.randbytes(5000), t), t)
    entry("files-stale", f"{folder}/db-*.sql.gz")

    # corrupt: the newest copy is truncated
    folder = f"{base}/corrupt"
    for age, cut in ((26 * HOUR, False), (HOUR, True)):
        t = now - age
        data = _gz(_tar({"var/log/app.log": rnd.randbytes(30_000)}, t), t)
        # cut to 70%: clearly truncated, yet well inside the default 50% shrink allowance (cutting at
        # exactly half made backup.size_ok flip with the archive's length by a byte)
        p.write(f"{folder}/logs-{stamp(t)}.tar.gz", data[: len(data) * 7 // 10] if cut else data, t)
    entry("files-corrupt", f"{folder}/logs-*.tar.gz")

    # shrunk: 3.1 MB then 1.2 MB
    folder = f"{base}/shrunk"
    for age, size in ((26 * HOUR, 3_100_000), (HOUR, 1_200_000)):
        t = now - age
        payload = _tar({"home/data.bin": rnd.randbytes(size)}, t)
        data = _gz(payload, t)
        p.write(f"{folder}/home-{stamp(t)}.tar.gz", data, t)
    entry("files-shrunk", f"{folder}/home-*.tar.gz", max_shrink_pct=20)

    # too few copies
    folder = f"{base}/few"
    t = now - HOUR
    p.write(f"{folder}/cfg-{stamp(t)}.tar.gz", _gz(_tar({"etc/cfg.ini": b"[x]\ny=1\n"}, t), t), t)
    entry("files-few", f"{folder}/cfg-*.tar.gz", min_copies=3)

    # missing: the folder does not exist at all
    entry("files-missing", f"{base}/missing/*.tar.gz")

    # restore slower than its (absurdly tight) RTO
    folder = f"{base}/slow"
    t = now - HOUR
    p.write(f"{folder}/big-{stamp(t)}.tar.gz", _gz(_tar({"srv/big.bin": rnd.randbytes(2_000_000)}, t), t), t)
    entry("files-slow", f"{folder}/big-*.tar.gz", min_copies=1, restore_test={"into": scratch, "rto": "0.001s"})

    # restores, but an expected file is not in it
    folder = f"{base}/badrestore"
    t = now - HOUR
    p.write(f"{folder}/etc-{stamp(t)}.tar.gz", _gz(_tar({"etc/app/app.conf": APP_CONF}, t), t), t)
    expect = ["etc/app/app.conf", "etc/app/missing.conf"]
    entry(
        "files-badrestore",
        f"{folder}/etc-*.tar.gz",
        min_copies=1,
        restore_test={"into": scratch, "rto": "5m", "expect_files": expect},
    )

    # zstd: healthy, restore test (only where zstd can run)
    if p.has_zstd():
        folder = f"{base}/zstd"
        for age in (26 * HOUR, HOUR):
            t = now - age
            data = _zst(_tar({"srv/www/index.html": b"<h1>ok</h1>\n", "srv/www/app.js": rnd.randbytes(8000)}, t))
            p.write(f"{folder}/www-{stamp(t)}.tar.zst", data, t)
        entry(
            "files-zstd",
            f"{folder}/www-*.tar.zst",
            min_copies=2,
            restore_test={"into": scratch, "rto": "5m", "expect_files": ["srv/www/index.html"]},
        )
    return entries
