"""Issue #18 acceptance: the demo's HTML report puts "fix this first" on the first screen.

A real lab like `make demo` builds (4 sshd hosts, Debian roots: odd hosts hardened, even hosts
weak with planted criticals: an empty password, /etc/shadow 0644), audited by the `itops`
console script, the report opened in real headless Chromium at 1280x1000. Screenshots go to
$ITOPS_TEST_ARTIFACTS (when set) or the test's tmp folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from audit_helpers import run_cli_process
from browser import Chromium, chromium_path

from itops_lab import HARDENED, WEAK, Fleet, HostRoots, LabHostSpec, RootKind, start_fleet
from itops_lab.profiles import CLEAN

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(300),
    pytest.mark.skipif(chromium_path() is None, reason="chromium is not installed (install-system-deps.sh)"),
]

FIRST_SCREEN = 1000  # pixels


@pytest.fixture(scope="module")
def demo_fleet(
    tmp_path_factory: pytest.TempPathFactory, lab_roots: HostRoots, lab_root_kind: RootKind
) -> Iterator[Fleet]:
    """demo1..demo4 as `itops_lab up --hosts 4 --roots` makes them (the demo's lab)."""
    hardened = CLEAN if lab_root_kind is RootKind.DEBIAN else HARDENED
    specs = [
        LabHostSpec(f"demo{i}", root=lab_roots.create(f"demo{i}", lab_root_kind, hardened if i % 2 else WEAK))
        for i in range(1, 5)
    ]
    with start_fleet(tmp_path_factory.mktemp("demo"), specs, startup_timeout=30) as fleet:
        fleet.write_inventory()
        yield fleet


def test_first_critical_finding_is_on_the_first_screen(demo_fleet: Fleet, tmp_path: Path) -> None:
    assert demo_fleet.inventory_path is not None
    page = tmp_path / "report.html"
    audit = run_cli_process(
        "audit",
        "-i",
        str(demo_fleet.inventory_path),
        "--store",
        str(tmp_path / "store"),
        "--report",
        f"html:{page}",
        timeout=240,
    )
    assert audit.returncode == 1, audit.stderr
    artifacts = Path(os.environ.get("ITOPS_TEST_ARTIFACTS", tmp_path))
    artifacts.mkdir(parents=True, exist_ok=True)
    with Chromium(timeout=60) as browser:
        loaded = browser.open(page, width=1280, height=FIRST_SCREEN)
        assert loaded.console_errors == [] and browser.evaluate("document.scripts.length") == 0
        first = "document.querySelector('#fix-first .finding')"
        assert browser.evaluate(f"{first}.dataset.severity") == "critical"
        box = browser.evaluate(f"JSON.parse(JSON.stringify({first}.getBoundingClientRect()))")
        print(f"\nfirst critical finding: top {box['top']:.0f}px, bottom {box['bottom']:.0f}px")
        assert box["top"] >= 0 and box["bottom"] <= FIRST_SCREEN  # was about 4,900 px down
        finding = browser.evaluate(f"{first}.innerText")
        assert "demo2" in finding and "demo4" in finding  # one finding, the hosts listed
        assert finding.count("Fix:") == 1
        browser.screenshot(artifacts / "report-first-screen.png")
        # evidence collapsed (no JavaScript needed to open it), one headline score
        assert browser.evaluate("document.querySelectorAll('details.ev').length") > 0
        assert browser.evaluate("document.querySelectorAll('details.ev[open]').length") == 0
        assert browser.evaluate("document.querySelectorAll('.headline .big').length") == 1
        # findings before the framework tables, whose control rows carry titles
        tops = browser.evaluate(
            "['fix-first', 'checks', 'frameworks'].map(id => document.getElementById(id).getBoundingClientRect().top)"
        )
        assert tops == sorted(tops)
        untitled = "[...document.querySelectorAll('#frameworks .ctitle')].filter(e => !e.textContent.trim()).length"
        assert browser.evaluate("document.querySelectorAll('#frameworks .ctitle').length") > 50
        assert browser.evaluate(untitled) == 0
    # the terminal: the same critical finding once, with both hosts and its fix once
    table = run_cli_process("runs", "show", "latest", "--store", str(tmp_path / "store")).stdout
    lines = [ln for ln in table.splitlines() if "accounts.shadow_no_empty_passwords" in ln]
    assert len(lines) == 1 and "on 2 targets (demo2, demo4)" in lines[0]
    assert table.count("fix: Lock the account") == 1
