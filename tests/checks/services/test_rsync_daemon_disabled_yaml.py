"""services.rsync_daemon_disabled (checks/services/rsync_daemon_disabled.yaml):
canned output (a YAML example of checks/examples/README.md)."""

from __future__ import annotations

from helpers import make_facts, overall, registry, run_check

from itops.model import Status


def facts_for(check_id: str, spec, **kw):
    probe = registry().get(check_id).probes[0]
    return make_facts({probe.name: spec}, **kw)


def status(check_id: str, spec, **kw) -> Status:
    return overall(run_check(check_id, facts_for(check_id, spec, **kw)))


def test_rsync_daemon():
    cid = "services.rsync_daemon_disabled"
    assert registry().get(cid).meta.os_families == ("debian",)
    assert status(cid, (0, "pid1=systemd\nsystemd=yes\nunit rsync inactive\n")) is Status.PASS  # not installed
    assert status(cid, (0, "pid1=systemd\nsystemd=yes\nunit rsync inactive masked\n")) is Status.PASS
    assert status(cid, (0, "pid1=systemd\nsystemd=yes\nunit rsync active enabled\n")) is Status.FAIL
    assert status(cid, (0, "pid1=sh\nsystemd=no\n")) is Status.ERROR
    # without systemd: no unit file and no init script means not installed, so certainly disabled
    assert status(cid, (0, "pid1=sh\nsystemd=no\nunitfile rsync no\n")) is Status.PASS
    assert status(cid, (0, "pid1=sh\nsystemd=no\nunitfile rsync yes\n")) is Status.ERROR
    assert status(cid, (0, "garbage")) is Status.ERROR
