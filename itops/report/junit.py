"""JUnit XML for CI systems (built with junitparser): one test suite per target.

FAIL is a ``<failure>``, ERROR and UNREACHABLE an ``<error>`` (the check could not be
evaluated), SKIPPED and WAIVED ``<skipped>`` (with the waiver in the message). Each
test case is named by the check id (and resource), with the target as class name.
Control characters, which XML 1.0 cannot carry, show as ``\\xNN``.
"""

from __future__ import annotations

import io
from collections import defaultdict
from pathlib import Path

from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

from itops.model import Result, Status
from itops.report.data import ReportData, printable
from itops.report.jsondoc import iso_utc


def _details(r: Result) -> str:
    ev = r.evidence
    lines = [f"{r.check_id} on {r.target}" + (f" ({r.resource})" if r.resource else "") + f": {r.message}"]
    for label, value in (
        ("severity", r.severity.value),
        ("command", ev.source),
        ("expected", ev.expected),
        ("observed", ev.observed),
        ("remediation", r.remediation),
    ):
        if value:
            lines.append(f"{label}: {value}")
    if ev.excerpt:
        lines += ["output:", ev.excerpt]
    return printable("\n".join(lines))


def _case(r: Result) -> TestCase:
    name = r.check_id + (f" [{r.resource}]" if r.resource else "")
    case = TestCase(printable(name), classname=printable(r.target), time=round(r.duration, 3))
    message = printable(f"[{r.severity.value}] {r.message}")
    if r.status is Status.FAIL:
        case.result = [Failure(message, type_="FAIL")]
        case.result[0].text = _details(r)
    elif r.status in (Status.ERROR, Status.UNREACHABLE):
        case.result = [Error(message, type_=r.status.value)]
        case.result[0].text = _details(r)
    elif r.status is Status.WAIVED:
        w = r.waiver
        why = f"waived until {w.expires} by {w.approver}: {w.justification}" if w else "waived"
        case.result = [Skipped(printable(f"{why} ({r.message})"), type_="WAIVED")]
    elif r.status is Status.SKIPPED:
        case.result = [Skipped(message, type_="SKIPPED")]
    elif r.evidence.observed or r.evidence.excerpt:
        case.system_out = _details(r)
    return case


def render_junit(data: ReportData, templates: Path | None = None) -> bytes:
    by_target: dict[str, list[Result]] = defaultdict(list)
    for r in data.results:
        by_target[r.target].append(r)
    xml = JUnitXml(name=printable(f"itops {data.run.kind} {data.run.id}"))
    for target, results in by_target.items():
        suite = TestSuite(printable(target))
        suite.timestamp = iso_utc(min((r.started for r in results if r.started), default=data.run.started)) or ""
        suite.hostname = printable(target)
        suite.add_testcases([_case(r) for r in results])
        suite.update_statistics()  # type: ignore[no-untyped-call, unused-ignore]
        xml.add_testsuite(suite)
    # Totals set by hand: JUnitXml.update_statistics() also writes a `skipped` attribute on
    # <testsuites>, which the Jenkins/Surefire schema (junit-10.xsd) does not allow there.
    suites = list(xml)
    xml.tests = sum(int(s.tests or 0) for s in suites)
    xml.failures = sum(int(s.failures or 0) for s in suites)
    xml.errors = sum(int(s.errors or 0) for s in suites)
    xml.time = round(sum(float(s.time or 0) for s in suites), 3)
    out = io.BytesIO()
    xml.write(out)
    return out.getvalue()
