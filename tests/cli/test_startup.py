"""Start-up cost: the CLI must not import boto3, paramiko or Dask unless a command needs them (issue #18, #14)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from audit_helpers import ITOPS

HEAVY = ("boto3", "botocore", "paramiko", "dask", "distributed")


def _imported_by(code: str) -> list[str]:
    probe = code + "\nimport sys\nprint(' '.join(m for m in " + repr(HEAVY) + " if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    return out.stdout.split()


def test_importing_the_cli_loads_neither_boto3_nor_paramiko():
    assert _imported_by("import itops.cli.main") == []


@pytest.mark.parametrize(
    "args", [["--help"], ["checks", "list"], ["runs", "list"], ["audit", "--help"], ["backup", "verify", "--help"]]
)
def test_light_commands_do_not_import_boto3_or_paramiko(args, tmp_path):
    # The console script's own entry point, run as a user runs it, with sys.modules inspected at exit.
    code = textwrap.dedent(
        f"""
        import atexit, sys
        atexit.register(lambda: sys.stderr.write("HEAVY:" + ",".join(m for m in {HEAVY!r} if m in sys.modules)))
        sys.argv = ["itops", *{args!r}, *(["--store", {str(tmp_path)!r}] if {args!r} == ["runs", "list"] else [])]
        from itops.cli.main import main
        main()
        """
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "HEAVY:" in res.stderr
    assert res.stderr.rsplit("HEAVY:", 1)[1].strip() == "", res.stderr


def test_console_script_help_runs():
    res = subprocess.run([ITOPS, "--help"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "audit" in res.stdout
