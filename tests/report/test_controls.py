"""Control titles for the framework views: every NIST and ISO control a built-in check references has one."""

from __future__ import annotations

from report_helpers import result

from itops.model import Status
from itops.registry import load_registry
from itops.report.controls import CATALOGUES, control_title
from itops.report.views import frameworks


def test_every_referenced_nist_and_iso_control_has_a_title() -> None:
    missing = {
        (fw, ref)
        for check in load_registry([])
        for fw, refs in check.meta.frameworks.items()
        if fw in CATALOGUES
        for ref in refs
        if not control_title(fw, ref)
    }
    assert missing == set()


def test_control_rows_carry_the_framework_title_or_the_check_titles() -> None:
    refs = {"nist-800-53": ("AC-6(2)", "AC-99(7)"), "cis-debian-12": ("5.1.20",)}
    views = {v.key: v for v in frameworks([result("web1", "ssh.root_login_disabled", Status.FAIL, frameworks=refs)])}
    nist = {c.control: c.title for c in views["nist-800-53"].controls}
    assert nist["AC-6(2)"] == "Least Privilege | Non-privileged Access for Nonsecurity Functions"
    assert nist["AC-99(7)"] == "Title of ssh.root_login_disabled"  # unknown to the catalogue: the check's title
    assert views["cis-debian-12"].controls[0].title == "Title of ssh.root_login_disabled"
