"""The per-host memo of parsed probe output (issue #14, lean auditor): each output is parsed once per
host and parser whatever number of checks read it, across hosts only through the run's SharedParses
and only for byte-equal inputs, and no check can change what another check of the host sees. Pure
logic on canned probe output."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import enum
import gzip
import json
import random
import shlex
import threading
import types
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from itops.checkapi import (
    Check,
    Facts,
    Finding,
    HostMemo,
    Probe,
    ProbeResult,
    Severity,
    ensure_immutable,
    host_check,
    parse_os_release,
)
from itops.checklib.accounts import PASSWD, load_passwd
from itops.checklib.common import ProbeOutputError
from itops.checklib.fileperm import stat_map
from itops.checklib.sshd import SSHD_EFFECTIVE, SSHD_FILES, load_sshd_config
from itops.hostmemo import MISSING, SharedParses
from itops.model import Status
from itops.planner import plan_host
from itops.registry import checks_from_module, load_registry
from itops.runner import evaluate_host
from itops.transport.base import BatchOutcome

OS_RELEASE = b'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12"\n'
RECORDING = Path(__file__).resolve().parent.parent / "bench" / "data" / "debian-hardened.json.gz"
META: dict[str, Any] = dict(
    severity=Severity.LOW,
    rationale="test-only check for the per-host memo",
    remediation="nothing to fix",
    frameworks={"nist-800-53": ["SI-4"], "iso-27001": ["A.8.16"]},
)

WORDS = Probe("memo_words", "echo alpha beta gamma")
STATS = Probe("memo_stats", "stat something")
CALLS: list[str] = []


def count_words(text: str) -> tuple[str, ...]:
    CALLS.append(text)
    return tuple(text.split())


def garbage_parser(text: str) -> tuple[str, ...]:
    CALLS.append(text)
    raise ProbeOutputError("unexpected output line 1")


def list_parser(text: str) -> list[str]:
    return text.split()


def _checks(**evaluators: Any) -> list[Check]:
    """Checks through the registry's own loading (metadata validated), from evaluate functions."""
    module = types.ModuleType("memo_test_pack")
    for name, fn in evaluators.items():
        setattr(module, name, fn)
    return list(checks_from_module(module, __file__))


def _evaluate(
    name: str, checks: list[Check], outputs: dict[str, bytes], shared: SharedParses | None = None
) -> dict[str, Any]:
    """Evaluate ``checks`` on one host answering each probe name with ``outputs``; results by check id."""
    plan = plan_host(name, checks, {}, 30.0)
    by_command = {p.render({}): outputs[p.name] for c in checks for p in c.probes}
    results = {
        i: ProbeResult(cmd, 0, OS_RELEASE if i == plan.os_index else by_command[cmd])
        for i, cmd in enumerate(plan.commands)
    }
    return {r.check_id: r for r in evaluate_host("run", plan, BatchOutcome(results), {}, 0.0, None, shared)}


def _word_checks() -> list[Check]:
    def judge(suffix: str) -> Any:
        def evaluate(facts: Facts, params: Any) -> Finding:
            words = facts.parsed(WORDS, count_words)
            return Finding.passed(f"{len(words)} words ({suffix})")

        return evaluate

    return _checks(
        **{
            f"check_{n}": host_check(id=f"test.memo_words_{n}", title=f"Words check {n}", probes=[WORDS], **META)(
                judge(str(n))
            )
            for n in range(3)
        }
    )


def test_each_output_is_parsed_once_per_host_and_again_for_the_next_host():
    checks = _word_checks()
    CALLS.clear()
    first = _evaluate("h1", checks, {WORDS.name: b"alpha beta gamma\n"})
    assert [r.status for r in first.values()] == [Status.PASS] * 3
    assert CALLS == ["alpha beta gamma\n"]  # three checks, one parse
    second = _evaluate("h2", checks, {WORDS.name: b"alpha beta gamma\n"})
    assert [r.message for r in second.values()] == ["3 words (0)", "3 words (1)", "3 words (2)"]
    # the same text on another host is parsed again: without the run's SharedParses nothing is shared
    assert CALLS == ["alpha beta gamma\n", "alpha beta gamma\n"]


def _evaluate_garbage(facts: Facts, params: Any) -> Finding:
    try:
        facts.parsed(WORDS, garbage_parser)
    except ProbeOutputError as exc:
        return Finding.error(f"could not assess: {exc}")
    return Finding.passed("parsed")


