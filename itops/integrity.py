"""Tamper evidence for stored runs: a hash chain over ``results.jsonl`` and a signed manifest.

Every line of a run's ``results.jsonl`` ends with ``"chain":"<hex>"``, the SHA-256 of the previous
line's chain value and this line's JSON without the chain field; the first line chains from a value
derived from the run id, so lines cannot move between runs. While the run is written, the writer
signs the chain head after each batch (``checkpoints.jsonl``), so a run killed mid-way is still
verifiable up to its last signed line. When the run finishes, ``manifest.json`` records the run id,
itops version, inventory digest, selected check ids, host key fingerprints, counts, line count and
chain head, and ``manifest.sig`` holds its Ed25519 signature.

The signing key belongs to the store (``keys/signing.key``, created 0600 on first use) or is given
with ``--signing-key``/``$ITOPS_SIGNING_KEY``. An auditor verifies with the public key alone
(``itops runs verify RUN --pubkey signing.pub``); the key must reach the auditor by another path than
the store itself, since whoever can write the store could also replace a key kept beside it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from itops.errors import UsageError
from itops.fsutil import ensure_private_dir, open_private_append, write_private_atomic

MANIFEST_FORMAT = "itops-run-manifest/1"
CHECKPOINT_FORMAT = "itops-checkpoint/1"
RESULTS_FILE = "results.jsonl"
MANIFEST_FILE = "manifest.json"
SIGNATURE_FILE = "manifest.sig"
CHECKPOINTS_FILE = "checkpoints.jsonl"
KEY_DIR = "keys"
PRIVATE_KEY_FILE = "signing.key"
PUBLIC_KEY_FILE = "signing.pub"
SIGNING_KEY_ENV = "ITOPS_SIGNING_KEY"

_CHAIN_SUFFIX = re.compile(r',"chain":"([0-9a-f]{64})"\}$')


def genesis(run_id: str) -> str:
    """The chain value before a run's first line (binds the chain to the run id)."""
    return hashlib.sha256(f"itops-chain-v1\0{run_id}".encode()).hexdigest()


def chain_next(previous: str, body: str) -> str:
    """The chain value of a line whose JSON without the chain field is ``body``."""
    return hashlib.sha256(f"{previous}\n{body}".encode()).hexdigest()


def chained_line(previous: str, body: str) -> tuple[str, str]:
    """``(line, chain)``: ``body`` (a compact JSON object) with its chain value appended as last key."""
    if not body.endswith("}"):
        raise ValueError("a chained line must be a JSON object")
    value = chain_next(previous, body)
    return f'{body[:-1]},"chain":"{value}"}}', value


def split_chained(line: str) -> tuple[str, str] | None:
    """``(body, chain)`` of a stored line, or None when it carries no chain value."""
    match = _CHAIN_SUFFIX.search(line)
    if match is None:
        return None
    return line[: match.start()] + "}", match.group(1)


def canonical(data: Mapping[str, Any]) -> bytes:
    """The bytes a manifest is signed and digested as (sorted keys, compact, UTF-8)."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def digest(data: Mapping[str, Any]) -> str:
    """``sha256:<hex>`` of a manifest's canonical bytes: what reports show and auditors compare."""
    return "sha256:" + hashlib.sha256(canonical(data)).hexdigest()


