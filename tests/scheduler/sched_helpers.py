"""Helpers of the scheduler tests: schedule files, a local-only playbook job, bounded waiting."""

from __future__ import annotations

import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from itops.scheduler import load_schedule
from itops.scheduler.daemon import SchedulerDaemon
from itops.scheduler.execute import JobContext


def local_playbook(folder: Path, seconds: float = 0.0, name: str = "tick") -> Path:
    """A playbook whose only step runs here (no inventory needed): the cheapest real job."""
    path = folder / f"{name}.yaml"
    path.write_text(
        textwrap.dedent(f"""\
        name: {name}
        description: a local step
        systems: [none]
        rto: 1m
        rpo: 1h
        owner: tests
        steps:
          - {{name: work, local: "sleep {seconds}"}}
    """)
    )
    return path


def write_schedule(folder: Path, body: str, name: str = "schedule.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(body))
    return path


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


class ThreadDaemon:
    """A SchedulerDaemon running in a thread of the test (signals stay with pytest)."""

    def __init__(self, schedule_path: Path) -> None:
        self.ctx = JobContext.create(load_schedule(schedule_path))
        self.ready = threading.Event()
        self.daemon = SchedulerDaemon(self.ctx, install_signals=False, on_ready=lambda d: self.ready.set())
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.daemon.run()
        except BaseException as exc:
            self.error = exc
            self.ready.set()

    def __enter__(self) -> ThreadDaemon:
        self.thread.start()
        assert self.ready.wait(60), "scheduler did not start"
        if self.error:
            raise self.error
        return self

    def __exit__(self, *exc: object) -> None:
        self.daemon.stop()
        self.thread.join(60)
        assert not self.thread.is_alive()

    def rows(self, state: str | None = None) -> list:
        return [r for r in self.ctx.history.rows(limit=500) if state is None or r.state == state]
