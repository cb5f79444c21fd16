"""checks/files/rhosts_trust.yaml: host-wide rhosts trust files must not exist."""

from __future__ import annotations

import pytest
from helpers import make_facts, not_found, overall, registry, run_check, timed_out

from itops.model import Status

IDS = {"files.hosts_equiv_absent": "/etc/hosts.equiv", "files.shosts_equiv_absent": "/etc/ssh/shosts.equiv"}


def status(check_id: str, spec) -> Status:
    probe = registry().get(check_id).probes[0]
    return overall(run_check(check_id, make_facts({probe.name: spec})))


@pytest.mark.parametrize(("check_id", "path"), IDS.items())
def test_absent_passes_present_fails(check_id, path):
    assert registry().get(check_id).probes[0].command.endswith(f"-- {path}")
    missing = (1, "", f"stat: cannot statx '{path}': No such file or directory")
    assert status(check_id, missing) is Status.PASS
    probe = registry().get(check_id).probes[0].name
    [f] = run_check(check_id, make_facts({probe: (0, "644 0 0 root root regular file\n")}))
    assert f.status is Status.FAIL and f.message == f"{path} exists (regular file 0644 root:root)"
    # an empty file is still a trust file: sshd and rlogind read it whatever its size
    assert status(check_id, (0, "600 0 0 root root regular empty file\n")) is Status.FAIL


@pytest.mark.parametrize("check_id", IDS)
def test_unknown_is_error_never_pass(check_id):
    assert status(check_id, (1, "", "stat: cannot statx: Permission denied")) is Status.ERROR
    assert status(check_id, timed_out()) is Status.ERROR
    assert status(check_id, not_found("stat")) is Status.ERROR
    assert status(check_id, (0, "garbage\n")) is Status.ERROR
