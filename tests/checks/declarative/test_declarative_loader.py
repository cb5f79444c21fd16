"""itops/declarative.py: the YAML check format, its validation, probe quoting and evaluation."""

from __future__ import annotations

import shlex
import textwrap

import pytest
import yaml
from helpers import RHEL_9, make_facts, not_found, overall, timed_out

from itops.checkapi import Check
from itops.declarative import load_declarative_file
from itops.errors import ConfigError
from itops.model import Status
from itops.registry import Registry, load_folder, load_registry

META = """\
id: {id}
title: A declarative test check
severity: medium
rationale: Because the test says so, at length.
remediation: Fix it with a command.
frameworks: {{nist-800-53: [CM-6], iso-27001: [A.8.9]}}
"""


def write(tmp_path, body: str, check_id: str = "test.thing_ok", name: str = "c.yaml", meta: bool = True):
    path = tmp_path / name
    path.write_text((META.format(id=check_id) if meta else "") + textwrap.dedent(body))
    return path


def load_one(tmp_path, body: str, **kw) -> Check:
    checks = load_declarative_file(write(tmp_path, body, **kw))
    assert len(checks) == 1
    return checks[0]


def run(check: Check, spec, **facts_kw):
    facts = make_facts({check.probes[0].name: spec}, **facts_kw)
    return check.evaluate(facts, check.resolve_params({}))


def problems(tmp_path, body: str, **kw) -> str:
    with pytest.raises(ConfigError) as info:
        load_declarative_file(write(tmp_path, body, **kw))
    return str(info.value)


# --- type: file -------------------------------------------------------------------------------------

FILE = """\
type: file
path: /etc/issue.net
mode: "0644"
owner: root
group: root
"""


def test_file_probe_and_metadata(tmp_path):
    check = load_one(tmp_path, FILE)
    assert check.probes[0].command == "stat -L -c '%a %u %g %U %G %F' -- /etc/issue.net"
    assert "declarative" in check.meta.tags
    assert check.meta.target == "host"
    assert check.source.endswith("c.yaml")


def test_file_pass_fail_error(tmp_path):
    check = load_one(tmp_path, FILE)
    assert overall(run(check, (0, "644 0 0 root root regular file\n"))) is Status.PASS
    assert overall(run(check, (0, "600 0 0 root root regular file\n"))) is Status.PASS  # stricter is fine
    findings = run(check, (0, "664 0 4 root adm regular file\n"))
    assert overall(findings) is Status.FAIL
    assert "allows 0020 beyond 0644" in findings[0].message and "group adm" in findings[0].message
    assert overall(run(check, (0, "4755 0 0 root root regular file\n"))) is Status.FAIL  # setuid bit
    missing = (1, "", "stat: cannot statx '/etc/issue.net': No such file or directory\n")
    assert overall(run(check, missing)) is Status.FAIL
    denied = (1, "", "stat: cannot statx '/etc/issue.net': Permission denied\n")
    assert overall(run(check, denied)) is Status.ERROR
    assert overall(run(check, (0, "garbage\n"))) is Status.ERROR
    assert overall(run(check, not_found("stat"))) is Status.ERROR
    assert overall(run(check, timed_out())) is Status.ERROR


def test_file_numeric_owner_and_absent(tmp_path):
    check = load_one(tmp_path, "type: file\npath: /etc/x\nowner: '0'\n")
    assert overall(run(check, (0, "600 0 0 UNKNOWN UNKNOWN regular file\n"))) is Status.PASS
    check = load_one(tmp_path, "type: file\npath: /root/.rhosts\nexists: false\n", check_id="test.rhosts_absent")
    missing = (1, "", "stat: cannot statx '/root/.rhosts': No such file or directory\n")
    assert overall(run(check, missing)) is Status.PASS
    assert overall(run(check, (0, "600 0 0 root root regular file\n"))) is Status.FAIL


# --- type: config -----------------------------------------------------------------------------------


