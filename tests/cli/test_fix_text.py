"""The fix a finding shows is written with the host's effective parameters (issue #18, item 3)."""

from __future__ import annotations

import json
import textwrap

import pytest
from audit_helpers import write_yaml
from click.testing import CliRunner
from pydantic import ValidationError

from itops.checkapi import CheckMeta, Severity
from itops.cli.main import cli
from itops.registry import load_registry

PACK = textwrap.dedent(
    """
    from itops.checkapi import Finding, Probe, Severity, host_check

    @host_check(id="test.tries_limited", title="Tries are limited", probes=[Probe("echo", "echo 9")],
                severity=Severity.LOW, rationale="test-only check for fix texts",
                remediation="Set `MaxAuthTries {ssh_max_auth_tries}` (find -exec keeps {} as is).",
                frameworks={"nist-800-53": ["AC-7"], "iso-27001": ["A.8.5"]}, params={"ssh_max_auth_tries": 4})
    def tries(facts, params):
        return Finding.failed(f"9 > {params['ssh_max_auth_tries']}")
    """
)


def test_fix_text_uses_each_hosts_parameters_in_output_and_reports(tmp_path):
    (tmp_path / "pack").mkdir()
    (tmp_path / "pack" / "tries.py").write_text(PACK)
    inv = write_yaml(
        tmp_path / "inv.yaml",
        {
            "version": 1,
            "hosts": {
                "strict": {"address": "127.0.0.1", "vars": {"ssh_max_auth_tries": 3}},
                "plain": {"address": "127.0.0.1"},
            },
        },
    )
    store = tmp_path / "s"
    args = [
        "audit",
        str(inv),
        "--local",
        "--checks-dir",
        str(tmp_path / "pack"),
        "--checks",
        "test.*",
        "--store",
        str(store),
        "--report",
        f"md:{tmp_path / 'r.md'}",
        "--report",
        f"html:{tmp_path / 'r.html'}",
    ]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 1, res.output
    fixes = [line.strip() for line in res.stdout.splitlines() if line.strip().startswith("fix:")]
    assert "fix: Set `MaxAuthTries 3` (find -exec keeps {} as is)." in fixes, res.stdout
    assert "fix: Set `MaxAuthTries 4` (find -exec keeps {} as is)." in fixes, res.stdout
    md = (tmp_path / "r.md").read_text()
    assert "MaxAuthTries 3" in md and "{ssh_max_auth_tries}" not in md
    html = (tmp_path / "r.html").read_text()  # the by-check view names which host gets which value
    assert "on strict: Set `MaxAuthTries 3`" in html and "on plain: Set `MaxAuthTries 4`" in html
    res = CliRunner().invoke(cli, ["runs", "show", "latest", "--store", str(store), "--format", "json"])
    results = {r["target"]: r["remediation"] for r in json.loads(res.stdout)["results"]}
    assert results["strict"].startswith("Set `MaxAuthTries 3`") and results["plain"].startswith("Set `MaxAuthTries 4`")


def test_builtin_max_auth_tries_fix_follows_the_var():
    check = load_registry().get("ssh.max_auth_tries_limited")
    assert "MaxAuthTries 3" in check.remediation_for({"ssh_max_auth_tries": 3})
    assert "MaxAuthTries 4" in check.remediation_for()


def test_placeholder_naming_no_parameter_is_invalid_metadata():
    meta = dict(
        id="test.x_y",
        title="A title",
        severity=Severity.LOW,
        rationale="long enough rationale",
        frameworks={"nist-800-53": ["AC-7"], "iso-27001": ["A.8.5"]},
    )
    with pytest.raises(ValidationError, match="max_tries"):
        CheckMeta(**meta, remediation="Set {max_tries}", params={"ssh_max_auth_tries": 4})
    CheckMeta(**meta, remediation="chmod o-w {} +", params={})
