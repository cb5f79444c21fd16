"""Framework catalogues: every CIS number says which benchmark and which version it comes from (issue 15.6)."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from itops import frameworks
from itops.checkapi import CheckMeta
from itops.cli.main import cli
from itops.registry import load_registry

CHECKS = list(load_registry(entry_point_packs=False))


def _meta(**fw: list[str]) -> CheckMeta:
    return CheckMeta(
        id="test.thing_ok",
        title="A thing is ok",
        severity="low",
        rationale="because it matters",
        remediation="fix the thing",
        frameworks=fw,
    )


def test_a_check_cannot_use_an_unlabelled_or_unknown_catalogue() -> None:
    base = {"nist-800-53": ["AC-6"], "iso-27001": ["A.8.2"]}
    for bad in ("cis", "cis-debian-11", "pci-dss"):
        with pytest.raises(ValueError, match="unknown framework catalogue"):
            _meta(**base, **{bad: ["1.1"]})
    assert _meta(**base, **{"cis-debian-12": ["5.1.20"]}).frameworks["cis-debian-12"] == ("5.1.20",)


def test_every_builtin_cis_reference_names_its_benchmark() -> None:
    """Host checks cite CIS Debian 12 (RHEL 9 where named), AWS checks CIS AWS Foundations, backup and DR
    checks CIS Controls v8 section 11 (Data Recovery), inventory coverage CIS Controls 1.1 (asset inventory)."""
    by_key: dict[str, set[str]] = {}
    for check in CHECKS:
        for key, refs in check.meta.frameworks.items():
            assert key in frameworks.CATALOGUES
            assert all(re.fullmatch(r"\d+(\.\d+)*", r) for r in refs) or not key.startswith("cis"), (check.id, refs)
            by_key.setdefault(key, set()).add(check.id.split(".")[0])
    assert by_key["cis-aws-foundations"] == {"aws"}
    assert by_key["cis-controls"] >= {"backup", "dr"}
    assert by_key["cis-debian-12"] >= {"ssh", "kernel", "accounts", "files"}
    assert not by_key["cis-debian-12"] & {"aws", "backup", "dr", "inventory"}
    for check in CHECKS:
        if check.id.startswith(("backup.", "dr.")):
            assert all(r.startswith("11.") for r in check.meta.frameworks.get("cis-controls", ())), check.id


@pytest.mark.parametrize(
    ("check_id", "key", "ref"),
    [
        ("ssh.root_login_disabled", "cis-debian-12", "5.1.20"),  # 5.1 Configure SSH Server (5.2 in Debian 11)
        ("kernel.cramfs_module_disabled", "cis-debian-12", "1.1.1.1"),
        ("kernel.ip_forwarding_disabled", "cis-debian-12", "3.3.1"),
        ("files.passwd_permissions", "cis-debian-12", "7.1.1"),
        ("aws.s3.bucket_public_access_blocked", "cis-aws-foundations", "2.1.4"),
        ("aws.cloudtrail.kms_encrypted", "cis-aws-foundations", "3.5"),  # 3.7 in v2.0.0, 3.5 in v3.0.0
        ("backup.within_rpo", "cis-controls", "11.2"),
    ],
)
def test_known_recommendations_sit_in_the_right_catalogue(check_id: str, key: str, ref: str) -> None:
    by_id = {c.id: c for c in CHECKS}
    assert ref in by_id[check_id].meta.frameworks[key]


def test_labels_give_catalogue_and_version() -> None:
    assert frameworks.reference("cis-debian-12", "5.1.20") == "cis-debian-12 v1.1.0: 5.1.20"
    assert frameworks.reference("cis-aws-foundations", "2.1.4") == "cis-aws-foundations v3.0.0: 2.1.4"
    assert frameworks.reference("cis-controls", "11.2") == "cis-controls v8: 11.2"
    assert frameworks.name("cis-debian-12") == "CIS Debian Linux 12 Benchmark v1.1.0"
    assert frameworks.label("cis") == "cis"  # runs stored before the catalogues were labelled


def test_family_selects_all_its_catalogues_and_old_bare_keys() -> None:
    cis = [k for k in frameworks.CATALOGUES if frameworks.matches(k, "cis")]
    assert cis == ["cis-debian-12", "cis-rhel-9", "cis-aws-foundations", "cis-controls"]
    assert frameworks.matches("cis", "cis") and not frameworks.matches("nist-800-53", "cis")
    assert frameworks.matches("cis-debian-12", "cis-debian-12")
    assert not frameworks.matches("cis-controls", "cis-debian-12")


def test_checks_list_framework_cis_selects_every_cis_catalogue_with_versions() -> None:
    res = CliRunner().invoke(cli, ["checks", "list", "--framework", "cis"])
    assert res.exit_code == 0, res.output
    text = res.stdout
    for label in ("cis-debian-12 v1.1.0: ", "cis-aws-foundations v3.0.0: ", "cis-controls v8: ", "cis-rhel-9 v2.0.0: "):
        assert label in text
    only = CliRunner().invoke(cli, ["checks", "list", "--framework", "cis-debian-12", "--format", "json"])
    ids = {c["id"] for c in json.loads(only.stdout)}
    assert ids and all(not i.startswith(("aws.", "backup.")) for i in ids)
    shown = CliRunner().invoke(cli, ["checks", "show", "ssh.root_login_disabled"]).stdout
    assert "cis-debian-12 v1.1.0: 5.1.20" in shown
