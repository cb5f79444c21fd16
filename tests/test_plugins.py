"""The one plugin registry (itops/hookspecs.py, itops/plugins.py): built-ins through entry points, a
third-party plugin (tests/plugins/itops_test_plugin, installed by `make setup`) adding a report format
and a backup kind, hooks documented, no import cycle, nothing registered at import time."""

from __future__ import annotations

import ast
import inspect
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from itops import hookspecs, plugins
from itops.cli.main import cli
from itops.errors import CheckError
from itops.registry import Registry, load_folder

ROOT = Path(__file__).resolve().parents[1]
HOOKS = sorted(name for name, fn in vars(hookspecs).items() if name.startswith("itops_") and callable(fn))


def test_hooks_are_declared_once_and_documented():
    """Every hook has a docstring and a section in docs/plugins.md, and the doc names no other hook."""
    assert HOOKS == [
        "itops_aws_collections",
        "itops_backup_kinds",
        "itops_check_folders",
        "itops_check_loaders",
        "itops_notifiers",
        "itops_report_formats",
    ]
    doc = (ROOT / "docs" / "plugins.md").read_text()
    undocumented = [h for h in HOOKS if f"### {h}" not in doc or not inspect.getdoc(getattr(hookspecs, h))]
    assert undocumented == [], "document each hook in its hookspec docstring and in docs/plugins.md"
    documented = {line[4:].strip() for line in doc.splitlines() if line.startswith("### itops_")}
    assert documented == set(HOOKS)


def test_builtins_come_through_entry_points_first():
    loaded = plugins.loaded_plugins()
    builtin = [p.name for p in loaded if p.builtin]
    assert builtin == ["aws", "backups", "checks", "notifiers", "reports"]
    assert all(p.dist == "itops" for p in loaded if p.builtin)
    assert loaded[: len(builtin)] == [p for p in loaded if p.builtin]
    assert list(plugins.check_loaders()) == [".py", ".yaml", ".yml"]
    assert set(plugins.notifiers()) == {"email", "webhook"}
    assert "s3.buckets" in plugins.aws_collections()


def test_nothing_is_registered_or_loaded_at_import_time():
    """Importing every module that consumes a table loads no plugin and calls no hook."""
    code = (
        "import sys\n"
        "import itops.cli.main, itops.registry, itops.report, itops.transport.aws, itops.inventory\n"
        "import itops.backup.verify, itops.scheduler.notify, itops.declarative, itops.checkapi\n"
        "from itops import plugins\n"
        "assert plugins._manager is None, 'plugins loaded at import'\n"
        "loaded = sorted(m for m in sys.modules if m.startswith('itops.default_plugins.'))\n"
        "assert loaded == [], loaded\n"
        "assert 'itops.transport.aws_collections' not in sys.modules\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_no_hidden_import_module_in_itops():
    """Registration goes through entry points only: no importlib.import_module in the product's code."""
    hidden = []
    for path in sorted((ROOT / "itops").rglob("*.py")):
        if "lab" in path.relative_to(ROOT / "itops").parts:
            continue  # test tooling, leaving the package (issue #13 part 6)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and "import_module" in ast.unparse(node.func):
                hidden.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert hidden == []


def test_no_import_cycle_between_itops_modules():
    """The README's development section states this command."""
    out = subprocess.run(
        [sys.executable, "scripts/import_cycles.py", "itops"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stdout
    assert out.stdout.startswith("no import cycle between ")


def test_the_cycle_finder_finds_lazy_and_hidden_cycles(tmp_path):
    """The finder is not blind: the two cycles issue #13 named (one through a function-level import,
    one through importlib.import_module) are reported."""
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "registry.py").write_text("import importlib\ndef f():\n    importlib.import_module('pkg.declarative')\n")
    (pkg / "declarative.py").write_text("from pkg.registry import f\n")
    (pkg / "sub" / "a.py").write_text("def g():\n    from pkg.sub import b\n")
    (pkg / "sub" / "b.py").write_text("from . import a\n")
    (pkg / "typed.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.other\n")
    (pkg / "other.py").write_text("import pkg.typed\n")
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "import_cycles.py"), str(pkg)], capture_output=True, text=True
    )
    assert out.returncode == 1
    assert "pkg.declarative -> pkg.registry" in out.stdout and "pkg.registry -> pkg.declarative" in out.stdout
    assert "pkg.sub.a -> pkg.sub.b" in out.stdout
    assert "pkg.typed" not in out.stdout  # TYPE_CHECKING imports never run


# --- checks live where their id says ------------------------------------------------------------


def _check_file(folder: Path, rel: str, check_id: str) -> None:
    path = folder / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"id: {check_id}\ntitle: A test check\nseverity: low\nrationale: a rationale long enough\n"
        "remediation: chmod 0644 /etc/x\nframeworks: {nist-800-53: [CM-6], iso-27001: [A.8.9]}\n"
        "type: file\npath: /etc/x\n"
    )


