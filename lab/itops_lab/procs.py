"""The lab's processes: who descends from a PID (from /proc), and stopping them gracefully, then by force."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable, Sequence

_STOP_GRACE = 5.0


def _proc_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, start time in clock ticks), from /proc."""
    table: dict[int, tuple[int, int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        table[int(entry)] = (int(fields[1]), int(fields[19]))
    return table


def descendants(pids: Iterable[int]) -> dict[int, int]:
    """Every live process below ``pids`` in the process tree, mapped to its start time."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    found: dict[int, int] = {}
    queue = list(pids)
    while queue and len(found) < 100_000:
        for child in children.get(queue.pop(), []):
            if child not in found:
                found[child] = table[child][1]
                queue.append(child)
    return found


def _alive(pid: int, start_time: int | None = None) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return False
    if fields[0] == "Z":
        return False
    return start_time is None or int(fields[19]) == start_time


def stop_processes(pids: Sequence[int], *, grace: float = _STOP_GRACE) -> None:
    """SIGTERM ``pids`` and their descendants, SIGKILL whatever is left after ``grace`` seconds.

    Descendants are recorded with their start time first, so a recycled PID is never signalled.
    """
    table = _proc_table()
    targets = {pid: table[pid][1] for pid in pids if pid in table}
    targets.update(descendants(targets))
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid, started in targets.items():
            if _alive(pid, started):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(_alive(p, s) for p, s in targets.items()):
            time.sleep(0.05)
        if not any(_alive(p, s) for p, s in targets.items()):
            return
