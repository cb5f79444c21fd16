"""software.telnet_client_absent (checks/software/telnet_client_absent.yaml):
canned output (a YAML example of checks/examples/README.md)."""

from __future__ import annotations

from helpers import RHEL_9, make_facts, overall, registry, run_check

from itops.model import Status


def facts_for(check_id: str, spec, **kw):
    probe = registry().get(check_id).probes[0]
    return make_facts({probe.name: spec}, **kw)


def status(check_id: str, spec, **kw) -> Status:
    return overall(run_check(check_id, facts_for(check_id, spec, **kw)))


def test_telnet_client():
    cid = "software.telnet_client_absent"
    assert status(cid, (0, "@@itops-pm dpkg\nbash install ok installed\n")) is Status.PASS
    assert status(cid, (0, "@@itops-pm dpkg\nbash install ok installed\ntelnet install ok installed\n")) is Status.FAIL
    assert status(cid, (0, "@@itops-pm rpm\nbash\ntelnet\n"), os_release=RHEL_9) is Status.FAIL
    # the client without the transitional "telnet" package is still the telnet client
    only_inetutils = "@@itops-pm dpkg\nbash install ok installed\ninetutils-telnet install ok installed\n"
    assert status(cid, (0, only_inetutils)) is Status.FAIL
    assert status(cid, (0, "@@itops-pm dpkg\n")) is Status.ERROR
    assert status(cid, (2, "dpkg-query: error")) is Status.ERROR
