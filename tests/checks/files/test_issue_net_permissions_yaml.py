"""files.issue_net_permissions_restricted (checks/files/issue_net_permissions.yaml):
canned output (a YAML example of checks/examples/README.md)."""

from __future__ import annotations

from helpers import make_facts, not_found, overall, registry, run_check

from itops.model import Status


def facts_for(check_id: str, spec, **kw):
    probe = registry().get(check_id).probes[0]
    return make_facts({probe.name: spec}, **kw)


def status(check_id: str, spec, **kw) -> Status:
    return overall(run_check(check_id, facts_for(check_id, spec, **kw)))


def test_issue_net():
    cid = "files.issue_net_permissions_restricted"
    assert status(cid, (0, "644 0 0 root root regular file\n")) is Status.PASS
    assert status(cid, (0, "666 0 0 root root regular file\n")) is Status.FAIL
    assert status(cid, (0, "644 1000 1000 alice alice regular file\n")) is Status.FAIL
    assert status(cid, (1, "", "stat: cannot statx '/etc/issue.net': Permission denied")) is Status.ERROR
    assert status(cid, (0, "stat: invalid option\n")) is Status.ERROR
    assert status(cid, not_found("stat")) is Status.ERROR
