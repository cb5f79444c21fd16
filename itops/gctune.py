"""The cyclic garbage collector's settings while a run is being recorded (:func:`batch_gc`).

A run allocates millions of short-lived container objects (parsed probe outputs, findings, results,
their dicts and tuples) that reference counting frees and that form no cycles. With CPython's
default thresholds (a young collection every 700 net allocations) the collector spends its time
walking objects that are still in flight, promoting them, and walking the startup state (modules,
the check registry, the inventory) again in every full collection. Measured on a 1,000-host canned
audit with the whole host pack (``bench/scale.py``'s canned transport): 1,100 young, 100 middle
and 9 full collections took 1.5 s of the run's CPU (about 1.4 ms per host, 7 %); with a young
collection every 10,000 allocations and the startup state frozen, 0.2 s.

Cycles made during a run (a paramiko transport and its thread, an exception and its frames) are
still collected, just in larger and fewer passes; memory held by uncollected cycles is bounded
by the threshold (a few MB at most).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: young-generation threshold during a run (CPython's default is 700)
RUN_THRESHOLD0 = 10_000

_lock = threading.Lock()
_depth = 0
_saved: tuple[int, ...] = ()


@contextmanager
def batch_gc() -> Iterator[None]:
    """Collect garbage in larger, fewer passes and leave what exists now (imports, registry,
    inventory) out of them (``gc.freeze``) until the outermost ``batch_gc`` ends; then the previous
    thresholds are back and the frozen objects are collected again as usual. Nested and concurrent
    uses (the scheduler's jobs in one process) share one setting."""
    global _depth, _saved
    with _lock:
        if _depth == 0:
            _saved = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(max(RUN_THRESHOLD0, _saved[0]), *_saved[1:])
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                gc.set_threshold(*_saved)
                gc.unfreeze()
