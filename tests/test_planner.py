"""The planner's lazy plans (pure logic: inventory and registry in memory, nothing runs)."""

from __future__ import annotations

import gc
import weakref

from audit_helpers import write_yaml

from itops.inventory import load_inventory
from itops.planner import HostPlan, HostPlans, plan_hosts
from itops.registry import load_registry


def _hosts(tmp_path):
    inv = load_inventory(
        write_yaml(
            tmp_path / "inv.yaml",
            {
                "version": 1,
                "hosts": {
                    "web1": {"address": "10.0.0.1", "groups": ["web"]},
                    "web2": {"address": "10.0.0.2", "groups": ["web"], "vars": {"ssh_config_max_mode": 600}},
                    "db1": {"address": "10.0.0.3"},
                    "db2": {"address": "10.0.0.4", "vars": {"ssh_ciphers_allowed": "aes256-ctr"}},
                },
                "groups": {"web": {"checks": ["ssh.*"]}},
            },
        )
    )
    return list(inv.hosts.values())


def test_host_plans_equal_the_eager_plans_and_count_checks_without_planning(tmp_path):
    """Each host's plan is made when read (and the same each time); check_counts, recorded as the
    run's planned targets before anything runs, equals every plan's check_count, param errors and
    group ``checks:`` patterns included."""
    hosts = _hosts(tmp_path)
    checks = load_registry().select(["*"], "host")
    eager = plan_hosts(hosts, checks)
    lazy = HostPlans(hosts, checks)
    assert any(p.param_errors for p in eager)  # the bad vars are param errors, still counted
    assert len({p.check_count for p in eager}) > 1  # the group narrows web1 and web2
    assert len(lazy) == 4 and lazy.check_counts() == {p.name: p.check_count for p in eager}
    for one, other in zip(lazy, eager, strict=True):
        assert (one.name, one.commands, one.timeouts, one.param_errors) == (
            other.name,
            other.commands,
            other.timeouts,
            other.param_errors,
        )
        assert [(pc.check.id, pc.params, pc.probe_index) for pc in one.planned] == [
            (pc.check.id, pc.params, pc.probe_index) for pc in other.planned
        ]
    assert lazy[2].commands == eager[2].commands and lazy[-1].name == "db2"
    part = lazy[1:3]
    assert isinstance(part, HostPlans) and [p.name for p in part] == ["web2", "db1"]


def test_host_plans_keep_no_plan(tmp_path):
    """A plan read and dropped is gone: the sequence holds hosts, not plans."""
    hosts = _hosts(tmp_path)
    lazy = HostPlans(hosts, load_registry().select(["*"], "host"))
    refs: list[weakref.ref[HostPlan]] = [weakref.ref(p) for p in lazy]
    gc.collect()
    assert len(refs) == 4 and all(r() is None for r in refs)
