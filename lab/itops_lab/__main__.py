"""``python -m itops_lab up|down``: start or stop a lab fleet from the command line.

``up`` prints the inventory path on stdout (and nothing else there) and then stays in the
foreground until SIGTERM/SIGINT, or with ``--detach`` leaves the sshd processes running and
records them in ``DIR/lab-state.json`` for ``down``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

import click

from itops_lab.fleet import LabHostSpec, start_fleet
from itops_lab.plant import LabError
from itops_lab.procs import stop_processes
from itops_lab.profiles import CLEAN, HARDENED, WEAK
from itops_lab.roots import HostRoots, RootKind, remove_tree

STATE_FILE = "lab-state.json"


def _pid_cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _write_state(directory: Path, state: dict[str, Any]) -> None:
    tmp = directory / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(tmp, directory / STATE_FILE)


def _read_state(directory: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((directory / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _live_sshd_pids(state: dict[str, Any]) -> list[int]:
    """sshd PIDs from the state file that are still the processes we started (same config file)."""
    pids = []
    for host in state.get("hosts", {}).values():
        pid, config = host.get("pid"), host.get("config", "")
        if isinstance(pid, int) and config and config in _pid_cmdline(pid):
            pids.append(pid)
    return pids


def _supervisor_alive(state: dict[str, Any]) -> int | None:
    pid = state.get("supervisor_pid")
    return pid if isinstance(pid, int) and "itops_lab" in _pid_cmdline(pid) else None


@click.group()
def main() -> None:
    """Real OpenSSH sshd hosts on 127.0.0.1 for demos, tests and benchmarks."""


@main.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Where keys, configs, logs, known_hosts and inventory.yaml are written.",
)
@click.option(
    "--hosts", "count", type=click.IntRange(1, 1000), default=3, show_default=True, help="Number of hosts (lab1..labN)."
)
@click.option("--roots", is_flag=True, help="Chroot each host into its own root: odd hosts hardened, even hosts weak.")
@click.option(
    "--root-kind",
    type=click.Choice([k.value for k in RootKind]),
    default=RootKind.DEBIAN.value,
    show_default=True,
    help="debian: debootstrap'ed bookworm (cached); busybox: minimal.",
)
@click.option("--detach", is_flag=True, help="Return once the hosts are up; stop them with `down`.")
@click.option(
    "--backups",
    is_flag=True,
    help="Plant demo file backups (healthy and faulty) on lab1 and declare them in the inventory "
    "(`itops backup verify` then reports the planted faults).",
)
@click.option("--startup-timeout", type=float, default=30.0, show_default=True)
@click.option(
    "--max-seconds",
    type=float,
    default=86400.0,
    show_default=True,
    help="In the foreground, stop by itself after this long.",
)
def up(
    directory: Path,
    count: int,
    roots: bool,
    root_kind: str,
    detach: bool,
    startup_timeout: float,
    max_seconds: float,
    backups: bool = False,
) -> None:
    """Start the lab and print the inventory path."""
    directory = directory.resolve()
    directory.mkdir(parents=True, exist_ok=True)
    old = _read_state(directory)
    if old is not None and (_supervisor_alive(old) or _live_sshd_pids(old)):
        raise click.ClickException(f"a lab is already up in {directory}; run `down --dir {directory}` first")

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    host_roots = HostRoots() if roots else None
    fleet = None
    try:
        specs = []
        for i in range(1, count + 1):
            name = f"lab{i}"
            root = None
            groups: tuple[str, ...] = ("lab",)
            if host_roots is not None:
                # the hardened twin is the CIS-style CLEAN profile on a Debian root (HARDENED only
                # touches sshd and shadow; it is what a minimal busybox root can carry)
                hardened = CLEAN if RootKind(root_kind) is RootKind.DEBIAN else HARDENED
                profile = hardened if i % 2 else WEAK
                groups = ("lab", "hardened" if i % 2 else "weak")
                root = host_roots.create(name, RootKind(root_kind), profile)
            specs.append(LabHostSpec(name=name, groups=groups, root=root))
        fleet = start_fleet(directory, specs, startup_timeout=startup_timeout)
        extra = {"backups": _plant_backups(specs[0], directory)} if backups else None
        inventory = fleet.write_inventory(directory / "inventory.yaml", extra=extra)
        state = dict(
            fleet.state(),
            inventory=str(inventory),
            supervisor_pid=None if detach else os.getpid(),
            roots_dir=str(host_roots.run_dir) if host_roots else None,
        )
        _write_state(directory, state)
        click.echo(str(inventory))
        sys.stdout.flush()
        if detach:
            if host_roots is not None:
                host_roots.set_owners(fleet.pids)
            fleet, host_roots = None, None  # leave them running for `down`
            return
        click.echo(f"lab up: {count} hosts; stop with Ctrl-C or `python -m itops_lab down --dir {directory}`", err=True)
        deadline = time.monotonic() + max_seconds
        while not stop.wait(1.0) and time.monotonic() < deadline:
            dead = [h.name for h in fleet if h.process is not None and h.process.poll() is not None]
            if dead:
                click.echo(f"sshd exited unexpectedly on: {', '.join(dead)}", err=True)
                break
    except LabError as exc:
        raise click.ClickException(f"{exc}{' (' + exc.hint + ')' if exc.hint else ''}") from exc
    finally:
        if fleet is not None:
            fleet.stop()
        if host_roots is not None:
            host_roots.close()
        if not detach:
            (directory / STATE_FILE).unlink(missing_ok=True)


def _plant_backups(spec: LabHostSpec, directory: Path) -> dict[str, Any]:
    """Demo backups on the first lab host: inside its root, or (no root) in DIR/backups on this machine."""
    from itops_lab.backup_demo import plant_demo_backups

    if spec.root is not None:
        return plant_demo_backups(spec.root, host=spec.name)
    return plant_demo_backups(
        None, host=spec.name, base=str(directory / "backups"), scratch=str(directory / "restore-scratch")
    )


@main.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option(
    "--timeout",
    type=float,
    default=30.0,
    show_default=True,
    help="How long to wait for a foreground `up` to shut down.",
)
def down(directory: Path, timeout: float) -> None:
    """Stop the lab recorded in DIR and remove its host roots."""
    directory = directory.resolve()
    state = _read_state(directory)
    if state is None:
        click.echo(f"no lab state in {directory}; nothing to stop", err=True)
        return
    supervisor = _supervisor_alive(state)
    if supervisor is not None:
        os.kill(supervisor, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _pid_cmdline(supervisor) and time.monotonic() < deadline:
            time.sleep(0.1)
    pids = _live_sshd_pids(state)
    if pids:
        stop_processes(pids)
    roots_dir = state.get("roots_dir")
    if isinstance(roots_dir, str) and Path(roots_dir).parent.name == "hosts":
        remove_tree(Path(roots_dir))
    (directory / STATE_FILE).unlink(missing_ok=True)
    click.echo(f"lab in {directory} is down ({len(pids)} sshd stopped directly)", err=True)


if __name__ == "__main__":
    main()