def test_builtin_check_in_the_wrong_folder_is_refused(tmp_path):
    _check_file(tmp_path, "ssh/ok.yaml", "ssh.fine_here")
    _check_file(tmp_path, "ssh/misplaced.yaml", "files.not_here")
    with pytest.raises(CheckError, match=r"check files.not_here must be in .*/files/"):
        load_folder(Registry(), tmp_path, strict=True, builtin=True)
    reg = Registry()
    load_folder(reg, tmp_path, strict=False, builtin=True)  # a plugin's pack: skipped with a warning
    assert list(reg.checks) == ["ssh.fine_here"] and "files.not_here" in reg.warnings[0]
    reg = Registry()
    load_folder(reg, tmp_path, strict=True)  # a user's folder: any layout
    assert sorted(reg.checks) == ["files.not_here", "ssh.fine_here"]


def test_builtin_examples_folder_is_not_loaded(tmp_path):
    _check_file(tmp_path, "examples/sample.yaml", "examples.sample_check")
    _check_file(tmp_path, "files/x.yaml", "files.x_ok")
    reg = Registry()
    load_folder(reg, tmp_path, strict=True, builtin=True)
    assert list(reg.checks) == ["files.x_ok"]


def test_shipped_checks_live_where_their_id_says():
    from itops.registry import load_registry

    reg = load_registry(entry_point_packs=False)
    wrong = [c.id for c in reg if f"/checks/{c.id.split('.')[0]}/" not in c.source.replace(os.sep, "/")]
    assert wrong == []
    assert not (ROOT / "checks" / "packages").exists()
    assert sorted(p.name for p in (ROOT / "checks" / "examples").iterdir()) == ["README.md"]


def test_os_families_and_backup_kinds_are_validated_in_checkmeta():
    from pydantic import ValidationError

    from itops.checkapi import CheckMeta

    base = {
        "id": "files.x_ok",
        "title": "A test check",
        "severity": "low",
        "rationale": "a rationale long enough",
        "remediation": "chmod 0644 /etc/x",
        "frameworks": {"nist-800-53": ["CM-6"], "iso-27001": ["A.8.9"]},
    }
    with pytest.raises(ValidationError, match=r"unknown OS family 'debain' \(did you mean 'debian'\?\)"):
        CheckMeta(**base, os_families=("debain",))
    with pytest.raises(ValidationError, match=r"unknown backup kind\(s\) \['tape'\]"):
        CheckMeta(**base, target="backup", backup_kinds=("tape",))
    # the plugin's kind is a backup kind like the built-in ones: one list, the plugins'
    assert CheckMeta(**base, target="backup", backup_kinds=("file", "dated_file")).backup_kinds == (
        "file",
        "dated_file",
    )


# --- a third-party plugin: tests/plugins/itops_test_plugin ----------------------------------------


def test_third_party_plugin_is_installed_in_the_test_venv():
    origin = {p.name: p for p in plugins.loaded_plugins()}["test_plugin"]
    assert origin.dist == "itops-test-plugin" and not origin.builtin
    assert "count" in plugins.report_formats() and "dated_file" in plugins.backup_kinds()


@pytest.fixture
def dated_backup(tmp_path):
    """A local ``dated_file`` backup (the plugin's kind) with one fresh copy, and its inventory."""
    folder = tmp_path / "backups"
    folder.mkdir()
    copy = folder / f"site-{time.strftime('%Y%m%d')}.tar"
    subprocess.run(["tar", "-cf", str(copy), "-C", str(ROOT), "README.md"], check=True)
    inv = tmp_path / "inventory.yaml"
    backups = {"site": {"kind": "dated_file", "path": str(folder / "site-*.tar"), "rpo": "1d", "min_copies": 1}}
    inv.write_text(yaml.safe_dump({"version": 1, "backups": backups}))
    return inv


def test_plugin_backup_kind_is_verified_by_itops_backup_verify(dated_backup, tmp_path):
    store = tmp_path / "store"
    res = CliRunner().invoke(
        cli,
        ["backup", "verify", "-i", str(dated_backup), "--format", "json", "--store", str(store)],
        catch_exceptions=False,
    )
    assert res.exit_code == 0, res.output
    import json

    doc = json.loads(res.stdout)
    by_check = {r["check_id"]: r for r in doc["results"] if r["target"] == "site"}
    assert by_check["backup.within_rpo"]["status"] == "PASS", by_check["backup.within_rpo"]
    # the plugin's verifier (the file one) listed the copy
    assert by_check["backup.copies_retained"]["status"] == "PASS", by_check["backup.copies_retained"]

    # the plugin's report format renders that stored run through `itops report --format count`
    out = tmp_path / "run.count.txt"
    res = CliRunner().invoke(
        cli, ["report", "latest", "--format", "count", "-o", str(out), "--store", str(store)], catch_exceptions=False
    )
    assert res.exit_code == 0, res.output
    lines = out.read_text().splitlines()
    assert lines[0].startswith("run ") and any(line.startswith("PASS ") for line in lines[1:])

    # an unknown format is still a usage error naming the formats, the plugin's included
    res = CliRunner().invoke(cli, ["report", "latest", "--format", "nope", "--store", str(store)])
    assert res.exit_code == 2 and "count" in res.output


def test_plugin_backup_kind_expired_copy_fails(dated_backup, tmp_path):
    old = time.time() - 3 * 86400
    for copy in (tmp_path / "backups").iterdir():
        os.utime(copy, (old, old))
    res = CliRunner().invoke(
        cli, ["backup", "verify", "-i", str(dated_backup), "--format", "json", "--store", str(tmp_path / "s")]
    )
    assert res.exit_code == 1, res.output
    assert '"backup.within_rpo"' in res.stdout and '"FAIL"' in res.stdout
