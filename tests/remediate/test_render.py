"""Fix declarations and rendering on canned run results: quoting of host-controlled values, comments,
risk and manual handling, the Ansible playbook's !unsafe values (issue 17)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from pydantic import ValidationError

from itops.checkapi import CheckMeta
from itops.cli.main import cli
from itops.model import Evidence, Result, Severity, Status
from itops.registry import load_registry
from itops.remediate.render import plan_fixes, render_ansible, render_sh, safe_comment
from itops.remediate.spec import Fix

HOSTILE = "/etc/x'; touch /tmp/pwned; echo ' {{ lookup('pipe', 'id') }} $(id) `id`"


def _checks() -> dict:
    return {c.id: c for c in load_registry([]).select([], target="host")}


def _fail(
    check_id: str, resource: str = "", message: str = "bad", target: str = "web1", status: Status = Status.FAIL
) -> Result:
    return Result(
        run_id="R1",
        check_id=check_id,
        target=target,
        status=status,
        severity=Severity.HIGH,
        message=message,
        resource=resource,
        evidence=Evidence(source="stat", observed="0644\nrm -rf /", expected="0600"),
    )


def test_at_least_50_host_checks_have_an_automatic_fix() -> None:
    auto = [c for c in _checks().values() if c.meta.fix is not None and c.meta.fix.automatic]
    assert len(auto) >= 50, len(auto)
    kinds = {
        k
        for c in auto
        for k in ("sshd", "files", "sysctl", "lines", "modules", "packages_absent")
        if getattr(c.meta.fix, k)
    }
    assert kinds == {"sshd", "files", "sysctl", "lines", "modules", "packages_absent"}


def test_package_removal_must_be_risky_and_manual_excludes_actions() -> None:
    with pytest.raises(ValidationError, match="risk: high"):
        Fix(packages_absent=("telnet",))
    with pytest.raises(ValidationError, match="either manual"):
        Fix(manual="decide", sshd={"X11Forwarding": "no"})
    with pytest.raises(ValidationError, match="not an sshd keyword"):
        Fix(sshd={"X11Forwarding no\nPermitRootLogin": "yes"})


def test_fix_placeholders_must_be_params() -> None:
    meta = {
        "id": "x.y_z",
        "title": "a title",
        "severity": "low",
        "rationale": "r" * 10,
        "remediation": "fix it",
        "frameworks": {"nist-800-53": ["CM-6"], "iso-27001": ["A.8.9"]},
    }
    with pytest.raises(ValidationError, match="not params"):
        CheckMeta(**meta, fix={"sshd": {"MaxAuthTries": "{nope}"}})
    assert CheckMeta(**meta, params={"n": 3}, fix={"sshd": {"MaxAuthTries": "{n}"}}).fix is not None


def test_hostile_resource_is_quoted_and_comments_cannot_break_out(tmp_path: Path) -> None:
    plans = plan_fixes([_fail("files.world_writable_files_absent", resource=HOSTILE, message=HOSTILE)], _checks())
    (plan,) = plans
    assert [f.check_id for f in plan.fixes] == ["files.world_writable_files_absent"]
    script = render_sh(plan, "R1")
    assert f"itops_mode {shlex.quote(HOSTILE)} -0002" in script
    for line in script.splitlines():  # every line holding run text is a comment
        if "pwned" in line and "itops_mode" not in line:
            assert line.startswith("#"), line
    # run it for real: the hostile name is just a (missing) file name, nothing it spells runs
    sh = tmp_path / "fix.sh"
    sh.write_text(
        script.replace("itops_mode ", "ITOPS_DRY=1 itops_mode_dry ").replace(
            "itops_failed=0",
            "itops_mode_dry() { printf '%s\\n' \"$1\" > " + shlex.quote(str(tmp_path / "arg")) + "; }\nitops_failed=0",
        )
    )
    subprocess.run(["sh", str(sh)], check=True, cwd=tmp_path, timeout=30, capture_output=True)
    assert (tmp_path / "arg").read_text() == HOSTILE + "\n"
    assert not Path("/tmp/pwned").exists()


@pytest.mark.parametrize("resource", ["/tmp/a\nrm -rf /", "/tmp/a\x1b[2Jb", "/tmp/a\u2028b"])
def test_a_resource_with_a_line_break_or_control_character_is_left_out(resource: str) -> None:
    (plan,) = plan_fixes([_fail("files.world_writable_files_absent", resource=resource)], _checks())
    assert not plan.fixes and "control character" in plan.left_out[0][1]


def test_file_fix_refuses_a_resource_that_is_not_a_plain_path() -> None:
    (plan,) = plan_fixes([_fail("ssh.host_private_keys_permissions", resource="/etc/ssh/../shadow")], _checks())
    assert not plan.fixes
    assert "not a plain absolute path" in plan.left_out[0][1]


def test_only_fails_risky_left_out_unless_asked_manual_said() -> None:
    results = [
        _fail("ssh.root_login_disabled"),
        _fail("ssh.max_auth_tries_limited", status=Status.PASS),
        _fail("ssh.x11_forwarding_disabled", status=Status.WAIVED),
        _fail("ssh.access_restricted"),
        _fail("ssh.ciphers_strong"),
    ]
    (plan,) = plan_fixes(results, _checks())
    assert [f.check_id for f in plan.fixes] == ["ssh.ciphers_strong"]
    assert dict(plan.left_out) == {
        "ssh.access_restricted": "manual: which accounts or groups may log in over SSH is a decision "
        "(AllowGroups / AllowUsers)",
        "ssh.root_login_disabled": "risk: high (give --include-risky to include it)",
    }
    (plan,) = plan_fixes(results, _checks(), include_risky=True)
    assert {f.check_id for f in plan.fixes} == {"ssh.ciphers_strong", "ssh.root_login_disabled"}


def test_params_per_host_fill_the_fix() -> None:
    (plan,) = plan_fixes(
        [_fail("ssh.max_auth_tries_limited")],
        _checks(),
        {"web1": {"ssh.max_auth_tries_limited": {"ssh_max_auth_tries": 3}}},
    )
    assert plan.fixes[0].sh == ("itops_sshd_set MaxAuthTries 3 || return 1",)


def test_header_comments_name_run_check_controls_and_evidence() -> None:
    (plan,) = plan_fixes([_fail("files.shadow_permissions", resource="/etc/shadow", message="mode 0644")], _checks())
    script = render_sh(plan, "20261206T000000Z-abc")
    assert "# from run 20261206T000000Z-abc" in script
    assert "# --- files.shadow_permissions: /etc/shadow is" in script
    assert "# controls: " in script and "nist-800-53 " in script
    assert "#   observed: 0644\\x0arm -rf /; expected: 0600" in script.replace("# failed: ", "# ")


def test_ansible_values_are_unsafe_and_playbook_parses() -> None:
    results = [
        _fail("files.world_writable_files_absent", resource=HOSTILE, message=HOSTILE),
        _fail("ssh.ciphers_strong"),
        _fail("kernel.ip_forwarding_disabled"),
    ]
    text = render_ansible(plan_fixes(results, _checks()), "R1")
    assert "{{ lookup" in text  # present, but only inside !unsafe strings and comments

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_constructor("!unsafe", lambda loader, node: ("UNSAFE", loader.construct_scalar(node)))
    (play,) = yaml.load(text, Loader=Loader)

    def walk(node: object) -> None:
        if isinstance(node, str):
            assert "lookup(" not in node, node
        elif isinstance(node, dict):
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(play)  # host-controlled text appears only as ("UNSAFE", text) tuples
    assert play["hosts"] == ("UNSAFE", "web1")
    modules = {k for t in play["tasks"] for k in t if k.startswith("ansible.builtin.")}
    assert {"ansible.builtin.lineinfile", "ansible.builtin.shell", "ansible.builtin.command"} <= modules


@pytest.mark.skipif(
    shutil.which("ansible-playbook") is None and not Path(".venv/bin/ansible-playbook").exists(),
    reason="ansible-core not installed",
)
def test_ansible_playbook_syntax_check(tmp_path: Path) -> None:
    results = [
        _fail("ssh.ciphers_strong"),
        _fail("files.shadow_permissions", resource="/etc/shadow"),
        _fail("kernel.ip_forwarding_disabled"),
        _fail("kernel.udf_module_disabled"),
        _fail("accounts.password_min_days_set", resource="alice"),
        _fail("software.telnet_client_absent"),
    ]
    book = tmp_path / "fix.yml"
    book.write_text(render_ansible(plan_fixes(results, _checks(), include_risky=True), "R1"))
    (tmp_path / "hosts").write_text("web1 ansible_host=127.0.0.1\n")
    exe = shutil.which("ansible-playbook") or str(Path(".venv/bin/ansible-playbook").resolve())
    proc = subprocess.run(
        [exe, "-i", str(tmp_path / "hosts"), "--syntax-check", str(book)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_checks_list_and_show_name_the_fix() -> None:
    listed = CliRunner().invoke(cli, ["checks", "list"])
    line = next(x for x in listed.output.splitlines() if x.startswith("ssh.ciphers_strong "))
    assert " auto " in line
    assert " auto (risky) " in next(x for x in listed.output.splitlines() if x.startswith("ssh.root_login_disabled"))
    shown = CliRunner().invoke(cli, ["checks", "show", "ssh.max_auth_tries_limited"])
    assert "Automatic fix (auto;" in shown.output and "itops_sshd_set MaxAuthTries 4" in shown.output


def test_safe_comment_escapes_controls() -> None:
    assert safe_comment("a\nb\x1b[31m\u2028") == "a\\x0ab\\x1b[31m\\x2028"
