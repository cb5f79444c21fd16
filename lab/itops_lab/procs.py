"""The lab's processes: who descends from a PID (from /proc), and stopping them gracefully, then by force."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

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


def _listening_ports() -> dict[str, str]:
    """Socket inode -> ``address:port`` of every listening TCP socket (this network namespace)."""
    ports: dict[str, str] = {}
    for table, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            with open(table) as fh:
                lines = fh.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == "0A":  # TCP_LISTEN
                address, _, port = fields[1].partition(":")
                if width == 8:
                    shown = socket.inet_ntoa(bytes.fromhex(address)[::-1])
                else:
                    shown = "[::]" if set(address) == {"0"} else f"[{address}]"
                ports[fields[9]] = f"{shown}:{int(port, 16)}"
    return ports


@dataclass(frozen=True)
class Inside:
    """A process found chrooted into a lab root: its PID, command name and listening TCP ports."""

    pid: int
    name: str
    ports: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.name} (PID {self.pid}{', listening on ' + ', '.join(self.ports) if self.ports else ''})"


def processes_inside(root: str) -> dict[int, Inside]:
    """Processes whose root directory (their chroot) is ``root`` or below it, read from /proc."""
    prefix = os.path.realpath(root)
    found: dict[int, Inside] = {}
    listening: dict[str, str] | None = None
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            where = os.readlink(f"/proc/{entry}/root").removesuffix(" (deleted)")
        except OSError:
            continue
        if where != prefix and not where.startswith(prefix + "/"):
            continue
        try:
            with open(f"/proc/{entry}/comm") as fh:
                name = fh.read().strip()
        except OSError:
            continue  # exited meanwhile
        if listening is None:
            listening = _listening_ports()
        ports = tuple(sorted({listening[s] for s in _socket_inodes(int(entry)) if s in listening}))
        found[int(entry)] = Inside(int(entry), name, ports)
    return found


def _socket_inodes(pid: int) -> list[str]:
    inodes: list[str] = []
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd")[:10_000]:
            with contextlib.suppress(OSError):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    inodes.append(link[8:-1])
    return inodes


def stop_processes_inside(root: str | os.PathLike[str], *, grace: float = _STOP_GRACE) -> list[Inside]:
    """Stop every process chrooted into ``root`` (or below it), with its descendants, as
    :func:`stop_processes` does; returns what was found (empty when there was none)."""
    found = processes_inside(os.fspath(root))
    if found:
        stop_processes(sorted(found), grace=grace)
    return [found[pid] for pid in sorted(found)]
