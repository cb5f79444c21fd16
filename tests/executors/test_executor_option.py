"""``--executor`` parsing, batch sizes and the payload sent to workers (pure logic, no cluster)."""

from __future__ import annotations

import pickle

import pytest
from audit_helpers import write_yaml
from click.testing import CliRunner

from itops.cli.main import cli
from itops.errors import UsageError
from itops.executors import ExecutorSpec, parse_executor
from itops.executors.dask import MAX_BATCH, batch_size
from itops.executors.work import AuditBatch
from itops.inventory import load_inventory


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("threads", ExecutorSpec("threads")),
        ("dask", ExecutorSpec("dask")),
        ("dask://10.0.0.5:8786", ExecutorSpec("dask", "tcp://10.0.0.5:8786")),
        ("tcp://sched.example:8786", ExecutorSpec("dask", "tcp://sched.example:8786")),
        ("tls://sched.example:8786", ExecutorSpec("dask", "tls://sched.example:8786")),
    ],
)
def test_executor_values(text, spec):
    assert parse_executor(text) == spec


@pytest.mark.parametrize(
    "text", ["processes", "dask://", "dask://host", "dask://host:0", "tcp://host:99999", "http://h:1"]
)
def test_bad_executor_values_are_usage_errors(text):
    with pytest.raises(UsageError, match="expected threads, dask"):
        parse_executor(text)


def test_bad_executor_on_the_command_line_exits_2(tmp_path):
    res = CliRunner().invoke(cli, ["audit", str(tmp_path / "inv.yaml"), "--executor", "dask:/x"])
    assert res.exit_code == 2 and "--executor" in res.stderr


def test_dask_with_local_or_tofu_is_refused_before_anything_runs(tmp_path):
    inv = write_yaml(tmp_path / "inv.yaml", {"version": 1, "hosts": {"h1": {"address": "127.0.0.1"}}})
    for extra in (["--local"], ["--trust-on-first-use", str(tmp_path / "tofu")]):
        res = CliRunner().invoke(cli, ["audit", str(inv), "--executor", "dask", "--store", str(tmp_path / "s"), *extra])
        assert res.exit_code == 2, res.output
        assert "cannot be combined with" in res.stderr
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(("hosts", "slots", "size"), [(1, 4, 1), (8, 4, 1), (100, 4, 13), (10_000, 4, MAX_BATCH)])
def test_batches_are_about_two_per_worker_thread_and_bounded(hosts, slots, size):
    assert batch_size(hosts, slots) == size


def test_the_payload_pickles_and_carries_no_secret_value(tmp_path, monkeypatch):
    monkeypatch.setenv("LAB_PW", "hunter2-secret-value")
    inv = load_inventory(
        write_yaml(
            tmp_path / "inv.yaml",
            {
                "version": 1,
                "defaults": {"ssh": {"password_env": "LAB_PW"}},
                "hosts": {"h1": {"address": "127.0.0.1", "vars": {"max_auth_tries": 4, "nested": {"a": [1, 2]}}}},
            },
        )
    )
    batch = AuditBatch("run1", ("h1",), dict(inv.hosts), ("ssh.root_login_disabled",), (str(tmp_path),), 4)
    data = pickle.dumps(batch)
    assert b"hunter2" not in data and b"LAB_PW" in data  # the variable's name travels, never its value
    back = pickle.loads(data)
    assert back.hosts["h1"].vars["nested"] == {"a": [1, 2]} and back.hosts["h1"].ssh.password_env == "LAB_PW"
