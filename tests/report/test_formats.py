"""Every report format rendered from a real stored run and validated against its schema."""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import jsonschema
import pytest
import xmlschema
from click.testing import CliRunner
from junitparser import Error, Failure, JUnitXml, Skipped
from py_ocsf_models.events.findings.detection_finding import DetectionFinding
from report_helpers import DATA, HOSTILE_TARGET, SECRET, result, sample_results, store_run

from itops.cli.main import cli
from itops.errors import UsageError
from itops.model import Evidence, Run, Status
from itops.report import formats, parse_report_spec, render, write_report, write_reports
from itops.report.jsondoc import load_schema
from itops.store import Store

BUILTIN = ("html", "md", "json", "csv", "junit", "sarif", "ocsf", "pdf")
RENDERED = [f for f in BUILTIN if f != "pdf"]


def test_builtin_formats_come_first():
    # registered by itops's own entry point (itops.default_plugins.reports); plugins' formats follow
    assert formats()[: len(BUILTIN)] == BUILTIN


def _line_of(inventory: Path, host: str) -> int:
    for n, line in enumerate(inventory.read_text().splitlines(), 1):
        if line.startswith(f"  {host}:"):
            return n
    raise AssertionError(host)


@pytest.mark.parametrize("fmt", RENDERED)
def test_every_format_renders_the_run_with_all_six_statuses(store: Store, sample_run: Run, fmt: str) -> None:
    data = render(store, "latest", fmt)
    text = data.decode("utf-8-sig")
    assert text.strip()
    assert SECRET not in text and "hunter2" not in text  # redacted on the way out
    if fmt in ("html", "md", "csv", "json", "ocsf"):
        for status in Status:
            assert status.value in text, (fmt, status)


def test_json_document_validates_against_the_shipped_schema(store: Store, sample_run: Run) -> None:
    doc = json.loads(render(store, sample_run.id, "json"))
    jsonschema.Draft202012Validator.check_schema(load_schema())
    jsonschema.Draft202012Validator(load_schema()).validate(doc)
    assert doc["schema"] == "itops.run/1"
    assert doc["counts"] == {"PASS": 2, "FAIL": 3, "ERROR": 1, "UNREACHABLE": 1, "SKIPPED": 1, "WAIVED": 1}
    assert doc["summary"]["score"] == pytest.approx(100 * 2 / 6, abs=0.1)
    assert {r["target"] for r in doc["results"]} >= {HOSTILE_TARGET, "legacy1"}
    waived = [r for r in doc["results"] if r["status"] == "WAIVED"]
    assert waived[0]["waiver"]["ticket"] == "OPS-123"


def test_schema_rejects_a_document_that_drifted(store: Store, sample_run: Run) -> None:
    doc = json.loads(render(store, sample_run.id, "json"))
    doc["results"][0]["status"] = "OK"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, load_schema(), cls=jsonschema.Draft202012Validator)


def test_runs_show_json_prints_the_same_document_as_the_report(store: Store, sample_run: Run) -> None:
    shown = CliRunner().invoke(cli, ["runs", "show", "latest", "--format", "json", "--store", str(store.root)])
    assert shown.exit_code == 0, shown.output
    printed, rendered = json.loads(shown.output), json.loads(render(store, "latest", "json"))
    assert printed.pop("generated_at") is None
    rendered.pop("generated_at")
    assert printed == rendered
    jsonschema.validate(printed, load_schema(), cls=jsonschema.Draft202012Validator)


def test_junit_validates_against_the_xsd_and_maps_statuses(store: Store, sample_run: Run) -> None:
    data = render(store, sample_run.id, "junit")
    xmlschema.XMLSchema(DATA / "junit-10.xsd").validate(io.BytesIO(data))
    xml = JUnitXml.fromstring(data)
    kinds: dict[str, list[str]] = {"failure": [], "error": [], "skipped": [], "pass": []}
    for suite in xml:
        for case in suite:
            outcome = case.result[0] if case.result else None
            key = {Failure: "failure", Error: "error", Skipped: "skipped"}.get(type(outcome), "pass")
            kinds[key].append(outcome.type if outcome is not None else "PASS")
    assert sorted(kinds["failure"]) == ["FAIL"] * 3
    assert sorted(kinds["error"]) == ["ERROR", "UNREACHABLE"]
    assert sorted(kinds["skipped"]) == ["SKIPPED", "WAIVED"]
    assert len(kinds["pass"]) == 2
    assert int(xml.tests) == 9 and int(xml.failures) == 3 and int(xml.errors) == 2


