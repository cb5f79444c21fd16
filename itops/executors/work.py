"""The unit of work a Dask worker runs: audit (or verify the backups of) one batch of hosts.

A payload names the hosts (inventory entries: address, port, user, key *paths* and ``password_env``
*names*, never a secret value), the check ids and the check folders; the worker loads the checks
itself from those folders (functions are never pickled), connects with its own keys, agent and
known_hosts, runs the same per-host code as the thread executor (:class:`itops.runner.AuditRunner`,
:class:`itops.backup.verify.BackupVerifier`) and returns the results, redacted with the secrets it
read itself. This module does not import Dask: the workers import it by name.
"""

from __future__ import annotations

import copyreg
import dataclasses
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from itops import __version__
from itops.errors import ExecutorError
from itops.redact import redact_result

if TYPE_CHECKING:
    from itops.backup.options import BackupOptions
    from itops.backup.verify import BackupOutcome
    from itops.checkapi import Check
    from itops.inventory import Host, Inventory
    from itops.registry import Registry
    from itops.runner import HostOutcome

#: target -> metric name -> [(run start, value)]: read from the coordinator's store before sending
History = dict[str, Mapping[str, Sequence[tuple[float, float]]]]


def _mappingproxy(items: dict[Any, Any]) -> MappingProxyType[Any, Any]:
    return MappingProxyType(items)


def _reduce_mappingproxy(m: MappingProxyType[Any, Any]) -> tuple[Any, tuple[dict[Any, Any]]]:
    return _mappingproxy, (dict(m),)


# Inventory entries hold read-only mappings (host vars); they travel to the workers as such.
copyreg.pickle(MappingProxyType, _reduce_mappingproxy)


@dataclass(frozen=True)
class AuditBatch:
    """Audit ``names`` (hosts of ``hosts``, which also holds their jump hosts) with ``check_ids``."""

    run_id: str
    names: tuple[str, ...]
    hosts: Mapping[str, Host]
    check_ids: tuple[str, ...]
    checks_dirs: tuple[str, ...]
    concurrency: int
    history: History = field(default_factory=dict)
    version: str = __version__


@dataclass(frozen=True)
class BackupBatch:
    """Verify ``names`` (backups of one host of ``inventory``, which holds only what they need)."""

    run_id: str
    names: tuple[str, ...]
    inventory: Inventory
    options: Mapping[str, BackupOptions]
    check_ids: tuple[str, ...]
    checks_dirs: tuple[str, ...]
    restore: bool | None
    state_dir: str | None
    concurrency: int
    history: History = field(default_factory=dict)
    version: str = __version__


def audit_batch(batch: AuditBatch) -> list[HostOutcome]:
    """Run on a worker: one outcome per host of the batch (UNREACHABLE/ERROR results included)."""
    from itops.runner import AuditRunner, RunOptions, plan_hosts

    _same_itops(batch.version)
    checks = _checks(batch.checks_dirs, batch.check_ids)
    plans = plan_hosts([batch.hosts[n] for n in batch.names], checks)
    runner = AuditRunner(
        batch.run_id,
        batch.hosts,
        RunOptions(concurrency=max(1, batch.concurrency), history=_provider(batch.history)),
    )
    memo: dict[str, str] = {}
    return [dataclasses.replace(o, results=[redact_result(r, memo) for r in o.results]) for o in runner.run(plans)]


def verify_backup_batch(batch: BackupBatch) -> list[BackupOutcome]:
    """Run on a worker: one outcome per backup of the batch (they share one host and one batch)."""
    from itops.backup.verify import BackupVerifier, VerifyOptions

    _same_itops(batch.version)
    checks = _checks(batch.checks_dirs, batch.check_ids)
    verifier = BackupVerifier(
        batch.run_id,
        batch.inventory,
        [batch.inventory.backups[n] for n in batch.names],
        checks,
        batch.options,
        VerifyOptions(
            restore=batch.restore,
            concurrency=max(1, batch.concurrency),
            state_dir=Path(batch.state_dir) if batch.state_dir else None,
            history=_provider(batch.history),
        ),
    )
    memo: dict[str, str] = {}
    return [dataclasses.replace(o, results=[redact_result(r, memo) for r in o.results]) for o in verifier.run()]


def _same_itops(version: str) -> None:
    if version != __version__:
        raise ExecutorError(
            f"this Dask worker runs itops {__version__}, the coordinator {version}",
            hint="install the same itops on every worker",
        )


def _provider(history: History) -> Any:
    def lookup(target: str, prefixes: Sequence[str], before: float) -> Mapping[str, Sequence[tuple[float, float]]]:
        return history.get(target, {})

    return lookup


_registries: dict[tuple[object, ...], Registry] = {}
_registry_lock = threading.Lock()
_STAMP_FILES = 20_000


def _checks(dirs: Sequence[str], ids: Sequence[str]) -> list[Check]:
    """The checks ``ids`` from the built-in packs and ``dirs``, loaded once per worker process
    (again when a file in ``dirs`` changes); a check the worker lacks is an error, not a silent gap."""
    from itops.registry import load_registry

    key = (tuple(dirs), _stamp(dirs))
    with _registry_lock:  # importing check files twice at once would race on sys.modules
        registry = _registries.get(key)
        if registry is None:
            registry = load_registry([Path(d) for d in dirs])
            _registries.clear()
            _registries[key] = registry
    missing = [i for i in ids if i not in registry.checks]
    if missing:
        raise ExecutorError(
            f"this Dask worker has no check {', '.join(missing[:5])}"
            + (f" (+{len(missing) - 5} more)" if len(missing) > 5 else ""),
            hint="workers need the same itops and the check folders at the same paths as the coordinator",
        )
    return [registry.checks[i] for i in ids]


def _stamp(dirs: Sequence[str]) -> tuple[tuple[str, int, int], ...]:
    """Paths, mtimes and sizes of the files under ``dirs`` (bounded): a changed check reloads."""
    seen: list[tuple[str, int, int]] = []
    for d in dirs:
        for root, folders, files in os.walk(d):
            folders[:] = [f for f in folders if not f.startswith((".", "_"))]
            for name in files:
                path = os.path.join(root, name)
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                seen.append((path, st.st_mtime_ns, st.st_size))
                if len(seen) >= _STAMP_FILES:
                    return tuple(seen)
    return tuple(seen)
