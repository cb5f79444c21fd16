"""itops/checklib/packages.py: package inventory, update parsing, repo signing and the EOL table."""

from __future__ import annotations

import datetime as dt
import subprocess

import pytest

from itops.checklib import packages


def test_package_probe_runs_here():
    out = subprocess.run(["sh", "-c", packages.PACKAGES_COMMAND], capture_output=True, text=True)
    if out.returncode == 127:
        pytest.skip("no package manager here")
    inventory = packages.parse_package_inventory(out.stdout)
    assert inventory.manager in {"dpkg", "rpm", "apk"}
    assert inventory.installed


def test_inventory_parsing():
    inv = packages.parse_package_inventory(
        "@@itops-pm dpkg\nbash install ok installed\nold deinstall ok config-files\n"
        "half install reinstreq half-installed\n"
    )
    assert inv.has("bash") and inv.has("half") and not inv.has("old")
    assert packages.parse_package_inventory("@@itops-pm apk\nmusl\nbusybox\n").present(["musl", "x"]) == ["musl"]
    for bad in ("", "bash\n", "@@itops-pm dpkg\nbash installed\n", "@@itops-pm none\n", "@@itops-pm rpm\n"):
        with pytest.raises(ValueError):
            packages.parse_package_inventory(bad)


def test_truthy_and_ini():
    assert [packages.truthy(v) for v in ("1", "True", "no", "maybe")] == [True, True, False, None]
    ini = packages.parse_ini("; c\n[main]\ngpgcheck = 1\n[repo]\nenabled=0\n")
    assert ini == {"main": {"gpgcheck": "1"}, "repo": {"enabled": "0"}}


def test_eol_table_loads_and_covers_the_brief():
    data = packages.load_eol_data()
    expected = {("debian", "10"): "2024-06-30", ("debian", "11"): "2026-08-31", ("debian", "12"): "2028-06-30"}
    for (os_id, version), date in expected.items():
        entry = packages.lookup_eol({"ID": os_id, "VERSION_ID": version}, data)
        assert entry is not None and entry.eol == dt.date.fromisoformat(date)
    for os_id, rel in (
        ("ubuntu", "22.04"),
        ("ubuntu", "24.04"),
        ("rhel", "7.9"),
        ("rhel", "8.10"),
        ("rhel", "9.4"),
        ("rocky", "9.3"),
        ("almalinux", "8.9"),
        ("alpine", "3.20.2"),
        ("amzn", "2023"),
    ):
        assert packages.lookup_eol({"ID": os_id, "VERSION_ID": rel}, data) is not None, (os_id, rel)
    assert packages.lookup_eol({"ID": "debian"}, data) is None
    assert packages.lookup_eol({"ID": "plan9", "VERSION_ID": "4"}, data) is None


def test_eol_table_rejects_unquoted_release(tmp_path):
    bad = tmp_path / "eol.yaml"
    bad.write_text("ubuntu:\n  match: full\n  releases:\n    20.10: {eol: 2021-07-22}\n")
    with pytest.raises(ValueError, match="quote release"):
        packages.load_eol_data(str(bad))
