"""The shipped example playbooks drilled against the lab: each passes and records its achieved RTO, and a
broken variant fails at the right step and rolls back."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from itops.cli.main import cli
from itops.resources import bundled_dir
from itops.store import Store
from itops_lab.backup_demo import plant_demo_backups
from itops_lab.netutil import free_port

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backup"))
from backup_services import PG_PASSWORD, PgServer

pytestmark = pytest.mark.integration
PLAYBOOKS = bundled_dir("playbooks")


def drill(name: str, inventory: Path, store: Path, *extra: str) -> tuple[int, str, dict]:
    result = CliRunner().invoke(
        cli, ["dr", "drill", str(PLAYBOOKS / f"{name}.yaml"), "-i", str(inventory), "--store", str(store), *extra]
    )
    s = Store(store)
    meta = json.loads((s.run_dir(s.resolve("latest")) / "drill.json").read_text())
    return result.exit_code, result.stdout + result.stderr, meta


def _kill_pidfile(path: Path) -> None:
    """Stop a service the drill started, by the PID it recorded."""
    with contextlib.suppress(OSError, ValueError):
        os.kill(int(path.read_text().strip()), signal.SIGTERM)


@pytest.fixture
def service_dir(tmp_path):
    d = tmp_path / "service"
    yield d
    for name in ("primary.pid", "standby.pid"):
        _kill_pidfile(d / name)


def _wait_closed(port: int) -> None:
    import socket
    import time

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return
        time.sleep(0.1)


def test_failover_service_passes_and_a_broken_variant_rolls_back(fleet_factory, tmp_path, service_dir):
    lab = fleet_factory(2)
    ports = [
        f"--var=primary_port={free_port()}",
        f"--var=standby_port={(standby := free_port())}",
        f"--var=dir={service_dir}",
        "--yes",
    ]
    store = tmp_path / "store"
    code, out, meta = drill("failover-service", lab.inventory_path, store, *ports)
    assert code == 0, out
    assert meta["success"] and 0 < meta["achieved_rto"] < meta["rto"] == 300
    assert (service_dir / "standby.pid").exists()
    _kill_pidfile(service_dir / "standby.pid")
    (service_dir / "standby.pid").unlink()
    _wait_closed(standby)
    # broken: the standby is checked at an address it does not serve -> step 5 fails, 3 and 1 are rolled back
    code, out, meta = drill("failover-service", lab.inventory_path, store, *ports, "--var=standby_address=127.0.0.2")
    assert code == 1, out
    assert meta["failed_step"] == "5 the standby serves the service"
    assert [r["name"] for r in meta["rollbacks"]] == [
        "stop the service on the standby",
        "start the service on the primary again",
    ]
    assert all(r["status"] == "PASS" for r in meta["rollbacks"])
    assert not (service_dir / "standby.pid").exists()  # standby stopped again
    assert (service_dir / "primary.pid").exists()  # primary restarted
    assert meta["achieved_rto"] is None


def test_file_restore_checksums_passes_and_a_wrong_checksum_rolls_back(fleet_factory, tmp_path):
    lab = fleet_factory(1)
    backups = plant_demo_backups(None, host="lab1", base=str(tmp_path / "backups"), scratch=str(tmp_path / "scratch"))
    inv = lab.write_inventory(extra={"backups": {"files-fresh": backups["files-fresh"]}})
    into = tmp_path / "recovered"
    store = tmp_path / "store"
    code, out, meta = drill("file-restore-checksums", inv, store, f"--var=into={into}")
    assert code == 0, out
    assert meta["success"] and meta["achieved_rto"] > 0
    assert [s["status"] for s in meta["steps"]] == ["PASS"] * 5
    assert not into.exists()  # cleaned up by the last step
    results = Store(store).results("latest")
    restore_test = next(r for r in results if r.resource == "step 1: restore test")
    assert "etc/app/app.conf sha256 ok" in restore_test.message
    code, out, meta = drill("file-restore-checksums", inv, store, f"--var=into={into}", "--var=sha256=" + "0" * 64)
    assert code == 1, out
    assert meta["failed_step"] == "3 checksum of the restored file"
    assert [r["name"] for r in meta["rollbacks"]] == ["remove the recovery folder"]
    assert not into.exists()  # the rollback removed the restored copy


@pytest.fixture(scope="module")
def pg():
    server = PgServer().start()
    try:
        yield server
    finally:
        server.stop()


def test_pg_standby_restore_passes_and_the_standby_holds_the_data(fleet_factory, tmp_path, pg, monkeypatch):
    lab = fleet_factory(1)
    pg.psql("CREATE DATABASE shop")
    pg.psql("CREATE TABLE orders (id serial PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now())", "shop")
    pg.psql("INSERT INTO orders (created_at) SELECT now() FROM generate_series(1, 250)", "shop")
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    pg.dump("shop", dumps / "shop-20260101.dump")
    monkeypatch.setenv("ITOPS_TEST_DRILL_PG", PG_PASSWORD)
    server = pg.server_entry("ITOPS_TEST_DRILL_PG")
    backup = {
        "kind": "postgres_dump",
        "host": "lab1",
        "path": f"{dumps}/*.dump",
        "rpo": "26h",
        "restore_test": {
            "server": server,
            "rto": "5m",
            "verify": [{"query": "SELECT count(*) FROM orders", "min": 100}],
        },
    }
    inv = lab.write_inventory(extra={"backups": {"pg-orders": backup}})
    pgpass = tmp_path / "pgpass"
    pgpass.write_text(f"127.0.0.1:{pg.port}:*:postgres:{PG_PASSWORD}\n")
    pgpass.chmod(0o600)
    store = tmp_path / "store"
    args = [f"--var=pg_port={pg.port}", f"--var=pgpass={pgpass}", "--yes"]
    code, out, meta = drill("pg-standby-restore", inv, store, *args)
    assert code == 0, out
    assert meta["success"] and meta["achieved_rto"] <= meta["rto"]
    assert pg.psql("SELECT count(*) FROM orders", "orders_standby") == "250"
    assert not [d for d in pg.databases() if d.startswith("itops_restore")]  # the restore test cleaned up
    # again: replace: true drops and restores the standby database
    pg.psql("DELETE FROM orders WHERE id > 10", "orders_standby")
    code, out, _ = drill("pg-standby-restore", inv, store, *args)
    assert code == 0, out
    assert pg.psql("SELECT count(*) FROM orders", "orders_standby") == "250"
    # broken: the verification queries a table the dump does not have -> fails at step 4
    code, out, meta = drill("pg-standby-restore", inv, store, *args, "--var=table=invoices")
    assert code == 1 and meta["failed_step"] == "4 the standby holds the data"
    assert yaml.safe_load((PLAYBOOKS / "pg-standby-restore.yaml").read_text())["rto"] == "30m"


def test_failover_service_runs_on_the_roots_lab_and_a_start_that_dies_fails(fleet_factory, lab_host_roots, tmp_path):
    """The example's header promises the `--roots` lab (Debian hosts without python3): it passes there, and
    a service that dies at once (its port is taken) FAILs the start step with its log, leaving no PID file."""
    import subprocess

    from itops_lab import LabHostSpec, RootKind

    roots = {name: lab_host_roots.create(name, RootKind.DEBIAN) for name in ("lab1", "lab2")}
    lab = fleet_factory([LabHostSpec(name, root=root) for name, root in roots.items()])
    service = "/var/tmp/itops-drill/service"
    standby_pid = roots["lab2"] / service.lstrip("/") / "standby.pid"

    def ssh(host: str, command: str) -> None:
        subprocess.run(
            ["ssh", "-F", str(lab.workdir / "ssh_config"), host, command],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=60,
            check=False,
        )

    ports = [f"--var=primary_port={free_port()}", f"--var=standby_port={free_port()}", "--yes"]
    store = tmp_path / "store"
    try:
        code, out, meta = drill("failover-service", lab.inventory_path, store, *ports)
        assert code == 0, out
        assert meta["success"] and [s["status"] for s in meta["steps"]] == ["PASS"] * 6
        assert standby_pid.exists()
    finally:
        ssh("lab2", f"kill $(cat {service}/standby.pid); rm -f {service}/standby.pid")
    # the standby's port is taken (by lab2's own sshd): the server dies at once, the start step says so
    taken = f"--var=standby_port={lab['lab2'].port}"
    try:
        code, out, meta = drill("failover-service", lab.inventory_path, store, ports[0], taken, "--yes")
        assert code == 1, out
        assert meta["failed_step"] == "3 start the service on the standby"
        assert "cannot listen on 127.0.0.1" in out, out
        assert not standby_pid.exists()
    finally:
        ssh("lab1", f"kill $(cat {service}/primary.pid); rm -f {service}/primary.pid")  # restarted by the rollback