def test_config_space_syntax(tmp_path):
    check = load_one(tmp_path, "type: config\npath: /etc/login.defs\nkey: UMASK\none_of: ['027', '077']\n")
    assert check.probes[0].command == "cat /etc/login.defs"  # same text as the accounts pack probe: one run
    assert overall(run(check, (0, "# UMASK 022\nUMASK\t\t027\n"))) is Status.PASS
    findings = run(check, (0, "UMASK 022\n"))
    assert overall(findings) is Status.FAIL and "UMASK 022" in findings[0].message
    assert overall(run(check, (0, "PASS_MAX_DAYS 99999\n"))) is Status.FAIL  # not set, absent_ok false
    assert overall(run(check, (1, "", "cat: /etc/login.defs: No such file or directory"))) is Status.FAIL
    assert overall(run(check, (1, "", "cat: /etc/login.defs: Permission denied"))) is Status.ERROR
    assert overall(run(check, timed_out())) is Status.ERROR


def test_config_first_or_last_occurrence(tmp_path):
    text = (0, "PermitRootLogin no\nPermitRootLogin yes\n")
    last = load_one(tmp_path, "type: config\npath: /etc/ssh/sshd_config\nkey: PermitRootLogin\nexpected: 'no'\n")
    assert overall(run(last, text)) is Status.FAIL
    first = load_one(
        tmp_path, "type: config\npath: /etc/ssh/sshd_config\nkey: PermitRootLogin\nexpected: 'no'\noccurrence: first\n"
    )
    assert overall(run(first, text)) is Status.PASS


def test_config_case_options(tmp_path):
    body = "type: config\npath: /etc/ssh/sshd_config\nkey: permitrootlogin\nexpected: 'no'\n"
    assert overall(run(load_one(tmp_path, body), (0, "PermitRootLogin no\n"))) is Status.FAIL  # key not found
    check = load_one(tmp_path, body + "key_case_insensitive: true\n")
    assert overall(run(check, (0, "PermitRootLogin no\n"))) is Status.PASS
    assert overall(run(check, (0, "PermitRootLogin No\n"))) is Status.FAIL
    check = load_one(tmp_path, body + "key_case_insensitive: true\nvalue_case_insensitive: true\n")
    assert overall(run(check, (0, "PermitRootLogin No\n"))) is Status.PASS


def test_config_equals_syntax_strips_quotes(tmp_path):
    check = load_one(
        tmp_path, "type: config\npath: /etc/default/grub\nsyntax: equals\nkey: GRUB_TIMEOUT\nexpected: '5'\n"
    )
    assert overall(run(check, (0, 'GRUB_DEFAULT=0\nGRUB_TIMEOUT = "5"\n'))) is Status.PASS
    assert overall(run(check, (0, "GRUB_TIMEOUT=0\n"))) is Status.FAIL


def test_config_ini_syntax_and_absent_ok(tmp_path):
    body = (
        "type: config\npath: /etc/systemd/journald.conf\nsyntax: ini\nsection: Journal\nkey: Storage\n"
        "expected: persistent\n"
    )
    check = load_one(tmp_path, body)
    assert overall(run(check, (0, "[Journal]\nStorage=persistent\n"))) is Status.PASS
    assert overall(run(check, (0, "[Other]\nStorage=persistent\n[Journal]\n;Storage=x\n"))) is Status.FAIL
    check = load_one(tmp_path, body + "absent_ok: true\n")
    assert overall(run(check, (0, "[Journal]\n#Storage=auto\n"))) is Status.PASS
    assert overall(run(check, (1, "", "cat: x: No such file or directory"))) is Status.PASS
    assert overall(run(check, (0, "[Journal]\nStorage=volatile\n"))) is Status.FAIL


# --- type: command ----------------------------------------------------------------------------------


