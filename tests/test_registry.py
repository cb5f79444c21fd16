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


def test_plugin_packs_are_loaded_once_and_again_only_when_a_file_changes(tmp_path, monkeypatch):
    import os

    from itops import plugins

    pack = tmp_path / "pack" / "demo"
    pack.mkdir(parents=True)
    check_file = pack / "demo_check.py"
    source = textwrap.dedent(
        """
        from itops.checkapi import Finding, Probe, Severity, host_check

        @host_check(id="demo.loaded_once", title="TITLE", severity=Severity.LOW, probes=[Probe("t", "true")],
                    rationale="a rationale long enough", remediation="do the thing",
                    frameworks={"nist-800-53": ["CM-6"], "iso-27001": ["A.8.9"]})
        def demo(facts, params):
            return Finding.passed("ok")
        """
    )
    check_file.write_text(source.replace("TITLE", "The first title"))
    monkeypatch.setattr(plugins, "check_folders", lambda: ((tmp_path / "pack", True),))

    first, second = load_registry(entry_point_packs=False), load_registry(entry_point_packs=False)
    assert first is not second and first.checks is not second.checks  # each caller gets its own registry
    assert first.get("demo.loaded_once") is second.get("demo.loaded_once")  # not imported again
    first.checks.clear()
    assert "demo.loaded_once" in load_registry(entry_point_packs=False).checks

    check_file.write_text(source.replace("TITLE", "The second title"))
    st = check_file.stat()
    os.utime(check_file, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert load_registry(entry_point_packs=False).get("demo.loaded_once").meta.title == "The second title"
