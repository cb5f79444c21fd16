"""Issue #14.5: the HTML report of a large run is summary-first and bounded; the detail is in CSV/JSON.

A run of more than LARGE_RUN_RESULTS results (written through the real Store) renders per-check and
per-control summaries with the worst targets instead of one row per result, computed by streaming the
stored results; its figures equal those of the full views over every result.
"""

from __future__ import annotations

import csv
import io
import re
import tracemalloc
from pathlib import Path

import pytest
from browser import Chromium, chromium_path
from report_helpers import many_results, store_run

from itops.model import Run, Status
from itops.report import render, write_reports
from itops.report.data import load_report_data
from itops.report.large import HOST_LIST_LIMIT, LARGE_RUN_RESULTS, WORST_PER_CHECK, gather, large_html_context
from itops.report.views import NOT_PASSING, build_views, not_assessed_targets
from itops.store import Store

N = LARGE_RUN_RESULTS + 2_000  # 12,000 results: 600 hosts x 20 checks


@pytest.fixture(scope="module")
def large_store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Store, Run]:
    store = Store(tmp_path_factory.mktemp("large") / "store")
    return store, store_run(store, many_results(N))


def test_large_run_page_is_a_summary_not_one_row_per_result(large_store: tuple[Store, Run]) -> None:
    store, run = large_store
    html = render(store, run.id, "html").decode()
    assert f"Large run: {N} results" in html and "--format csv" in html
    rows = re.findall(r'<tr id="r\d+"', html)
    assert 0 < len(rows) <= 20 * WORST_PER_CHECK  # the worst per check, not 12,000 rows
    assert len(html) < 2_000_000  # the full page of 10,000 results is ~8 MB
    full = load_report_data(store, run.id)
    for st in Status:  # the filter labels carry every result's status
        n = sum(1 for r in full.results if r.status is st)
        assert f'<label for="hide-{st.value}" class="txt-{st.value}">{st.value} {n}</label>' in html
    # each check's collapsed list says how many targets it did not pass on, and names the first ones
    per_check: dict[str, list[str]] = {}
    for r in full.results:
        if r.status in NOT_PASSING:
            per_check.setdefault(r.check_id, []).append(r.target)
    for check_id, targets in per_check.items():
        body = html.split(f'id="c-{check_id}"', 1)[1].split("</details>\n  </details>", 1)[0]
        shown = min(len(targets), HOST_LIST_LIMIT)
        assert f"{len(targets)} targets not passing" in body
        assert ", ".join(targets[:shown]) in body


def test_large_run_figures_equal_the_full_views(large_store: tuple[Store, Run]) -> None:
    store, run = large_store
    full = build_views(load_report_data(store, run.id))
    ctx = large_html_context(store, run.id)
    large = ctx["views"]
    assert large.summary.counts == full.summary.counts
    assert large.summary.by_severity == full.summary.by_severity
    assert large.summary.top_failing == full.summary.top_failing
    assert (large.summary.targets, large.summary.checks) == (full.summary.targets, full.summary.checks)
    assert {v.key: (v.counts, v.status) for v in large.checks} == {v.key: (v.counts, v.status) for v in full.checks}
    assert [v.key for v in large.checks] == [v.key for v in full.checks]  # same order, worst first

    def controls(fws: list) -> dict:
        return {
            (fw.key, c.control): (
                c.counts,
                c.status,
                c.title,
                [(cc.check_id, cc.passed, cc.skipped) for cc in c.checks],
            )
            for fw in fws
            for c in fw.controls
        }

    assert controls(large.frameworks) == controls(full.frameworks)
    results = load_report_data(store, run.id).results
    assert ctx["not_assessed"] == not_assessed_targets(results)
    assert large.summary.unreachable == full.summary.unreachable
    fails = [r for r in results if r.status is Status.FAIL]
    assert ctx["priority_counts"] == {s: sum(1 for r in fails if r.severity.value == s) for s in ("critical", "high")}
    groups = {(g.check_id, g.resource, g.message): len(g.results) for g in full.priority}
    assert {(g.check_id, g.resource, g.message): len(g.results) for g in large.priority} == groups


def test_large_run_page_keeps_memory_to_its_summaries(large_store: tuple[Store, Run]) -> None:
    """Streaming: the page's pass over 12,000 results peaks far below holding them all."""
    store, run = large_store
    tracemalloc.start()
    try:
        gather(store, run.id)
        _, streamed = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        load_report_data(store, run.id)
        _, whole = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"\npeak: streamed {streamed / 1e6:.1f} MB, whole run {whole / 1e6:.1f} MB")
    assert streamed < whole / 4


def test_large_run_detail_is_in_the_csv(large_store: tuple[Store, Run], tmp_path: Path) -> None:
    store, run = large_store
    html_path, csv_path = tmp_path / "r.html", tmp_path / "r.csv"
    write_reports(store, run.id, [("html", html_path), ("csv", csv_path)])
    assert "Large run" in html_path.read_text()
    rows = list(csv.reader(io.StringIO(csv_path.read_text(encoding="utf-8-sig"))))
    assert len(rows) == N + 1