def test_command_runs_as_written_and_judges_output(tmp_path):
    check = load_one(
        tmp_path,
        "type: command\ncommand: \"awk -F: '($3 == 0) {print $1}' /etc/passwd\"\n"
        "matches: '^root$'\nnot_matches: '^(?!root$).+'\ntimeout: 15\n",
    )
    assert check.probes[0].command == "awk -F: '($3 == 0) {print $1}' /etc/passwd"
    assert check.probes[0].timeout == 15
    assert overall(run(check, (0, "root\n"))) is Status.PASS
    findings = run(check, (0, "root\ntoor\n"))
    assert overall(findings) is Status.FAIL and "toor" in findings[0].message
    assert overall(run(check, (0, ""))) is Status.FAIL
    assert overall(run(check, (2, "root\n", "awk: cannot open /etc/passwd"))) is Status.FAIL
    assert overall(run(check, not_found("awk"))) is Status.ERROR
    assert overall(run(check, timed_out())) is Status.ERROR


def test_command_rc_list(tmp_path):
    check = load_one(tmp_path, "type: command\ncommand: grep -q x /etc/y\nrc: [0, 1]\n")
    assert overall(run(check, (1, ""))) is Status.PASS
    assert overall(run(check, (2, "", "grep: /etc/y: Permission denied"))) is Status.FAIL
    assert overall(run(check, (126, "", "permission denied"))) is Status.ERROR


# --- type: package ----------------------------------------------------------------------------------


def test_package_uses_shared_inventory_probe(tmp_path):
    check = load_one(tmp_path, "type: package\nname: telnet\nstate: absent\n")
    assert check.probes[0].name == "packages"
    dpkg = "@@itops-pm dpkg\nbash install ok installed\ntelnet deinstall ok config-files\n"
    assert overall(run(check, (0, dpkg))) is Status.PASS
    assert overall(run(check, (0, "@@itops-pm rpm\nbash\ntelnet\n"), os_release=RHEL_9)) is Status.FAIL
    assert overall(run(check, (0, "garbage"))) is Status.ERROR
    assert overall(run(check, (127, "@@itops-pm none\n"))) is Status.ERROR
    installed = load_one(tmp_path, "type: package\nname: auditd\n", check_id="test.auditd_installed")
    assert overall(run(installed, (0, dpkg))) is Status.FAIL


def test_package_list_of_names_means_none_of_them_or_any_of_them(tmp_path):
    absent = load_one(tmp_path, "type: package\nname: [ftp, tnftp]\nstate: absent\n", check_id="test.ftp_absent")
    assert absent.probes[0].name == "packages"
    dpkg = "@@itops-pm dpkg\nbash install ok installed\n"
    assert overall(run(absent, (0, dpkg))) is Status.PASS
    [f] = run(absent, (0, dpkg + "tnftp install ok installed\n"))
    assert f.status is Status.FAIL and f.message == "installed: tnftp (dpkg)"
    installed = load_one(tmp_path, "type: package\nname: [chrony, ntpsec]\n", check_id="test.ntp_installed")
    assert overall(run(installed, (0, dpkg))) is Status.FAIL
    assert overall(run(installed, (0, dpkg + "ntpsec install ok installed\n"))) is Status.PASS
    assert overall(run(installed, (0, "garbage"))) is Status.ERROR


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("name: []\n", "at least one package"),
        ("name: [a, a]\n", "names a package twice"),
        ("name: [ok, 'bad; rm -rf /']\n", "not a package name"),
    ],
)
def test_package_list_of_names_is_validated(tmp_path, body, message):
    with pytest.raises(ConfigError) as exc:
        load_one(tmp_path, "type: package\n" + body)
    assert message in str(exc.value)


# --- type: service ----------------------------------------------------------------------------------


def snapshot(unit: str, active: str, enabled: str, systemd: bool = True) -> str:
    if not systemd:
        return "pid1=init\nsystemd=no\n"
    return f"pid1=systemd\nsystemd=yes\nunit {unit} {active} {enabled}".rstrip() + "\n"