def test_a_parser_s_exception_is_raised_to_every_check_but_parsed_once():
    evaluate = _evaluate_garbage
    checks = _checks(
        a=host_check(id="test.memo_garbage_a", title="Garbage check a", probes=[WORDS], **META)(evaluate),
        b=host_check(id="test.memo_garbage_b", title="Garbage check b", probes=[WORDS], **META)(evaluate),
    )
    CALLS.clear()
    results = _evaluate("h1", checks, {WORDS.name: b"garbage\n"})
    assert [(r.status, r.message) for r in results.values()] == [
        (Status.ERROR, "could not assess: unexpected output line 1")
    ] * 2
    assert CALLS == ["garbage\n"]


def test_a_check_cannot_change_what_another_check_of_the_host_sees():
    stat_text = b"S|644|0|root|0|root|regular file|/etc/passwd\n"

    def mutate(facts: Facts, params: Any) -> Finding:
        stats = stat_map(facts, STATS)
        stats["/etc/passwd"] = dataclasses.replace(stats["/etc/passwd"], mode=0o777)  # type: ignore[index]
        return Finding.failed("changed the shared parse")

    def read(facts: Facts, params: Any) -> Finding:
        return Finding.passed(stat_map(facts, STATS)["/etc/passwd"].describe())

    checks = _checks(
        a=host_check(id="test.memo_mutate", title="A check altering shared data", probes=[STATS], **META)(mutate),
        b=host_check(id="test.memo_read", title="A check reading shared data", probes=[STATS], **META)(read),
    )
    results = _evaluate("h1", checks, {STATS.name: stat_text})
    mutator, reader = results["test.memo_mutate"], results["test.memo_read"]
    assert mutator.status is Status.ERROR and "TypeError" in mutator.message  # the attempt itself fails
    assert (reader.status, reader.message) == (Status.PASS, "0644 root:root")


def test_os_release_and_history_are_read_only_for_checks():
    """The parsed os-release and the metric history are the same objects for every check of a host."""

    def mutate(facts: Facts, params: Any) -> Finding:
        with contextlib.suppress(TypeError):
            facts.os["ID"] = "alpine"  # type: ignore[index]
        facts.history["fs.used_pct:/"].append((3.0, 99.0))  # type: ignore[attr-defined]
        return Finding.failed("changed the history")

    def read(facts: Facts, params: Any) -> Finding:
        return Finding.passed(f"{facts.os['ID']}: {len(facts.history['fs.used_pct:/'])} points")

    checks = _checks(
        a=host_check(id="test.memo_mutate_history", title="A check altering history", probes=[WORDS], **META)(mutate),
        b=host_check(id="test.memo_read_history", title="A check reading history", probes=[WORDS], **META)(read),
    )
    plan = plan_host("h1", checks, {}, 30.0)
    outcome = BatchOutcome({i: ProbeResult(cmd, 0, OS_RELEASE) for i, cmd in enumerate(plan.commands)})
    history = {"fs.used_pct:/": [(1.0, 50.0), (2.0, 60.0)]}
    mutator, reader = evaluate_host("run", plan, outcome, {}, 0.0, history)
    assert mutator.status is Status.ERROR and "AttributeError" in mutator.message
    assert (reader.status, reader.message) == (Status.PASS, "debian: 2 points")
    assert history["fs.used_pct:/"] == [(1.0, 50.0), (2.0, 60.0)]


def test_a_parser_returning_something_mutable_is_refused():
    def evaluate(facts: Facts, params: Any) -> Finding:
        return Finding.passed(" ".join(facts.parsed(WORDS, list_parser)))

    checks = _checks(
        a=host_check(id="test.memo_list", title="A parser giving a list", probes=[WORDS], **META)(evaluate)
    )
    (result,) = _evaluate("h1", checks, {WORDS.name: b"alpha beta\n"}).values()
    assert result.status is Status.ERROR
    assert "check raised TypeError" in result.message and "list" in result.message


