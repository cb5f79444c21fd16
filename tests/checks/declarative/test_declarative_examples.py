"""The YAML checks checks/examples/README.md shows, one per type, each in its domain's folder: each loads through
the registry and judges canned output."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import make_facts, overall, registry, run_check, timed_out

from itops.model import Status

EXAMPLE_IDS = [
    "files.issue_net_permissions_restricted",
    "accounts.login_defs_umask_restrictive",
    "logging.journald_compress_enabled",
    "kernel.cramfs_module_disabled",
    "software.telnet_client_absent",
    "services.rsync_daemon_disabled",
]


def facts_for(check_id: str, spec, **kw):
    probe = registry().get(check_id).probes[0]
    return make_facts({probe.name: spec}, **kw)


def status(check_id: str, spec, **kw) -> Status:
    return overall(run_check(check_id, facts_for(check_id, spec, **kw)))


def test_every_example_type_is_shipped_and_declarative():
    checks = [registry().get(i) for i in EXAMPLE_IDS]
    assert all("declarative" in c.meta.tags for c in checks)
    # each lives where its id says (checks/files/ holds files.*), none in checks/examples/
    assert all(f"/checks/{c.id.split('.')[0]}/" in c.source for c in checks)
    assert not [c.id for c in registry() if "/checks/examples/" in c.source]
    readme = (Path(__file__).parents[3] / "checks" / "examples" / "README.md").read_text()
    assert all(f"`{i}`" in readme for i in EXAMPLE_IDS)


@pytest.mark.parametrize("check_id", EXAMPLE_IDS)
def test_examples_error_on_timeout_and_missing_probe(check_id):
    assert status(check_id, timed_out()) is Status.ERROR
    assert overall(run_check(check_id, make_facts({}))) is Status.ERROR
