"""Reports rendered from a stored run: html, md, json, csv, junit, sarif, ocsf (and pdf).

The one entry point is :func:`render` (bytes) / :func:`write_report` (a file, written
atomically). The formats are the ``itops_report_formats`` answers of the plugins
(:func:`itops.plugins.report_formats`): itops's own come from :mod:`itops.default_plugins.reports`,
whose renderers import their module only when asked for, so a missing optional library
(weasyprint) only affects its own format; a third-party package adds a format the same way.

``itops audit --report FMT:PATH`` uses :func:`parse_report_spec` and :func:`write_report`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from itops import plugins
from itops.errors import UsageError
from itops.fsutil import write_private_atomic
from itops.report.data import TREND_RUNS, ReportData, load_report_data
from itops.store import Store

__all__ = [
    "ReportData",
    "atomic_write",
    "default_filename",
    "ensure_available",
    "extension",
    "formats",
    "load_report_data",
    "parse_report_spec",
    "render",
    "render_data",
    "render_pieces",
    "write_report",
    "write_reports",
]

Renderer = Callable[[ReportData, "Path | None"], bytes]


def formats() -> tuple[str, ...]:
    """Every report format's name (the plugins', itops's own first)."""
    return tuple(plugins.report_formats())


def _aliases() -> dict[str, str]:
    return {alias: f.name for f in plugins.report_formats().values() for alias in f.aliases}


def normalize_format(fmt: str) -> str:
    """The canonical name of a report format (``markdown`` -> ``md``); UsageError if unknown."""
    name = fmt.strip().lower()
    name = _aliases().get(name, name)
    if name not in plugins.report_formats():
        raise UsageError(f"unknown report format {fmt!r}", hint=f"formats: {', '.join(formats())}")
    return name


def extension(fmt: str) -> str:
    """The file name extension of a format (``.html``, ``.ocsf.json``)."""
    return plugins.report_formats()[normalize_format(fmt)].extension


def _renderer(fmt: str) -> Renderer:
    return plugins.report_formats()[normalize_format(fmt)].render


def render_data(data: ReportData, fmt: str, templates: Path | None = None) -> bytes:
    """Render already loaded report data as ``fmt``."""
    return _renderer(fmt)(data, templates)


def render(store: Store, run_id: str, fmt: str, templates: Path | None = None, trend: int = TREND_RUNS) -> bytes:
    """A stored run (``latest``, an id or a unique prefix) rendered as ``fmt``."""
    renderer = _renderer(fmt)  # an unknown format fails before the store is read
    if fmt == "json":
        return b"".join(render_pieces(store, run_id, fmt))
    if fmt == "html":
        from itops.report.large import is_large, render_large_html

        if is_large(store, run_id):  # summary-first page, computed by streaming the results
            return render_large_html(store, run_id, templates, trend)
    return renderer(load_report_data(store, run_id, trend=trend), templates)


def render_pieces(
    store: Store, run_id: str, fmt: str, templates: Path | None = None, trend: int = TREND_RUNS
) -> Iterable[bytes]:
    """:func:`render` in pieces: the JSON document of any run is produced result by result from the
    store, the CSV of a large run row by row (never held whole); every other report is one piece."""
    if fmt == "json":
        import time

        from itops.report.jsondoc import stored_run_json

        return (piece.encode("utf-8") for piece in stored_run_json(store, run_id, generated=time.time()))
    if fmt == "csv":
        from itops.report.large import is_large, large_csv_chunks

        if is_large(store, run_id):
            return large_csv_chunks(store, run_id)
    return [render(store, run_id, fmt, templates=templates, trend=trend)]


def atomic_write(path: Path, data: bytes | Iterable[bytes]) -> None:
    """Write ``data`` to ``path`` atomically, mode 0600, never through a symlink.

    See :func:`itops.fsutil.write_private_atomic`: an unpredictable temporary file in the same
    folder, fsync, ``os.replace``. A reader (a CI job, a web server) never sees a half-written
    report, a failure leaves the previous file in place, and a symlink planted at the report
    path is replaced, not written through. Reports hold findings and evidence: they are
    private to the user running itops whatever the umask (a missing folder is created 0700).
    """
    write_private_atomic(path, data)


def write_report(
    store: Store, run_id: str, fmt: str, path: Path | str, templates: Path | None = None, trend: int = TREND_RUNS
) -> Path:
    """Render a stored run as ``fmt`` into ``path`` (atomically); returns the path written."""
    target = Path(path)
    atomic_write(target, render_pieces(store, run_id, fmt, templates=templates, trend=trend))
    return target


def write_reports(
    store: Store,
    run_id: str,
    specs: Sequence[tuple[str, Path]],
    templates: Path | None = None,
    trend: int = TREND_RUNS,
) -> list[Path]:
    """Several reports of one run (``--report`` given more than once), reading the store once."""
    if not specs:
        return []
    from itops.report.large import is_large

    if is_large(store, run_id):  # each report reads the store itself: a large run is never held whole
        return [write_report(store, run_id, fmt, path, templates, trend) for fmt, path in specs]
    data = load_report_data(store, run_id, trend=trend)
    written = []
    for fmt, path in specs:
        atomic_write(Path(path), render_data(data, fmt, templates))
        written.append(Path(path))
    return written


def default_filename(run_id: str, fmt: str) -> str:
    """``report-<run id><extension>``, e.g. ``report-20250101T000000Z-abc123.html``."""
    return f"report-{run_id}{extension(fmt)}"


def parse_report_spec(spec: str) -> tuple[str, Path]:
    """``"html:out/report.html"`` -> ``("html", Path("out/report.html"))``.

    The format comes before the first colon, so the path may itself hold colons.
    Raises :class:`UsageError` for a missing path or an unknown format.
    """
    fmt, sep, path = spec.partition(":")
    if not sep or not fmt.strip() or not path.strip():
        raise UsageError(
            f"bad --report {spec!r}: expected FORMAT:PATH",
            hint=f"e.g. --report html:out/report.html; formats: {', '.join(formats())}",
        )
    name = normalize_format(fmt)
    ensure_available(name)
    return name, Path(path.strip()).expanduser()


def ensure_available(fmt: str) -> None:
    """Raise :class:`UsageError` now if ``fmt`` needs a library that is not installed (pdf: weasyprint).

    ``itops audit --report pdf:...`` calls this before the run, not after it.
    """
    check = plugins.report_formats()[normalize_format(fmt)].unavailable
    problem = check() if check is not None else None
    if problem is not None:
        raise UsageError(problem[0], hint=problem[1])
