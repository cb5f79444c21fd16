"""Waivers: valid ones waive FAILs, expired ones do not and are listed, stale ones are listed."""

from __future__ import annotations

import json
import textwrap
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from report_helpers import result, store_run

from itops.cli.main import cli
from itops.errors import ConfigError
from itops.inventory import load_inventory
from itops.model import Status
from itops.store import Store
from itops.waivers import WaiverSet, read_waiver_file

TODAY = date(2026, 6, 1)
INVENTORY = """\
version: 1
groups:
  legacy: {hosts: [legacy1, legacy2], children: [appliances]}
  appliances: {hosts: [box1]}
hosts:
  web1: {address: 127.0.0.1}
  legacy1: {address: 127.0.0.1, site: dc1, tags: [pci]}
  legacy2: {address: 127.0.0.1}
  box1: {address: 127.0.0.1}
sites:
  dc1: {}
waivers:
  - {check: "ssh.*", target: "group:legacy", justification: "isolated VLAN", approver: ciso, ticket: OPS-1,
     expires: 2026-12-31}
  - {check: kernel.ip_forwarding_disabled, target: "web*", justification: "router", approver: netops,
     expires: 2026-05-31}
  - {check: "aws.s3.*", target: "arn:aws:s3:::public-*", justification: "static site", approver: cto,
     expires: 2026-06-01}
  - {check: backup.within_rpo, target: db-weekly, justification: "weekly by design", approver: dba,
     expires: 2027-01-01}
"""


@pytest.fixture
def inv(tmp_path: Path) -> Path:
    path = tmp_path / "inv.yaml"
    path.write_text(INVENTORY)
    return path


@pytest.fixture
def ws(inv: Path) -> WaiverSet:
    return WaiverSet.load(load_inventory(inv), today=TODAY)


def test_valid_waiver_turns_fail_into_waived_with_the_waiver_attached(ws: WaiverSet) -> None:
    out = ws.apply(result("legacy1", "ssh.root_login_disabled", Status.FAIL))
    assert out.status is Status.WAIVED
    assert out.waiver is not None
    assert (out.waiver.approver, out.waiver.ticket, out.waiver.expires) == ("ciso", "OPS-1", "2026-12-31")


def test_group_targets_include_child_groups_and_only_members(ws: WaiverSet) -> None:
    assert ws.apply(result("box1", "ssh.x_y", Status.FAIL)).status is Status.WAIVED  # via child group
    assert ws.apply(result("web1", "ssh.x_y", Status.FAIL)).status is Status.FAIL  # not a member


def test_check_glob_must_match(ws: WaiverSet) -> None:
    assert ws.apply(result("legacy1", "linux.x_y", Status.FAIL)).status is Status.FAIL


def test_only_fail_is_waived(ws: WaiverSet) -> None:
    for status in (Status.PASS, Status.ERROR, Status.UNREACHABLE, Status.SKIPPED):
        assert ws.apply(result("legacy1", "ssh.x_y", status)).status is status


def test_expired_waiver_does_not_apply_and_is_reported(ws: WaiverSet) -> None:
    fail = result("web1", "kernel.ip_forwarding_disabled", Status.FAIL)
    assert ws.apply(fail).status is Status.FAIL  # expired 2026-05-31, today 2026-06-01
    report = ws.report([fail])
    [expired] = report["expired"]
    assert expired.entry.rule.approver == "netops" and expired.waived == 1 and expired.days_left == -1


def test_waiver_applies_through_its_expiry_day(ws: WaiverSet) -> None:
    bucket = result("aws-prod", "aws.s3.bucket_public_access_blocked", Status.FAIL, resource="arn:aws:s3:::public-www")
    assert ws.apply(bucket).status is Status.WAIVED  # expires 2026-06-01 == today; matched on the resource
    later = WaiverSet(ws.entries, today=date(2026, 6, 2), host_labels=ws.host_labels)
    assert later.apply(bucket).status is Status.FAIL


def test_report_sorts_active_expired_and_stale(ws: WaiverSet) -> None:
    results = ws.apply_all(
        [
            result("legacy1", "ssh.root_login_disabled", Status.FAIL),
            result("legacy2", "ssh.root_login_disabled", Status.PASS),
            result("web1", "kernel.ip_forwarding_disabled", Status.FAIL),
            result("aws-prod", "aws.s3.bucket_public_access_blocked", Status.FAIL, resource="arn:aws:s3:::public-x"),
        ]
    )
    report = ws.report(results)
    active = {u.entry.rule.check: u for u in report["active"]}
    assert set(active) == {"ssh.*", "aws.s3.*"}
    assert (active["ssh.*"].matched, active["ssh.*"].waived) == (2, 1)
    assert [u.entry.rule.check for u in report["expired"]] == ["kernel.ip_forwarding_disabled"]
    assert [u.entry.rule.check for u in report["stale"]] == ["backup.within_rpo"]  # matches nothing
    assert report["stale"][0].entry.where.endswith("inv.yaml:19")


