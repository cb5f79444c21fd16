"""The data model every part of itops shares: statuses, severities, results, runs.

Results are frozen dataclasses with ``to_dict``/``from_dict`` so the run store,
reports and tests all read the same shape. Statuses and severities are enums,
never bare strings: ERROR and UNREACHABLE are never collapsed into PASS/FAIL.
"""

from __future__ import annotations

import enum
import json
import json.encoder
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


class Status(enum.StrEnum):
    """Outcome of one check on one target."""

    PASS = "PASS"
    FAIL = "FAIL"
    ERROR = "ERROR"  # could not evaluate: timeout, permission, command missing
    UNREACHABLE = "UNREACHABLE"  # target not reached at all
    SKIPPED = "SKIPPED"  # not applicable to this target
    WAIVED = "WAIVED"  # failed, but an unexpired waiver covers it


class Severity(enum.StrEnum):
    """How bad a failure of a check is; ordered by :attr:`rank`."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    def at_least(self, other: Severity) -> bool:
        """True when this severity is ``other`` or worse."""
        return self.rank >= other.rank


_SEVERITY_RANK = {
    Severity.INFO: 0,
    Severity.LOW: 1,
    Severity.MEDIUM: 2,
    Severity.HIGH: 3,
    Severity.CRITICAL: 4,
}


@dataclass(frozen=True)
class Evidence:
    """What a result is based on: the probe or API call, observed vs expected, and the lines that decided.

    Never the whole probe output: ``excerpt`` holds only the lines or values the check named
    (:attr:`Finding.lines`), redacted and capped by the store (itops.redact.EVIDENCE_CAP).
    """

    source: str = ""  # the command or API call
    excerpt: str = ""  # the deciding lines (redacted, capped)
    observed: str = ""
    expected: str = ""

    def to_dict(self) -> dict[str, str]:
        # what asdict gives, without its recursive deep copy (this runs for every stored result)
        return {"source": self.source, "excerpt": self.excerpt, "observed": self.observed, "expected": self.expected}


@dataclass(frozen=True)
class Finding:
    """What a check's evaluate function returns: a verdict without run/target bookkeeping.

    ``resource`` narrows the target when one check yields several findings on
    one target (a file, a user, a bucket ARN). ``lines`` are the lines of the probe output
    that decided the verdict (the config line that set a value, the matching rule): they
    become the result's evidence excerpt. A check that names none stores no output at all.
    """

    status: Status
    message: str
    observed: str = ""
    expected: str = ""
    resource: str = ""
    #: numeric facts the check read (``{"fs.used_pct:/var": 71.0}``), kept in the history database for
    #: trends and forecasts; names are ``metric[:qualifier]``
    metrics: Mapping[str, float] = field(default_factory=dict)
    lines: tuple[str, ...] = ()

    @classmethod
    def passed(cls, message: str, **kw: Any) -> Finding:
        return cls(Status.PASS, message, **kw)

    @classmethod
    def failed(cls, message: str, **kw: Any) -> Finding:
        return cls(Status.FAIL, message, **kw)

    @classmethod
    def error(cls, message: str, **kw: Any) -> Finding:
        return cls(Status.ERROR, message, **kw)

    @classmethod
    def skipped(cls, message: str, **kw: Any) -> Finding:
        return cls(Status.SKIPPED, message, **kw)


@dataclass(frozen=True)
class Waiver:
    """A waiver as applied to a result (what the report shows beside it)."""

    check: str
    target: str
    justification: str
    approver: str
    expires: str
    ticket: str = ""

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class Result:
    """One check's verdict on one target (host, cloud resource or backup) in one run."""

    run_id: str
    check_id: str
    target: str
    status: Status
    severity: Severity
    message: str
    title: str = ""
    resource: str = ""
    evidence: Evidence = field(default_factory=Evidence)
    frameworks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    remediation: str = ""
    started: float = 0.0
    duration: float = 0.0
    waiver: Waiver | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        # _value_ rather than .value: the enum's property costs a Python call, and this runs per stored result
        doc: dict[str, Any] = {
            "run_id": self.run_id,
            "check_id": self.check_id,
            "target": self.target,
            "resource": self.resource,
            "status": self.status._value_,
            "severity": self.severity._value_,
            "title": self.title,
            "message": self.message,
            "evidence": self.evidence.to_dict(),
            "frameworks": frameworks_doc(self.frameworks),
            "remediation": self.remediation,
            "started": self.started,
            "duration": round(self.duration, 6),
            "waiver": self.waiver.to_dict() if self.waiver else None,
        }
        if self.metrics:
            doc["metrics"] = dict(self.metrics)
        return doc

    def to_json(self) -> str:
        """:meth:`to_dict` as compact JSON text (no ASCII escaping): one line of ``results.jsonl``.

        The very text ``compact_json(self.to_dict())`` gives, built faster (see :func:`_result_json`).
        """
        return _result_json(self)

    def evolve(self, **changes: Any) -> Result:
        """A copy with ``changes`` (fields of Result): :func:`dataclasses.replace` without its per-call
        introspection of the fields, for the store's path, where every capped result is copied."""
        new = object.__new__(type(self))
        fields = new.__dict__
        fields.update(self.__dict__)
        fields.update(changes)
        return new

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Result:
        waiver = d.get("waiver")
        return cls(
            run_id=d["run_id"],
            check_id=d["check_id"],
            target=d["target"],
            resource=d.get("resource", ""),
            status=Status(d["status"]),
            severity=Severity(d["severity"]),
            title=d.get("title", ""),
            message=d["message"],
            evidence=Evidence(**d.get("evidence", {})),
            frameworks={k: tuple(v) for k, v in d.get("frameworks", {}).items()},
            remediation=d.get("remediation", ""),
            started=float(d.get("started", 0.0)),
            duration=float(d.get("duration", 0.0)),
            waiver=Waiver(**waiver) if waiver else None,
            metrics={str(k): float(v) for k, v in (d.get("metrics") or {}).items()},
        )

    @property
    def key(self) -> tuple[str, str, str]:
        """Identity of a result across runs (for diff): check, target, resource."""
        return (self.check_id, self.target, self.resource)


