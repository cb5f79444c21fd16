"""Every check in the built-in packs is complete: metadata, remediation, controls, and a unit test."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from itops.checkapi import REQUIRED_FRAMEWORKS
from itops.errors import CheckError
from itops.registry import Registry, load_folder, load_registry

ROOT = Path(__file__).resolve().parents[1]
REG = load_registry(entry_point_packs=False)
CHECKS = list(REG)


def _test_sources() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "tests").rglob("test_*.py"))


TEST_TEXT = _test_sources()


def test_the_builtin_packs_load_strictly_and_are_not_empty():
    assert not REG.warnings
    assert len(REG.select(None, "host")) >= 60


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.id)
def test_check_metadata_is_complete(check):
    meta = check.meta
    assert meta.remediation.strip() and len(meta.remediation) >= 15, "remediation must say how to fix it"
    assert meta.rationale.strip()
    for fw in REQUIRED_FRAMEWORKS:  # nist-800-53 and iso-27001 are required for every check
        assert meta.frameworks.get(fw), f"{check.id} lacks {fw} references"
    for refs in meta.frameworks.values():
        assert all(r.strip() for r in refs)
    assert meta.id.split(".")[0] in {
        "ssh",
        "accounts",
        "files",
        "kernel",
        "services",
        "software",
        "logging",
        "storage",
        "packages",
        "aws",
        "backup",
        "dr",
        "inventory",
    }, meta.id
    if meta.target == "host":
        assert check.probes, f"{check.id} declares no probe"


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.id)
def test_check_has_a_unit_test(check):
    # a check id that appears verbatim in some test module (quoted) counts as tested
    assert re.search(rf"[\"']{re.escape(check.id)}[\"']", TEST_TEXT), f"no test mentions {check.id}"


def test_probe_names_are_unambiguous():
    seen: dict[str, str] = {}
    for check in REG.select(None, "host"):
        for probe in check.probes:
            cmd = probe.render(check.meta.params)
            assert seen.setdefault(probe.name, cmd) == cmd, f"probe {probe.name} has two commands"


def test_duplicate_ids_in_user_packs_are_skipped_with_a_warning(tmp_path):
    (tmp_path / "dup.py").write_text(
        textwrap.dedent("""
        from itops.checkapi import host_check, Probe, Finding, Severity
        @host_check(id="ssh.root_login_disabled", title="a duplicate", severity=Severity.LOW,
                    rationale="duplicate of a builtin", remediation="nothing to do here",
                    frameworks={"nist-800-53": ["AC-6"], "iso-27001": ["A.8.2"]}, probes=[Probe("x", "true")])
        def f(facts, params):
            return Finding.passed("ok")
    """)
    )
    reg = load_registry([tmp_path], entry_point_packs=False)
    assert any("duplicate check id ssh.root_login_disabled" in w for w in reg.warnings)
    assert reg.get("ssh.root_login_disabled").source != str(tmp_path / "dup.py")


def test_broken_builtin_pack_is_an_error_not_a_warning(tmp_path):
    (tmp_path / "broken.py").write_text("import nonexistent_module_xyz\n")
    with pytest.raises(CheckError):
        load_folder(Registry(), tmp_path, strict=True)
