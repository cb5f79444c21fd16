"""One POSIX sh script carrying every probe a host needs, and the parser for its output.

Every probe's stdout, stderr and exit status come back between frame markers that
carry a random per-batch nonce, so probe output holding any bytes, including
something that looks like a marker, cannot confuse the parser. Frames
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
#: exit statuses of the script's prelude (before any probe), and what each means
PRELUDE_EXITS = {
    97: "cannot change to / on the host",
    98: "cannot create a temporary directory on the host (mktemp and /tmp both failed)",
}

_PRELUDE = r"""export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
cd / || exit 97
umask 077
_d=$(mktemp -d 2>/dev/null) || { _d=/tmp/.itops.$$; mkdir "$_d" || exit 98; }
trap 'rm -rf "$_d"' EXIT
trap 'exit 130' INT TERM HUP
if command -v timeout >/dev/null 2>&1; then _to=1; else _to=0; fi
_p() {
  printf '\n@@ITOPS:%s@@ OUT %s\n' "$_n" "$1"
  if [ "$_to" = 1 ]; then
    timeout -k 3 "$2" sh -c "$3" </dev/null 2>"$_d/e"
  else
    sh -c "$3" </dev/null 2>"$_d/e"
  fi
  _rc=$?
  printf '\n@@ITOPS:%s@@ ERR %s\n' "$_n" "$1"
  if [ -s "$_d/e" ]; then cat "$_d/e"; fi
  printf '\n@@ITOPS:%s@@ RC %s %s\n' "$_n" "$1" "$_rc"
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
    """Incremental parser for a batch's stdout; feed bytes, collect finished frames.

    A frame is ``\n@@ITOPS:<nonce>@@ OUT i\n`` stdout ``\n@@ITOPS:<nonce>@@ ERR i\n`` stderr
    ``\n@@ITOPS:<nonce>@@ RC i rc\n``. The nonce is random per batch and never reaches the
    probes (it lives in the script the shell reads from stdin, not in their environment or
    arguments), so output holding any bytes, even our marker from another run, stays data.
    Streaming stdout straight to the channel (no temp file, no length count) keeps the
    per-probe cost to the ``timeout`` and ``sh`` it runs under.
    """

    def __init__(self, batch: BatchScript) -> None:
        self.batch = batch
        self._buf = bytearray()
        self._mark = b"\n@@ITOPS:" + batch.nonce.encode() + b"@@ "
        self._rc = re.compile(re.escape(self._mark) + rb"RC (\d+) (-?\d+)\n")
        self.results: dict[int, ProbeResult] = {}
        self.finished = False
        self.preamble = b""  # anything the login shell printed before our first frame
        self._scan = 0  # where to resume looking for the next marker

    def feed(self, data: bytes) -> None:
        self._buf += data
        while not self.finished:
            if not self._parse_one():
                break

    def _parse_one(self) -> bool:
        buf, mark = self._buf, self._mark
        start = buf.find(mark)
        if start == -1:
            return False
        if start > 0:
            # bytes before a marker: what a login shell printed before the first frame
            if not self.results:
                self.preamble += bytes(buf[:start])
            del buf[:start]
            self._scan = max(0, self._scan - start)
            start = 0
        line_end = buf.find(b"\n", len(mark))
        if line_end == -1:
            return False
        head = bytes(buf[len(mark) : line_end])
        if head == b"END":
            self.finished = True
            del buf[: line_end + 1]
            return False
        if not head.startswith(b"OUT "):
            del buf[: line_end + 1]  # not ours to interpret; skip the line
            return True
        idx = head[4:].decode("ascii", "replace")
        err_mark = mark + b"ERR " + idx.encode() + b"\n"
        err_at = buf.find(err_mark, max(line_end, self._scan - len(err_mark)))
        if err_at == -1:
            self._scan = len(buf)
            return False
        rc_match = self._rc.search(buf, err_at + len(err_mark))
        if rc_match is None:
            return False
        self._scan = 0
        stdout = bytes(buf[line_end + 1 : err_at])
        stderr = bytes(buf[err_at + len(err_mark) : rc_match.start()])
        rc = int(rc_match.group(2))
        del buf[: rc_match.end()]
        i = int(idx) if idx.isdigit() else -1
        if 0 <= i < len(self.batch.commands):
            self.results[i] = ProbeResult(
                command=self.batch.commands[i],
                rc=rc,
                stdout=stdout,
                stderr=stderr,
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
