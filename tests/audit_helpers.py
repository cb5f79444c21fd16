"""Helpers for tests that run `itops audit` for real (in-process through Click, or as a process)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from itops.cli.main import cli

ITOPS = str(Path(sys.executable).with_name("itops"))

#: A user check pack for transport tests: a probe that hangs, one that echoes a var.
TEST_PACK = textwrap.dedent(
    """
    from itops.checkapi import Finding, Probe, Severity, host_check, quote

    META = dict(severity=Severity.LOW, rationale="test-only check for transport behaviour",
                remediation="nothing to fix", frameworks={"nist-800-53": ["SI-4"], "iso-27001": ["A.8.16"]})

    @host_check(id="test.probe_hangs", title="A probe that hangs", probes=[Probe("hang", "sleep 120")], **META)
    def hangs(facts, params):
        r = facts["hang"]
        return Finding.error("could not assess: " + r.problem()) if not r.ok else Finding.passed("finished")

    STAT = Probe("stat_path", lambda p: "stat -c %n " + quote(p["test_path"]))

    @host_check(id="test.path_exists", title="A path from vars exists", probes=[STAT],
                params={"test_path": "/etc/hostname"}, **META)
    def path_exists(facts, params):
        r = facts["stat_path"]
        if r.ok:
            return Finding.passed("exists: " + r.text.strip())
        return Finding.failed("missing: " + r.err_text.strip(), observed=r.command)

    @host_check(id="test.shadow_mode", title="shadow is not world readable",
                probes=[Probe("shadow", "stat -c %a /etc/shadow")], **META)
    def shadow_mode(facts, params):
        r = facts["shadow"]
        if not r.ok:
            return Finding.error(r.problem())
        mode = int(r.text.strip(), 8)
        return Finding.failed(f"mode {mode:o}") if mode & 0o007 else Finding.passed(f"mode {mode:o}")
    """
)


def write_pack(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "transport_checks.py").write_text(TEST_PACK)
    return folder


def write_yaml(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def run_audit(*args: str) -> tuple[int, dict[str, Any], str]:
    """Run `itops audit ... --format json` in-process; returns (exit code, parsed JSON, stderr)."""
    runner = CliRunner()
    res = runner.invoke(cli, ["audit", *args, "--format", "json"], catch_exceptions=False)
    out = res.stdout
    doc = json.loads(out) if out.strip().startswith("{") else {}
    return res.exit_code, doc, res.stderr


def by_target(doc: dict[str, Any], check_id: str) -> dict[str, dict[str, Any]]:
    return {r["target"]: r for r in doc["results"] if r["check_id"] == check_id}


def run_cli_process(*args: str, timeout: float = 120, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([ITOPS, *args], capture_output=True, text=True, timeout=timeout, check=False, **kw)


def lab_target(fleet: Any, name: str, known_hosts: Path | str | None = None, connect_timeout: float = 5) -> Any:
    """The SSHTarget of lab host ``name`` with the lab's client key (and its known_hosts, unless given)."""
    from itops.transport.ssh import SSHTarget

    return SSHTarget(
        name=name,
        address="127.0.0.1",
        port=fleet[name].port,
        identity_file=str(fleet.client_key_path),
        known_hosts=(str(known_hosts or fleet.known_hosts_path),),
        connect_timeout=connect_timeout,
    )
