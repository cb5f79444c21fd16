"""The JSON document of a run (schema ``itops.run/1``, ``itops/report/schema/run-1.json``).

``itops report --format json``, ``itops audit --format json`` and ``itops runs show
--format json`` all print this same document. Adding an optional field keeps the
version; renaming, removing or changing the meaning of one bumps it (``itops.run/2``).

Every one of them writes it the same way, as a stream (:class:`JsonRunStream`): the header, then
each result as one line of compact JSON as it comes (from the live run, or read one at a time from
the stored ``results.jsonl``), then the run's header, counts and summary from counters. Memory
stays bounded whatever the size of the run.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from itops import __version__
from itops.frameworks import describe
from itops.model import Result, Run
from itops.redact import redact_result
from itops.report.data import ReportData, compliance_score, coverage
from itops.store import Store, StoredResults
from itops.tally import RunTally

SCHEMA_ID = "itops.run/1"
SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "run-1.json"


def iso_utc(ts: float | None) -> str | None:
    """``2025-01-31T12:00:00.123Z`` (UTC, milliseconds) or None."""
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def run_document(
    run: Run, results: Sequence[Result], generated: float | None = None, integrity: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The ``itops.run/1`` document as plain data (results redacted once more)."""
    clean = [redact_result(r) for r in results]
    doc = _header(generated)
    doc.update(run_summary(run, RunTally.of(clean)))
    doc["results"] = [r.to_dict() for r in clean]
    if integrity is not None:
        doc["integrity"] = dict(integrity)
    return doc


def _header(generated: float | None) -> dict[str, Any]:
    return {
        "schema": SCHEMA_ID,
        "generator": {"name": "itops", "version": __version__},
        "generated_at": iso_utc(generated) if generated is not None else None,
    }


def run_summary(run: Run, tally: RunTally) -> dict[str, Any]:
    """The ``run``, ``counts`` and ``summary`` members of the document, from the run's counters alone."""
    header = run.to_dict()
    header["started_at"] = iso_utc(run.started)
    header["finished_at"] = iso_utc(run.finished)
    counts = tally.counts
    missing = tally.not_audited(run)
    return {
        "run": header,
        "counts": counts,
        "summary": {
            "total": tally.total,
            "score": compliance_score(counts),
            "coverage": coverage(counts, missing),
            "by_severity": {sev: dict(per) for sev, per in tally.by_severity.items()},
            "targets": len(tally.targets),
            "checks": len(tally.check_ids),
            "not_audited": list(missing),
        },
        # title and version of each framework catalogue the results reference (cis-debian-12: v1.1.0)
        "catalogues": describe(tally.frameworks),
    }


def run_to_json(run: Run, results: Iterable[Result], integrity: Mapping[str, Any] | None = None) -> str:
    """The document as JSON text (what ``runs show --format json`` prints), without a final newline."""
    return "".join(run_json_pieces(run, results, integrity=integrity)).removesuffix("\n")


#: Results rendered per piece by :func:`run_json_pieces`.
PIECE_RESULTS = 500


def run_json_pieces(
    run: Run,
    results: Iterable[Result],
    *,
    generated: float | None = None,
    integrity: Mapping[str, Any] | None = None,
) -> Iterator[str]:
    """The ``itops.run/1`` document of a stored run in pieces, as :class:`JsonRunStream` prints a live
    one: ``results`` is consumed one at a time (each redacted once more, as
    :func:`itops.report.data.load_report_data` does: defence in depth), the summary comes from
    counters, and at most :data:`PIECE_RESULTS` results are held at once."""
    out: list[str] = []
    stream = JsonRunStream(out.append, generated=generated)
    stream.start(run)
    tally = RunTally()
    batch: list[Result] = []
    for r in results:
        clean = redact_result(r)  # the bounded module cache, never a per-run memo
        tally.add(clean)
        batch.append(clean)
        if len(batch) >= PIECE_RESULTS:
            stream.add(batch)
            batch = []
            yield "".join(out)
            out.clear()
    stream.add(batch)
    stream.finish(run, tally, integrity=integrity)
    yield "".join(out)


def stored_run_json(
    store: Store, run_id: str, *, generated: float | None = None, with_integrity: bool = True
) -> Iterator[str]:
    """:func:`run_json_pieces` of a stored run, its results read one line at a time from the store
    (``itops report --format json``, ``itops runs show --format json``); ``with_integrity``: what
    ``runs verify`` finds (itself a streaming pass) goes in the ``integrity`` member."""
    from itops.report.data import check_integrity

    run = store.get_run(run_id)
    integrity = check_integrity(store, run.id).to_dict() if with_integrity else None
    return run_json_pieces(run, store.iter_results(run.id), generated=generated, integrity=integrity)


def result_texts(results: Sequence[Result]) -> list[str]:
    """Each result as compact JSON text: the store's own encoding when the results come from
    :meth:`itops.store.RunWriter.add_many` (encoded once per run), else encoded here."""
    if isinstance(results, StoredResults):
        return results.texts
    return [r.to_json() for r in results]


class JsonRunStream:
    """Prints the ``itops.run/1`` document of a live run while it runs (``--format json``).

    The members come in the order they become known: ``schema`` and ``generator`` first, each
    result on its own line as it is stored, then ``run``, ``counts`` and ``summary`` (computed from
    the run's counters) when it finishes. JSON objects are unordered, so this is the same
    document, valid against the same schema, as one rendered from the store afterwards; nothing
    of the run is held to print it.
    """

    def __init__(self, write: Callable[[str], None], generated: float | None = None) -> None:
        self.write = write
        self.generated = generated
        self._first = True

    def start(self, run: Run) -> None:
        head = json.dumps(_header(self.generated), indent=2, ensure_ascii=False)
        self.write(head[:-2] + ',\n  "results": [')

    def add(self, results: Sequence[Result]) -> None:
        if not results:
            return
        sep = "\n    " if self._first else ",\n    "
        self._first = False
        self.write(sep + ",\n    ".join(result_texts(results)))

    def finish(self, run: Run, tally: RunTally, integrity: Mapping[str, Any] | None = None) -> None:
        members = run_summary(run, tally)
        if integrity is not None:
            members["integrity"] = dict(integrity)
        tail = json.dumps(members, indent=2, ensure_ascii=False)
        self.write(("\n" if not self._first else "") + "  ],\n" + tail[2:] + "\n")


class JsonLinesStream:
    """``--format jsonl``: one result per line as it is stored, then one last line holding the
    ``itops.run/1`` document without its ``results`` (schema, generator, run, counts, summary)."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self.write = write

    def start(self, run: Run) -> None:
        pass

    def add(self, results: Sequence[Result]) -> None:
        if results:
            self.write("\n".join(result_texts(results)) + "\n")

    def finish(self, run: Run, tally: RunTally) -> None:
        self.write(json.dumps(_header(None) | run_summary(run, tally), ensure_ascii=False) + "\n")


def render_json(data: ReportData, templates: Path | None = None) -> bytes:
    """The document of loaded report data: the same text as :func:`stored_run_json` gives for the run."""
    integrity = data.integrity.to_dict() if data.integrity is not None else None
    pieces = run_json_pieces(data.run, data.results, generated=data.generated, integrity=integrity)
    return "".join(pieces).encode("utf-8")


@lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the document."""
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return schema
