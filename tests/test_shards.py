"""`audit --shard I/N` + `runs merge`: the shards of a real audit (this machine, --local) combine into the
same results as the unsharded audit; shards that do not belong together are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from audit_helpers import run_audit, write_yaml
from click.testing import CliRunner

from itops.cli.main import cli
from itops.store import Store
from itops.targets import apply_shard, parse_shard, select_targets, shard_of

CHECKS = "files.*_permissions"
HOSTS = [f"node{i:02d}" for i in range(1, 9)]


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    return write_yaml(tmp_path / "inv.yaml", {"version": 1, "hosts": {h: {"address": "127.0.0.1"} for h in HOSTS}})


def _audit(inv: Path, store: Path, *extra: str) -> dict:
    code, doc, err = run_audit("-i", str(inv), "--local", "--checks", CHECKS, "--store", str(store), *extra)
    assert code in (0, 1, 3), err
    return doc


def _keys(results: list) -> set[tuple[str, str, str, str]]:
    def key(r):
        return (
            (r["check_id"], r["target"], r["resource"], r["status"])
            if isinstance(r, dict)
            else (r.check_id, r.target, r.resource, r.status.value)
        )

    return {key(r) for r in results}


def test_shards_merge_into_the_unsharded_results(inventory: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    whole = _audit(inventory, store)
    one = _audit(inventory, store, "--shard", "1/2")
    two = _audit(inventory, store, "--shard", "2/2")
    targets_one, targets_two = {r["target"] for r in one["results"]}, {r["target"] for r in two["results"]}
    assert targets_one and targets_two and not targets_one & targets_two
    assert targets_one | targets_two == set(HOSTS)
    assert one["run"]["shard"] == "1/2" and two["run"]["shard"] == "2/2"

    res = CliRunner().invoke(
        cli, ["runs", "merge", two["run"]["id"], one["run"]["id"], "--store", str(store), "--format", "json"]
    )
    assert res.exit_code == 0, res.output
    merged = json.loads(res.stdout)
    assert merged["merged_from"] == [one["run"]["id"], two["run"]["id"]]
    results = Store(store).results(merged["id"])
    assert _keys(results) == _keys(whole["results"])
    assert len(results) == len(whole["results"])
    assert merged["counts"] == whole["run"]["counts"] and merged["state"] == "complete"
    # the merged run is a stored run like any other: it verifies, reports and diffs
    assert CliRunner().invoke(cli, ["runs", "verify", merged["id"], "--store", str(store)]).exit_code == 0
    diff = CliRunner().invoke(cli, ["diff", whole["run"]["id"], merged["id"], "--store", str(store)])
    assert diff.exit_code == 0, diff.output


def test_inconsistent_shards_are_refused(inventory: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    one = _audit(inventory, store, "--shard", "1/2")["run"]["id"]
    again = _audit(inventory, store, "--shard", "1/2")["run"]["id"]
    of_three = _audit(inventory, store, "--shard", "2/3")["run"]["id"]
    whole = _audit(inventory, store)["run"]["id"]
    other_checks = run_audit(
        "-i", str(inventory), "--local", "--checks", "files.passwd_permissions", "--store", str(store), "--shard", "2/2"
    )[1]["run"]["id"]
    cases = {
        (one, again): "shard 1/2 is given twice",
        (one, of_three): "shards of different splits cannot merge",
        (one, whole): "is not a shard",
        (one,): "at least two shard runs",
        (one, other_checks): "shards of different selections cannot merge",
    }
    for ids, message in cases.items():
        res = CliRunner().invoke(cli, ["runs", "merge", *ids, "--store", str(store)])
        assert res.exit_code == 2 and message in res.stderr, (ids, res.output)
    first_of_three = _audit(inventory, store, "--shard", "1/3")["run"]["id"]
    missing = CliRunner().invoke(cli, ["runs", "merge", of_three, first_of_three, "--store", str(store)])
    assert missing.exit_code == 2 and "shard 3/3 missing" in missing.stderr
    assert not any(r.merged_from for r in Store(store).list_runs())  # nothing stored by a refused merge


def test_shard_assignment_is_stable_and_partitions(tmp_path: Path) -> None:
    from itops.inventory import load_inventory

    inv = load_inventory(
        write_yaml(tmp_path / "i.yaml", {"version": 1, "hosts": {h: {"address": "10.0.0.1"} for h in HOSTS}})
    )
    selection = select_targets(inv, [])
    parts = [apply_shard(selection, i, 3).hosts for i in (1, 2, 3)]
    assert sorted(h.name for part in parts for h in part) == sorted(HOSTS)
    assert all(shard_of(h.name, 3) == i + 1 for i, part in enumerate(parts) for h in part)
    assert shard_of("node01", 5) == shard_of("node01", 5)
    # stable across processes (another machine's shard run): not Python's per-process salted hash()
    import subprocess
    import sys

    code = "from itops.targets import shard_of; print([shard_of(f'node{i:02d}', 5) for i in range(1, 9)])"
    other = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert other.stdout.strip() == str([shard_of(f"node{i:02d}", 5) for i in range(1, 9)])
    for bad in ("0/2", "3/2", "1/0", "a/b", "1-2"):
        with pytest.raises(Exception, match="expected I/N"):
            parse_shard(bad)


def test_shards_from_separate_stores_import_verify_and_merge(inventory: Path, tmp_path: Path) -> None:
    """Two machines, two stores: each shard run is imported (verified with its store's public key) into a
    third store and merged there."""
    whole = _audit(inventory, tmp_path / "whole")
    shard_ids = []
    for i in (1, 2):
        shard_ids.append(_audit(inventory, tmp_path / f"site{i}", "--shard", f"{i}/2")["run"]["id"])
    central = tmp_path / "central"
    for i, run_id in enumerate(shard_ids, start=1):
        site = tmp_path / f"site{i}"
        res = CliRunner().invoke(
            cli,
            [
                "runs",
                "import",
                str(site / "runs" / run_id),
                "--store",
                str(central),
                "--pubkey",
                str(site / "keys" / "signing.pub"),
            ],
        )
        assert res.exit_code == 0 and f"imported {run_id} (audit, shard {i}/2)" in res.stdout, res.output
        verified = CliRunner().invoke(
            cli,
            [
                "runs",
                "verify",
                run_id,
                "--store",
                str(central),
                "--pubkey",
                str(tmp_path / f"site{i}" / "keys" / "signing.pub"),
            ],
        )
        assert verified.exit_code == 0, verified.output  # history rows rebuilt exactly as the file's lines
    res = CliRunner().invoke(cli, ["runs", "merge", *shard_ids, "--store", str(central), "--format", "json"])
    assert res.exit_code == 0, res.output
    assert _keys(Store(central).results(json.loads(res.stdout)["id"])) == _keys(whole["results"])
    # a tampered run is refused at import, and leaves nothing behind
    bad = tmp_path / "site1" / "runs" / shard_ids[0] / "results.jsonl"
    bad.write_text(bad.read_text().replace('"status":"PASS"', '"status":"FAIL"', 1))
    other = tmp_path / "other"
    res = CliRunner().invoke(
        cli,
        [
            "runs",
            "import",
            str(bad.parent),
            "--store",
            str(other),
            "--pubkey",
            str(tmp_path / "site1" / "keys" / "signing.pub"),
        ],
    )
    assert res.exit_code == 1 and "does not verify, not imported" in res.stderr
    assert Store(other).list_runs() == [] and not (other / "runs" / shard_ids[0]).exists()
