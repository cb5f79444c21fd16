"""Reports name each framework reference's catalogue and version (issue 15.6): HTML, MD, JSON, SARIF, OCSF, CSV."""

from __future__ import annotations

import json

import jsonschema
from report_helpers import DATA

from itops.model import Run
from itops.report import render
from itops.report.jsondoc import load_schema
from itops.store import Store

LABEL = "cis-debian-12 v1.1.0: 5.1.20"  # FW_SSH of the sample run


def test_sarif_tags_and_ocsf_types_carry_catalogue_and_version(store: Store, sample_run: Run) -> None:
    doc = json.loads(render(store, sample_run.id, "sarif"))
    jsonschema.Draft4Validator(json.loads((DATA / "sarif-schema-2.1.0.json").read_text())).validate(doc)
    rule = next(r for r in doc["runs"][0]["tool"]["driver"]["rules"] if r["id"] == "ssh.root_login_disabled")
    assert LABEL in rule["properties"]["tags"]
    assert "nist-800-53 Rev. 5: AC-6(2)" in rule["properties"]["tags"]
    assert rule["properties"]["catalogues"]["cis-debian-12"] == {
        "title": "CIS Debian Linux 12 Benchmark",
        "version": "v1.1.0",
    }
    ocsf = json.loads(render(store, sample_run.id, "ocsf"))
    finding = next(f for f in ocsf if f["finding_info"]["analytic"]["uid"] == "ssh.root_login_disabled")
    assert LABEL in finding["finding_info"]["types"]
    assert finding["unmapped"]["itops"]["catalogues"]["cis-debian-12"]["version"] == "v1.1.0"


def test_json_document_lists_the_catalogues_it_references(store: Store, sample_run: Run) -> None:
    doc = json.loads(render(store, sample_run.id, "json"))
    jsonschema.Draft202012Validator(load_schema()["properties"]["catalogues"]).validate(doc["catalogues"])
    assert doc["catalogues"]["cis-debian-12"] == {"title": "CIS Debian Linux 12 Benchmark", "version": "v1.1.0"}
    assert doc["catalogues"]["iso-27001"]["version"] == "2022"


def test_html_md_and_csv_show_catalogue_and_version(store: Store, sample_run: Run) -> None:
    html = render(store, sample_run.id, "html").decode()
    assert "CIS Debian Linux 12 Benchmark v1.1.0" in html  # the framework section heading
    assert LABEL in html  # a check's references
    md = render(store, sample_run.id, "md").decode()
    assert "### CIS Debian Linux 12 Benchmark v1.1.0" in md
    assert "cis-debian-12 v1.1.0:5.1.20" in render(store, sample_run.id, "csv").decode("utf-8-sig")
