"""``itops runs merge``: combine the shard runs of one sharded audit (``audit --shard I/N``) into one run.

The merged run is an ordinary stored run (counts, reports, diff and ``runs verify`` work on it): its
results are the shards' results, re-chained and signed by this store's key, and its record names the
runs it was made from. Shards that do not belong together are refused: different kinds, inventories
or selections, a different N, a shard missing or given twice, or a target audited in two shards.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from itops.errors import UsageError
from itops.exitcodes import ExitStatus
from itops.model import Result, Run
from itops.store import Store, new_run_id

#: Which exit status wins when shards ended differently (a failure found anywhere is a failure).
_PRECEDENCE = [ExitStatus.INTERNAL, ExitStatus.FAILURES, ExitStatus.INCOMPLETE, ExitStatus.OK]


def _check_shards(runs: Sequence[Run]) -> int:
    """The shard count N, after checking ``runs`` are shards 1..N of one audit; else a UsageError."""
    if len(runs) < 2:
        raise UsageError("runs merge needs at least two shard runs", hint="itops runs list")
    unsharded = [r.id for r in runs if not r.shard]
    if unsharded:
        raise UsageError(f"run {unsharded[0]} is not a shard (audit --shard I/N); only shard runs merge")
    counts = {r.shard.split("/")[1] for r in runs}
    if len(counts) != 1:
        raise UsageError(f"shards of different splits cannot merge: {', '.join(f'{r.id} is {r.shard}' for r in runs)}")
    count = int(counts.pop())
    for attribute, what in (("kind", "kinds"), ("inventory_digest", "inventories"), ("selection", "selections")):
        values = {getattr(r, attribute) for r in runs}
        if len(values) != 1:
            raise UsageError(f"shards of different {what} cannot merge ({', '.join(sorted(map(str, values)))})")
    seen: dict[str, str] = {}
    for r in runs:
        if r.shard in seen:
            raise UsageError(f"shard {r.shard} is given twice ({seen[r.shard]} and {r.id})")
        seen[r.shard] = r.id
    missing = [f"{i}/{count}" for i in range(1, count + 1) if f"{i}/{count}" not in seen]
    if missing:
        raise UsageError(f"shard {', '.join(missing)} missing: the merge would not cover the whole audit")
    running = [r.id for r in runs if r.state == "running"]
    if running:
        raise UsageError(f"run {running[0]} is still running (or died without finishing)")
    return count


def merge_runs(store: Store, run_ids: Sequence[str]) -> Run:
    """Store the merge of shard runs ``run_ids`` as a new run and return its record."""
    runs = [store.get_run(rid) for rid in run_ids]
    _check_shards(runs)
    runs.sort(key=lambda r: int(r.shard.split("/")[0]))
    first = runs[0]
    merged = Run(
        id=new_run_id(),
        kind=first.kind,
        started=min(r.started for r in runs),
        inventory=first.inventory,
        inventory_digest=first.inventory_digest,
        version=first.version,
        selection=first.selection,
        merged_from=[r.id for r in runs],
        planned={target: n for r in runs for target, n in r.planned.items()},
        inventory_lines=first.inventory_lines,  # the shards ran one inventory (checked above)
    )
    owner: dict[str, str] = {}  # target -> shard that audited it; checked before anything is written
    for run in runs:
        for target in store.targets(run.id):
            if target in owner:
                raise UsageError(
                    f"target {target} was audited in shard {owner[target]} and in shard {run.shard}: "
                    "the shards overlap (was the inventory changed between them?)"
                )
            owner[target] = run.shard
    writer = store.begin(merged)
    for run in runs:  # read back in batches: memory holds one batch, never a whole shard
        batch: list[Result] = []
        for r in store.iter_results(run.id):
            batch.append(replace(r, run_id=merged.id))
            if len(batch) >= 1000:
                writer.add_many(batch)
                batch = []
        writer.add_many(batch)
    known = {int(status) for status in ExitStatus}
    codes = [ExitStatus(r.exit_code) if r.exit_code in known else ExitStatus.INTERNAL for r in runs]
    code = next(status for status in _PRECEDENCE if status in codes)
    state = "complete" if all(r.state == "complete" for r in runs) else "interrupted"
    host_keys = {k: v for r in runs for k, v in r.host_keys.items()}
    accounts = {k: v for r in runs for k, v in r.accounts.items()}
    return writer.finish(state, int(code), host_keys, accounts)
