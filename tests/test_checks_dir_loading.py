"""What a user checks folder (``--checks-dir``, inventory ``checks_dirs``) may import, and from where.

Importing a file runs it as the user itops runs as: only check modules are imported (not a vendored
``setup.py``, tests, virtualenvs), and only from folders no other user can write to.
"""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from itops.cli.main import cli
from itops.errors import CheckError, ConfigError
from itops.registry import Registry, load_folder, load_registry

CHECK = textwrap.dedent("""
    from itops.checkapi import Finding, Probe, Severity, host_check

    @host_check(id="test.user_{name}", title="A user check", severity=Severity.LOW,
                rationale="test-only user check", remediation="nothing to fix",
                frameworks={{"nist-800-53": ["SI-4"], "iso-27001": ["A.8.16"]}}, probes=[Probe("t", "true")])
    def check(facts, params):
        return Finding.passed("ok")
""")


def _planting(marker: Path, name: str) -> str:
    """A module that, when imported, leaves a file behind: the proof it ran."""
    return f"from pathlib import Path\nPath({str(marker / name)!r}).write_text('imported')\n"


def _pack(root: Path, marker: Path) -> Path:
    pack = root / "pack"
    (pack / "sub").mkdir(parents=True)
    (pack / "mine.py").write_text(CHECK.format(name="top"))
    (pack / "sub" / "deeper.py").write_text(CHECK.format(name="deeper"))
    not_checks = {
        "setup.py": "setup",
        "conftest.py": "conftest",
        "test_mine.py": "test_mine",
        "mine_test.py": "mine_test",
        "_private.py": "private",
        "noxfile.py": "noxfile",
        "helper.py": "helper",  # helper: no check API
        ".venv/lib/python3.11/site-packages/evil.py": "venv",
        "venv2/pyvenv.cfg": None,
        "venv2/lib/x.py": "venv2",
        ".git/hooks/x.py": "git",
        "__pycache__/x.py": "pycache",
        "_vendor/x.py": "vendor",
        "node_modules/x.py": "node",
        "build/lib/x.py": "build",
    }
    for rel, tag in not_checks.items():
        path = pack / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if tag is None:
            path.write_text("home = /usr/bin\n")
        elif tag == "helper":
            path.write_text(_planting(marker, tag))
        else:  # even when it mentions the check API, a file of these names or folders is not a check
            path.write_text("import itops.checkapi\n" + _planting(marker, tag))
    return pack


def test_only_check_modules_are_imported(tmp_path):
    marker = tmp_path / "imported"
    marker.mkdir()
    pack = _pack(tmp_path, marker)
    registry = load_registry([pack], entry_point_packs=False)
    assert sorted(os.listdir(marker)) == []  # no setup.py, test, helper or virtualenv module ran
    assert registry.get("test.user_top").source == str(pack / "mine.py")
    assert registry.get("test.user_deeper").source == str(pack / "sub" / "deeper.py")
    assert registry.warnings == []


def test_builtin_check_file_without_the_check_api_is_an_error(tmp_path):
    (tmp_path / "forgot.py").write_text("X = 1\n")
    with pytest.raises(CheckError, match=r"does not import itops\.checkapi"):
        load_folder(Registry(), tmp_path, strict=True)


@pytest.mark.parametrize("mode", [0o777, 0o775, 0o757], ids=oct)
def test_checks_folder_writable_by_others_is_refused(tmp_path, mode):
    marker = tmp_path / "imported"
    marker.mkdir()
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "planted.py").write_text("import itops.checkapi\n" + _planting(marker, "planted"))
    pack.chmod(mode)
    with pytest.raises(ConfigError) as err:
        load_registry([pack], entry_point_packs=False)
    assert f"{pack} is writable by group or others (mode {mode:04o})" in str(err.value)
    assert f"chmod go-w {pack}" in str(err.value)
    assert os.listdir(marker) == []
    pack.chmod(0o755)
    load_registry([pack], entry_point_packs=False)
    assert os.listdir(marker) == ["planted"]


def test_writable_subfolder_file_or_parent_is_refused(tmp_path):
    outer = tmp_path / "outer"
    pack = outer / "pack"
    (pack / "sub").mkdir(parents=True)
    (pack / "sub" / "mine.py").write_text(CHECK.format(name="sub"))
    for path, mode in [(pack / "sub", 0o777), (pack / "sub" / "mine.py", 0o666), (outer, 0o777)]:
        path.chmod(mode)
        with pytest.raises(ConfigError, match=re.escape(f"{path} is writable by group or others")):
            load_registry([pack], entry_point_packs=False)
        path.chmod(0o755 if path.is_dir() else 0o644)
    outer.chmod(0o1777)  # a sticky parent (like /tmp): others cannot replace what is in it
    assert "test.user_sub" in load_registry([pack], entry_point_packs=False).checks


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_checks_folder_owned_by_another_user_is_refused(tmp_path):
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "mine.py").write_text(CHECK.format(name="owned"))
    os.chown(pack, 4242, 4242)
    with pytest.raises(ConfigError, match=re.escape(f"{pack} is owned by another user (uid 4242)")):
        load_registry([pack], entry_point_packs=False)
    os.chown(pack, 0, 0)
    os.chown(pack / "mine.py", 4242, 4242)
    with pytest.raises(ConfigError, match=r"mine\.py is owned by another user"):
        load_registry([pack], entry_point_packs=False)


def test_cli_refuses_a_world_writable_checks_dir_with_exit_4(tmp_path):
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "mine.py").write_text(CHECK.format(name="cli"))
    pack.chmod(0o777)
    res = CliRunner().invoke(cli, ["checks", "list", "--checks-dir", str(pack)])
    assert res.exit_code == 4, res.output
    assert f"{pack} is writable by group or others" in res.stderr


def test_a_symlink_to_the_checks_folder_in_an_open_folder_is_refused(tmp_path):
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "mine.py").write_text(CHECK.format(name="linked"))
    open_dir = tmp_path / "open"
    open_dir.mkdir()
    (open_dir / "checks").symlink_to(pack)
    open_dir.chmod(0o777)  # anyone could point "checks" somewhere else
    with pytest.raises(ConfigError, match=re.escape(f"{open_dir} is writable by group or others")):
        load_registry([open_dir / "checks"], entry_point_packs=False)
    open_dir.chmod(0o755)
    assert "test.user_linked" in load_registry([open_dir / "checks"], entry_point_packs=False).checks