@dataclass
class Run:
    """A run's header as stored in the history database."""

    id: str
    kind: str  # audit, backup, drill
    started: float
    finished: float | None = None
    inventory: str = ""
    inventory_digest: str = ""
    version: str = ""
    host_keys: dict[str, str] = field(default_factory=dict)  # host -> host key fingerprint seen
    accounts: dict[str, str] = field(default_factory=dict)  # cloud name -> account id / caller ARN seen
    counts: dict[str, int] = field(default_factory=dict)
    state: str = "running"  # running, complete, interrupted, failed
    exit_code: int | None = None
    # target -> checks planned on it, recorded when the run starts; empty for runs stored before
    # itops recorded plans (then nothing is known about targets that never ran)
    planned: dict[str, int] = field(default_factory=dict)
    shard: str = ""  # "I/N" for a run of one shard (`audit --shard`); "" for a whole run
    selection: str = ""  # what the run was asked to cover (--limit / --checks), for comparing shards
    merged_from: list[str] = field(default_factory=list)  # `runs merge`: the shard runs it combines
    # target -> line of its entry in the inventory as it was when the run started (SARIF locations;
    # itops.inventory.target_lines); empty for runs stored before itops recorded them
    inventory_lines: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def not_audited(self, results: Iterable[Result]) -> dict[str, int]:
        """Planned targets with no result at all (the run was interrupted or died before them),
        each with the number of checks planned on it."""
        seen = {r.target for r in results}
        return {t: n for t, n in sorted(self.planned.items()) if t not in seen}


def frozen_instance(cls: type[T], **fields: Any) -> T:
    """An instance of the frozen dataclass ``cls`` from every one of its fields, without running its
    ``__init__`` (which sets each field with ``object.__setattr__``): for the few places that make
    one per result. The caller passes every field, and nothing else (checked by the tests of
    :meth:`itops.checkapi.Check.result`)."""
    new = object.__new__(cls)
    new.__dict__.update(fields)
    return new


def frameworks_doc(frameworks: Mapping[str, Iterable[str]]) -> dict[str, list[str]]:
    """A check's framework references as they appear in JSON documents (each control list a list)."""
    return {k: list(v) for k, v in frameworks.items()}


def count_statuses(results: list[Result]) -> dict[str, int]:
    """Counts per status, every status present (zero when absent)."""
    counts = {s.value: 0 for s in Status}
    for r in results:
        counts[r.status.value] += 1
    return counts


def _not_serializable(value: object) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


# json's C encoder built once: json.dumps builds a JSONEncoder and a C encoder on every call, which
# costs about as much as encoding a result. Same output as
# json.dumps(value, ensure_ascii=False, separators=(",", ":")); no circular-reference check (results are trees).
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)  # private to json, hence looked up with care
_C_COMPACT = (
    _c_make_encoder(None, _not_serializable, json.encoder.encode_basestring, None, ":", ",", False, False, True)
    if _c_make_encoder is not None
    else None
)