@pytest.mark.parametrize(
    ("state", "active", "enabled", "expected"),
    [
        ("active", "active", "enabled", Status.PASS),
        ("active", "failed", "enabled", Status.FAIL),
        ("inactive", "inactive", "disabled", Status.PASS),
        ("inactive", "active", "enabled", Status.FAIL),
        ("enabled", "inactive", "enabled", Status.PASS),
        ("enabled", "active", "disabled", Status.FAIL),
        ("disabled", "inactive", "masked", Status.PASS),
        ("disabled", "inactive", "", Status.PASS),  # not installed
        ("disabled", "active", "enabled", Status.FAIL),
    ],
)
def test_service_states(tmp_path, state, active, enabled, expected):
    check = load_one(tmp_path, f"type: service\nname: rsync\nstate: {state}\n")
    assert overall(run(check, (0, snapshot("rsync", active, enabled)))) is expected


def test_service_errors(tmp_path):
    check = load_one(tmp_path, "type: service\nname: cron.service\nstate: enabled\n")
    assert "for u in cron.service;" in check.probes[0].command
    assert "/proc/[0-9]*/comm" not in check.probes[0].command  # no process listing needed
    assert overall(run(check, (0, snapshot("cron.service", "", "", systemd=False)))) is Status.ERROR
    assert overall(run(check, (0, "pid1=systemd\nsystemd=yes\nunit cron.service\n"))) is Status.ERROR
    assert overall(run(check, (0, "nonsense"))) is Status.ERROR
    assert overall(run(check, timed_out())) is Status.ERROR


# --- several checks in a file, validation ---------------------------------------------------------


def test_checks_list_loads_each(tmp_path):
    one = META.format(id="test.one_ok") + "type: package\nname: a\n"
    two = META.format(id="test.two_ok") + "type: package\nname: b\nstate: absent\n"
    body = "checks:\n" + "".join("  - " + textwrap.indent(c, "    ").lstrip() for c in (one, two))
    checks = load_declarative_file(write(tmp_path, body, meta=False))
    assert [c.id for c in checks] == ["test.one_ok", "test.two_ok"]


@pytest.mark.parametrize(
    ("body", "needle", "line"),
    [
        ("type: fiel\npath: /etc/x\n", "type is 'fiel' (did you mean 'file'?)", 7),
        ("path: /etc/x\n", "type is missing", 1),
        ("type: file\n", "missing required key 'path'", 1),
        ("type: file\npath: /etc/x\nmdoe: '0644'\n", "unknown key 'mdoe' (did you mean 'mode'?)", 9),
        ("type: command\ncommand: ls\nmatches: '([a-z'\n", "bad regular expression", 9),
        ("type: file\npath: /etc/x\nmode: '0986'\n", "mode must be octal permissions", 9),
        ("type: file\npath: /etc/x\nmode: 0644\n", "must be a quoted string", 9),
        ("type: config\npath: /etc/x\nkey: UMASK\nexpected: 027\n", "must be a quoted string", 10),
        ("type: config\npath: /etc/x\nkey: K\n", "exactly one of expected", 1),
        ("type: config\npath: /etc/x\nkey: K\nexpected: v\nsyntax: ini\n", "needs section", 1),
        ("type: file\npath: etc/x\n", "must be an absolute path", 8),
        ("type: package\nname: 'bad name; rm -rf /'\n", "not a package name", 8),
        ("type: service\nname: 'x y'\nstate: running\n", "must be one of", 9),
        ("type: file\npath: /etc/x\nos_families: [redhat]\n", "unknown OS family 'redhat'", 9),
        ("type: file\npath: /etc/x\nparams: {a: 1}\n", "unknown key 'params'", 9),
        ("type: [file]\npath: /etc/x\n", "use one of file, config", 7),
        ("type: file\npath: /etc/x\nos_families: debian\n", "os_families", 9),
    ],
    ids=[
        "bad-type",
        "no-type",
        "missing-key",
        "unknown-key",
        "bad-regex",
        "bad-mode",
        "octal-mode",
        "octal-expected",
        "no-expected",
        "ini-no-section",
        "relative-path",
        "bad-package",
        "bad-state",
        "bad-family",
        "params",
        "list-type",
        "string-families",
    ],
)
def test_validation_errors_name_file_and_line(tmp_path, body, needle, line):
    message = problems(tmp_path, body)
    assert needle in message
    assert f"c.yaml:{line}:" in message


