"""A host's memo of parsed probe output, shared by the checks of that host (``Facts.parsed``).

One :class:`HostMemo` per host evaluation; the values it keeps must be deeply immutable
(:func:`ensure_immutable`), so no check can change what another check of the host sees.
Re-exported by :mod:`itops.checkapi` for check authors.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import itertools
import operator
import re
import threading
import types
from collections.abc import Callable, Hashable, Iterable
from types import MappingProxyType
from typing import Any, TypeVar

from itops.facts import ProbeResult

__all__ = ["HostMemo", "SharedParses", "ensure_immutable"]

T = TypeVar("T")

#: Types whose instances cannot change (the leaves :func:`ensure_immutable` accepts).
_IMMUTABLE_LEAVES: frozenset[type] = frozenset(
    {
        type(None),
        bool,
        int,
        float,
        complex,
        str,
        bytes,
        range,
        type(Ellipsis),
        datetime.date,
        datetime.datetime,
        datetime.time,
        datetime.timedelta,
        datetime.timezone,
        re.Pattern,
    }
)
_LEAF_BASES = tuple(_IMMUTABLE_LEAVES)
#: Frozen dataclass types already vetted: a function giving an instance's field values as a tuple.
_FIELD_VALUES: dict[type, Callable[[Any], tuple[Any, ...]]] = {}


def _field_values(t: type) -> Callable[[Any], tuple[Any, ...]] | None:
    """The field values of a frozen dataclass type's instances (None for any other type)."""
    getter = _FIELD_VALUES.get(t)
    if getter is None:
        if not (dataclasses.is_dataclass(t) and t.__dataclass_params__.frozen):  # type: ignore[attr-defined]
            return None
        names = [f.name for f in dataclasses.fields(t)]
        # attrgetter of one name gives the bare value: ask for it twice to always get a tuple
        getter = operator.attrgetter(*names, *names[:1]) if names else (lambda _obj: ())
        _FIELD_VALUES[t] = getter
    return getter


def ensure_immutable(value: Any, what: str = "value") -> None:
    """Raise TypeError unless ``value`` is deeply immutable: scalars, str/bytes, enum members, dates,
    and tuples, frozensets, ``types.MappingProxyType`` and frozen dataclasses made only of those.

    A value shared between the checks of a host (:meth:`Facts.parsed`) must be one of these, so no
    check can change what another sees (a frozen dataclass can still be changed with
    ``object.__setattr__``: that is deliberate sabotage, not an accident this guards against).
    The walk goes level by level, a whole level of one type at a time (the tuples of a level, the
    instances of one dataclass), so checking a parse costs a fraction of making it.
    """
    leaves = _IMMUTABLE_LEAVES
    pending: list[Iterable[Any]] = [(value,)]
    while pending:
        items = pending.pop()
        types: set[type] = set(map(type, items))
        if types <= leaves:
            continue
        others = types - leaves
        for t in others:
            group: Iterable[Any] = items if len(types) == 1 else [v for v in items if type(v) is t]
            if t is tuple or t is frozenset:
                pending.append(tuple(itertools.chain.from_iterable(group)))
            elif t is MappingProxyType:
                pending.append(tuple(itertools.chain.from_iterable(m.keys() for m in group)))
                pending.append(tuple(itertools.chain.from_iterable(m.values() for m in group)))
            elif (getter := _field_values(t)) is not None:
                pending.append(tuple(itertools.chain.from_iterable(map(getter, group))))
            elif issubclass(t, enum.Enum):
                continue  # members are singletons of their class
            elif issubclass(t, _LEAF_BASES) and t.__dictoffset__ == 0:
                continue  # a subclass of a leaf (a str subclass) without attributes of its own
            elif issubclass(t, tuple) and t.__dictoffset__ == 0:  # a NamedTuple
                pending.append(tuple(itertools.chain.from_iterable(group)))
            else:
                raise TypeError(
                    f"{what} holds a {t.__name__}, which can change: return tuples, frozensets, "
                    "types.MappingProxyType or frozen dataclasses (a check must not alter what another check sees)"
                )


