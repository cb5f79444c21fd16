"""Fixtures of the backup tests: a lab fleet with planted backups, restic repositories, a PostgreSQL server.

Everything expensive is session-scoped and built once: the fleet (bk1 chrooted into a Debian
root holding the demo file backups, bk2 without a root so it sees this machine's files and
tools), three restic repositories, and one PostgreSQL cluster with its dumps.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from backup_services import (
    PG_PASSWORD,
    RESTIC_PASSWORD,
    PgServer,
    corrupt_pack,
    data_packs,
    restic,
    write_tree,
)

from itops_lab import Fleet, HostRoots, LabHostSpec, RootKind, start_fleet
from itops_lab.backup_demo import plant_demo_backups

PG_ENV = "ITOPS_TEST_PGPASSWORD"
RESTIC_ENV = "ITOPS_TEST_RESTIC_PW"
DAY = 86400.0


@pytest.fixture(scope="session", autouse=True)
def backup_secrets() -> Iterator[None]:
    """The passwords the inventories name by password_env."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(PG_ENV, PG_PASSWORD)
        mp.setenv(RESTIC_ENV, RESTIC_PASSWORD)
        yield


# --------------------------------------------------------------------------- lab hosts


@dataclass
class BackupLab:
    fleet: Fleet
    root: Path  # bk1's root
    demo: dict[str, dict[str, Any]]  # the demo backups planted on bk1, as inventory entries

    def scratch_dir(self) -> Path:
        """Where bk1's restore tests make their scratch folders (as seen from this machine)."""
        return self.root / "var/tmp/itops-restore"


@pytest.fixture(scope="session")
def backup_lab(
    tmp_path_factory: pytest.TempPathFactory, lab_roots: HostRoots, lab_root_kind: RootKind
) -> Iterator[BackupLab]:
    root = lab_roots.create("bk1", lab_root_kind)
    demo = plant_demo_backups(root, host="bk1")
    specs = [LabHostSpec("bk1", groups=("backup",), root=root), LabHostSpec("bk2", groups=("backup",))]
    with start_fleet(tmp_path_factory.mktemp("bklab"), specs, startup_timeout=30) as fleet:
        fleet.write_inventory()
        yield BackupLab(fleet, root, demo)


# --------------------------------------------------------------------------- restic


@dataclass
class ResticRepos:
    main: Path  # web1 fresh (tag daily), old-host 10 days old
    remote: Path  # web1 only; verified over SSH on bk2 with a password file
    corrupt: Path  # web1 only, one data pack overwritten in the middle
    src: Path  # what was backed up
    password_file: Path
    config_sha256: str
    old_host_age: float

    def entries(self, scratch: Path) -> dict[str, dict[str, Any]]:
        config = str(self.src / "srv/app/config.yml")
        return {
            "restic-main": {
                "kind": "restic",
                "repository": str(self.main),
                "password_env": RESTIC_ENV,
                "rpo": "26h",
                "min_copies": 1,
                "restore_test": {
                    "into": str(scratch),
                    "rto": "5m",
                    "include": [str(self.src / "srv/app")],
                    "expect_files": [config],
                    "verify": [{"path": config, "sha256": self.config_sha256}],
                },
            },
            "restic-remote": {
                "kind": "restic",
                "host": "bk2",
                "repository": str(self.remote),
                "password_file": str(self.password_file),
                "rpo": "26h",
                "min_copies": 1,  # retention is not what this backup tests
            },
            "restic-corrupt": {
                "kind": "restic",
                "repository": str(self.corrupt),
                "password_env": RESTIC_ENV,
                "rpo": "26h",
                "min_copies": 1,  # retention is not what this backup tests
                "integrity": "read-data",
            },
        }


