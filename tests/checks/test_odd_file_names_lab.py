"""File names holding newlines, tabs and escape sequences on a real lab host (Debian root, real sshd).

Any user can create such names in their home or /tmp. Before NUL-ended stat records, one of them
split a record in two and the whole check became ERROR; now the odd file is judged like the others,
and the terminal summary shows its control characters as visible escapes.
"""

from __future__ import annotations

import os

import pytest
from audit_helpers import by_target, run_audit

from itops_lab import LabHostSpec, RootKind
from itops_lab.plant import plant

pytestmark = pytest.mark.integration

NEWLINE = "/root/.evil\nrc"
ESCAPE = "/root/.esc\x1b[2Jcleared"


@pytest.mark.timeout(300)
def test_odd_names_in_a_home_are_judged_not_an_error(fleet_factory, lab_host_roots, tmp_path):
    if os.environ.get("ITOPS_LAB_ROOT_KIND", RootKind.DEBIAN.value) != RootKind.DEBIAN.value:
        pytest.skip("NUL-ended stat records need GNU stat (the Debian root)")
    root = lab_host_roots.create("odd1", RootKind.DEBIAN)
    plant(root, NEWLINE, "", mode=0o666)  # world-writable: FAIL
    plant(root, ESCAPE, "", mode=0o666)  # world-writable: FAIL
    plant(root, "/root/.tab\tand space", "", mode=0o600)  # fine
    fleet = fleet_factory([LabHostSpec("odd1", root=root)])
    args = ["-i", str(fleet.inventory_path), "--checks", "accounts.user_dotfiles_safe", "--store", str(tmp_path / "s")]
    code, doc, _ = run_audit(*args)
    results = [r for r in doc["results"] if r["check_id"] == "accounts.user_dotfiles_safe"]
    assert sorted((r["status"], r["resource"]) for r in results) == [("FAIL", ESCAPE), ("FAIL", NEWLINE)], results
    assert code == 1
    assert by_target(doc, "accounts.user_dotfiles_safe")["odd1"]["status"] == "FAIL"

    from click.testing import CliRunner

    from itops.cli.main import cli

    text = CliRunner().invoke(cli, ["audit", *args]).stdout
    fails = [line for line in text.splitlines() if line.lstrip().startswith("FAIL") and "user_dotfiles_safe" in line]
    assert len(fails) == 2, text  # one line each: the newline did not break the line
    assert "\x1b" not in text and "\\x1b[2Jcleared" in text
    assert "/root/.evil\\x0arc" in text  # the newline shown as the reports show it