def test_sarif_validates_and_points_at_the_inventory_line(store: Store, sample_run: Run, inventory_file: Path) -> None:
    doc = json.loads(render(store, sample_run.id, "sarif"))
    schema = json.loads((DATA / "sarif-schema-2.1.0.json").read_text())
    jsonschema.Draft4Validator(schema).validate(doc)
    results = doc["runs"][0]["results"]
    assert sorted(r["properties"]["status"] for r in results) == [
        "ERROR",
        "FAIL",
        "FAIL",
        "FAIL",
        "UNREACHABLE",
        "WAIVED",
    ]
    by_target = {(r["properties"]["target"], r["ruleId"]): r for r in results}
    web2 = by_target[("web2", "ssh.root_login_disabled")]["locations"][0]["physicalLocation"]
    assert web2["artifactLocation"]["uri"] == inventory_file.as_uri()
    assert web2["region"]["startLine"] == _line_of(inventory_file, "web2")
    assert by_target[("web2", "ssh.root_login_disabled")]["level"] == "error"  # critical
    hostile = by_target[(HOSTILE_TARGET, "ssh.root_login_disabled")]
    assert hostile["kind"] == "open" and hostile["level"] == "none"
    assert "region" not in hostile["locations"][0]["physicalLocation"]  # not in the inventory
    waived = by_target[("legacy1", "ssh.root_login_disabled")]
    assert waived["suppressions"][0]["status"] == "accepted"
    assert "OPS-123" in waived["suppressions"][0]["justification"]
    rules = doc["runs"][0]["tool"]["driver"]["rules"]
    assert all(results_rule["ruleId"] == rules[results_rule["ruleIndex"]]["id"] for results_rule in results)


def test_sarif_locations_come_from_the_run_not_from_todays_inventory(
    store: Store, sample_run: Run, inventory_file: Path
) -> None:
    """The lines recorded when the run started: an inventory edited (lines shifted), broken or
    deleted since then changes nothing (the old code re-read today's file)."""
    before = json.loads(render(store, sample_run.id, "sarif"))
    inventory_file.write_text("\n" * 20 + inventory_file.read_text())  # every entry 20 lines down
    assert json.loads(render(store, sample_run.id, "sarif"))["runs"][0]["results"] == before["runs"][0]["results"]
    inventory_file.write_text("version: 1\nhosts: {web1: {prot: 22}}\n")  # no longer valid
    assert json.loads(render(store, sample_run.id, "sarif"))["runs"][0]["results"] == before["runs"][0]["results"]
    inventory_file.unlink()
    doc = json.loads(render(store, sample_run.id, "sarif"))
    assert doc["runs"][0]["results"] == before["runs"][0]["results"]
    web2 = [r for r in doc["runs"][0]["results"] if r["properties"]["target"] == "web2"]
    assert web2 and all(r["locations"][0]["physicalLocation"]["region"]["startLine"] > 0 for r in web2)


def test_sarif_of_a_run_without_recorded_lines_has_no_region(store: Store, inventory_file: Path) -> None:
    """A run stored before itops recorded the lines: the file is named, no line is guessed from today's."""
    run = store_run(store, sample_results(), inventory=str(inventory_file))
    doc = json.loads(render(store, run.id, "sarif"))
    jsonschema.Draft4Validator(json.loads((DATA / "sarif-schema-2.1.0.json").read_text())).validate(doc)
    assert doc["runs"][0]["results"]
    for r in doc["runs"][0]["results"]:
        assert "region" not in r["locations"][0]["physicalLocation"]
        assert r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == inventory_file.as_uri()


def test_ocsf_findings_load_back_through_the_model(store: Store, sample_run: Run) -> None:
    items = json.loads(render(store, sample_run.id, "ocsf"))
    assert len(items) == 9
    findings = [DetectionFinding.model_validate(item) for item in items]
    assert {f.status_code for f in findings} == {s.value for s in Status}
    assert all(f.class_uid == 2004 and f.type_uid == 200401 for f in findings)
    waived = next(f for f in findings if f.status_code == "WAIVED")
    assert waived.status_id == 3  # Suppressed
    assert waived.unmapped["itops"]["waiver"]["approver"] == "ciso@example.com"
    critical = next(f for f in findings if f.status_code == "FAIL" and f.severity_id == 5)
    assert critical.finding_info.analytic.uid == "ssh.root_login_disabled"


