"""Real services for the backup tests: a PostgreSQL server (initdb in a temp dir) and restic repositories.

Nothing is mocked: Debian's PostgreSQL binaries and restic do the work. Every process started
here is stopped by its owner object, by PID, with bounded waits.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

PG_PASSWORD = "pg-test-secret-4711"
RESTIC_PASSWORD = "restic-test-secret-0815"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL server binaries missing: run scripts/install-system-deps.sh")
    return Path(found[-1]).parent


class PgServer:
    """A throwaway PostgreSQL cluster on 127.0.0.1 with password (scram) auth for user postgres."""

    def __init__(self) -> None:
        self.bindir = pg_bindir()
        self.dir = Path(tempfile.mkdtemp(prefix="itops-pg-", dir="/tmp"))
        self.data = self.dir / "data"
        self.port = 0
        self.user = "postgres"
        self.password = PG_PASSWORD
        # initdb refuses to run as root: the cluster belongs to the postgres account
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self._as:
            pw = pwd.getpwnam("postgres")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.dir.chmod(0o700)

    def _run(self, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([*self._as, *argv], capture_output=True, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
        return proc

    def start(self) -> PgServer:
        pwfile = self.dir / "pw"
        pwfile.write_text(self.password + "\n")
        if self._as:
            pw = pwd.getpwnam("postgres")
            os.chown(pwfile, pw.pw_uid, pw.pw_gid)
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.data),
            "-U",
            self.user,
            "--auth=scram-sha-256",
            f"--pwfile={pwfile}",
            "-N",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        )
        pwfile.unlink()
        for attempt in range(5):
            self.port = free_port()
            opts = (
                f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.dir} "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            try:
                self._run(
                    str(self.bindir / "pg_ctl"),
                    "-D",
                    str(self.data),
                    "-o",
                    opts,
                    "-l",
                    str(self.dir / "log"),
                    "-w",
                    "-t",
                    "30",
                    "start",
                )
                return self
            except RuntimeError:
                if attempt == 4:
                    raise RuntimeError("PostgreSQL did not start:\n" + self.log_tail()) from None
                time.sleep(0.2)
        return self

    def log_tail(self) -> str:
        try:
            return "\n".join((self.dir / "log").read_text(errors="replace").splitlines()[-30:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.port:
            try:
                self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "30", "stop")
            except (RuntimeError, subprocess.TimeoutExpired):
                pid_file = self.data / "postmaster.pid"
                if pid_file.exists():  # only the postmaster we started, by its recorded PID
                    pid = int(pid_file.read_text().split()[0])
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, 9)
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "PGHOST": "127.0.0.1",
            "PGPORT": str(self.port),
            "PGUSER": self.user,
            "PGPASSWORD": self.password,
            "PGCONNECT_TIMEOUT": "10",
        }

    def psql(self, sql: str, db: str = "postgres") -> str:
        proc = subprocess.run(
            ["psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", sql],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=60,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"psql failed: {proc.stderr.strip()}")
        return proc.stdout.strip()

    def databases(self) -> list[str]:
        return self.psql("SELECT datname FROM pg_database ORDER BY 1").split()

    def dump(self, db: str, dest: Path, fmt: str = "c") -> Path:
        subprocess.run(["pg_dump", "-F", fmt, "-f", str(dest), db], check=True, env=self.env, timeout=120)
        return dest

    def server_entry(self, password_env: str) -> dict[str, object]:
        return {"host": "127.0.0.1", "port": self.port, "user": self.user, "password_env": password_env}


# --- restic ---------------------------------------------------------------------------------------


def restic(repo: Path, *args: str, password: str = RESTIC_PASSWORD, check: bool = True) -> str:
    env = {**os.environ, "RESTIC_PASSWORD": password, "RESTIC_CACHE_DIR": str(repo.parent / ".restic-cache")}
    proc = subprocess.run(["restic", "-r", str(repo), *args], capture_output=True, text=True, env=env, timeout=120)
    if check and proc.returncode != 0:
        raise RuntimeError(f"restic {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc.stdout


def write_tree(root: Path, files: Mapping[str, bytes]) -> None:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def data_packs(repo: Path) -> list[Path]:
    return sorted(p for p in (repo / "data").rglob("*") if p.is_file())


def corrupt_pack(pack: Path) -> None:
    """Overwrite 16 bytes in the middle of a pack file (bit rot the structure check cannot see)."""
    pack.chmod(0o600)
    with pack.open("r+b") as fh:
        fh.seek(max(0, pack.stat().st_size // 2))
        fh.write(b"\xde\xad\xbe\xef" * 4)
