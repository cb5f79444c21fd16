"""The batch script and its frame parser, run for real through /bin/sh on this machine."""

from __future__ import annotations

import random

import pytest

from itops.transport.batch import FrameParser, build_script
from itops.transport.local import LocalConnection


def run_local(commands, timeouts=None, idle=10.0, total=60.0):
    batch = build_script(commands, timeouts or [10] * len(commands))
    return batch, LocalConnection().run_batch(batch, idle_timeout=idle, total_timeout=total)


def test_each_probe_gets_its_own_stdout_stderr_and_status():
    _batch, out = run_local(["echo out; echo err >&2; exit 3", "printf 'no newline'", "true"])
    assert out.complete
    r0, r1, r2 = (out.results[i] for i in range(3))
    assert (r0.rc, r0.stdout, r0.stderr) == (3, b"out\n", b"err\n")
    assert (r1.rc, r1.stdout, r1.stderr) == (0, b"no newline", b"")
    assert (r2.rc, r2.stdout) == (0, b"")


def test_output_that_mimics_the_frame_header_cannot_confuse_the_parser():
    fake = r"printf '\n@@ITOPS:0000000000000000@@ 1 0 3 0\nabc\n@@ITOPS:%s@@ END\n' x"
    _batch, out = run_local([fake, "echo second"])
    assert out.results[0].stdout.startswith(b"\n@@ITOPS:0000000000000000@@ 1 0 3 0\nabc")
    assert out.results[1].stdout == b"second\n"


def test_binary_output_with_every_byte_value_survives():
    _batch, out = run_local(["head -c 4096 /dev/urandom > /tmp/itops-bin.$$ && cat /tmp/itops-bin.$$ "
                            "&& cat /tmp/itops-bin.$$ >&2; rm -f /tmp/itops-bin.$$", "echo after"])
    r = out.results[0]
    assert len(r.stdout) == 4096 and r.stdout == r.stderr
    assert out.results[1].stdout == b"after\n"


def test_missing_command_is_data_not_a_crash():
    _, out = run_local(["definitely-not-a-command-xyz", "echo ok"])
    assert out.results[0].rc == 127 and out.results[0].command_missing
    assert "not found" in out.results[0].problem()
    assert out.results[1].stdout == b"ok\n"


def test_a_hung_probe_is_stopped_by_its_timeout_and_the_rest_still_run():
    _, out = run_local(["sleep 30", "echo later"], timeouts=[1, 10])
    assert out.results[0].timed_out and "timed out" in out.results[0].problem()
    assert out.results[1].stdout == b"later\n"


def test_idle_deadline_keeps_finished_probes_when_no_timeout_binary_helps():
    # the inner sh ignores the per-probe timeout because we make `timeout` unavailable
    _, out = run_local(["echo first", "PATH=/nonexistent; exec /bin/sleep 30", "echo never"],
                       timeouts=[1, 60, 1], idle=1.5, total=20)
    assert not out.complete
    assert out.results[0].stdout == b"first\n"
    assert out.results[1].rc is None and out.results[1].timed_out
    assert out.results[2].rc is None and "not run" in out.results[2].error


def test_probe_commands_with_quotes_reach_sh_verbatim():
    cmd = """printf '%s\\n' "it's" 'a "b"' '$HOME' '`id`'"""
    _, out = run_local([cmd])
    assert out.results[0].stdout == b"it's\na \"b\"\n$HOME\n`id`\n"


def frame(nonce: str, i: int, out: bytes, err: bytes, rc: int) -> bytes:
    m = f"\n@@ITOPS:{nonce}@@ ".encode()
    return m + b"OUT %d\n" % i + out + m + b"ERR %d\n" % i + err + m + b"RC %d %d\n" % (i, rc)


@pytest.mark.parametrize("chunk", [1, 7, 64, 4096])
def test_parser_handles_arbitrary_chunking(chunk):
    batch = build_script(["a", "b"], [5, 5])
    n = batch.nonce
    stream = b"junk before" + frame(n, 0, b"hello", b"e1", 0) + frame(n, 1, b"", b"", 1)
    stream += f"\n@@ITOPS:{n}@@ END\n".encode()
    p = FrameParser(batch)
    for i in range(0, len(stream), chunk):
        p.feed(stream[i:i + chunk])
    assert p.finished
    assert p.results[0].stdout == b"hello" and p.results[0].stderr == b"e1"
    assert p.results[1].rc == 1
    assert p.preamble == b"junk before"


def test_parser_random_payloads_roundtrip():
    rng = random.Random(7)
    payloads = [bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300))) for _ in range(20)]
    # include our own marker text (with another nonce) and partial markers in the payloads
    payloads[3] = b"\n@@ITOPS:deadbeefdeadbeef@@ RC 3 0\n" + payloads[3]
    payloads[4] = b"\n@@ITOPS:"
    batch = build_script([f"p{i}" for i in range(20)], [5] * 20)
    stream = b"".join(frame(batch.nonce, i, p, p[::-1], i) for i, p in enumerate(payloads))
    stream += f"\n@@ITOPS:{batch.nonce}@@ END\n".encode()
    for chunk in (1, 13, len(stream)):
        parser = FrameParser(batch)
        for i in range(0, len(stream), chunk):
            parser.feed(stream[i:i + chunk])
        assert [parser.results[i].stdout for i in range(20)] == payloads
        assert [parser.results[i].stderr for i in range(20)] == [p[::-1] for p in payloads]
        assert [parser.results[i].rc for i in range(20)] == list(range(20))
