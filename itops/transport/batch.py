"""One POSIX sh script carrying every probe a host needs, and the parser for its output.

Every probe's stdout, stderr and exit status come back between frame markers that
carry a random per-batch nonce, so probe output holding any bytes, including
something that looks like a marker, cannot confuse the parser. Frames
are emitted as each probe finishes: when the connection dies or a probe hangs
past the deadline, the probes already done are kept.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from itops.facts import ProbeResult

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


#: the default cap on one probe's output (stdout and stderr together), inventory ``ssh.max_probe_output``
DEFAULT_MAX_PROBE_OUTPUT = 16 * 1024 * 1024
#: what is kept of output that precedes the first frame (a login shell's banner)
PREAMBLE_KEEP = 64 * 1024
_HEADER_MAX = 64  # "RC <index> <status>" and the like; a longer line after a marker is not ours


def format_size(n: int) -> str:
    """``16 MiB``, ``512 KiB`` or ``100 bytes``: how a byte limit is shown to users."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} bytes"


#: the output kept for a whole batch is at most this many times the per-probe limit (64 MiB by default)
BATCH_OUTPUT_FACTOR = 4


def over_limit_message(index: int, command: str, limit: int, *, batch_limit: int = 0) -> str:
    """The error of a probe whose output went over ``limit`` (or, with ``batch_limit``, whose output
    would have taken the batch's kept output over that)."""
    shown = command if len(command) <= 80 else command[:77] + "..."
    if batch_limit:
        return (
            f"probe {index} (`{shown}`) not assessed: the host's probes sent more than "
            f"{format_size(batch_limit)} of output in all"
        )
    return f"probe {index} (`{shown}`) sent more than {format_size(limit)} of output; not assessed"


