"""``itops report`` through Click, as a user types it."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from itops.cli.main import cli
from itops.model import Run
from itops.store import Store


def test_report_to_stdout_and_to_a_file(store: Store, sample_run: Run, tmp_path: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(cli, ["report", "latest", "--format", "json", "--store", str(store.root)])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["run"]["id"] == sample_run.id
    target = tmp_path / "reports" / "r.xml"
    out = runner.invoke(cli, ["report", sample_run.id, "-f", "junit", "-o", str(target), "--store", str(store.root)])
    assert out.exit_code == 0, out.output
    assert target.read_bytes().startswith(b"<?xml")
    assert "wrote junit report" in out.stderr


def test_report_errors_are_usage_errors(store: Store, sample_run: Run, tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(cli, ["report", "no-such-run", "--store", str(store.root)])
    assert missing.exit_code == 2 and "no run 'no-such-run'" in missing.output
    empty = runner.invoke(cli, ["report", "latest", "--store", str(tmp_path / "empty")])
    assert empty.exit_code == 2 and "no runs stored yet" in empty.output
    bad_format = runner.invoke(cli, ["report", "latest", "-f", "docx", "--store", str(store.root)])
    assert bad_format.exit_code == 2
    try:
        import weasyprint  # noqa: F401
    except ImportError:
        pdf = runner.invoke(
            cli, ["report", "latest", "-f", "pdf", "-o", str(tmp_path / "r.pdf"), "--store", str(store.root)]
        )
        assert pdf.exit_code == 2 and "not installed" in pdf.output
        assert not (tmp_path / "r.pdf").exists()
