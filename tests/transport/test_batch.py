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
    _batch, out = run_local(
        [
            "head -c 4096 /dev/urandom > /tmp/itops-bin.$$ && cat /tmp/itops-bin.$$ "
            "&& cat /tmp/itops-bin.$$ >&2; rm -f /tmp/itops-bin.$$",
            "echo after",
        ]
    )
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
    _, out = run_local(
        ["echo first", "PATH=/nonexistent; exec /bin/sleep 30", "echo never"], timeouts=[1, 60, 1], idle=1.5, total=20
    )
    assert not out.complete
    assert out.results[0].stdout == b"first\n"
    assert out.results[1].rc is None and out.results[1].timed_out
    assert out.results[2].rc is None and "not run" in out.results[2].error


def test_probe_commands_with_quotes_reach_sh_verbatim():
    cmd = """printf '%s\\n' "it's" 'a "b"' '$HOME' '`id`'"""
    _, out = run_local([cmd])
    assert out.results[0].stdout == b'it\'s\na "b"\n$HOME\n`id`\n'


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
        p.feed(stream[i : i + chunk])
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
            parser.feed(stream[i : i + chunk])
        assert [parser.results[i].stdout for i in range(20)] == payloads
        assert [parser.results[i].stderr for i in range(20)] == [p[::-1] for p in payloads]
        assert [parser.results[i].rc for i in range(20)] == list(range(20))


# ----------------------------------------------------------------------- bounded, linear parsing


def test_a_probe_over_the_output_limit_is_an_error_and_its_neighbours_are_kept():
    batch = build_script(["first", "big", "last"], [5, 5, 5])
    n = batch.nonce
    parser = FrameParser(batch, max_output=1 << 20)
    parser.feed(frame(n, 0, b"one", b"", 0))
    head, tail = frame(n, 1, b"", b"", 0).split(f"\n@@ITOPS:{n}@@ ERR".encode())
    parser.feed(head)
    for _ in range(64):  # 4 MiB of stdout in 64 KiB reads: kept only up to the limit
        parser.feed(b"x" * 65536)
        assert len(parser._out) + len(parser._err) <= 1 << 20
    parser.feed(f"\n@@ITOPS:{n}@@ ERR".encode() + tail)
    parser.feed(frame(n, 2, b"three", b"e", 1) + f"\n@@ITOPS:{n}@@ END\n".encode())
    assert parser.finished
    assert parser.results[0].stdout == b"one" and parser.results[2].stdout == b"three"
    big = parser.results[1]
    assert big.over_limit and big.rc is None and not big.ok and big.stdout == b""
    assert big.problem() == "probe 1 (`big`) sent more than 1 MiB of output; not assessed"
    assert parser.over_limit == {1}


def test_the_default_limit_is_16_mib_and_counts_stdout_and_stderr_together():
    batch = build_script(["p"], [5])
    parser = FrameParser(batch)
    half = b"y" * (8 << 20)
    parser.feed(frame(batch.nonce, 0, half, half + b"!", 0))
    assert "sent more than 16 MiB of output" in parser.results[0].problem()
    parser = FrameParser(batch)
    parser.feed(frame(batch.nonce, 0, half, half, 0))  # exactly 16 MiB is allowed
    assert parser.results[0].ok and len(parser.results[0].stderr) == 8 << 20


def test_the_output_kept_for_a_batch_is_bounded_too():
    # many probes just under the per-probe limit cannot add up without bound: 4 x the limit in all
    batch = build_script([f"p{i}" for i in range(7)], [5] * 7)
    parser = FrameParser(batch, max_output=1 << 20)
    near = b"n" * ((1 << 20) - 100 * 1024)  # 924 KiB each: 4 fit in 4 MiB, a 5th does not
    for i in range(6):
        parser.feed(frame(batch.nonce, i, near, b"", 0))
    parser.feed(frame(batch.nonce, 6, b"small", b"", 0) + f"\n@@ITOPS:{batch.nonce}@@ END\n".encode())
    assert [parser.results[i].ok for i in range(7)] == [True] * 4 + [False, False, True]
    assert parser.results[4].problem() == (
        "probe 4 (`p4`) not assessed: the host's probes sent more than 4 MiB of output in all"
    )
    assert parser.results[6].stdout == b"small"


