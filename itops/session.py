"""A run session: the one lifecycle of every command that runs things and stores a run.

``itops audit``, ``itops backup verify``, ``itops dr drill`` and ``itops dr check`` all do the same
around their own work: record the run as started (with its planned targets) in the store, pass each
result through the waivers and into the store (where it is redacted, chained and signed), stream it on
to the output, stop cleanly on SIGINT/SIGTERM, finish the run (complete, interrupted or failed) and
derive its :class:`~itops.exitcodes.ExitStatus`. That is written once, here::

    session = RunSession(store, run, fail_on=Severity.LOW, waivers=waivers, stream=JsonRunStream(echo))
    done = session.execute(runner.run(plans), interrupt=runner.interrupt)  # any iterable of outcomes
    return done.status

The outcomes can come from anything that yields them as targets finish (the threaded runner, the
backup verifier, an executor spread over worker processes): the session consumes one outcome at a
time and keeps only counters (:class:`~itops.tally.RunTally`, waiver usage), never the results, so
its memory does not grow with the run.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Protocol

from itops.exitcodes import ExitStatus
from itops.gctune import batch_gc
from itops.model import Result, Run, Severity
from itops.store import RunWriter, Store
from itops.tally import RunTally
from itops.waivers import WaiverSet, WaiverUsage


class ResultStream(Protocol):
    """Where a live run's results go besides the store (stdout as JSON / JSON lines).

    ``add`` is handed the results as stored (redacted): a :class:`~itops.store.StoredResults`, which
    also carries the JSON text each was stored as (``.texts``), so a stream that prints JSON need
    not encode them again (:func:`itops.report.jsondoc.result_texts`).
    """

    def start(self, run: Run) -> None: ...

    def add(self, results: Sequence[Result]) -> None: ...

    def finish(self, run: Run, tally: RunTally) -> None: ...


class TargetOutcome(Protocol):
    """What the session needs of one target's outcome (a host, a cloud account, a backup)."""

    @property
    def results(self) -> Sequence[Result]: ...


@dataclass
class SessionResult:
    """A finished run: its stored header, its counters and its exit status."""

    run: Run
    tally: RunTally
    status: ExitStatus
    interrupted: bool
    waiver_usage: WaiverUsage | None = None
    #: the output's reader went away (``| head``): the run was stopped and kept; the CLI exits 141
    output_closed: bool = False


@contextmanager
def stop_on_signals(
    interrupt: Callable[[], None], what: str = "keeping results gathered so far"
) -> Iterator[list[int]]:
    """While inside, SIGINT/SIGTERM call ``interrupt`` (the run stops cleanly, keeping its results).

    Yields the list of signals received, so the caller can record the run as interrupted. Outside
    the main thread (where Python cannot install handlers) it installs none.
    """
    received: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if not received:
            print(f"\nstopping on {signal.Signals(signum).name}: {what}", file=sys.stderr, flush=True)
        received.append(signum)
        interrupt()

    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@dataclass
class RunSession:
    """One run from start to exit status (see the module docstring)."""

    store: Store
    run: Run
    fail_on: Severity = Severity.LOW
    waivers: WaiverSet | None = None
    stream: ResultStream | None = None
    #: host -> host key fingerprint seen, cloud name -> account seen (stored with the run)
    host_keys: dict[str, str] = field(default_factory=dict)
    accounts: dict[str, str] = field(default_factory=dict)
    interrupted: bool = False
    output_closed: bool = False
    _writer: RunWriter | None = None
    _interrupt: Callable[[], None] = lambda: None
    _usage: WaiverUsage | None = None

    @property
    def tally(self) -> RunTally:
        return self.writer.tally

    @property
    def writer(self) -> RunWriter:
        if self._writer is None:
            raise RuntimeError("the session has not begun")  # a bug in the caller, not a user error
        return self._writer

    def begin(self) -> None:
        """Record the run as running (planned targets included) and start the output."""
        self._writer = self.store.begin(self.run)
        self._usage = self.waivers.usage() if self.waivers is not None else None
        self._emit(lambda s: s.start(self.run))

    def add(self, results: Sequence[Result]) -> None:
        """Waivers, then the store (redaction, chain), then the output; nothing is kept."""
        if self.waivers is not None:
            results = [self.waivers.apply(r) for r in results]
        stored = self.writer.add_many(results)
        if self._usage is not None:
            for r in stored:
                self._usage.add(r)
        self._emit(lambda s: s.add(stored))

    def add_outcome(self, outcome: TargetOutcome) -> None:
        """One target's results, with the host key / cloud account it showed (when it has them)."""
        self.add(outcome.results)
        target = getattr(outcome, "host", None)
        if target:
            if getattr(outcome, "host_key", None):
                self.host_keys[target] = outcome.host_key  # type: ignore[attr-defined]
            if getattr(outcome, "account", None):
                self.accounts[target] = outcome.account  # type: ignore[attr-defined]

    @contextmanager
    def recording(
        self, interrupt: Callable[[], None] | None = None, what: str = "keeping results gathered so far"
    ) -> Iterator[RunSession]:
        """Begin the run; inside, SIGINT/SIGTERM call ``interrupt`` (the run is then recorded as
        interrupted); an exception finishes the run as failed (exit status INTERNAL) and goes on."""
        self._interrupt = interrupt or (lambda: None)
        self.begin()
        try:
            with stop_on_signals(self._interrupt, what) as received, batch_gc():
                yield self
            if received:
                self.interrupted = True
        except BaseException:
            run = self.writer.finish("failed", int(ExitStatus.INTERNAL), self.host_keys, self.accounts)
            self._emit(lambda s: s.finish(run, self.tally))  # the streamed document still closes
            raise

    def status(self, *, incomplete: bool = False) -> ExitStatus:
        """The exit status so far: from the counters and ``fail_on``; a run that was interrupted (or
        that the caller calls ``incomplete``) is never OK."""
        code = self.tally.exit_status(self.fail_on)
        if (self.interrupted or incomplete) and code is ExitStatus.OK:
            code = ExitStatus.INCOMPLETE
        return code

    def finish(self, status: ExitStatus | None = None) -> SessionResult:
        """Close the run in the store (state, counts, host keys, signed manifest) and the output."""
        code = self.status() if status is None else status
        run = self.writer.finish(
            "interrupted" if self.interrupted else "complete", int(code), self.host_keys, self.accounts
        )
        self._emit(lambda s: s.finish(run, self.tally))
        return SessionResult(run, self.tally, code, self.interrupted, self._usage, self.output_closed)

    def execute(
        self,
        outcomes: Iterable[TargetOutcome],
        *,
        interrupt: Callable[[], None] | None = None,
        on_outcome: Callable[[TargetOutcome], None] | None = None,
        what: str = "keeping results gathered so far",
    ) -> SessionResult:
        """The whole lifecycle over ``outcomes``, consumed one at a time as they arrive."""
        with self.recording(interrupt, what):
            for outcome in outcomes:
                self.add_outcome(outcome)
                if on_outcome is not None:
                    on_outcome(outcome)
        return self.finish()

    def _emit(self, call: Callable[[ResultStream], None]) -> None:
        if self.stream is None or self.output_closed:
            return
        try:
            call(self.stream)
        except BrokenPipeError:
            # The reader went away (`itops audit --format jsonl | head`): stop the run as on Ctrl-C,
            # keep what was gathered, and let the CLI exit 141 once the run is finished.
            self.output_closed = True
            self.interrupted = True
            self._interrupt()
