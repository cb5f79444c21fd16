"""What every host transport offers the runner: run one batch script, report frames."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from itops.checkapi import ProbeResult
from itops.transport.batch import BatchScript, FrameParser


@dataclass
class BatchOutcome:
    """The probes' results by frame index, plus what the script itself said."""

    results: dict[int, ProbeResult]
    exit_status: int | None = None
    stderr: bytes = b""
    complete: bool = True
    problem: str = ""  # why not complete
    timings: dict[str, float] = field(default_factory=dict)


class HostConnection(Protocol):
    """An open connection to one host, reused for the whole run."""

    host_key_fingerprint: str

    def run_batch(self, batch: BatchScript, *, idle_timeout: float, total_timeout: float) -> BatchOutcome: ...

    def close(self) -> None: ...


def pump_frames(
    batch: BatchScript,
    read: Callable[[float], bytes | None],
    *,
    idle_timeout: float,
    total_timeout: float,
) -> tuple[FrameParser, str]:
    """Read the batch's stdout until the END frame, EOF, or a deadline.

    ``read(wait)`` returns bytes, ``b""`` at EOF, or ``None`` when nothing came
    within ``wait`` seconds. The idle deadline restarts with each finished probe,
    so a long pack on a slow host is fine while one hung probe is not.
    Returns the parser and, when it stopped early, why.
    """
    parser = FrameParser(batch)
    start = time.monotonic()
    last_progress = start
    seen = 0
    while not parser.finished:
        now = time.monotonic()
        if now - last_progress > idle_timeout:
            return parser, f"timed out after {idle_timeout:.0f}s without output"
        if now - start > total_timeout:
            return parser, f"timed out: batch ran over {total_timeout:.0f}s"
        chunk = read(min(0.5, max(0.01, idle_timeout - (now - last_progress))))
        if chunk is None:
            continue
        if chunk == b"":
            return parser, "connection closed before the batch finished"
        parser.feed(chunk)
        if len(parser.results) != seen:
            seen = len(parser.results)
            last_progress = time.monotonic()
    return parser, ""
