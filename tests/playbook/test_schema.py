"""Playbook validation: one schema, every problem at once with file:line; templates quoted for the shell."""

from __future__ import annotations

import shlex
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from itops.cli.main import cli
from itops.errors import ConfigError
from itops.inventory import load_inventory
from itops.playbook.schema import load_playbook
from itops.resources import bundled_dir

HEADER = """\
name: demo
description: a demo playbook
systems: [web]
rto: 10m
rpo: 1h
owner: ops
"""


def write(tmp_path: Path, body: str, name: str = "pb.yaml") -> Path:
    """Write a playbook; without its own header, HEADER is put in front."""
    path = tmp_path / name
    text = textwrap.dedent(body)
    path.write_text(text if text.startswith("name:") else HEADER + text)
    return path


def problems(path: Path, **kw) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        load_playbook(path, **kw)
    return [str(p) for p in exc.value.problems]


def test_every_problem_is_reported_with_file_and_line(tmp_path):
    path = write(
        tmp_path,
        """\
        name: broken
        description: x
        systems: []
        rto: 5 minutes
        rpo: 1h
        ownr: ops
        steps:
          - name: no host
            run: "true"
          - name: two actions
            local: "true"
            check: "true"
          - name: bad retries
            local: "true"
            retries: 3
          - name: bad condition
            check: {tcp: {host: x, port: 1}, http: "http://x/"}
          - name: bad regex
            check: {command: "true", expect_output: "(unclosed"}
          - name: nested rollback
            local: "true"
            rollback:
              - name: rb
                local: "true"
                rollback: [{local: "true"}]
          - name: unknown template
            local: "echo {{ nope }}"
    """,
    )
    got = problems(path)
    f = str(path)
    assert f"{f}:3: systems: list at least one system this playbook recovers" in got
    assert any(p.startswith(f"{f}:4: rto: invalid duration") for p in got)
    assert f"{f}:6: ownr: unknown key 'ownr' (did you mean 'owner'?)" in got
    assert any(p.startswith(f"{f}:8: steps[0]: a run step needs host") for p in got)
    assert any(p.startswith(f"{f}:10: steps[1]: a step needs exactly one of") for p in got)
    assert f"{f}:13: steps[2]: retries and interval go with check and wait_for" in got
    assert any(p.startswith(f"{f}:17: steps[3].check: set exactly one of command, tcp, http") for p in got)
    assert any(p.startswith(f"{f}:19: steps[4].check: expect_output is not a valid regular expression") for p in got)
    assert any(f"{f}:25: steps[5].rollback[0].rollback" in p for p in got)
    assert any(p.startswith(f"{f}:27: steps[6].local: unknown template variable 'nope'") for p in got)


def test_syntax_errors_and_duplicate_keys(tmp_path):
    path = write(tmp_path, "steps:\n  - name: a\n    local: x\n    local: y\n")
    (problem,) = problems(path)
    assert problem.startswith(f"{path}:10: ") and "duplicate key 'local': first at line 9, again at line 10" in problem
    path = write(tmp_path, "steps: [\n", "syntax.yaml")
    (problem,) = problems(path)
    assert "YAML syntax error" in problem and problem.startswith(f"{path}:")


def test_inline_secrets_are_refused(tmp_path):
    path = write(
        tmp_path,
        """\
        steps:
          - restore: {backup: pg, database: x, server: {host: h, password: hunter2}}
    """,
    )
    (problem,) = [p for p in problems(path) if "password" in p]
    assert "secrets are never written inline" in problem and f"{path}:8:" in problem


def test_values_reach_the_shell_quoted(tmp_path):
    path = write(
        tmp_path,
        """\
        vars: {msg: "hello; rm -rf / #", port: 8080}
        steps:
          - name: say
            local: echo {{ msg }} > /dev/null
          - name: port
            wait_for: {tcp: {host: 127.0.0.1, port: "{{ port }}"}}
    """,
    )
    pb = load_playbook(path, overrides={"port": "9090"})
    # the value never enters the command text: it travels in the step's environment
    assert pb.steps[0].spec.local == 'echo "${ITOPS_VAR_msg}" > /dev/null'
    assert dict(pb.steps[0].env) == {"ITOPS_VAR_msg": "hello; rm -rf / #"}
    assert pb.steps[0].shown(pb.steps[0].spec.local) == f"echo {shlex.quote('hello; rm -rf / #')} > /dev/null"
    assert pb.steps[1].spec.wait_for.tcp.port == "9090"  # --var overrides, not quoted outside commands


def test_hosts_and_backups_are_checked_against_the_inventory(tmp_path):
    inv_path = tmp_path / "inv.yaml"
    inv_path.write_text(
        textwrap.dedent("""\
        version: 1
        hosts:
          web1: {address: 10.0.0.5, port: 2222, vars: {service_port: 8443}}
        backups:
          files: {kind: file, host: web1, path: /srv/b/*.tar.gz, rpo: 26h}
    """)
    )
    inv = load_inventory(inv_path)
    path = write(
        tmp_path,
        """\
        steps:
          - {name: a, run: "uptime", host: wbe1}
          - {name: b, check: {tcp: {host: web1, port: "{{ hosts.web1.vars.service_port }}"}}}
          - {name: c, restore: {backup: filez}}
          - {name: d, restore: {backup: files, database: x}}
          - {name: e, local: "echo {{ hosts.web1.address }}:{{ hosts.web1.port }}"}
    """,
    )
    got = problems(path, inventory=inv)
    assert f"{path}:8: steps[0].host: unknown host 'wbe1' (did you mean 'web1'?)" in got
    assert any(p.startswith(f"{path}:10: steps[2].restore.backup: unknown backup 'filez'") for p in got)
    assert f"{path}:11: steps[3].restore.database: database restores postgres_dump backups; files is file" in got
    assert len(got) == 3
    ok = write(
        tmp_path,
        """\
        steps:
          - {name: b, check: {tcp: {host: web1, port: "{{ hosts.web1.vars.service_port }}"}}}
          - {name: e, local: "echo {{ hosts.web1.address }}:{{ hosts.web1.port }}"}
    """,
        "ok.yaml",
    )
    pb = load_playbook(ok, inventory=inv)
    assert pb.steps[0].spec.check.tcp.port == "8443"
    assert pb.steps[1].shown(pb.steps[1].spec.local) == "echo 10.0.0.5:2222"


def test_the_shipped_playbooks_are_valid():
    files = sorted(bundled_dir("playbooks").glob("*.yaml"))
    assert {f.stem for f in files} >= {"pg-standby-restore", "file-restore-checksums", "failover-service"}
    for path in files:
        pb = load_playbook(path)
        assert pb.rto > 0 and pb.owner and pb.steps


def test_cli_exit_code_4_with_problems_on_stderr(tmp_path):
    path = write(tmp_path, "steps:\n  - {name: a, run: x}\n")
    result = CliRunner().invoke(cli, ["dr", "drill", str(path), "--dry-run"])
    assert result.exit_code == 4
    assert f"{path}:8: steps[0]: a run step needs host" in result.output