def test_csv_has_one_row_per_result_and_defuses_formulas(store: Store) -> None:
    run = store_run(
        store,
        [
            result('=HYPERLINK("http://x")', "a.b_c", Status.FAIL, message="@SUM(1)"),
            result("web1", "a.b_d", Status.PASS, message="-1 is fine"),
        ],
    )
    rows = list(csv.DictReader(io.StringIO(render(store, run.id, "csv").decode("utf-8-sig"))))
    assert len(rows) == 2
    assert rows[0]["target"] == '\'=HYPERLINK("http://x")'
    assert rows[0]["message"] == "'@SUM(1)"
    assert rows[1]["message"] == "'-1 is fine"
    assert rows[1]["status"] == "PASS"


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.urls: list[str] = []
        self.meta: dict[str, str] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        a = dict(attrs)
        for key in ("src", "href", "xlink:href", "action", "srcset", "data"):
            if a.get(key):
                self.urls.append(a[key] or "")
        if tag == "meta" and a.get("http-equiv"):
            self.meta[a["http-equiv"] or ""] = a.get("content") or ""
        for key in a:
            assert not key.startswith("on"), f"event handler attribute {key} on <{tag}>"


def test_html_is_self_contained_and_escapes_everything(store: Store, sample_run: Run) -> None:
    html = render(store, sample_run.id, "html").decode()
    parser = _Tags()
    parser.feed(html)
    assert "script" not in parser.tags and "iframe" not in parser.tags and "link" not in parser.tags
    assert parser.meta["Content-Security-Policy"] == "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    assert all(u.startswith("#") for u in parser.urls), parser.urls  # only in-page links
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>" not in html and "alert(2)</script>" not in html
    assert "\\x1b[31m" in html and "\x1b" not in html and "\x00" not in html
    for section in ("summary", "trend", "frameworks", "checks", "targets", "waivers"):
        assert f'id="{section}"' in html
    assert "vendor appliance, isolated VLAN" in html and "NIST SP 800-53" in html


def test_markdown_escapes_html_and_table_syntax(store: Store, sample_run: Run) -> None:
    md = render(store, sample_run.id, "md").decode()
    outside_code = re.sub(r"(`{3,})text\n.*?\n\1", "", md, flags=re.S)
    assert "<script>" not in outside_code and "<b>" not in outside_code
    assert "&lt;script&gt;alert\\(1\\)&lt;/script&gt;" in outside_code
    assert r"\| pipe \`tick\`" in md  # a pipe cannot end the table cell early
    assert "```text\nline1 ]]>" in md  # excerpts stay verbatim inside a fence


def test_any_past_run_re_renders(store: Store, sample_run: Run) -> None:
    runs = store.list_runs()
    oldest = runs[-1]
    doc = json.loads(render(store, oldest.id[:-2], "json"))  # a unique prefix works too
    assert doc["run"]["id"] == oldest.id
    assert doc["counts"]["FAIL"] == 1


def test_renderers_redact_again_what_was_stored_unredacted(store: Store) -> None:
    leaky = Evidence(
        source="curl -u admin:s3cr3tpass@host",
        excerpt="password=abc123xyz AKIAABCDEFGHIJKLMNOP",
        observed="token: tok-998877",
        expected="",
    )
    run = store_run(store, [result("web1", "a.b_c", Status.FAIL, evidence=leaky, message="api_key=zzz-111-secret")])
    for fmt in RENDERED:
        text = render(store, run.id, fmt).decode("utf-8-sig")
        for secret in ("abc123xyz", "AKIAABCDEFGHIJKLMNOP", "tok-998877", "zzz-111-secret"):
            assert secret not in text, (fmt, secret)


def test_write_report_is_atomic_and_keeps_the_old_file_on_failure(
    store: Store, sample_run: Run, tmp_path: Path
) -> None:
    out = tmp_path / "out" / "report.html"
    assert write_report(store, "latest", "html", out) == out
    assert out.read_bytes().startswith(b"<!DOCTYPE html>")
    assert sorted(p.name for p in out.parent.iterdir()) == ["report.html"]  # no temp file left
    out.write_text("old")
    with pytest.raises(UsageError):
        write_report(store, "no-such-run", "html", out)
    assert out.read_text() == "old"
    assert sorted(p.name for p in out.parent.iterdir()) == ["report.html"]