def key_id(public: Ed25519PublicKey) -> str:
    """A short, stable name for a public key: ``ed25519:<first 16 hex of SHA-256 of the raw key>``."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]


# --- keys ---------------------------------------------------------------------------------------


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """An Ed25519 private key from a PEM (PKCS#8) or OpenSSH file; refused when others can read it."""
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read signing key {path}: {exc.strerror}") from exc
    if mode & 0o077:
        raise UsageError(
            f"signing key {path} is readable or writable by other users (mode {mode & 0o777:o})",
            hint=f"chmod 600 {path}",
        )
    try:
        key = (
            serialization.load_ssh_private_key(data, password=None)
            if data.lstrip().startswith(b"-----BEGIN OPENSSH")
            else serialization.load_pem_private_key(data, password=None)
        )
    except (ValueError, TypeError) as exc:
        raise UsageError(f"signing key {path} is not an unencrypted Ed25519 private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise UsageError(f"signing key {path} is not an Ed25519 key")
    return key


def load_public_key(path: Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM or OpenSSH (``ssh-ed25519 AAAA...``) file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read public key {path}: {exc.strerror}") from exc
    try:
        key = (
            serialization.load_ssh_public_key(data.strip())
            if data.lstrip().startswith(b"ssh-")
            else serialization.load_pem_public_key(data)
        )
    except (ValueError, TypeError) as exc:
        raise UsageError(f"{path} is not an Ed25519 public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise UsageError(f"{path} is not an Ed25519 public key")
    return key


def public_pem(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def store_signing_key(root: Path) -> Ed25519PrivateKey:
    """The store's own signing key, created (0600, in a 0700 folder) on first use."""
    folder = ensure_private_dir(root / KEY_DIR)
    private = folder / PRIVATE_KEY_FILE
    if not private.exists():
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        try:
            _write_private(private, pem)
        except FileExistsError:
            pass  # another run created it first: use that one
        else:
            write_private_atomic(folder / PUBLIC_KEY_FILE, public_pem(key.public_key()))
    return load_private_key(private)


def resolve_signing_key(root: Path, given: Path | None = None) -> Ed25519PrivateKey:
    """``given`` (``--signing-key``), else ``$ITOPS_SIGNING_KEY``, else the store's own key."""
    path = given or (Path(os.environ[SIGNING_KEY_ENV]).expanduser() if os.environ.get(SIGNING_KEY_ENV) else None)
    return load_private_key(path) if path else store_signing_key(root)


# --- writing ------------------------------------------------------------------------------------


class ChainWriter:
    """Chains lines as they are written and signs the head after every batch (the writer's side)."""

    def __init__(self, run_id: str, folder: Path, key: Ed25519PrivateKey) -> None:
        self.run_id = run_id
        self.folder = folder
        self.key = key
        self.head = genesis(run_id)
        self.lines = 0
        self._checkpoints = os.fdopen(open_private_append(folder / CHECKPOINTS_FILE), "a", encoding="utf-8")

    def chain(self, body: str) -> str:
        """The stored form of ``body`` (the next line), advancing the head."""
        line, self.head = chained_line(self.head, body)
        self.lines += 1
        return line

    def checkpoint(self) -> None:
        """Sign the current head; call after the batch's lines are flushed to results.jsonl."""
        record = {"format": CHECKPOINT_FORMAT, "run_id": self.run_id, "lines": self.lines, "head": self.head}
        signature = base64.b64encode(self.key.sign(canonical(record))).decode()
        self._checkpoints.write(json.dumps({**record, "sig": signature}, separators=(",", ":")) + "\n")
        self._checkpoints.flush()

    def close(self) -> None:
        self._checkpoints.close()

    def seal(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Write ``manifest.json`` (with the chain head and line count) and its signature."""
        full = {
            **manifest,
            "format": MANIFEST_FORMAT,
            "run_id": self.run_id,
            "lines": self.lines,
            "chain_head": self.head,
            "key_id": key_id(self.key.public_key()),
        }
        signature = base64.b64encode(self.key.sign(canonical(full))).decode() + "\n"
        write_private_atomic(self.folder / MANIFEST_FILE, json.dumps(full, indent=2, sort_keys=True) + "\n")
        write_private_atomic(self.folder / SIGNATURE_FILE, signature)
        return full


# --- verifying ----------------------------------------------------------------------------------


@dataclass
class Verification:
    """What ``runs verify`` found for one run: ``ok`` and, when not, the first problem."""

    run_id: str
    ok: bool = True
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    lines: int = 0
    signed_lines: int = 0
    manifest_digest: str = ""
    sealed: bool = False

    def fail(self, problem: str) -> None:
        self.ok = False
        self.problems.append(problem)

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "ok": self.ok,
            "problems": self.problems,
            "notes": self.notes,
            "lines": self.lines,
            "signed_lines": self.signed_lines,
            "sealed": self.sealed,
            "manifest_digest": self.manifest_digest,
        }


def _verify_sig(public: Ed25519PublicKey, data: Mapping[str, Any], signature: str) -> bool:
    try:
        public.verify(base64.b64decode(signature, validate=True), canonical(data))
    except (InvalidSignature, ValueError):
        return False
    return True


class _Heads:
    """The chain value after each line, 32 bytes apiece in one buffer (a million-line run: 32 MB, not
    the 150 MB of a list of hex strings); indexed and appended as hex like a ``list[str]``."""

    def __init__(self, first: str) -> None:
        self._raw = bytearray(bytes.fromhex(first))

    def __len__(self) -> int:
        return len(self._raw) // 32

    def __getitem__(self, i: int) -> str:
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(i)
        return self._raw[i * 32 : i * 32 + 32].hex()

    def append(self, value: str) -> None:
        self._raw += bytes.fromhex(value)


def _complete_lines(path: Path) -> Iterator[tuple[int, str, bool]]:
    """``(number, text, complete)`` for each line; only the last can be incomplete (a torn write)."""
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            complete = raw.endswith(b"\n")
            yield number, raw.decode("utf-8", errors="replace").rstrip("\n"), complete


def verify_run(
    folder: Path,
    run_id: str,
    public: Ed25519PublicKey,
    db_lines: Iterable[Any] | None = None,
    same: Callable[[Any, str], bool] | None = None,
) -> Verification:
    """Check a run folder's chain, checkpoints, manifest and signature against ``public``.

    ``db_lines``: the run's rows from the history database, compared with the verified file: a row
    agrees with its line when ``same(row, body)`` (``body``: the line's JSON without the chain
    value; when ``same`` is None the row must be that text). Lines and rows are compared as they
    are read (an iterator of rows is fine): memory stays bounded by the chain values, not by the
    size of the run.
    """
    result = Verification(run_id)
    results_path = folder / RESULTS_FILE
    if not results_path.is_file():
        result.fail(f"{RESULTS_FILE} is missing")
        return result
    # Chain every complete line; remember the head after each line for the signed checkpoints.
    heads = _Heads(genesis(run_id))
    rows = iter(db_lines) if db_lines is not None else None
    db_rows = 0  # rows read alongside the verified lines
    db_mismatch = 0  # the first line whose history.db row differs (0: none)
    broken_at: int | None = None
    for number, text, complete in _complete_lines(results_path):
        if not complete:
            result.notes.append(f"line {number} is incomplete (a write torn when the run was killed); ignored")
            break
        parts = split_chained(text)
        if parts is None:
            result.fail(f"line {number}: no chain value (line edited or not written by itops)")
            broken_at = number
            break
        body, stored = parts
        expected = chain_next(heads[-1], body)
        if stored != expected:
            result.fail(f"line {number}: chain mismatch (line edited, removed before it, or lines reordered)")
            broken_at = number
            break
        heads.append(stored)
        if rows is not None:
            row = next(rows, None)
            if row is not None:
                db_rows += 1
                if not db_mismatch and not (row == body if same is None else same(row, body)):
                    db_mismatch = number
    result.lines = len(heads) - 1
    if broken_at is not None:
        return result

    # The newest valid signature over a prefix of the chain: the sealed manifest, else a checkpoint.
    # A sealed manifest whose head matches settles it with one signature check; the checkpoints are
    # read only without one, or to say where a mismatch is.
    manifest, head_ok = _read_manifest(folder, run_id, public, heads, result)
    if not result.ok:
        return result
    if manifest is not None and head_ok:
        signed = int(manifest["lines"])
    else:
        signed = _signed_lines(folder, run_id, public, heads, result)
        if manifest is not None:
            if result.ok:  # the checkpoints could not place the change: the manifest's head tells it
                result.fail(f"line {manifest['lines']}: chain head differs from the sealed manifest's")
            return result
    result.signed_lines = signed
    if not result.ok:
        return result
    if manifest is not None and result.lines > signed:
        result.fail(f"line {signed + 1}: appended after the run was sealed")
    elif manifest is None and result.lines > signed:
        result.fail(f"line {signed + 1}: not covered by any signature (appended, or the run was killed mid-batch)")
    elif signed > result.lines:
        result.fail(
            f"line {result.lines + 1}: removed (the signature covers {signed} lines, the file has {result.lines})"
        )
    if manifest is None and result.ok:
        result.notes.append(f"run not sealed (no manifest: killed before it finished); verified up to line {signed}")
    if rows is not None and result.ok:
        _compare_db(result.lines, db_mismatch, db_rows + sum(1 for _ in rows), result)
    return result


def _signed_lines(folder: Path, run_id: str, public: Ed25519PublicKey, heads: _Heads, out: Verification) -> int:
    """Lines covered by the newest valid checkpoint; fails ``out`` on a forged or mismatching one.

    Signatures are checked only where they decide something: the newest checkpoint that matches the
    chain, one that claims more lines than the file has (removal), and one that does not match (to
    tell an edit from a forged checkpoint).
    """
    path = folder / CHECKPOINTS_FILE
    if not path.is_file():
        return 0
    best: tuple[int, dict[str, Any], str, int] | None = None  # lines, record, signature, checkpoint number
    previous_lines = 0
    for number, text, complete in _complete_lines(path):
        if not complete or not text.strip():
            continue
        try:
            record = json.loads(text)
            signature = record.pop("sig")
            lines = int(record["lines"])
        except (ValueError, KeyError, TypeError, AttributeError):
            out.fail(f"{CHECKPOINTS_FILE} line {number} is not a checkpoint")
            return 0
        if record.get("run_id") != run_id:
            out.fail(f"{CHECKPOINTS_FILE} line {number}: belongs to run {record.get('run_id')!r}")
            return 0
        matches = lines < len(heads) and heads[lines] == record.get("head")
        if not matches:
            if not _verify_sig(public, record, signature):
                out.fail(f"{CHECKPOINTS_FILE} line {number}: bad signature (forged, or signed by another key)")
                return 0
            if lines >= len(heads):  # signed, but the file no longer has that many lines
                return lines
            first = previous_lines + 1 if lines > previous_lines else lines
            span = f"lines {first}-{lines}" if lines > first else f"line {lines}"
            out.fail(
                f"{span}: changed (the chain no longer matches the head signed for {lines} lines "
                f"at checkpoint {number})"
            )
            return 0
        if best is None or lines >= best[0]:
            best = (lines, record, signature, number)
        previous_lines = lines
    if best is None:
        return 0
    lines, record, signature, number = best
    if not _verify_sig(public, record, signature):
        out.fail(f"{CHECKPOINTS_FILE} line {number}: bad signature (forged, or signed by another key)")
        return 0
    return lines


def _read_manifest(
    folder: Path, run_id: str, public: Ed25519PublicKey, heads: _Heads, out: Verification
) -> tuple[dict[str, Any] | None, bool]:
    """(the manifest when present and validly signed, whether its chain head matches the file)."""
    path = folder / MANIFEST_FILE
    if not path.exists():
        return None, False
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        signature = (folder / SIGNATURE_FILE).read_text(encoding="utf-8").strip()
        lines = int(manifest["lines"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        out.fail(f"manifest unreadable or unsigned: {exc}")
        return None, False
    out.manifest_digest = digest(manifest)
    if manifest.get("run_id") != run_id or manifest.get("format") != MANIFEST_FORMAT:
        out.fail(f"manifest belongs to run {manifest.get('run_id')!r}, not {run_id!r}")
        return None, False
    if not _verify_sig(public, manifest, signature):
        out.fail("manifest signature does not verify (manifest changed, or signed by another key)")
        return None, False
    out.sealed = True
    head_ok = lines >= len(heads) or heads[lines] == manifest.get("chain_head")
    return dict(manifest), head_ok


def _compare_db(lines: int, mismatch: int, db_rows: int, out: Verification) -> None:
    """Report the first history.db row that differs from its line, else a different row count."""
    if mismatch:
        out.fail(f"history.db row {mismatch} differs from line {mismatch} of {RESULTS_FILE}")
    elif db_rows != lines:
        out.notes.append(f"history.db holds {db_rows} rows for {lines} verified lines")
