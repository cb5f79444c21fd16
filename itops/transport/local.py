"""Run the batch script on this machine (``itops audit --local`` and tests)."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess

from itops.transport.base import BatchOutcome, pump_frames
from itops.transport.batch import BatchScript


class LocalConnection:
    """Runs batches with ``sh -s`` here; the same script and parser as over SSH."""

    host_key_fingerprint = ""

    def __init__(self, sudo: bool = False) -> None:
        self.sudo = sudo

    def run_batch(self, batch: BatchScript, *, idle_timeout: float, total_timeout: float) -> BatchOutcome:
        argv = ["sudo", "-n", "sh", "-s"] if self.sudo else ["sh", "-s"]
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        assert proc.stdin and proc.stdout and proc.stderr
        proc.stdin.write(batch.script)
        proc.stdin.close()
        fd = proc.stdout.fileno()

        def read(wait: float) -> bytes | None:
            ready, _, _ = select.select([fd], [], [], wait)
            return os.read(fd, 65536) if ready else None

        try:
            parser, problem = pump_frames(batch, read, idle_timeout=idle_timeout, total_timeout=total_timeout)
        finally:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            stderr = proc.stderr.read()
            proc.stdout.close()
            proc.stderr.close()
        return BatchOutcome(
            results=parser.complete(problem) if problem else parser.complete("batch ended early"),
            exit_status=proc.returncode,
            stderr=stderr[-4000:],
            complete=not problem,
            problem=problem,
        )

    def close(self) -> None:
        return None