class FrameParser:
    """Incremental parser for a batch's stdout; feed bytes, collect finished frames.

    A frame is ``\n@@ITOPS:<nonce>@@ OUT i\n`` stdout ``\n@@ITOPS:<nonce>@@ ERR i\n`` stderr
    ``\n@@ITOPS:<nonce>@@ RC i rc\n``. The nonce is random per batch and never reaches the
    probes (it lives in the script the shell reads from stdin, not in their environment or
    arguments), so output holding any bytes, even our marker from another run, stays data.
    Streaming stdout straight to the channel (no temp file, no length count) keeps the
    per-probe cost to the ``timeout`` and ``sh`` it runs under.

    Hosts are untrusted: every byte is looked at a bounded number of times (only the last
    ``len(marker) - 1`` bytes of a chunk are kept back, in case a marker straddles two reads), and
    a probe whose stdout and stderr together exceed ``max_output`` stops being buffered: the rest
    of its output is read and dropped, and its result is an error saying so (``over_limit``).
    The output kept for the whole batch is bounded too (:data:`BATCH_OUTPUT_FACTOR` times
    ``max_output``): a probe that would go past that is dropped the same way, so many probes just
    under the limit cannot add up without bound. Bytes before the first frame are kept up to
    :data:`PREAMBLE_KEEP`; bytes between frames are dropped.
    """

    def __init__(self, batch: BatchScript, max_output: int = DEFAULT_MAX_PROBE_OUTPUT) -> None:
        self.batch = batch
        self.max_output = max_output
        self.max_batch_output = max_output * BATCH_OUTPUT_FACTOR
        self._kept = 0  # output bytes kept in the finished results
        self._over_batch = False  # the current frame was dropped for the batch's limit
        self._buf = bytearray()  # bytes not yet handed to a sink (at most one read plus a marker)
        self._mark = b"\n@@ITOPS:" + batch.nonce.encode() + b"@@ "
        self.results: dict[int, ProbeResult] = {}
        self.finished = False
        self.preamble = b""  # what the login shell printed before our first frame (bounded)
        self._preamble = bytearray()
        self._in_header = False
        self._section = "preamble"  # where body bytes go: preamble, out, err, or junk (dropped)
        self._index = -1  # the frame being read
        self._out = bytearray()
        self._err = bytearray()
        self._size = 0  # bytes of output the current frame sent, kept or not
        self._over = False
        self.over_limit: set[int] = set()

    def feed(self, data: bytes) -> None:
        """Take the next bytes of the stream (any chunking)."""
        if self.finished:
            return
        self._buf += data
        buf, mark = self._buf, self._mark
        while not self.finished:
            if self._in_header:
                end = buf.find(b"\n", 0, _HEADER_MAX + 1)
                if end == -1:
                    if len(buf) > _HEADER_MAX:  # no header of ours is this long: not a frame line
                        self._in_header = False
                        self._section = "junk" if self.results or self._index >= 0 else "preamble"
                        continue
                    return
                head = bytes(buf[:end])
                del buf[: end + 1]
                self._in_header = False
                self._header(head)
                continue
            at = buf.find(mark)
            if at == -1:
                # hand over all but a possible start of a marker; those bytes are not looked at again
                keep = min(len(buf), len(mark) - 1)
                self._sink(buf[: len(buf) - keep])
                del buf[: len(buf) - keep]
                return
            self._sink(buf[:at])
            del buf[: at + len(mark)]
            self._in_header = True

    def _sink(self, data: bytearray | bytes) -> None:
        if not data:
            return
        section = self._section
        if section == "preamble":
            room = PREAMBLE_KEEP - len(self._preamble)
            if room > 0:
                self._preamble += data[:room]
                self.preamble = bytes(self._preamble)
            return
        if section == "junk":
            return
        self._size += len(data)
        if self._over:
            return
        if self._size > self.max_output or self._kept + self._size > self.max_batch_output:
            self._over = True
            self._over_batch = self._size <= self.max_output
            self._out, self._err = bytearray(), bytearray()  # give the memory back now
            return
        (self._out if section == "out" else self._err).extend(data)

    def _header(self, head: bytes) -> None:
        parts = head.split(b" ")
        kind = parts[0]
        if kind == b"END" and len(parts) == 1:
            self.finished = True
            return
        idx = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else -1
        if kind == b"OUT" and len(parts) == 2 and idx >= 0:
            self._index, self._section = idx, "out"
            self._out, self._err, self._size, self._over = bytearray(), bytearray(), 0, False
        elif kind == b"ERR" and len(parts) == 2 and idx == self._index >= 0 and self._section == "out":
            self._section = "err"
        elif kind == b"RC" and len(parts) == 3 and idx == self._index >= 0 and self._section == "err":
            try:
                rc = int(parts[2])
            except ValueError:
                rc = None
            self._finish(idx, rc)
        else:
            self._section = "junk"  # not ours to interpret: drop until the next marker

    def _finish(self, i: int, rc: int | None) -> None:
        self._section, self._index = "junk", -1
        if not 0 <= i < len(self.batch.commands):
            return
        command = self.batch.commands[i]
        if self._over:
            self.results[i] = self._over_limit_result(i)
        elif rc is None:
            self.results[i] = ProbeResult(command=command, rc=None, error="malformed exit status")
        else:
            self._kept += self._size
            self.results[i] = ProbeResult(
                command=command,
                rc=rc,
                stdout=bytes(self._out),
                stderr=bytes(self._err),
                timed_out=rc in TIMEOUT_RCS,
            )
        self._out, self._err, self._size, self._over = bytearray(), bytearray(), 0, False

    def _over_limit_result(self, i: int) -> ProbeResult:
        self.over_limit.add(i)
        command = self.batch.commands[i]
        return ProbeResult(
            command=command,
            rc=None,
            error=over_limit_message(
                i, command, self.max_output, batch_limit=self.max_batch_output if self._over_batch else 0
            ),
            over_limit=True,
        )

    def complete(self, reason: str) -> dict[int, ProbeResult]:
        """All frames, with a not-run result (``reason``) for every probe that never reported."""
        out = dict(self.results)
        first_missing = True
        if self._over and 0 <= self._index < len(self.batch.commands) and self._index not in out:
            # the probe still sending when the batch stopped had already gone over the limit
            out[self._index] = self._over_limit_result(self._index)
            first_missing = False
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
