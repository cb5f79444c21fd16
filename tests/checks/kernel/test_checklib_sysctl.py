"""itops/checklib/sysctl.py: probe command, parser and judgement, plus the probe run for real under sh."""

from __future__ import annotations

import shlex
import subprocess

import pytest

from itops.checklib import sysctl
from itops.checklib.sysctl import Expect, evaluate_expectations, parse_proc_sys
from itops.model import Status


def test_paths_and_keys_round_trip():
    assert sysctl.proc_sys_path("net.ipv4.ip_forward") == "/proc/sys/net/ipv4/ip_forward"
    assert sysctl.key_from_path("/proc/sys/net/ipv4/ip_forward") == "net.ipv4.ip_forward"
    with pytest.raises(ValueError):
        sysctl.proc_sys_path("net.ipv4; rm -rf /")


def test_command_quotes_and_runs(tmp_path):
    command = sysctl.read_proc_sys_command(["kernel.randomize_va_space", "no.such.key_here"])
    assert "/proc/sys/kernel/randomize_va_space" in shlex.split(command)
    out = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True).stdout
    readings = parse_proc_sys(out)
    assert readings["no.such.key_here"].state == "absent"
    assert readings["kernel.randomize_va_space"].state == "ok"
    assert readings["kernel.randomize_va_space"].value in {"0", "1", "2"}


def test_shared_probe_runs_on_this_machine():
    out = subprocess.run(["sh", "-c", sysctl.proc_sys_probe().render({})], capture_output=True, text=True)
    assert out.returncode == 0
    assert set(parse_proc_sys(out.stdout)) == set(sysctl.AUDITED_KEYS)


def test_parser_states_and_garbage():
    text = "/proc/sys/a/b=1\n/proc/sys/c/d=<absent>\n/proc/sys/e/f=<unreadable>\nrandom noise\n/proc/sys/g/h=4\t5\n"
    readings = parse_proc_sys(text)
    assert [readings[k].state for k in ("a.b", "c.d", "e.f")] == ["ok", "absent", "unreadable"]
    assert readings["g.h"].value == "4 5"
    assert parse_proc_sys("Segmentation fault") == {}


def test_ipv6_disabled_states():
    assert sysctl.ipv6_disabled(parse_proc_sys("/proc/sys/net/ipv6/conf/all/disable_ipv6=<absent>")) is True
    assert sysctl.ipv6_disabled(parse_proc_sys("/proc/sys/net/ipv6/conf/all/disable_ipv6=1")) is True
    assert sysctl.ipv6_disabled(parse_proc_sys("/proc/sys/net/ipv6/conf/all/disable_ipv6=0")) is False
    assert sysctl.ipv6_disabled(parse_proc_sys("/proc/sys/net/ipv6/conf/all/disable_ipv6=<unreadable>")) is None
    assert sysctl.ipv6_disabled({}) is None


def test_evaluate_expectations_outcomes():
    expects = [Expect("a.b", ("1",)), Expect("net.ipv6.x", ("0",), ipv6=True)]
    v6_on = "/proc/sys/net/ipv6/conf/all/disable_ipv6=0\n"
    assert evaluate_expectations(v6_on + "/proc/sys/a/b=1\n/proc/sys/net/ipv6/x=0\n", expects).status is Status.PASS
    assert evaluate_expectations(v6_on + "/proc/sys/a/b=0\n/proc/sys/net/ipv6/x=0\n", expects).status is Status.FAIL
    assert evaluate_expectations(v6_on + "/proc/sys/a/b=1\n", expects).status is Status.ERROR
    v6_off = "/proc/sys/net/ipv6/conf/all/disable_ipv6=<absent>\n"
    assert evaluate_expectations(v6_off + "/proc/sys/a/b=1\n", expects).status is Status.PASS
    assert evaluate_expectations(v6_off, [expects[1]]).status is Status.SKIPPED


def test_hard_core_limit_last_entry_wins():
    files = [
        ("/etc/security/limits.conf", "*  soft core 0\n* hard core 0 # comment\n@adm hard core 5"),
        ("/etc/security/limits.d/9.conf", "* - core 100"),
    ]
    assert sysctl.hard_core_limit(files) == ("100", "/etc/security/limits.d/9.conf: * - core 100")
    assert sysctl.hard_core_limit(files[:1])[0] == "0"
    assert sysctl.hard_core_limit([("/etc/security/limits.conf", "# * hard core 0")]) is None
