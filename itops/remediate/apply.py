"""Apply fix plans over the audit's own SSH connections (sudo where the inventory says), then re-audit.

Each fix is one frame of one batched script per host (itops.transport.batch), so the
connection, sudo, timeouts and output caps are the audit's; a fix that fails is recorded and
the host's next fix still runs. The re-audit runs only the touched checks on the touched hosts
and is stored as an ordinary audit run whose selection names the run it remediates, so
``itops diff ORIGINAL REAUDIT`` shows what was fixed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from itops import __version__
from itops.exitcodes import ExitStatus
from itops.inventory import Inventory
from itops.model import Result, Run, Severity
from itops.registry import Registry
from itops.remediate.render import HostFixes, fix_function
from itops.remediate.shlib import SHLIB
from itops.store import Store, new_run_id
from itops.transport.batch import build_script

__all__ = ["FixOutcome", "HostApplied", "apply_plans", "reaudit"]

#: time one fix may take (a package removal is the slowest)
FIX_TIMEOUT = 300.0


@dataclass(frozen=True)
class FixOutcome:
    check_id: str
    ok: bool
    changed: bool
    output: str  # stdout and stderr of the fix (the host's text: show it escaped)


@dataclass
class HostApplied:
    host: str
    fixes: list[FixOutcome] = field(default_factory=list)
    error: str = ""  # the host could not be reached or the script could not start

    @property
    def failed(self) -> int:
        return sum(not f.ok for f in self.fixes) + (1 if self.error else 0)


def fix_command(plan: HostFixes, index: int) -> str:
    """The complete POSIX sh text of one fix (library + function + call), run as one batch frame."""
    fix = plan.fixes[index]
    return f"{SHLIB}\n{fix_function(fix, index + 1)}\n{fix.function_name(index + 1)}\n"


def apply_plans(
    inventory: Inventory,
    plans: Sequence[HostFixes],
    *,
    run_id: str,
    progress: Callable[[HostApplied], None] | None = None,
    tofu_file: str | None = None,
) -> list[HostApplied]:
    """Apply each host's fixes in order over one SSH connection per host; never stops at a failed fix."""
    from itops.errors import ItopsError
    from itops.transport.pool import ConnectionPool

    pool = ConnectionPool(inventory.hosts, tofu_file=tofu_file)  # jump hosts shared, a dead one tried once
    applied: list[HostApplied] = []
    try:
        for plan in plans:
            done = HostApplied(plan.host)
            applied.append(done)
            if not plan.fixes:
                continue
            host = inventory.hosts.get(plan.host)
            if host is None:
                done.error = f"host {plan.host} is not in the inventory"
                continue
            commands = [fix_command(plan, i) for i in range(len(plan.fixes))]
            batch = build_script(commands, [FIX_TIMEOUT] * len(commands))
            try:
                with pool.lease(host.name) as conn:
                    outcome = conn.run_batch(
                        batch, idle_timeout=FIX_TIMEOUT + 30, total_timeout=FIX_TIMEOUT * len(commands) + 60
                    )
            except ItopsError as exc:
                done.error = str(exc)
                continue
            for i, fix in enumerate(plan.fixes):
                r = outcome.results.get(i)
                if r is None:
                    done.fixes.append(FixOutcome(fix.check_id, False, False, outcome.problem or "did not run"))
                    continue
                out = (r.text + r.err_text).strip()
                changed = any(line.startswith("changed:") for line in r.text.splitlines())
                done.fixes.append(FixOutcome(fix.check_id, r.ok, changed, out if r.rc is not None else r.problem()))
            if progress is not None:
                progress(done)
    finally:
        pool.close()
    return applied


def reaudit(
    store: Store,
    inventory: Inventory,
    inventory_path: str,
    registry: Registry,
    touched: Mapping[str, Sequence[str]],
    *,
    original: str,
    tofu_file: str | None = None,
    waive: Callable[[Result], Result] | None = None,
) -> tuple[Run, list[Result]]:
    """Audit the ``touched`` checks (host → check ids) on those hosts; stored as a run remediating ``original``.

    ``waive`` applies the inventory's waivers to each result, as ``itops audit`` does, so a diff
    against the original run compares like with like."""
    from itops.exitcodes import exit_code_for
    from itops.planner import plan_host
    from itops.runner import AuditRunner, RunOptions

    plans = []
    for name, check_ids in sorted(touched.items()):
        host = inventory.hosts[name]
        checks = [registry.get(c) for c in sorted(set(check_ids))]
        plans.append(plan_host(name, checks, host.vars, float(host.ssh.command_timeout)))
    run = Run(
        id=new_run_id(),
        kind="audit",
        started=time.time(),
        inventory=inventory_path,
        inventory_digest=inventory.digest,
        version=__version__,
        planned={p.name: p.check_count for p in plans},
        selection=json.dumps(
            {
                "limit": sorted(touched),
                "checks": sorted({c for ids in touched.values() for c in ids}),
                "remediates": original,
            },
            sort_keys=True,
        ),
    )
    writer = store.begin(run)
    runner = AuditRunner(run.id, inventory.hosts, RunOptions(concurrency=inventory.concurrency, tofu_file=tofu_file))
    host_keys: dict[str, str] = {}
    stored: list[Result] = []  # the touched checks only: a few results per host
    try:
        for outcome in runner.run(plans):
            stored += writer.add_many([waive(r) for r in outcome.results] if waive else outcome.results)
            if outcome.host_key:
                host_keys[outcome.host] = outcome.host_key
    except BaseException:
        writer.finish("failed", int(ExitStatus.INTERNAL), host_keys, {})
        raise
    code = exit_code_for(stored, Severity.LOW)
    return writer.finish("complete", int(code), host_keys, {}), stored
