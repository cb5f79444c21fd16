"""logging.journald_compress_enabled (checks/logging/journald_compress.yaml):
canned output (a YAML example of checks/examples/README.md)."""

from __future__ import annotations

from helpers import make_facts, overall, registry, run_check

from itops.model import Status


def facts_for(check_id: str, spec, **kw):
    probe = registry().get(check_id).probes[0]
    return make_facts({probe.name: spec}, **kw)


def status(check_id: str, spec, **kw) -> Status:
    return overall(run_check(check_id, facts_for(check_id, spec, **kw)))


def test_journald_compress():
    cid = "logging.journald_compress_enabled"
    assert status(cid, (0, "[Journal]\n#Compress=yes\n")) is Status.PASS  # default
    assert status(cid, (0, "[Journal]\nCompress=Yes\n")) is Status.PASS
    assert status(cid, (0, "[Journal]\nCompress=no\n")) is Status.FAIL
    assert status(cid, (1, "", "cat: /etc/systemd/journald.conf: No such file or directory")) is Status.PASS
    assert status(cid, (1, "", "cat: /etc/systemd/journald.conf: Input/output error")) is Status.ERROR
