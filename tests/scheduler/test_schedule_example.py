"""The shipped inventory/schedule.example.yaml is the one docs/scheduling.md shows, and it validates."""

from __future__ import annotations

from pathlib import Path

from itops.scheduler import load_schedule
from itops.scheduler.config import COMMANDS

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "inventory" / "schedule.example.yaml"


def test_the_docs_show_the_shipped_example():
    doc = (ROOT / "docs" / "scheduling.md").read_text()
    start = doc.index("## schedule.yaml\n\n```yaml\n") + len("## schedule.yaml\n\n```yaml\n")
    assert doc[start : doc.index("```\n", start)] == EXAMPLE.read_text()


def test_the_shipped_example_validates_with_every_command():
    schedule = load_schedule(EXAMPLE)  # raises ConfigError (every problem) when it does not
    assert {job.command for job in schedule.jobs.values()} == set(COMMANDS)
    assert schedule.jobs["weekly-audit"].inventory == (ROOT / "inventory" / "example.yaml")
    assert schedule.jobs["monthly-drill"].playbook.resolve() == ROOT / "playbooks" / "file-restore-checksums.yaml"
    assert schedule.jobs["retention"].options.older_than == 90 * 86400
