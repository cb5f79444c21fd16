"""`itops forecast` and storage.capacity_forecast_ok on a lab host whose file system grows by a fixed amount
per run (real sshd, a tmpfs mount of its own, real df). The runs are a few seconds apart; to make them a
day apart, the test moves each stored run's timestamps back as an operator's daily runs would have them."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest
from audit_helpers import run_audit
from click.testing import CliRunner

from itops.cli.main import cli
from itops_lab import HostRoots, LabHostSpec, LabMount, RootKind

pytestmark = pytest.mark.integration

DAY = 86400.0
CHECKS = "storage.filesystem_usage_below_threshold,storage.inode_usage_below_threshold,storage.capacity_forecast_ok"


def _ssh(fleet, command: str) -> None:
    import paramiko

    host = fleet.hosts["fc1"]
    client = paramiko.SSHClient()
    client.load_host_keys(str(fleet.known_hosts_path))
    client.connect(
        "127.0.0.1",
        port=host.port,
        username="root",
        key_filename=str(fleet.client_key_path),
        look_for_keys=False,
        allow_agent=False,
        timeout=10,
    )
    try:
        _, out, err = client.exec_command(command, timeout=30)
        assert out.channel.recv_exit_status() == 0, err.read()
    finally:
        client.close()


def _backdate(store: Path, run_id: str, started: float) -> None:
    with sqlite3.connect(store / "history.db") as db:
        db.execute("UPDATE runs SET started = ?, finished = ? WHERE id = ?", (started, started + 5, run_id))
        db.execute("UPDATE metrics SET ts = ? WHERE run_id = ?", (started, run_id))


def test_a_file_system_growing_by_a_fixed_amount_per_day_is_projected_to_the_right_day(
    fleet_factory, lab_host_roots: HostRoots, tmp_path: Path
) -> None:
    root = lab_host_roots.create("fc1", RootKind.BUSYBOX)
    fleet = fleet_factory([LabHostSpec("fc1", root=root, mounts=(LabMount("/data", "tmpfs", "size=10m"),))])
    # Only /data counts: the chroot's / is this machine's disk, which other work fills and empties meanwhile.
    fleet.write_inventory(extra={"hosts": {"fc1": {"vars": {"fs_usage_ignore_mounts": ["/", "/[!d]*", "/d[!a]*"]}}}})
    store = tmp_path / "store"
    runs = 6
    start = time.time() - (runs - 1) * DAY
    # 1 MiB more of the 10 MiB tmpfs per day: 10 %, 20 % ... 60 % today; 90 % is 3 days away.
    for day in range(runs):
        _ssh(fleet, f"dd if=/dev/zero of=/data/day{day} bs=1024 count=1024 2>/dev/null")
        code, doc, err = run_audit("-i", str(fleet.inventory_path), "--checks", CHECKS, "--store", str(store))
        assert code in (0, 1), err
        forecast = {r["resource"]: r for r in doc["results"] if r["check_id"] == "storage.capacity_forecast_ok"}
        if day < 4:  # fewer than 5 points so far
            assert [r["status"] for r in forecast.values()] == ["SKIPPED"], forecast
            assert f"not enough history ({day + 1} of 5 runs)" in next(iter(forecast.values()))["message"]
        if day < runs - 1:
            _backdate(store, doc["run"]["id"], start + day * DAY)
    # The last run, today: the check sees the trend and fails /data only.
    assert forecast["/data"]["status"] == "FAIL", forecast
    assert "projected to reach 90% space used in 3 days" in forecast["/data"]["message"]
    assert set(forecast) == {"/data"}

    res = CliRunner().invoke(
        cli, ["forecast", "--store", str(store), "-i", str(fleet.inventory_path), "--format", "json"]
    )
    assert res.exit_code == 1, res.output  # a projection crosses within the 30-day horizon
    report = json.loads(res.stdout)
    data = next(f for f in report["filesystems"] if f["mount"] == "/data" and f["what"] == "space")
    assert data["host"] == "fc1" and data["site"] == "lab" and data["within_horizon"] is True
    assert abs(data["days_left"] - 3.0) <= 1.0, data
    assert data["fit"]["slope_per_day"] == pytest.approx(10.0, abs=0.5)
    (plan,) = report["capacity_plan"]
    gib = 1024 * 1024  # KiB per GiB: df counts 1 KiB blocks
    assert plan["site"] == "lab" and plan["filesystems"] == 1
    assert plan["size_gb"] == pytest.approx(10240 / gib, abs=1e-3)
    assert plan["used_gb"] == pytest.approx(6144 / gib, abs=1e-3)
    assert plan["used_gb_in_3_months"] == pytest.approx((6144 + 1024 * 91.3) / gib, rel=0.05)  # the line, unclipped

    table = CliRunner().invoke(cli, ["forecast", "--store", str(store), "--horizon", "2d"])
    assert table.exit_code == 0, table.output  # 3 days away is outside a 2-day horizon
    assert "/data" in table.stdout and "in 3 days" in table.stdout
    html = tmp_path / "forecast.html"
    res = CliRunner().invoke(cli, ["forecast", "--store", str(store), "--format", "html", "-o", str(html)])
    assert "/data" in html.read_text() and "<script" not in html.read_text()