def test_helpers_hand_each_check_its_own_copy_or_a_read_only_view():
    passwd = b"root:x:0:0:root:/root:/bin/bash\nbob:x:1000:1000::/home/bob:/bin/sh\n"
    sshd_t = b"port 22\npermitrootlogin no\npasswordauthentication no\n"
    memo = HostMemo()
    probes = {
        PASSWD.name: ProbeResult("cat /etc/passwd", 0, passwd),
        SSHD_EFFECTIVE.name: ProbeResult("sshd -T", 0, sshd_t),
        SSHD_FILES.name: ProbeResult("files", 1, b""),
    }
    first, second = Facts("h1", probes, memo=memo), Facts("h1", probes, memo=memo)
    users = load_passwd(first)
    assert isinstance(users, list)
    users.clear()
    assert [u.name for u in load_passwd(second)] == ["root", "bob"]  # type: ignore[union-attr]
    cfg = load_sshd_config(first)
    assert load_sshd_config(second) is cfg  # shared, parsed once ...
    with pytest.raises(TypeError):
        cfg.settings["permitrootlogin"] = cfg.settings["port"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.source = "sshd_config files"  # type: ignore[misc]
    assert load_sshd_config(second).settings["permitrootlogin"].value == "no"  # ... and unchanged
    assert len(memo) == 2


def test_ensure_immutable_accepts_deeply_immutable_values_only():
    @dataclasses.dataclass(frozen=True)
    class Pair:
        a: object
        b: int = 0

    @dataclasses.dataclass(frozen=True)
    class One:
        a: object

    @dataclasses.dataclass
    class Mutable:
        a: int

    class Row(NamedTuple):
        a: object

    class Colour(enum.Enum):
        RED = "red"

    ok = [
        1,
        "a",
        None,
        (1, ("b", b"c")),
        frozenset({"a", 1}),
        types.MappingProxyType({"a": Pair(1)}),
        (Pair((1, 2)), Pair("x"), One(Row(3)), Colour.RED),
    ]
    bad = [
        [1],
        {},
        {1},
        (1, [2]),
        types.MappingProxyType({"a": [1]}),
        Mutable(1),
        Pair([1]),
        (One(1), One({})),
        Row([1]),
        types.MappingProxyType({"k": Pair(types.MappingProxyType({"z": bytearray()}))}),
    ]
    for value in ok:
        ensure_immutable(value)
    for value in bad:
        with pytest.raises(TypeError):
            ensure_immutable(value)


def _value_with_shlex(value: str) -> str:
    """How parse_os_release took a value before its fast paths: always through shlex."""
    try:
        parts = shlex.split(value)
    except ValueError:
        parts = [value.strip("\"'")]
    return parts[0] if parts else ""


def test_os_release_values_are_unquoted_as_shlex_does(monkeypatch):
    """parse_os_release takes the common shapes without shlex: the same answer for any text as the
    same parser with every value through shlex."""
    from itops import osrelease

    def with_shlex(text: str) -> dict[str, str]:
        with monkeypatch.context() as m:
            m.setattr(osrelease, "_os_release_value", _value_with_shlex)
            return parse_os_release(text)

    rng = random.Random(14)
    alphabet = "ab \"'\\\t#=$`x\n"
    for _ in range(20000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        assert parse_os_release(text) == with_shlex(text), text
    real = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\nNAME=\'Debian\'\n'
    assert parse_os_release(real) == with_shlex(real)


def test_verdicts_are_the_same_with_the_memo_as_with_each_check_alone():
    """The whole host pack on a real Debian lab host's recorded outputs: evaluated together (one memo
    for the host) or each check on a host of its own (a memo each), every result is the same."""
    recorded = {
        cmd: (rc, base64.b64decode(out), base64.b64decode(err))
        for cmd, (rc, out, err) in json.loads(gzip.decompress(RECORDING.read_bytes())).items()
    }
    checks = load_registry([], entry_point_packs=False).select(["*"], target="host")

    def run(chosen: list[Check]) -> list[dict[str, Any]]:
        plan = plan_host("h1", chosen, {}, 30.0)
        results = {i: ProbeResult(cmd, *recorded.get(cmd, (127, b"", b""))) for i, cmd in enumerate(plan.commands)}
        docs = [r.to_dict() for r in evaluate_host("run", plan, BatchOutcome(results), {}, 0.0)]
        for d in docs:
            del d["duration"]
        return docs

    together = run(checks)
    alone = [doc for check in checks for doc in run([check])]
    assert len(together) > len(checks) > 100
    assert together == alone
    assert {d["status"] for d in together} >= {"PASS", "FAIL"}


# -- shared across the hosts of a run ----------------------------------------------------------


def test_equal_outputs_are_parsed_once_per_run_with_shared_parses():
    checks = _word_checks()
    shared = SharedParses()
    CALLS.clear()
    first = _evaluate("h1", checks, {WORDS.name: b"alpha beta gamma\n"}, shared)
    second = _evaluate("h2", checks, {WORDS.name: b"alpha beta gamma\n"}, shared)
    third = _evaluate("h3", checks, {WORDS.name: b"alpha beta\n"}, shared)
    assert CALLS == ["alpha beta gamma\n", "alpha beta\n"]  # h2 sent the same bytes: not parsed again
    assert shared.hits == 1
    assert [r.message for r in second.values()] == [r.message for r in first.values()]
    assert [r.message for r in third.values()] == ["2 words (0)", "2 words (1)", "2 words (2)"]
    assert {r.target for r in second.values()} == {"h2"}


def test_errors_are_not_shared_each_host_parses_its_own():
    evaluate = _evaluate_garbage
    checks = _checks(
        a=host_check(id="test.memo_shared_garbage", title="Garbage check", probes=[WORDS], **META)(evaluate)
    )
    shared = SharedParses()
    CALLS.clear()
    for host in ("h1", "h2"):
        (result,) = _evaluate(host, checks, {WORDS.name: b"garbage\n"}, shared).values()
        assert result.status is Status.ERROR
    assert CALLS == ["garbage\n", "garbage\n"] and len(shared) == 0


def test_only_keys_of_plain_inputs_within_bounds_are_shared(monkeypatch):
    shared = SharedParses()
    probe = ProbeResult("cat /etc/passwd", 0, b"root:x:0:0::/root:/bin/sh\n")
    shared.store((count_words, probe), ("a",))
    assert shared.lookup((count_words, ProbeResult("cat /etc/passwd", 0, b"root:x:0:0::/root:/bin/sh\n"))) == ("a",)
    # any field differing (command, rc, stderr) is another key
    assert shared.lookup((count_words, dataclasses.replace(probe, rc=1))) is MISSING
    assert shared.lookup((count_words, dataclasses.replace(probe, stderr=b"warning\n"))) is MISSING
    assert shared.lookup((list_parser, probe)) is MISSING
    shared.store((count_words, frozenset({1})), ("b",))  # not a plain input: not kept
    shared.store((count_words, (probe, object())), ("c",))
    assert len(shared) == 1
    monkeypatch.setattr(SharedParses, "MAX_INPUT", 100)
    monkeypatch.setattr(SharedParses, "MAX_BYTES", 250)
    big = ProbeResult("cat big", 0, b"x" * 101)
    shared.store((count_words, big), ("big",))
    assert shared.lookup((count_words, big)) is MISSING  # over MAX_INPUT
    for n in range(5):  # ~90 bytes each: the table starts over before it holds more than 250
        shared.store((count_words, ProbeResult(f"cat f{n}", 0, b"y" * 80)), (str(n),))
        assert shared._bytes <= 250
    assert shared.lookup((count_words, ProbeResult("cat f4", 0, b"y" * 80))) == ("4",)


def test_shared_parses_from_many_threads_give_each_host_its_own_parse():
    shared = SharedParses()
    texts = [b"a b\n", b"a b c\n", b"d\n"]
    checks = _word_checks()
    errors: list[BaseException] = []

    def host(n: int) -> None:
        try:
            text = texts[n % 3]
            got = _evaluate(f"h{n}", checks, {WORDS.name: text}, shared)
            assert {r.message.split()[0] for r in got.values()} == {str(len(text.split()))}
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=host, args=(n,)) for n in range(60)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and shared.hits >= 60 - 3 * 8  # at most one parse per text and thread racing


def test_verdicts_are_the_same_with_parses_shared_across_hosts():
    """The whole host pack on 12 hosts, most sending the recorded outputs unchanged and some with a
    changed passwd, sshd_config or login.defs: with the run's SharedParses every result is what each
    host gets evaluated on its own."""
    recorded = {
        cmd: (rc, base64.b64decode(out), base64.b64decode(err))
        for cmd, (rc, out, err) in json.loads(gzip.decompress(RECORDING.read_bytes())).items()
    }
    checks = load_registry([], entry_point_packs=False).select(["*"], target="host")
    plan = plan_host("h1", checks, {}, 30.0)
    changes = {
        "cat /etc/passwd": b"mallory:x:0:0::/root:/bin/bash\n",
        "cat /etc/login.defs": b"PASS_MAX_DAYS 99999\n",
    }

    def outcome(n: int) -> BatchOutcome:
        results = {}
        for i, cmd in enumerate(plan.commands):
            rc, out, err = recorded.get(cmd, (127, b"", b""))
            for needle, extra in changes.items():
                if n % 3 == 0 and needle in cmd:
                    out += extra
            if n % 4 == 0 and ("sshd_config" in cmd or cmd.startswith("sshd -T")):
                out = out.replace(b"PermitRootLogin no", b"PermitRootLogin yes")
                out = out.replace(b"permitrootlogin no", b"permitrootlogin yes")
            results[i] = ProbeResult(cmd, rc, out, err)
        return BatchOutcome(results)

    def docs(results: list[Any]) -> list[dict[str, Any]]:
        out = [r.to_dict() for r in results]
        for d in out:
            del d["duration"]
        return out

    shared = SharedParses()
    verdicts = []
    for n in range(12):
        with_shared = docs(evaluate_host("run", plan, outcome(n), {}, 0.0, None, shared))
        assert with_shared == docs(evaluate_host("run", plan, outcome(n), {}, 0.0)), n
        verdicts.append({(d["check_id"], d["resource"]): d["status"] for d in with_shared})
    assert shared.hits > 100
    # the changed hosts do get other verdicts (a second uid 0, root login): not one parse for all
    assert verdicts[0] != verdicts[1] and verdicts[4] != verdicts[1] and verdicts[1] == verdicts[5]
