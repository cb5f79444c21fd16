"""Run the batch script on this machine (``itops audit --local`` and tests)."""

from __future__ import annotations

import contextlib
import os
import pwd
import select
import shlex
import signal
import subprocess
import threading

from itops.errors import TransportError
from itops.transport.base import (
    BATCH_COMMAND,
    STREAM_ENDED,
    BatchOutcome,
    StderrTail,
    explain_unstarted_batch,
    pump_frames,
    stream_end_problem,
)
from itops.transport.batch import DEFAULT_MAX_PROBE_OUTPUT, BatchScript


class LocalConnection:
    """Runs batches with ``sh -s`` here; the same script and parser as over SSH."""

    host_key_fingerprint = ""

    def __init__(self, sudo: bool = False) -> None:
        self.sudo = sudo

    def run_batch(
        self,
        batch: BatchScript,
        *,
        idle_timeout: float,
        total_timeout: float,
        max_output: int = DEFAULT_MAX_PROBE_OUTPUT,
    ) -> BatchOutcome:
        """Run the batch; raises TransportError when it cannot start or ends before its first probe.

        The script goes to the shell's stdin from a thread and the shell's stderr is drained by
        another (keeping its tail), while this thread reads stdout: ``sh -s`` reads its script as it
        runs, so writing a script bigger than a pipe buffer before reading would deadlock as soon
        as a probe fills the stdout pipe. A probe sending more than ``max_output`` bytes is an
        error result of its own (its output is drained and dropped).
        """
        user = _current_user()
        try:
            proc = subprocess.Popen(
                shlex.split(BATCH_COMMAND[self.sudo]),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:  # no sudo (or sh) on PATH: what a shell would report as exit 127
            said = f"{exc.filename or 'sh'}: {exc.strerror or 'not found'}".encode()
            raise TransportError(explain_unstarted_batch(127, said, user=user, sudo=self.sudo)) from exc
        assert proc.stdin and proc.stdout and proc.stderr
        stdin, stderr_fd = proc.stdin, proc.stderr.fileno()
        stderr_tail = StderrTail()

        def write_script() -> None:
            # sudo may refuse and exit before reading the script: its reason comes from stderr below
            with contextlib.suppress(BrokenPipeError, OSError):
                stdin.write(batch.script)
            with contextlib.suppress(BrokenPipeError, OSError):
                stdin.close()

        def drain_stderr() -> None:
            with contextlib.suppress(OSError):
                for chunk in iter(lambda: os.read(stderr_fd, 65536), b""):
                    stderr_tail.add(chunk)

        threads = [
            threading.Thread(target=write_script, name="itops-local-stdin", daemon=True),
            threading.Thread(target=drain_stderr, name="itops-local-stderr", daemon=True),
        ]
        for t in threads:
            t.start()
        fd = proc.stdout.fileno()

        def read(wait: float) -> bytes | None:
            ready, _, _ = select.select([fd], [], [], wait)
            return os.read(fd, 65536) if ready else None

        try:
            parser, problem = pump_frames(
                batch, read, idle_timeout=idle_timeout, total_timeout=total_timeout, max_output=max_output
            )
        finally:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            for t in threads:
                t.join(timeout=5)  # the pipes' other ends died with the process group
            stderr = stderr_tail.bytes()
            proc.stdout.close()
            with contextlib.suppress(OSError):
                proc.stderr.close()
        if problem == STREAM_ENDED:
            problem = stream_end_problem(parser, proc.returncode, stderr, user=user, sudo=self.sudo)
        return BatchOutcome(
            results=parser.complete(problem) if problem else parser.complete("batch ended early"),
            exit_status=proc.returncode,
            stderr=stderr[-4000:],
            complete=not problem,
            problem=problem,
        )

    def is_active(self) -> bool:
        return True

    def close(self) -> None:
        return None


def _current_user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid {os.geteuid()}"
