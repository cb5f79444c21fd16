"""accounts.login_defs_umask_restrictive (checks/accounts/login_defs_umask.yaml):
canned output (a YAML example of checks/examples/README.md)."""

from __future__ import annotations

from helpers import make_facts, not_found, overall, registry, run_check

from itops.model import Status


def facts_for(check_id: str, spec, **kw):
    probe = registry().get(check_id).probes[0]
    return make_facts({probe.name: spec}, **kw)


def status(check_id: str, spec, **kw) -> Status:
    return overall(run_check(check_id, facts_for(check_id, spec, **kw)))


def test_login_defs_umask():
    cid = "accounts.login_defs_umask_restrictive"
    assert status(cid, (0, "MAIL_DIR /var/mail\nUMASK\t\t027\n")) is Status.PASS
    assert status(cid, (0, "UMASK 077\n")) is Status.PASS
    assert status(cid, (0, "UMASK 0027\n")) is Status.PASS  # same mask, leading zero
    assert status(cid, (0, "UMASK 037\n")) is Status.PASS  # stricter than 027
    assert status(cid, (0, "UMASK\t\t022\n")) is Status.FAIL
    assert status(cid, (0, "UMASK 0022\n")) is Status.FAIL
    assert status(cid, (0, "# UMASK 027\n")) is Status.FAIL
    assert status(cid, (1, "", "cat: /etc/login.defs: Permission denied")) is Status.ERROR
    assert status(cid, not_found("cat")) is Status.ERROR