def test_parse_report_spec() -> None:
    assert parse_report_spec("html:out/report.html") == ("html", Path("out/report.html"))
    assert parse_report_spec("JUnit:out/a:b.xml") == ("junit", Path("out/a:b.xml"))
    assert parse_report_spec("markdown:r.md") == ("md", Path("r.md"))
    for bad in ("html", "html:", ":x.html", "docx:x.docx"):
        with pytest.raises(UsageError):
            parse_report_spec(bad)
    if importlib.util.find_spec("weasyprint") is None:
        with pytest.raises(UsageError, match="weasyprint"):  # before a run, not after it
            parse_report_spec("pdf:out/report.pdf")


def test_user_templates_override_one_template(store: Store, sample_run: Run, tmp_path: Path) -> None:
    own = tmp_path / "tpl"
    own.mkdir()
    (own / "report.md.j2").write_text("custom {{ run.id }} {{ results[0].target }} {{ '<i>' }}\n")
    md = render(store, sample_run.id, "md", templates=own).decode()
    assert md == f"custom {sample_run.id} web1 &lt;i&gt;\n"  # autoescape stays on for user templates
    assert render(store, sample_run.id, "html", templates=own).startswith(b"<!DOCTYPE html>")


def test_pdf_needs_weasyprint(store: Store, sample_run: Run) -> None:
    pytest.importorskip("itops")  # keeps the test list stable
    try:
        import weasyprint  # noqa: F401
    except ImportError:
        with pytest.raises(UsageError, match="weasyprint"):
            render(store, sample_run.id, "pdf")
    else:
        assert render(store, sample_run.id, "pdf").startswith(b"%PDF")


def test_hostile_values_survive_every_format_intact_or_visibly_escaped(store: Store, sample_run: Run) -> None:
    rows = list(csv.DictReader(io.StringIO(render(store, sample_run.id, "csv").decode("utf-8-sig"))))
    hostile = next(r for r in rows if r["evidence_excerpt"].startswith("line1"))
    assert "]]>" in hostile["evidence_excerpt"] and "\\x00\\x01\\x07\\x1b[31m" in hostile["evidence_excerpt"]
    assert "\"double\" 'single'" in hostile["evidence_excerpt"]
    assert any(r["target"] == HOSTILE_TARGET for r in rows)
    # JSON formats keep the exact text (JSON escapes control characters itself).
    doc = json.loads(render(store, sample_run.id, "json"))
    assert any("\x00\x01\x07\x1b[31m" in r["evidence"]["excerpt"] for r in doc["results"])
    ocsf = json.loads(render(store, sample_run.id, "ocsf"))
    assert any(f["resources"][0]["name"] == HOSTILE_TARGET for f in ocsf)
    junit = JUnitXml.fromstring(render(store, sample_run.id, "junit"))
    assert HOSTILE_TARGET in [suite.name for suite in junit]
    failure_text = " ".join(c.result[0].text or "" for s in junit for c in s if c.result)
    assert "]]> <![CDATA[ x ]]>\\x00" in failure_text


def test_write_reports_renders_several_formats_of_one_run(store: Store, sample_run: Run, tmp_path: Path) -> None:
    specs = [parse_report_spec(f"html:{tmp_path}/r.html"), parse_report_spec(f"junit:{tmp_path}/j/junit.xml")]
    assert write_reports(store, sample_run.id, specs) == [tmp_path / "r.html", tmp_path / "j" / "junit.xml"]
    xmlschema.XMLSchema(DATA / "junit-10.xsd").validate(str(tmp_path / "j" / "junit.xml"))
    assert write_reports(store, sample_run.id, []) == []


def test_pdf_fetches_nothing_but_data_uris(store: Store, sample_run: Run, tmp_path: Path) -> None:
    pytest.importorskip("weasyprint")
    import http.server
    import threading

    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        own = tmp_path / "tpl"
        own.mkdir()
        port = server.server_address[1]
        (own / "report.html.j2").write_text(
            f'<html><head><link rel="stylesheet" href="http://127.0.0.1:{port}/x.css"></head><body>'
            f'<img src="http://127.0.0.1:{port}/x.png"><img src="file:///etc/hostname">'
            '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">{{ run.id }}</body></html>'
        )
        assert render(store, sample_run.id, "pdf", templates=own).startswith(b"%PDF")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert hits == []
