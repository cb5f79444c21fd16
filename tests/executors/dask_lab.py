"""A real Dask cluster on 127.0.0.1: `dask scheduler` and `dask worker` processes started with the
`dask` CLI of the test venv (so the workers run this itops), stopped by PID at teardown."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

DASK = str(Path(sys.executable).with_name("dask"))
START_TIMEOUT = 60.0


@dataclass
class DaskLab:
    """A scheduler and its workers: ``address`` for --executor, ``workers`` maps a worker's PID to its process."""

    address: str
    scheduler: subprocess.Popen[bytes]
    workers: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: list[Path] = field(default_factory=list)

    def client(self) -> distributed.Client:
        return distributed.Client(self.address, timeout=20)

    def stop(self) -> None:
        procs = [*self.workers.values(), self.scheduler]
        for p in procs:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait(timeout=10)


def _wait(what: str, ready: Callable[[], bool], procs: list[subprocess.Popen[bytes]], logs: list[Path]) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while not ready():
        dead = [p for p in procs if p.poll() is not None]
        if dead or time.monotonic() > deadline:
            tail = "\n".join(f"--- {log}\n{log.read_text()[-3000:]}" for log in logs if log.exists())
            raise RuntimeError(f"{what} did not start ({'exited' if dead else 'timeout'})\n{tail}")
        time.sleep(0.2)


def start_dask_lab(workdir: Path, workers: int = 2, allowed_failures: int = 0) -> DaskLab:
    """Scheduler on 127.0.0.1 (random port), then ``workers`` worker processes (no nanny: a killed
    worker stays dead), each with 2 threads. ``allowed_failures: 0`` leaves the one retry to itops."""
    workdir.mkdir(parents=True, exist_ok=True)
    sched_file = workdir / "scheduler.json"
    env = os.environ | {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": str(allowed_failures)}
    log = workdir / "scheduler.log"
    logs = [log]
    scheduler = subprocess.Popen(
        [
            DASK,
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-dashboard",
            "--scheduler-file",
            str(sched_file),
        ],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        env=env,
        start_new_session=True,
    )
    lab = DaskLab(address="", scheduler=scheduler, logs=logs)
    try:
        _wait("dask scheduler", lambda: sched_file.exists() and sched_file.stat().st_size > 0, [scheduler], logs)
        lab.address = json.loads(sched_file.read_text())["address"]
        for i in range(workers):
            wlog = workdir / f"worker{i}.log"
            logs.append(wlog)
            proc = subprocess.Popen(
                [
                    DASK,
                    "worker",
                    "--scheduler-file",
                    str(sched_file),
                    "--nworkers",
                    "1",
                    "--nthreads",
                    "2",
                    "--no-nanny",
                    "--no-dashboard",
                    "--host",
                    "127.0.0.1",
                    "--name",
                    f"w{i}",
                ],
                stdout=subprocess.DEVNULL,
                stderr=wlog.open("wb"),
                env=env,
                start_new_session=True,
            )
            lab.workers[proc.pid] = proc
        with lab.client() as client:
            _wait(
                f"{workers} dask workers",
                lambda: len(client.nthreads()) >= workers,
                [scheduler, *lab.workers.values()],
                logs,
            )
    except BaseException:
        lab.stop()
        raise
    return lab
