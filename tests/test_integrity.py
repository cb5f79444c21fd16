"""Tamper-evident runs: every way of changing a stored run after the fact is caught by `runs verify`.

The runs are real audits of this machine (``--local``) written by the real store; the tampering is
done to the files as an attacker with write access to the store (but not the signing key) would.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
from audit_helpers import run_audit, write_yaml
from click.testing import CliRunner, Result

from itops import integrity
from itops.cli.main import cli
from itops.store import Store

CHECKS = "files.*_permissions"


def _audit(tmp_path: Path, store: Path, hosts: int = 3) -> str:
    tmp_path.mkdir(parents=True, exist_ok=True)
    inv = write_yaml(
        tmp_path / "inv.yaml",
        {"version": 1, "hosts": {f"here{i}": {"address": "127.0.0.1"} for i in range(1, hosts + 1)}},
    )
    code, doc, err = run_audit(
        "-i", str(inv), "--local", "--checks", CHECKS, "--store", str(store), "--concurrency", "1"
    )
    assert code in (0, 1, 3), err
    assert len(doc["results"]) >= 3 * hosts
    return str(doc["run"]["id"])


@pytest.fixture
def stored(tmp_path: Path) -> tuple[Path, str, Path]:
    """(store, run id, the run's folder) of a finished three-host audit."""
    store = tmp_path / "store"
    run_id = _audit(tmp_path, store)
    return store, run_id, store / "runs" / run_id


def _verify(store: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["runs", "verify", *args, "--store", str(store)])


def _lines(folder: Path) -> list[str]:
    return (folder / "results.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)


def _write(folder: Path, lines: list[str]) -> None:
    (folder / "results.jsonl").write_text("".join(lines), encoding="utf-8")


def test_an_untouched_run_verifies_with_only_the_public_key(stored, tmp_path: Path) -> None:
    store, run_id, folder = stored
    # The auditor gets the run folder and the public key, not the store's private key.
    pub = tmp_path / "auditor.pub"
    shutil.copy(store / "keys" / "signing.pub", pub)
    (store / "keys" / "signing.key").unlink()
    res = _verify(store, run_id, "--pubkey", str(pub))
    assert res.exit_code == 0, res.output
    assert "verified" in res.stdout and "sealed, manifest sha256:" in res.stdout
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["run_id"] == run_id and manifest["lines"] == len(_lines(folder))
    assert manifest["check_ids"] and all(c.startswith("files.") for c in manifest["check_ids"])
    assert manifest["counts"] == Store(store).get_run(run_id).counts
    for name in ("results.jsonl", "manifest.json", "manifest.sig", "checkpoints.jsonl"):
        assert (folder / name).exists()
    assert oct((store / "keys" / "signing.pub").stat().st_mode & 0o777) == oct(0o600)


def test_one_edited_byte_is_named_by_its_line(stored) -> None:
    store, run_id, folder = stored
    lines = _lines(folder)
    at = lines[4].index('"message":"') + len('"message":"')
    lines[4] = lines[4][:at] + ("#" if lines[4][at] != "#" else "%") + lines[4][at + 1 :]
    assert lines[4] != _lines(folder)[4]
    _write(folder, lines)
    res = _verify(store, run_id)
    assert res.exit_code == 1
    assert "FAILED" in res.stdout and "line 5: chain mismatch" in res.stdout


def test_a_flipped_status_is_caught(stored) -> None:
    store, run_id, folder = stored
    lines = _lines(folder)
    index = next(i for i, line in enumerate(lines) if '"status":"FAIL"' in line or '"status":"PASS"' in line)
    lines[index] = (
        lines[index].replace('"status":"FAIL"', '"status":"PASS"', 1)
        if '"status":"FAIL"' in lines[index]
        else lines[index].replace('"status":"PASS"', '"status":"FAIL"', 1)
    )
    _write(folder, lines)
    res = _verify(store, run_id)
    assert res.exit_code == 1 and f"line {index + 1}: chain mismatch" in res.stdout


def test_a_deleted_line_is_caught(stored) -> None:
    store, run_id, folder = stored
    lines = _lines(folder)
    del lines[2]
    _write(folder, lines)
    res = _verify(store, run_id)
    assert res.exit_code == 1 and "line 3: chain mismatch" in res.stdout


def test_a_deleted_last_line_is_caught(stored) -> None:
    store, run_id, folder = stored
    lines = _lines(folder)
    _write(folder, lines[:-1])
    res = _verify(store, run_id)
    assert res.exit_code == 1 and f"line {len(lines)}: removed" in res.stdout


def test_reordered_lines_are_caught(stored) -> None:
    store, run_id, folder = stored
    lines = _lines(folder)
    lines[1], lines[2] = lines[2], lines[1]
    _write(folder, lines)
    res = _verify(store, run_id)
    assert res.exit_code == 1 and "line 2: chain mismatch" in res.stdout


def test_an_appended_forged_line_is_caught_even_with_a_correct_chain_value(stored) -> None:
    store, run_id, folder = stored
    lines = _lines(folder)
    head = integrity.split_chained(lines[-1].rstrip("\n"))
    assert head is not None
    body = integrity.split_chained(lines[0].rstrip("\n"))[0].replace('"target":"here', '"target":"forged', 1)
    forged, _ = integrity.chained_line(head[1], body)
    _write(folder, [*lines, forged + "\n"])
    res = _verify(store, run_id)
    assert res.exit_code == 1 and f"line {len(lines) + 1}: appended after the run was sealed" in res.stdout


def test_a_recomputed_chain_is_caught_by_the_signed_head(stored) -> None:
    """An attacker who rewrites a line and recomputes every chain value after it still cannot sign."""
    store, run_id, folder = stored
    bodies = [integrity.split_chained(line.rstrip("\n"))[0] for line in _lines(folder)]
    bodies[-1] = bodies[-1].replace('"status":"FAIL"', '"status":"PASS"').replace('"message":"', '"message":"ok ', 1)
    head = integrity.genesis(run_id)
    rewritten = []
    for body in bodies:
        line, head = integrity.chained_line(head, body)
        rewritten.append(line + "\n")
    _write(folder, rewritten)
    res = _verify(store, run_id)
    assert res.exit_code == 1
    # the last batch (one host's lines) is where the change is: a recomputed chain hides the exact line
    assert re.search(rf"lines \d+-{len(bodies)}: changed", res.stdout), res.stdout


def test_a_swapped_manifest_is_caught(stored, tmp_path: Path) -> None:
    store, run_id, folder = stored
    other = _audit(tmp_path / "second", store, hosts=1)
    shutil.copy(store / "runs" / other / "manifest.json", folder / "manifest.json")
    shutil.copy(store / "runs" / other / "manifest.sig", folder / "manifest.sig")
    assert _verify(store, other).exit_code == 0
    res = _verify(store, run_id)
    assert res.exit_code == 1 and "manifest belongs to run" in res.stdout


def test_an_edited_manifest_is_caught(stored) -> None:
    store, run_id, folder = stored
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["counts"]["FAIL"] = 0
    (folder / "manifest.json").write_text(json.dumps(manifest))
    res = _verify(store, run_id)
    assert res.exit_code == 1 and "manifest signature does not verify" in res.stdout


def test_a_run_signed_by_another_key_fails_against_the_pinned_key(stored, tmp_path: Path) -> None:
    store, _run_id, _folder = stored
    pinned = tmp_path / "pinned.pub"
    shutil.copy(store / "keys" / "signing.pub", pinned)
    # The attacker replaces the store's key pair and re-runs: the store's own key now "verifies" it,
    # the auditor's pinned key does not.
    shutil.rmtree(store / "keys")
    forged = _audit(tmp_path / "again", store, hosts=1)
    assert _verify(store, forged).exit_code == 0
    res = _verify(store, forged, "--pubkey", str(pinned))
    assert res.exit_code == 1 and "signed by another key" in res.stdout


def test_history_db_edits_are_caught(stored) -> None:
    store, run_id, _folder = stored
    with sqlite3.connect(store / "history.db") as db:
        db.execute("UPDATE results SET status = 'PASS' || status WHERE run_id = ? AND seq = 1", (run_id,))
    res = _verify(store, run_id)
    assert res.exit_code == 1 and "history.db row 2 differs" in res.stdout


def test_a_store_from_before_verifies_its_whole_line_rows(stored) -> None:
    """Stores written before 2026-12-07 kept each result's whole line in results.data: such rows are
    still compared line for line (and a store with that column still takes new runs)."""
    store, run_id, folder = stored
    bodies = [integrity.split_chained(line.rstrip("\n"))[0] for line in _lines(folder)]  # type: ignore[index]
    with sqlite3.connect(store / "history.db") as db:
        db.execute("ALTER TABLE results ADD COLUMN data TEXT NOT NULL DEFAULT ''")
        for seq, body in enumerate(bodies):
            db.execute("UPDATE results SET data = ? WHERE run_id = ? AND seq = ?", (body, run_id, seq))
    assert _verify(store, run_id).exit_code == 0
    with sqlite3.connect(store / "history.db") as db:
        db.execute(
            'UPDATE results SET data = replace(data, \'"status":"\', \'"status":"x\') WHERE run_id = ? AND seq = 1',
            (run_id,),
        )
    res = _verify(store, run_id)
    assert res.exit_code == 1 and "history.db row 2 differs" in res.stdout
    newer = _audit(folder.parent.parent.parent / "newer", store, hosts=1)  # rows with an empty data column
    assert _verify(store, newer).exit_code == 0


def test_a_killed_run_verifies_up_to_its_last_signed_line(tmp_path: Path) -> None:
    """A run that died before finishing has no manifest; its signed checkpoints still vouch for it."""
    from itops.model import Evidence, Result, Run, Severity, Status

    store = Store(tmp_path / "store")
    run = Run(id="20261206T000000Z-abcdef", kind="audit", started=1.0)
    writer = store.begin(run)
    for batch in range(3):
        writer.add_many(
            [
                Result(run.id, f"test.c{i}", f"h{batch}", Status.PASS, Severity.LOW, "ok", evidence=Evidence())
                for i in range(2)
            ]
        )
    writer._jsonl.write('{"run_id":"torn')  # the kill tore the next write
    writer._jsonl.flush()
    res = _verify(tmp_path / "store", run.id)
    assert res.exit_code == 0, res.output
    assert "not sealed" in res.stdout and "verified up to line 6" in res.stdout and "line 7 is incomplete" in res.stdout
    # A complete line after the last checkpoint is not vouched for by any signature.
    folder = tmp_path / "store" / "runs" / run.id
    kept = _lines(folder)[:6]
    extra, _ = integrity.chained_line(integrity.split_chained(kept[-1].rstrip("\n"))[1], '{"run_id":"x"}')
    _write(folder, [*kept, extra + "\n"])
    res = _verify(tmp_path / "store", run.id)
    assert res.exit_code == 1 and "line 7: not covered by any signature" in res.stdout


def test_verify_all_and_a_key_readable_by_others_is_refused(stored, tmp_path: Path) -> None:
    store, _run_id, _folder = stored
    _audit(tmp_path / "b", store, hosts=1)
    res = _verify(store, "--all", "--format", "json")
    assert res.exit_code == 0 and len(json.loads(res.stdout)) == 2
    key = tmp_path / "loose.key"
    shutil.copy(store / "keys" / "signing.key", key)
    os.chmod(key, 0o644)
    inv = write_yaml(tmp_path / "inv2.yaml", {"version": 1, "hosts": {"h": {"address": "127.0.0.1"}}})
    res = CliRunner().invoke(
        cli, ["audit", "-i", str(inv), "--local", "--checks", CHECKS, "--store", str(store), "--signing-key", str(key)]
    )
    assert res.exit_code == 2 and "chmod 600" in res.stderr


def test_reports_show_the_manifest_digest_and_whether_the_run_verified(stored, tmp_path: Path) -> None:
    store, run_id, folder = stored
    digest = integrity.digest(json.loads((folder / "manifest.json").read_text()))

    def report(fmt: str) -> str:
        out = tmp_path / f"r.{fmt}"
        res = CliRunner().invoke(cli, ["report", run_id, "--format", fmt, "-o", str(out), "--store", str(store)])
        assert res.exit_code == 0, res.output
        return out.read_text()

    assert f"verified (manifest {digest})" in report("md")
    assert json.loads(report("json"))["integrity"] == {
        "verified": True,
        "manifest_digest": digest,
        "detail": f"{len(_lines(folder))} lines signed",
    }
    assert "verified · manifest " + digest[:23] in report("html")
    lines = _lines(folder)
    del lines[1]
    _write(folder, lines)
    assert "NOT VERIFIED: line 2: chain mismatch" in report("md")
    assert "NOT VERIFIED" in report("html")


def test_history_rows_agree_with_their_lines_waivers_and_any_text_included(tmp_path: Path) -> None:
    """runs verify reads each row against its line: waivers, non-ASCII and quotes agree; a changed
    waiver is caught; a line of another writer's key order is still judged exactly."""
    from itops.history_db import row_agrees as _row_agrees
    from itops.model import Evidence, Result, Run, Severity, Status, Waiver

    store = Store(tmp_path / "store")
    run = Run(id="20261207T000000Z-abcdef", kind="audit", started=1.0)
    writer = store.begin(run)
    waiver = Waiver("t.c1", "hôst-1", 'accepted "for now"', "ciso", "2027-01-01", "SEC-1")
    writer.add_many(
        [
            Result(run.id, "t.c1", "hôst-1", Status.WAIVED, Severity.LOW, "ok", resource='/etc/"x"\\y', waiver=waiver),
            Result(run.id, "t.c2", "hôst-1", Status.PASS, Severity.LOW, "ok", evidence=Evidence(observed="é")),
        ]
    )
    writer.finish("complete", 0)
    assert _verify(tmp_path / "store", run.id).exit_code == 0
    with sqlite3.connect(tmp_path / "store" / "history.db") as db:
        db.execute("UPDATE results SET waiver = replace(waiver, 'SEC-1', 'SEC-2') WHERE seq = 0")
    res = _verify(tmp_path / "store", run.id)
    assert res.exit_code == 1 and "history.db row 1 differs" in res.stdout

    agrees = _row_agrees(run.id)
    row = ("t.c2", "h", "", "PASS", "LOW", None)
    reordered = json.dumps({"check_id": "t.c2", "run_id": run.id, "status": "PASS", "target": "h", "severity": "LOW"})
    assert agrees(row, reordered) and not agrees(("t.c2", "h", "", "FAIL", "LOW", None), reordered)
    assert not agrees(("t.c2", "h", "", "PASS", "LOW", '{"check":"x"}'), reordered)
    with (tmp_path / "store" / "runs" / run.id / "results.jsonl").open() as fh:
        waived_body = integrity.split_chained(fh.readline().rstrip("\n"))[0]  # type: ignore[index]
    full = json.dumps(waiver.to_dict(), ensure_ascii=False, separators=(",", ":"))
    waived_row = ("t.c1", "hôst-1", '/etc/"x"\\y', "WAIVED", Severity.LOW.value)
    assert agrees((*waived_row, full), waived_body)
    assert not agrees((*waived_row, full.split(",")[0]), waived_body)  # a waiver cut short in history.db