@pytest.fixture(scope="session")
def restic_repos(tmp_path_factory: pytest.TempPathFactory) -> ResticRepos:
    assert shutil.which("restic"), "restic is missing: run scripts/install-system-deps.sh"
    base = tmp_path_factory.mktemp("restic")
    src = base / "src"
    config = b"listen: 0.0.0.0:8080\nworkers: 4\n"
    write_tree(
        src,
        {
            "srv/app/config.yml": config,
            "srv/app/data.bin": random.Random(3).randbytes(150_000),
            "srv/other/readme.txt": b"not restored by the include filter\n",
        },
    )
    main = base / "main"
    restic(main, "init")
    restic(main, "backup", "--host", "web1", "--tag", "daily", str(src))
    age = 10 * DAY + 3600
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(time.time() - age))
    restic(main, "backup", "--host", "old-host", "--time", when, str(src))
    remote = base / "remote"
    shutil.copytree(main, remote)
    old = json.loads(restic(remote, "snapshots", "--json", "--host", "old-host"))
    restic(remote, "forget", *[s["id"] for s in old])
    corrupt = base / "corrupt"
    shutil.copytree(remote, corrupt)
    corrupt_pack(max(data_packs(corrupt), key=lambda p: p.stat().st_size))
    pwfile = base / "restic-password"
    pwfile.write_text(RESTIC_PASSWORD + "\n")
    pwfile.chmod(0o600)
    return ResticRepos(main, remote, corrupt, src, pwfile, hashlib.sha256(config).hexdigest(), age)


# --------------------------------------------------------------------------- postgres


@pytest.fixture(scope="session")
def pg() -> Iterator[PgServer]:
    server = PgServer().start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class PgDumps:
    dir: Path
    server: PgServer

    def entries(self) -> dict[str, dict[str, Any]]:
        server = self.server.server_entry(PG_ENV)
        verify = [
            {"query": "SELECT count(*) FROM orders", "min": 1000},
            {"query": "SELECT max(created_at) FROM orders", "max_age": "26h"},
        ]
        test = {"server": server, "database_prefix": "itops_rt", "rto": "5m", "verify": verify}
        return {
            "pg-orders": {
                "kind": "postgres_dump",
                "path": f"{self.dir}/orders/*.dump",
                "rpo": "26h",
                "min_copies": 1,  # retention is not what this backup tests
                "restore_test": test,
            },
            "pg-small": {
                "kind": "postgres_dump",
                "path": f"{self.dir}/small/*.dump",
                "rpo": "26h",
                "min_copies": 1,  # retention is not what this backup tests
                "restore_test": test,
            },
            "pg-plain": {
                "kind": "postgres_dump",
                "host": "bk2",
                "path": f"{self.dir}/plain/*.sql",
                "rpo": "26h",
                "min_copies": 1,  # retention is not what this backup tests
                "restore_test": {**test, "verify": verify[:1]},
            },
            "pg-truncated": {
                "kind": "postgres_dump",
                "path": f"{self.dir}/truncated/*.sql",
                "rpo": "26h",
                "min_copies": 1,
            },
        }


@pytest.fixture(scope="session")
def pg_dumps(pg: PgServer, tmp_path_factory: pytest.TempPathFactory) -> PgDumps:
    d = tmp_path_factory.mktemp("dumps")
    table = "CREATE TABLE orders (id serial PRIMARY KEY, created_at timestamptz NOT NULL, amount numeric NOT NULL)"
    for db, rows in (("shop", 1500), ("shop_small", 10)):
        pg.psql(f"CREATE DATABASE {db}")
        pg.psql(table, db)
        pg.psql(
            f"INSERT INTO orders (created_at, amount) SELECT now() - (g % 600) * interval '1 minute', g * 1.5 "
            f"FROM generate_series(1, {rows}) AS g",
            db,
        )
    stamp = time.strftime("%Y%m%d-%H%M")
    for sub in ("orders", "small", "plain", "truncated"):
        (d / sub).mkdir()
    pg.dump("shop", d / "orders" / f"shop-{stamp}.dump")
    pg.dump("shop_small", d / "small" / f"shop_small-{stamp}.dump")
    plain = pg.dump("shop", d / "plain" / f"shop-{stamp}.sql", fmt="p")
    data = plain.read_bytes()
    (d / "truncated" / f"shop-{stamp}.sql").write_bytes(data[: len(data) // 2])
    return PgDumps(d, pg)