@pytest.mark.skipif(chromium_path() is None, reason="chromium is not installed (install-system-deps.sh)")
def test_large_run_page_in_chromium(large_store: tuple[Store, Run], tmp_path: Path) -> None:
    store, run = large_store
    page = tmp_path / "large.html"
    write_reports(store, run.id, [("html", page)])
    with Chromium(timeout=60) as browser:
        loaded = browser.open(page, width=1280, height=1000)
        assert loaded.console_errors == [] and loaded.requests == [loaded.url]
        assert browser.evaluate("document.querySelector('#large-run').getBoundingClientRect().top") < 1000
        assert browser.evaluate("document.querySelector('#fix-first .finding').dataset.severity") == "critical"
        assert browser.evaluate("document.querySelectorAll('details.hostlist[open]').length") == 0
        # a host list opens to names (collapsed by default)
        browser.evaluate(
            "const d = document.querySelector('details.hostlist');"
            "d.open = true; d.parentElement.closest('details').open = true"
        )
        assert "host" in browser.evaluate("document.querySelector('details.hostlist p').innerText")


def test_verifying_a_large_run_does_not_hold_it(large_store: tuple[Store, Run]) -> None:
    """Every report verifies the run first: lines and history rows are compared as they are read, and
    the chain values kept are 32 bytes each (was: every line and every row held, twice the file)."""
    store, run = large_store
    size = (store.run_dir(run.id) / "results.jsonl").stat().st_size
    tracemalloc.start()
    try:
        outcome = store.verify(run.id)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    print(f"\nverify: peak {peak / 1e6:.1f} MB for a {size / 1e6:.1f} MB results.jsonl")
    assert outcome.ok and outcome.lines == N
    assert peak < size / 4


def test_large_run_csv_is_streamed_and_equals_the_full_csv(large_store: tuple[Store, Run], tmp_path: Path) -> None:
    """The CSV of a large run is written row by row from the store: the same bytes as rendering the
    loaded run, at a fraction of the memory."""
    from itops.report import render_data, write_report

    store, run = large_store
    tracemalloc.start()
    try:
        path = write_report(store, run.id, "csv", tmp_path / "r.csv")
        _, streamed = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        whole = render_data(load_report_data(store, run.id), "csv")
        _, loaded = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert path.read_bytes() == whole
    print(
        f"\ncsv of {len(whole) / 1e6:.1f} MB: peak {streamed / 1e6:.1f} MB streamed, {loaded / 1e6:.1f} MB loaded whole"
    )
    assert streamed < loaded / 4


def test_itops_report_csv_of_a_large_run_streams_to_file_and_stdout(
    large_store: tuple[Store, Run], tmp_path: Path
) -> None:
    """The CLI writes a large run's CSV piece by piece, to a file or stdout: the same bytes as rendering it whole."""
    import subprocess
    import sys

    from itops.report import render_data

    store, run = large_store
    whole = render_data(load_report_data(store, run.id), "csv")
    itops = str(Path(sys.executable).with_name("itops"))
    out = tmp_path / "r.csv"
    args = [itops, "report", run.id, "--store", str(store.root), "-f", "csv"]
    done = subprocess.run([*args, "-o", str(out)], capture_output=True, check=True)
    assert out.read_bytes() == whole and f"({len(whole):,} bytes)" in done.stderr.decode()
    assert subprocess.run(args, capture_output=True, check=True).stdout == whole


def test_large_run_json_is_streamed_and_equals_the_loaded_document(
    large_store: tuple[Store, Run], tmp_path: Path
) -> None:
    """`itops report --format json` (issue #14): the results are read one at a time from the store and
    written as they come, the summary from counters; the document equals, parsed, the one built from
    the loaded run (run_document, the renderer before streaming) and validates against the schema.
    Was: the whole run loaded, then the whole document built and indented in memory."""
    import json

    import jsonschema

    from itops.report import write_report
    from itops.report.data import check_integrity
    from itops.report.jsondoc import load_schema, run_document

    store, run = large_store
    tracemalloc.start()
    try:
        path = write_report(store, run.id, "json", tmp_path / "r.json")
        _, streamed = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        loaded = load_report_data(store, run.id)
        expected = run_document(loaded.run, loaded.results, integrity=check_integrity(store, run.id).to_dict())
        _, whole = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    doc = json.loads(path.read_bytes())
    jsonschema.Draft202012Validator(load_schema()).validate(doc)
    assert doc.pop("generated_at") and expected.pop("generated_at") is None
    assert doc == expected and len(doc["results"]) == N and doc["integrity"]["verified"]
    size = path.stat().st_size
    print(f"\njson of {size / 1e6:.1f} MB: peak {streamed / 1e6:.1f} MB streamed, {whole / 1e6:.1f} MB loaded whole")
    assert streamed < whole / 4 and streamed < size / 2


def test_itops_report_and_runs_show_json_of_a_large_run_stream_to_file_and_stdout(
    large_store: tuple[Store, Run], tmp_path: Path
) -> None:
    """The CLI prints the streamed document (report: to a file or stdout; runs show: stdout)."""
    import json
    import subprocess
    import sys

    store, run = large_store
    itops = str(Path(sys.executable).with_name("itops"))
    out = tmp_path / "r.json"
    args = [itops, "report", run.id, "--store", str(store.root), "-f", "json"]
    done = subprocess.run([*args, "-o", str(out)], capture_output=True, check=True)
    assert f"({out.stat().st_size:,} bytes)" in done.stderr.decode()
    printed = subprocess.run(args, capture_output=True, check=True).stdout
    shown = subprocess.run(
        [itops, "runs", "show", run.id, "--store", str(store.root), "--format", "json"], capture_output=True, check=True
    ).stdout
    docs = [json.loads(out.read_bytes()), json.loads(printed), json.loads(shown)]
    for doc in docs:
        doc.pop("generated_at")
    assert docs[0] == docs[1] == docs[2] and len(docs[0]["results"]) == N