def compact_json(value: Any) -> str:
    """``value`` as compact JSON text, as ``json.dumps(value, ensure_ascii=False, separators=(",", ":"))``."""
    if _C_COMPACT is None:  # an interpreter without json's C accelerator
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return "".join(_C_COMPACT(value, 0))


# -- one result as JSON text, fast ------------------------------------------------------------------
# Every stored result is encoded once (results.jsonl and the stdout stream), and json's C encoder
# took ~9 us for a typical result, a tenth of the store's CPU per host. Most of a result repeats
# across results: the run, check, status, severity and title (the head below), the frameworks and
# remediation (the tail), the host, file and probe names. Those parts are encoded once and kept, in
# bounded tables; only the message and observed text are encoded every time. The output is exactly
# compact_json(result.to_dict()) (tests/test_store_encoding.py compares them on random results);
# anything unusual (a value that is not a str, a float that is NaN or infinite, an int time) takes
# compact_json itself.
_encode_str = json.encoder.encode_basestring
_TABLE_MAX = 4096
_KEPT_TEXT = 256  # characters: the string table holds at most ~4096 x 256 of them
_heads: dict[tuple[str, str, str, str, str], tuple[str, str]] = {}
_tails: dict[tuple[str, tuple[tuple[str, Any], ...]], str] = {}
_strings: dict[str, str] = {}


def _encoded(text: str) -> str:
    """``text`` as a JSON string, remembered when short (for the texts that repeat across results:
    host, file and probe names; a host's long text is encoded and not kept)."""
    done = _strings.get(text)
    if done is None:
        if len(text) > _KEPT_TEXT:
            return _encode_str(text)
        if len(_strings) >= _TABLE_MAX:
            _strings.clear()
        done = _strings[text] = _encode_str(text)
    return done


def _result_json(r: Result) -> str:
    try:
        return _fast_result_json(r)
    except (TypeError, AttributeError, ValueError):
        return compact_json(r.to_dict())


def _fast_result_json(r: Result) -> str:
    status, severity = r.status._value_, r.severity._value_
    key = (r.run_id, r.check_id, status, severity, r.title)
    head = _heads.get(key)
    if head is None:
        if len(_heads) >= _TABLE_MAX:
            _heads.clear()
        head = _heads[key] = (
            '{"run_id":' + _encode_str(r.run_id) + ',"check_id":' + _encode_str(r.check_id),
            ',"status":'
            + _encode_str(status)
            + ',"severity":'
            + _encode_str(severity)
            + ',"title":'
            + _encode_str(r.title)
            + ',"message":',
        )
    # by content, not identity: results read back from a store each have a mapping of their own
    tail_key = (r.remediation, tuple(r.frameworks.items()))  # TypeError (list values): compact_json
    tail = _tails.get(tail_key)
    if tail is None:
        if len(_tails) >= _TABLE_MAX:
            _tails.clear()
        tail = _tails[tail_key] = (
            '},"frameworks":'
            + compact_json(frameworks_doc(r.frameworks))
            + ',"remediation":'
            + _encode_str(r.remediation)
            + ',"started":'
        )
    started, duration = r.started, r.duration
    if type(started) is not float or type(duration) is not float:
        raise TypeError("not a float")
    started_text, duration_text = float.__repr__(started), float.__repr__(round(duration, 6))
    if started_text[-1] in "nf" or duration_text[-1] in "nf":  # nan, inf, -inf: JSON's NaN, Infinity
        raise ValueError("not finite")
    ev, waiver, metrics = r.evidence, r.waiver, r.metrics
    if type(ev) is not Evidence:
        raise TypeError("evidence")
    strings = _strings
    return "".join(
        (
            head[0],
            ',"target":',
            strings.get(r.target) or _encoded(r.target),
            ',"resource":',
            strings.get(r.resource) or _encoded(r.resource),
            head[1],
            _encode_str(r.message),
            ',"evidence":{"source":',
            strings.get(ev.source) or _encoded(ev.source),
            ',"excerpt":',
            _encode_str(ev.excerpt),
            ',"observed":',
            _encode_str(ev.observed),
            ',"expected":',
            strings.get(ev.expected) or _encoded(ev.expected),
            tail,
            started_text,
            ',"duration":',
            duration_text,
            ',"waiver":',
            "null" if waiver is None else compact_json(waiver.to_dict()),
            ',"metrics":' + compact_json(dict(metrics)) + "}" if metrics else "}",
        )
    )