class SharedParses:
    """Parsed values shared by the hosts of one run whose inputs are equal (bounded, thread-safe).

    A fleet is mostly alike: many hosts send the very same sshd_config, login.defs or PAM stack, and
    parsing them was the bulk of evaluation. A value computed for one host (by :meth:`HostMemo.get`)
    is kept here under its key (the parser or function and its inputs, such as the probe results
    themselves) and handed to any other host whose key is *equal*: the same function and byte-equal
    inputs, compared in full (a hash collision is never a hit), so a host gets what its own parse
    would have given. This relies on what :meth:`Facts.parsed` and :meth:`Facts.derived` already ask
    of their functions: a module-level function of its arguments alone, with a deeply immutable value.

    Only keys made of probe results, str, bytes, numbers, None and tuples of those are shared, and
    only when their inputs total at most :attr:`MAX_INPUT` bytes; the inputs held as keys stay under
    :attr:`MAX_BYTES` in all (the table starts over when they would not), so memory stays bounded
    whatever the hosts send (a parse is rarely more than a few times its input: a few tens of MB
    at worst). A fleet built from one image shares a few hundred KB of distinct outputs per pack.
    Errors are never shared: each host computes its own. One per run (the runner makes it), so
    nothing outlives the run.
    """

    MAX_INPUT = 512 << 10
    MAX_BYTES = 4 << 20
    MAX_ENTRIES = 4096

    __slots__ = ("_bytes", "_lock", "_values", "hits")

    def __init__(self) -> None:
        self._values: dict[Hashable, Any] = {}
        self._bytes = 0
        self._lock = threading.Lock()
        #: values handed out without computing them (for tests and benchmarks)
        self.hits = 0

    def __len__(self) -> int:
        return len(self._values)

    def lookup(self, key: Hashable) -> Any:
        """The value kept under ``key``, else :data:`MISSING`."""
        value = self._values.get(key, MISSING)
        if value is not MISSING:
            self.hits += 1  # a statistic: a lost increment between threads does not matter
        return value

    def store(self, key: Hashable, value: Any) -> None:
        """Keep ``value`` under ``key`` when the key's inputs may be shared and fit the bounds."""
        size = _input_size(key)
        if size is None or size > self.MAX_INPUT:
            return
        with self._lock:
            if key in self._values:
                return
            if self._bytes + size > self.MAX_BYTES or len(self._values) >= self.MAX_ENTRIES:
                self._values = {}
                self._bytes = 0
            self._values[key] = value
            self._bytes += size


#: what :meth:`SharedParses.lookup` returns for a key it does not hold
MISSING: Any = object()


def _input_size(key: object, depth: int = 0) -> int | None:
    """The bytes of the inputs in ``key`` (None when it holds anything but probe results, str,
    bytes, numbers, None, functions and tuples of those: such a key is not shared)."""
    if depth > 4:
        return None
    t = type(key)
    if t is tuple:
        total = 0
        for item in key:  # type: ignore[attr-defined]
            size = _input_size(item, depth + 1)
            if size is None:
                return None
            total += size
        return total
    if t is ProbeResult:
        return len(key.command) + len(key.stdout) + len(key.stderr) + len(key.error)  # type: ignore[attr-defined]
    if t is str or t is bytes:
        return len(key)  # type: ignore[arg-type]
    if key is None or t is int or t is float or t is bool:
        return 0
    if t is types.FunctionType or t is types.BuiltinFunctionType:
        return 0  # the parser or derived function: compared by identity
    return None


class HostMemo:
    """Values derived from one host's probe outputs, computed once per host and shared by the
    :class:`Facts` of every check of that host (the runner makes one per host evaluation and drops it
    with the host: nothing is kept across hosts, so memory is bounded by the hosts in flight).

    Every value stored must pass :func:`ensure_immutable` (TypeError otherwise), so one check cannot
    change what another check of the host sees. An exception the computation raised is remembered
    too and raised again to every check that asks. Not thread-safe: one host is evaluated by one thread.
    With ``shared`` (the run's :class:`SharedParses`), a value another host computed from equal
    inputs is taken from there instead of computed again, and each value computed here is offered.
    """

    __slots__ = ("_shared", "_values")

    def __init__(self, shared: SharedParses | None = None) -> None:
        self._values: dict[Hashable, tuple[bool, Any]] = {}
        self._shared = shared

    def __len__(self) -> int:
        return len(self._values)

    def get(self, key: Hashable, compute: Callable[[], T], maker: Callable[..., Any] | None = None) -> T:
        """The value remembered under ``key``, computing it with ``compute()`` the first time
        (``maker``, the parser behind ``compute``, is named in the TypeError of a value that can change)."""
        entry = self._values.get(key)
        if entry is None:
            shared = self._shared
            if shared is not None:
                value = shared.lookup(key)
                if value is not MISSING:
                    self._values[key] = (True, value)
                    return value  # type: ignore[no-any-return]
            try:
                value = compute()
            except Exception as exc:
                self._values[key] = (False, exc)
                raise
            ensure_immutable(value, f"the value of {_name(maker or compute)}")
            self._values[key] = (True, value)
            if shared is not None:
                shared.store(key, value)
            return value
        ok, value = entry
        if ok:
            return value  # type: ignore[no-any-return]
        raise value.with_traceback(None)  # the first asker's traceback is not this one's


def _name(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