def test_a_probe_still_sending_when_the_batch_stops_over_the_limit_says_so():
    batch = build_script(["big", "never"], [5, 5])
    parser = FrameParser(batch, max_output=4096)
    parser.feed(f"\n@@ITOPS:{batch.nonce}@@ OUT 0\n".encode() + b"z" * 10000)
    done = parser.complete("timed out after 10s without output")
    assert done[0].over_limit and "sent more than 4 KiB" in done[0].problem()
    assert done[1].rc is None and "not run" in done[1].error


@pytest.mark.timeout(60)
def test_large_stderr_and_preamble_are_parsed_in_linear_time():
    # before: every read rescanned the frame's stderr and the output before the first frame
    # (32 MiB of stderr took 107 s); each byte is now looked at a bounded number of times
    import time

    batch = build_script(["noisy"], [5])
    n = batch.nonce
    parser = FrameParser(batch, max_output=64 << 20)
    chunk = (b"warning: a line of stderr\n" * 200)[:4096]  # 4 KiB reads, as pipes give
    assert len(chunk) == 4096
    t0 = time.monotonic()
    for _ in range(8192):  # 32 MiB printed before the first frame (a chatty login shell)
        parser.feed(chunk)
    parser.feed(f"\n@@ITOPS:{n}@@ OUT 0\nout\n@@ITOPS:{n}@@ ERR 0\n".encode())
    for _ in range(8192):  # 32 MiB of stderr
        parser.feed(chunk)
    parser.feed(f"\n@@ITOPS:{n}@@ RC 0 0\n\n@@ITOPS:{n}@@ END\n".encode())
    elapsed = time.monotonic() - t0
    assert parser.finished and parser.results[0].stdout == b"out"
    assert len(parser.results[0].stderr) == 32 << 20
    assert len(parser.preamble) == 64 * 1024  # kept bounded
    assert elapsed < 20, elapsed  # about 0.1 s here; 100+ s before


HWM_SCRIPT = r"""
import sys
from itops.transport.batch import build_script
from itops.transport.local import LocalConnection

def hwm():
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmHWM:"))

before = hwm()
batch = build_script(["echo before", sys.argv[1], "echo after"], [60, 60, 60])
out = LocalConnection().run_batch(batch, idle_timeout=60, total_timeout=120, max_output=1 << 20)
r = out.results
print(hwm() - before, r[0].stdout == b"before\n", r[1].over_limit, r[2].stdout == b"after\n", out.complete)
"""


@pytest.mark.timeout(120)
@pytest.mark.parametrize("probe", ["head -c 67108864 /dev/zero", "head -c 67108864 /dev/zero >&2"])
def test_local_probe_sending_64_mib_is_dropped_with_bounded_memory(probe):
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-c", HWM_SCRIPT, probe], capture_output=True, text=True, timeout=110, check=True
    )
    grown, *flags = proc.stdout.split()
    assert flags == ["True", "True", "True", "True"], proc.stdout
    assert int(grown) < 24 << 20, f"peak RSS grew by {int(grown) >> 20} MiB for a 64 MiB probe"


@pytest.mark.timeout(60)
def test_local_script_bigger_than_a_pipe_buffer_does_not_deadlock():
    # sh -s reads its script as it runs: the first probe fills the stdout pipe while the rest of
    # the 2 MiB script is still to be written
    pad = "#" + "p" * 1000
    commands = ["head -c 1048576 /dev/zero"] + [f"echo {i} {pad}" for i in range(2000)]
    batch = build_script(commands, [30] * len(commands))
    assert len(batch.script) > 1 << 20
    out = LocalConnection().run_batch(batch, idle_timeout=20, total_timeout=40)
    assert out.complete, out.problem
    assert len(out.results[0].stdout) == 1 << 20
    assert out.results[2000].stdout == b"1999\n"  # the pad is a comment


@pytest.mark.timeout(60)
def test_local_shell_writing_much_to_its_own_stderr_does_not_deadlock():
    # outside any probe frame: the batch shell's own stderr (here: a probe's child that
    # escapes the frame's redirection by writing to the shell's inherited stderr)
    batch = build_script(["head -c 1048576 /dev/zero >&3", "echo ok"], [30, 30])
    batch = type(batch)(batch.script.replace(b"_n=", b"exec 3>&2\n_n=", 1), batch.nonce, batch.commands, batch.timeouts)
    out = LocalConnection().run_batch(batch, idle_timeout=20, total_timeout=40)
    assert out.complete, out.problem
    assert out.results[1].stdout == b"ok\n"
    assert len(out.stderr) <= 64 * 1024
