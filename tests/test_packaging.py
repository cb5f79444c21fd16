"""A regular (non-editable) install ships the check packs, templates, playbooks and inventories."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from itops.registry import load_registry

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.integration
def test_wheel_install_lists_every_check(tmp_path):
    # build from a clean copy: a stale build/ folder in the checkout must not leak into the wheel
    src = tmp_path / "src"
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "dist", ".lab", "__pycache__", "*.egg-info", ".*_cache"
        ),
    )
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(src)],
        check=True,
        timeout=300,
        cwd=tmp_path,
    )
    (wheel,) = wheels.glob("itops-*.whl")
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        timeout=300,
    )
    assert not (target / "itops" / "bundled" / "checks").is_symlink()
    deps = sysconfig.get_paths()["purelib"]
    # -S: no site processing, so the dev venv's editable-install hook can't leak the source tree in
    code = (
        "import sys; sys.path[:0] = [sys.argv[1]]; sys.path.append(sys.argv[2]);"
        "import itops; assert itops.__file__.startswith(sys.argv[1]), itops.__file__;"
        "from itops.cli.main import cli; cli.main(['checks', 'list', '--format', 'json'], prog_name='itops')"
    )
    base = getattr(sys, "_base_executable", sys.executable)
    proc = subprocess.run(
        [base, "-S", "-c", code, str(target), deps], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    # the lab is test and demo tooling (lab/itops_lab): the wheel does not ship it
    assert not (target / "itops" / "lab").exists() and not (target / "itops_lab").exists()
    assert not (target / "itops" / "backup" / "demo.py").exists()
    no_lab = subprocess.run(
        [base, "-S", "-c", "import sys; sys.path[:0] = [sys.argv[1]]; import itops.lab", str(target)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=60,
    )
    assert no_lab.returncode != 0 and "No module named 'itops.lab'" in no_lab.stderr
    installed = {c["id"] for c in json.loads(proc.stdout)}
    from_source = {c.id for c in load_registry(entry_point_packs=False)}
    assert from_source and installed == from_source
    for name in ("templates", "playbooks", "inventory"):

        def files(top: Path) -> set[Path]:
            return {p.relative_to(top) for p in top.rglob("*") if p.is_file() and "__pycache__" not in p.parts}

        src, dst = files(ROOT / name), files(target / "itops" / "bundled" / name)
        assert src <= dst | {Path("__init__.py")}, (name, src - dst)


def test_setup_cfg_lists_every_itops_package():
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    listed = {p.strip() for p in cfg["options"]["packages"].split() if p.strip()}
    on_disk = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "itops").rglob("__init__.py")
        if "__pycache__" not in p.parts
    }
    assert on_disk <= listed, f"add to setup.cfg [options] packages: {sorted(on_disk - listed)}"
