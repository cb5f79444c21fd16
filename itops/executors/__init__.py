"""Where an audit's or a backup verification's host work runs: ``--executor``.

- ``threads`` (default): a bounded thread pool in this process (:class:`itops.runner.AuditRunner`).
- ``dask``: a ``distributed.LocalCluster`` of worker processes on this machine, one per core.
- ``dask://HOST:PORT`` or ``tcp://HOST:PORT``: an existing Dask scheduler whose workers have the same
  itops installed and reach the hosts.

With Dask, hosts go to the workers in batches (:mod:`itops.executors.work` is the unit of work the
workers import); each worker connects to its hosts with its own keys, agent and known_hosts and sends
back the results, which this process streams into its run store as they arrive
(:mod:`itops.executors.dask`). Nothing here imports Dask: ``itops --help`` must not pay for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from itops.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class ExecutorSpec:
    """The parsed ``--executor`` value: ``kind`` is threads or dask; ``address`` a scheduler, if given."""

    kind: str = "threads"
    address: str | None = None

    @property
    def is_dask(self) -> bool:
        return self.kind == "dask"

    def __str__(self) -> str:
        return self.address or self.kind


def parse_executor(text: str) -> ExecutorSpec:
    """``threads``, ``dask``, ``dask://HOST:PORT`` or ``tcp://HOST:PORT`` (a Dask scheduler)."""
    value = text.strip()
    if value in ("threads", "dask"):
        return ExecutorSpec(value)
    for scheme in ("dask://", "tcp://", "tls://"):
        if value.startswith(scheme):
            host, sep, port = value[len(scheme) :].rpartition(":")
            if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
                break
            # dask:// is ours; the scheduler speaks tcp:// (or tls:// when the cluster is set up for it)
            return ExecutorSpec("dask", ("tcp://" if scheme == "dask://" else scheme) + f"{host}:{port}")
    raise UsageError(
        f"--executor {text!r}: expected threads, dask, dask://HOST:PORT or tcp://HOST:PORT",
        hint="e.g. --executor dask (all cores here) or --executor dask://scheduler.example:8786",
    )


def _convert(ctx: click.Context, param: click.Parameter, value: str | None) -> ExecutorSpec:
    try:
        return parse_executor(value or "threads")
    except UsageError as exc:
        raise click.BadParameter(str(exc).split(": ", 1)[-1]) from None


def executor_option(fn: F) -> F:
    """The ``--executor`` option shared by ``itops audit`` and ``itops backup verify``."""
    return click.option(
        "--executor",
        default="threads",
        show_default=True,
        callback=_convert,
        metavar="threads|dask|dask://HOST:PORT",
        help="Where host work runs: threads in this process; dask: a local cluster of worker processes "
        "(one per core); dask://HOST:PORT or tcp://HOST:PORT: an existing Dask scheduler whose workers "
        "have itops installed and reach the hosts (needs `pip install 'itops[dask]'`).",
    )(fn)
