"""SIGINT/SIGTERM handling shared by the commands that run things (audit, backup verify, dr drill)."""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

import click


@contextmanager
def stop_on_signals(
    interrupt: Callable[[], None], what: str = "keeping results gathered so far"
) -> Iterator[list[int]]:
    """While inside, SIGINT/SIGTERM call ``interrupt`` (the run stops cleanly, keeping its results).

    Yields the list of signals received, so the caller can record the run as interrupted.
    """
    received: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if not received:
            click.echo(f"\nstopping on {signal.Signals(signum).name}: {what}", err=True)
        received.append(signum)
        interrupt()

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for s, h in old.items():
            signal.signal(s, h)
