"""What a run keeps beside its results is redacted too: a drill's step log, a scheduled job's stderr (issue 12)."""

from __future__ import annotations

import textwrap
import time

from click.testing import CliRunner

from itops.cli.main import cli
from itops.scheduler.jobs import JobHistory, JobOutcome


def test_drill_step_outputs_reach_no_store_file_nor_the_terminal(tmp_path):
    pb = tmp_path / "pb.yaml"
    pb.write_text(
        textwrap.dedent("""\
        name: leaky-drill
        description: a step that prints secrets and fails
        systems: [x]
        rto: 5m
        rpo: 1h
        owner: tests
        steps:
          - name: leak
            local: "echo 'DB_PASSWORD=CnryDrillOut1'; echo 'api_token: CnryDrillErr2' >&2; exit 1"
    """)
    )
    store = tmp_path / "store"
    result = CliRunner().invoke(cli, ["dr", "drill", str(pb), "--store", str(store)])
    assert result.exit_code == 1, result.output
    assert "leak" in result.stdout and "[REDACTED]" in result.stdout + result.stderr
    blobs = {str(p): p.read_bytes() for p in store.rglob("*") if p.is_file()}
    assert any(name.endswith("drill.json") for name in blobs)
    for secret in ("CnryDrillOut1", "CnryDrillErr2"):
        assert secret not in result.stdout and secret not in result.stderr
        for name, data in blobs.items():
            assert secret.encode() not in data, (secret, name)


def test_job_history_keeps_stderr_and_error_redacted(tmp_path):
    history = JobHistory(tmp_path / "jobs.db")
    outcome = history.begin(JobOutcome(job="nightly", started=time.time()))
    outcome.stderr = "connecting with --password=CnryJob1\n"
    outcome.error = "exit 3: Authorization: Bearer CnryJob2xyz"
    outcome.state, outcome.finished = "failed", time.time()
    history.update(outcome)
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert b"CnryJob1" not in data and b"CnryJob2xyz" not in data
    (row,) = history.rows("nightly")
    assert "--password=[REDACTED]" in row.stderr and "Bearer [REDACTED]" in row.error