def test_metadata_validated_like_python_checks(tmp_path):
    body = (
        "id: Not-An-Id\ntitle: x\nseverity: huge\nrationale: short\nremediation: fix\n"
        "frameworks: {cis-debian-12: [1]}\ntype: file\npath: /etc/x\n"
    )
    message = problems(tmp_path, body, meta=False)
    cis = "c.yaml:6: frameworks.cis-debian-12[0]:"
    for needle in ("c.yaml:1: id:", "c.yaml:2: title:", "c.yaml:3: severity:", cis):
        assert needle in message
    assert "problems" in message  # every problem reported at once


def test_missing_metadata_key(tmp_path):
    body = (
        "id: test.no_title\nseverity: low\nrationale: long enough text\nremediation: fix it\n"
        "frameworks: {nist-800-53: [CM-6], iso-27001: [A.8.9]}\ntype: package\nname: x\n"
    )
    assert "missing required key 'title'" in problems(tmp_path, body, meta=False)


def test_file_level_errors(tmp_path):
    assert "empty check file" in problems(tmp_path, "", meta=False)
    assert "YAML syntax error" in problems(tmp_path, "id: [unclosed\n", meta=False)
    assert "duplicate key 'path'" in problems(tmp_path, "type: file\npath: /a\npath: /b\n")
    assert "non-empty list" in problems(tmp_path, "checks: []\n", meta=False)
    assert "holds nothing else" in problems(tmp_path, "checks: [{}]\nid: x.y\n", meta=False)
    assert "must be a mapping" in problems(tmp_path, "- just\n- a list\n", meta=False)
    one = META.format(id="test.same") + "type: package\nname: a\n"
    body = "checks:\n" + ("  - " + textwrap.indent(one, "    ").lstrip()) * 2
    assert "duplicate check id test.same" in problems(tmp_path, body, meta=False)


# --- quoting ----------------------------------------------------------------------------------------

NASTY = ["/tmp/x; touch /tmp/pwned", "/tmp/$(touch /tmp/pwned)", "/tmp/`id`", "/tmp/it's here", "/tmp/a\tb && c"]


@pytest.mark.parametrize("path", NASTY)
@pytest.mark.parametrize("kind", ["file", "config"])
def test_paths_with_shell_metacharacters_stay_one_quoted_word(tmp_path, path, kind):
    spec = {"type": kind, "path": path, **({"key": "K", "expected": "v"} if kind == "config" else {})}
    check = load_one(tmp_path, yaml.safe_dump(spec))
    command = check.probes[0].command
    words = shlex.split(command)
    assert words[-1] == path  # the whole path is one argument (paths are absolute, so never an option)
    assert command.endswith(" " + shlex.quote(path))
    assert "touch /tmp/pwned" not in command.replace(shlex.quote(path), "")


def test_service_name_is_quoted_in_probe(tmp_path):
    check = load_one(tmp_path, "type: service\nname: 'getty@tty1'\nstate: active\n")
    assert "for u in getty@tty1;" in check.probes[0].command


# --- registry integration ---------------------------------------------------------------------------


def test_user_folder_with_broken_file_is_a_warning(tmp_path):
    write(tmp_path, "type: package\nname: ok\n", check_id="test.good_one", name="good.yaml")
    write(tmp_path, "type: nope\n", name="bad.yml")
    registry = Registry()
    load_folder(registry, tmp_path, strict=False)
    assert "test.good_one" in registry.checks
    assert len(registry.warnings) == 1
    assert "bad.yml" in registry.warnings[0] and "type is 'nope'" in registry.warnings[0]


def test_builtin_folder_is_strict(tmp_path):
    write(tmp_path, "type: nope\n", name="bad.yaml")
    with pytest.raises(Exception, match="type is 'nope'"):
        load_folder(Registry(), tmp_path, strict=True)


def test_load_registry_with_user_dir(tmp_path):
    write(tmp_path, "type: package\nname: ok\n", check_id="test.user_yaml_check", name="mine.yaml")
    registry = load_registry([tmp_path], entry_point_packs=False)
    assert registry.get("test.user_yaml_check").meta.tags == ("declarative",)
