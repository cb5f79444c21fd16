"""itops.checklib.sshd / sshd_syntax: the sshd_config parser, the files probe, and sshd -T parsing."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import files_dump

from itops.checklib.sshd import (
    DEFAULTS,
    apply_algorithm_list,
    effective_from_files,
    effective_from_sshd_t,
    files_dump_command,
    parse_duration,
    parse_sshd_t,
)
from itops.checklib.sshd_syntax import (
    SshdConfigError,
    build_config,
    parse_files_dump,
    split_args,
    split_directive,
)

MAIN = "/etc/ssh/sshd_config"


def effective(files, includes=None):
    return effective_from_files(build_config(parse_files_dump(files_dump(files, includes))))


# --------------------------------------------------------------------------- line syntax


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("PermitRootLogin no", ("PermitRootLogin", ["no"])),
        ("  permitrootlogin=no", ("permitrootlogin", ["no"])),
        ("MaxAuthTries\t= 3", ("MaxAuthTries", ["3"])),
        ("MaxAuthTries =3  # comment", ("MaxAuthTries", ["3"])),
        ('Banner "/etc/issue net"', ("Banner", ["/etc/issue net"])),
        ("Banner '/etc/issue net'", ("Banner", ["/etc/issue net"])),
        (r"Banner /etc/issue\ net", ("Banner", ["/etc/issue net"])),
        ("AcceptEnv LANG LC_*", ("AcceptEnv", ["LANG", "LC_*"])),
        ("Port 22\r", ("Port", ["22"])),
        ("MaxAuthTries 8#x", ("MaxAuthTries", ["8#x"])),
        ("# PermitRootLogin yes", None),
        ("   ", None),
        ("", None),
    ],
)
def test_split_directive(line, expected):
    assert split_directive(line) == (None if expected is None else (expected[0], expected[1]))


@pytest.mark.parametrize("line", ["PermitRootLogin", 'Banner "unterminated', "PermitRootLogin ="])
def test_split_directive_errors(line):
    with pytest.raises(SshdConfigError):
        split_directive(line)


def test_split_args_escapes():
    assert split_args(r'a\"b "c d" e\\f') == ['a"b', "c d", "e\\f"]


# --------------------------------------------------------------------------- order and scope


def test_first_value_wins_and_keywords_case_insensitive():
    eff = effective({MAIN: "PERMITROOTLOGIN no\nPermitRootLogin yes\n"})
    assert (eff["permitrootlogin"].value, eff["permitrootlogin"].origin) == ("no", f"{MAIN}:1")


def test_include_content_counts_at_its_position_in_sorted_glob_order():
    files = {
        MAIN: "Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin yes\nMaxAuthTries 2\n",
        "/etc/ssh/sshd_config.d/10-a.conf": "PermitRootLogin no\n",
        "/etc/ssh/sshd_config.d/20-b.conf": "PermitRootLogin prohibit-password\nLoginGraceTime 30\n",
    }
    eff = effective(
        files,
        {"/etc/ssh/sshd_config.d/*.conf": ["/etc/ssh/sshd_config.d/10-a.conf", "/etc/ssh/sshd_config.d/20-b.conf"]},
    )
    assert eff["permitrootlogin"].value == "no"
    assert eff["logingracetime"].origin == "/etc/ssh/sshd_config.d/20-b.conf:2"
    assert eff["maxauthtries"].value == "2"


def test_include_after_setting_does_not_override():
    files = {MAIN: "PermitRootLogin no\nInclude extra.conf\n", "/etc/ssh/extra.conf": "PermitRootLogin yes\n"}
    eff = effective(files, {"/etc/ssh/extra.conf": ["/etc/ssh/extra.conf"]})
    assert eff["permitrootlogin"].value == "no"


def test_relative_include_is_relative_to_etc_ssh():
    files = {MAIN: "Include conf.d/*.conf\n", "/etc/ssh/conf.d/a.conf": "X11Forwarding yes\n"}
    eff = effective(files, {"/etc/ssh/conf.d/*.conf": ["/etc/ssh/conf.d/a.conf"]})
    assert eff["x11forwarding"].value == "yes"


def test_match_ends_global_section_and_match_all_overrides():
    config = (
        "PermitRootLogin no\nMatch User bob\n PermitRootLogin yes\n MaxAuthTries 9\nMatch all\n X11Forwarding yes\n"
    )
    parsed = build_config(parse_files_dump(files_dump({MAIN: config + "MaxSessions 2\n"})))
    eff = effective_from_files(parsed)
    assert eff["permitrootlogin"].value == "no"
    assert eff["maxauthtries"].value == DEFAULTS["maxauthtries"]
    assert eff["x11forwarding"].value == "yes"  # Match all applies to every connection
    assert eff["maxsessions"].value == "2"  # after "Match all": inside it, so it applies too
    bob = parsed.match_blocks[0]
    assert bob.label == "Match User bob" and [d.keyword for d in bob.directives] == ["permitrootlogin", "maxauthtries"]


def test_match_inside_included_file_ends_with_that_file():
    files = {
        MAIN: "Include /etc/ssh/a.conf\nInclude /etc/ssh/b.conf\nMaxAuthTries 3\n",
        "/etc/ssh/a.conf": "Match User alice\n X11Forwarding yes\n",
        "/etc/ssh/b.conf": "MaxSessions 4\n",
    }
    eff = effective(files, {"/etc/ssh/a.conf": ["/etc/ssh/a.conf"], "/etc/ssh/b.conf": ["/etc/ssh/b.conf"]})
    assert (eff["maxauthtries"].value, eff["maxsessions"].value, eff["x11forwarding"].value) == ("3", "4", "no")


def test_include_inside_match_belongs_to_the_match():
    files = {MAIN: "Match User bob\n Include /etc/ssh/bob.conf\n", "/etc/ssh/bob.conf": "PasswordAuthentication no\n"}
    parsed = build_config(parse_files_dump(files_dump(files, {"/etc/ssh/bob.conf": ["/etc/ssh/bob.conf"]})))
    assert effective_from_files(parsed)["passwordauthentication"].origin == "default"
    assert parsed.match_blocks[0].directives[0].origin == "/etc/ssh/bob.conf:1"


def test_defaults_fill_unset_keywords():
    eff = effective({MAIN: "Port 2222\n"})
    for key in ("permitrootlogin", "passwordauthentication", "x11forwarding", "maxauthtries", "logingracetime"):
        assert eff[key].is_default
    assert (eff["permitrootlogin"].value, eff["maxauthtries"].value, eff["logingracetime"].value) == (
        "prohibit-password",
        "6",
        "120",
    )


def test_alias_keywords_and_values():
    eff = effective({MAIN: "ChallengeResponseAuthentication no\nPermitRootLogin without-password\n"})
    assert eff["kbdinteractiveauthentication"].value == "no"
    assert eff["permitrootlogin"].value == "prohibit-password"


def test_accumulating_keywords():
    eff = effective({MAIN: "AcceptEnv LANG\nAcceptEnv LC_*\n"})
    assert eff["acceptenv"].value == "LANG LC_*"


def test_include_loop_is_an_error():
    files = {MAIN: "Include /etc/ssh/loop.conf\n", "/etc/ssh/loop.conf": "Include /etc/ssh/loop.conf\n"}
    with pytest.raises(SshdConfigError, match="nesting"):
        effective(files, {"/etc/ssh/loop.conf": ["/etc/ssh/loop.conf"]})


@pytest.mark.parametrize(
    "text",
    [
        "garbage\n@DONE\n",
        "@FILE\t600 0 0\t/etc/ssh/sshd_config\n|Port 22\n",  # truncated inside a file
        files_dump({MAIN: "Port 22\n"}, done=False),
        "@FILE\t600 0 0\t/etc/ssh/sshd_config\nPort 22\n@ENDFILE\t/etc/ssh/sshd_config\n@DONE\n",  # unprefixed line
        "@INCLUDE\t/etc/ssh/x\n@BOGUS\n@DONE\n",
    ],
)
def test_malformed_dump_rejected(text):
    with pytest.raises(SshdConfigError):
        build_config(parse_files_dump(text))


def test_unreadable_include_is_an_error():
    text = files_dump(
        {MAIN: "Include /etc/ssh/x.conf\n"},
        {"/etc/ssh/x.conf": ["/etc/ssh/x.conf"]},
        unreadable={"/etc/ssh/x.conf": "600 0 0"},
    )
    with pytest.raises(SshdConfigError, match="not readable"):
        build_config(parse_files_dump(text))


# --------------------------------------------------------------------------- values


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("2m", 120), ("1h30m", 5400), ("1w", 604800), ("0", 0)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "1x", "-5", "m", "1 m"])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_algorithm_modifiers():
    base = "a,b-cbc,c"
    assert apply_algorithm_list(base, "+d,a") == "a,b-cbc,c,d"
    assert apply_algorithm_list(base, "-*cbc") == "a,c"
    assert apply_algorithm_list(base, "^c,z") == "c,z,a,b-cbc"
    assert apply_algorithm_list(base, "x,y") == "x,y"


def test_parse_sshd_t():
    values = parse_sshd_t(
        "port 22\npermitrootlogin without-password\npasswordauthentication no\n"
        "acceptenv LANG\nacceptenv LC_*\nbanner none\n"
    )
    eff = effective_from_sshd_t(values)
    assert eff["permitrootlogin"].value == "prohibit-password"
    assert eff["acceptenv"].value == "LANG LC_*"


@pytest.mark.parametrize("text", ["", "Port 22\n", "<html>\n", "port 22\npermitrootlogin no\n"])
def test_parse_sshd_t_rejects_non_sshd_output(text):
    with pytest.raises(SshdConfigError):
        parse_sshd_t(text)


# --------------------------------------------------------------------------- the real probe script

needs_shell = pytest.mark.skipif(
    not (shutil.which("sh") and shutil.which("awk") and shutil.which("stat")), reason="needs sh, awk and stat"
)


def run_probe(ssh_dir: Path) -> str:
    cmd = files_dump_command(str(ssh_dir))
    proc = subprocess.run(
        ["sh", "-c", cmd],
        capture_output=True,
        text=True,
        check=True,
        env={"LC_ALL": "C", "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )
    return proc.stdout


@needs_shell
def test_probe_script_dumps_includes_in_order(tmp_path):
    d = tmp_path / "ssh"
    (d / "conf.d").mkdir(parents=True)
    (d / "sshd_config").write_text(
        "Include conf.d/*.conf\nInclude 'with space.conf' \"missing-*.conf\" # c\nPermitRootLogin yes\n"
        "Match User bob\n  Include bob.conf\n"
    )
    (d / "conf.d" / "20-b.conf").write_text("MaxAuthTries 3\n")
    (d / "conf.d" / "10-a.conf").write_text("permitrootlogin=no")  # no trailing newline
    (d / "conf.d" / "ignored.txt").write_text("PermitRootLogin yes\n")
    # a line that looks like the probe's end marker must not end the file early
    (d / "with space.conf").write_text(f"LoginGraceTime 30\n@ENDFILE\t{d}/with space.conf\n#|x\n")
    (d / "bob.conf").write_text("PasswordAuthentication no\n")
    parsed = build_config(parse_files_dump(run_probe(d)), ssh_dir=str(d))
    eff = effective_from_files(parsed)
    assert eff["permitrootlogin"].value == "no"
    assert eff["permitrootlogin"].origin == f"{d}/conf.d/10-a.conf:1"
    assert eff["maxauthtries"].value == "3"
    assert eff["logingracetime"].value == "30"
    assert [f.path for f in parsed.files] == [
        f"{d}/sshd_config",
        f"{d}/conf.d/10-a.conf",
        f"{d}/conf.d/20-b.conf",
        f"{d}/with space.conf",
        f"{d}/bob.conf",
    ]
    assert parsed.files[0].mode is not None
    assert parsed.match_blocks[0].directives[0].keyword == "passwordauthentication"


@needs_shell
def test_probe_script_bounds_include_loops(tmp_path):
    d = tmp_path / "ssh"
    d.mkdir()
    (d / "sshd_config").write_text("Include sshd_config\nPort 22\n")
    dump = parse_files_dump(run_probe(d))
    assert list(dump.files) == [f"{d}/sshd_config"]  # dumped once
    with pytest.raises(SshdConfigError, match="nesting"):
        build_config(dump, ssh_dir=str(d))


@needs_shell
def test_probe_script_missing_main_config(tmp_path):
    dump = parse_files_dump(run_probe(tmp_path))
    assert f"{tmp_path}/sshd_config" in dump.missing


# --------------------------------------------------------------------------- against the real sshd

KEYS = [
    "permitrootlogin",
    "maxauthtries",
    "x11forwarding",
    "passwordauthentication",
    "logingracetime",
    "clientaliveinterval",
    "banner",
    "ciphers",
    "macs",
    "loglevel",
    "permitemptypasswords",
    "maxsessions",
    "ignorerhosts",
    "hostbasedauthentication",
    "permituserenvironment",
    "kbdinteractiveauthentication",
]


@needs_shell
@pytest.mark.skipif(not Path("/usr/sbin/sshd").exists() or os.geteuid() != 0, reason="needs sshd and root")
def test_parser_agrees_with_real_sshd_t(tmp_path):
    """Rebuild a tricky configuration in Python and compare with what sshd -T says about it."""
    hostkey = tmp_path / "hostkey"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(hostkey)], check=True)
    d = tmp_path / "ssh"
    (d / "conf.d").mkdir(parents=True)
    (d / "sshd_config").write_text(
        f"HostKey {hostkey}\nInclude {d}/conf.d/*.conf\nPermitRootLogin yes\nX11Forwarding no\n"
        f"Match User bob\n  PasswordAuthentication no\n  Include {d}/bob.conf\nMatch all\n  MaxAuthTries 9\n"
    )
    (d / "conf.d" / "a.conf").write_text("permitrootlogin=no\nMatch User alice\n  X11Forwarding yes\n")
    (d / "conf.d" / "b.conf").write_text(
        'MaxAuthTries 3\nLoginGraceTime "1m"\nCiphers -*cbc,chacha20*\nMACs ^hmac-sha2-512\nLOGLEVEL = verbose\n'
    )
    (d / "conf.d" / "c d.conf").write_text('Banner "/etc/issue net"\nChallengeResponseAuthentication no\n')
    (d / "bob.conf").write_text("ClientAliveInterval 77\n")
    Path("/run/sshd").mkdir(exist_ok=True)
    real = subprocess.run(["/usr/sbin/sshd", "-T", "-f", str(d / "sshd_config")], capture_output=True, text=True)
    if real.returncode != 0:
        pytest.skip(f"sshd -T failed here: {real.stderr.strip()}")
    truth = effective_from_sshd_t(parse_sshd_t(real.stdout))
    ours = effective_from_files(build_config(parse_files_dump(run_probe(d)), ssh_dir=str(d)))
    for key in KEYS:
        mine = ours[key].value
        if key == "logingracetime":
            mine = str(parse_duration(mine))
        assert mine.lower() == truth[key].value.lower(), key


def test_old_sshd_t_challenge_response_decides_kbd_interactive():
    values = parse_sshd_t(
        "port 22\npermitrootlogin no\npasswordauthentication no\n"
        "kbdinteractiveauthentication yes\nchallengeresponseauthentication no\n"
    )
    assert effective_from_sshd_t(values)["kbdinteractiveauthentication"].value == "no"
