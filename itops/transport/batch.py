"""One POSIX sh script carrying every probe a host needs, and the parser for its output.

Every probe's stdout, stderr and exit status come back in a length-prefixed frame
whose header carries a random per-run nonce, so probe output holding any bytes,
including something that looks like a header, cannot confuse the parser. Frames
are emitted as each probe finishes: when the connection dies or a probe hangs
past the deadline, the probes already done are kept.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from itops.checkapi import ProbeResult

#: exit statuses of coreutils/busybox ``timeout`` when it had to stop the command
TIMEOUT_RCS = frozenset({124, 137})

_PRELUDE = r"""export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
cd / || exit 97
umask 077
_d=$(mktemp -d 2>/dev/null) || { _d=/tmp/.itops.$$; mkdir "$_d" || exit 98; }
trap 'rm -rf "$_d"' EXIT
trap 'exit 130' INT TERM HUP
if command -v timeout >/dev/null 2>&1; then _to=1; else _to=0; fi
_p() {
  if [ "$_to" = 1 ]; then
    timeout -k 3 "$2" sh -c "$3" </dev/null >"$_d/o" 2>"$_d/e"
  else
    sh -c "$3" </dev/null >"$_d/o" 2>"$_d/e"
  fi
  _rc=$?
  printf '\n@@ITOPS:%s@@ %s %s %s %s\n' "$_n" "$1" "$_rc" $(wc -c <"$_d/o") $(wc -c <"$_d/e")
  cat "$_d/o" "$_d/e"
}
"""


@dataclass(frozen=True)
class BatchScript:
    """A rendered batch: the script bytes, the nonce, and the command of each frame index."""

    script: bytes
    nonce: str
    commands: tuple[str, ...]
    timeouts: tuple[float, ...]


def build_script(commands: Sequence[str], timeouts: Sequence[float]) -> BatchScript:
    """Render the batch for ``commands`` (already deduplicated), each with its own timeout in seconds."""
    if len(commands) != len(timeouts):
        raise ValueError("one timeout per command")
    nonce = secrets.token_hex(8)
    lines = [_PRELUDE, f"_n={nonce}\n"]
    for i, (cmd, tmo) in enumerate(zip(commands, timeouts, strict=True)):
        lines.append(f"_p {i} {max(1, int(tmo))} {_sh_single_quote(cmd)}\n")
    lines.append("printf '\\n@@ITOPS:%s@@ END\\n' \"$_n\"\n")
    return BatchScript("".join(lines).encode(), nonce, tuple(commands), tuple(timeouts))


def _sh_single_quote(text: str) -> str:
    # shlex.quote leaves "safe" strings bare; a probe command must always be one word
    return "'" + text.replace("'", "'\"'\"'") + "'"


class FrameParser:
    """Incremental parser for a batch's stdout; feed bytes, collect finished frames."""

    def __init__(self, batch: BatchScript) -> None:
        self.batch = batch
        self._buf = bytearray()
        self._header = re.compile(rb"\n@@ITOPS:" + batch.nonce.encode() + rb"@@ (\d+) (-?\d+) (\d+) (\d+)\n")
        self._end = b"\n@@ITOPS:" + batch.nonce.encode() + b"@@ END\n"
        self.results: dict[int, ProbeResult] = {}
        self.finished = False
        self.preamble = b""  # anything the login shell printed before our first frame

    def feed(self, data: bytes) -> None:
        self._buf += data
        while not self.finished:
            if not self._parse_one():
                break

    def _parse_one(self) -> bool:
        m = self._header.search(self._buf)
        end_at = self._buf.find(self._end)
        if end_at != -1 and (m is None or end_at < m.start()):
            self.preamble += bytes(self._buf[:end_at]) if not self.results else b""
            self.finished = True
            del self._buf[: end_at + len(self._end)]
            return False
        if m is None:
            return False
        idx, rc, olen, elen = (int(g) for g in m.groups())
        body_start = m.end()
        if len(self._buf) < body_start + olen + elen:
            return False  # wait for the rest of the body
        if not self.results and m.start() > 0:
            self.preamble += bytes(self._buf[: m.start()])
        out = bytes(self._buf[body_start : body_start + olen])
        err = bytes(self._buf[body_start + olen : body_start + olen + elen])
        del self._buf[: body_start + olen + elen]
        if 0 <= idx < len(self.batch.commands):
            self.results[idx] = ProbeResult(
                command=self.batch.commands[idx],
                rc=rc,
                stdout=out,
                stderr=err,
                timed_out=rc in TIMEOUT_RCS,
            )
        return True

    def complete(self, reason: str) -> dict[int, ProbeResult]:
        """All frames, with a not-run result (``reason``) for every probe that never reported."""
        out = dict(self.results)
        first_missing = True
        for i, cmd in enumerate(self.batch.commands):
            if i not in out:
                # the first missing probe is the one that was running when we gave up
                out[i] = ProbeResult(
                    command=cmd,
                    rc=None,
                    timed_out=first_missing and "timed out" in reason,
                    error=reason if first_missing else f"not run: {reason}",
                )
                first_missing = False
        return out