def test_site_and_tag_targets(tmp_path: Path, inv: Path) -> None:
    extra = tmp_path / "waivers.yaml"
    extra.write_text(
        textwrap.dedent("""\
        waivers:
          - {check: "*", target: "tag:pc?", justification: j, approver: a, expires: 2030-01-01}
          - {check: "*", target: "site:dc1", justification: j, approver: b, expires: 2030-01-01}
    """)
    )
    ws = WaiverSet.load(load_inventory(inv), extra_file=extra, today=TODAY)
    assert len(ws) == 6
    out = ws.apply(result("legacy1", "linux.x_y", Status.FAIL))
    assert out.status is Status.WAIVED and out.waiver is not None and out.waiver.approver == "a"
    assert ws.apply(result("legacy2", "linux.x_y", Status.FAIL)).status is Status.FAIL


def test_separate_file_accepts_a_bare_list(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text("- {check: a.b_c, target: h1, justification: j, approver: a, expires: 2030-01-01, ticket: 7}\n")
    [rule] = read_waiver_file(path)
    assert rule.ticket == "7" and rule.line == 1
    ws = WaiverSet.load(None, extra_file=path, today=TODAY)
    assert ws.apply(result("h1", "a.b_c", Status.FAIL)).status is Status.WAIVED


def test_separate_file_reports_every_problem_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(
        textwrap.dedent("""\
        waivers:
          - {check: a.b_c, target: h1, justification: j, approver: a}
          - {check: a.b_c, target: h1, justification: j, approver: a, expires: someday}
          - {check: a.b_c, target: h1, justification: j, approver: a, expires: 2030-01-01, expiry: 2031-01-01}
        extra: 1
    """)
    )
    with pytest.raises(ConfigError) as err:
        read_waiver_file(path)
    text = str(err.value)
    assert "4 problems" in text
    assert "w.yaml:2: waivers[0]: missing required key 'expires'" in text
    assert "w.yaml:3: waivers[1].expires: expected a date" in text
    assert "w.yaml:4: waivers[2].expiry: unknown key 'expiry'" in text
    assert "w.yaml:5: extra: unknown key 'extra'" in text


def test_inventory_waiver_without_expiry_is_an_inventory_error(tmp_path: Path) -> None:
    path = tmp_path / "inv.yaml"
    path.write_text("version: 1\nwaivers:\n  - {check: a, target: b, justification: j, approver: a}\n")
    with pytest.raises(ConfigError, match="expires"):
        load_inventory(path)


def test_expiring_lists_expired_and_soon_expiring(ws: WaiverSet) -> None:
    assert [e.rule.check for e in ws.expiring(30)] == ["kernel.ip_forwarding_disabled", "aws.s3.*"]


def test_cli_waivers_list(inv: Path, tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    store_run(store, [result("legacy1", "ssh.root_login_disabled", Status.WAIVED)])
    runner = CliRunner()
    out = runner.invoke(cli, ["waivers", "list", "-i", str(inv), "--format", "json"])
    assert out.exit_code == 0, out.output
    states = {w["check"]: w["state"] for w in json.loads(out.output)}
    assert states["kernel.ip_forwarding_disabled"] == "expired"  # today is after 2026-05-31
    assert states["backup.within_rpo"] == "active"  # without --run nothing is stale
    out = runner.invoke(cli, ["waivers", "list", "-i", str(inv), "--run", "latest", "--store", str(store.root)])
    assert out.exit_code == 0, out.output
    assert "stale" in out.output and "matched 0" in out.output
    out = runner.invoke(cli, ["waivers", "list", "-i", str(inv), "--expiring", "100000d", "--format", "json"])
    assert len(json.loads(out.output)) == 4
    out = runner.invoke(cli, ["waivers", "list", "-i", str(inv), "--expiring", "soon"])
    assert out.exit_code == 2 and "--expiring" in out.output


def test_warnings_name_expired_and_stale_waivers(ws: WaiverSet) -> None:
    lines = ws.warnings([result("web1", "kernel.ip_forwarding_disabled", Status.FAIL)])
    assert any("expired on 2026-05-31: 1 failure(s) no longer waived" in line for line in lines)
    assert any("backup.within_rpo on db-weekly" in line and "(stale)" in line for line in lines)
