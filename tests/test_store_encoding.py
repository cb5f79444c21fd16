"""Issue #14: a result is converted and encoded once on its way to the store and to stdout.

``RunWriter.add_many`` redacts each result, encodes it once (``Result.to_json``) and hands the texts
on with the results (``StoredResults``); the ``--format json``/``jsonl`` streams print those texts.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random

import jsonschema
import pytest

from itops.integrity import split_chained
from itops.model import Evidence, Result, Run, Severity, Status, Waiver, _fast_result_json, compact_json
from itops.redact import EVIDENCE_CAP, REDACTED, redact_result, register_secret
from itops.report.jsondoc import JsonLinesStream, JsonRunStream, load_schema
from itops.session import RunSession
from itops.store import Store, StoredResults

SECRET = "canary-Zq81vXw3"  # a planted value the output must not carry


def _results(target: str) -> list[Result]:
    base = Result(
        run_id="r",
        check_id="t.check_holds",
        target=target,
        status=Status.FAIL,
        severity=Severity.HIGH,
        message="PermitRootLogin is yes — ünïcode kept",
        title="Root login",
        resource="/etc/ssh/sshd_config",
        evidence=Evidence("sshd -T", "permitrootlogin yes", "yes", "no"),
        frameworks={"cis-debian-12": ("5.1.20",), "nist-800-53": ("AC-6", "IA-2")},
        remediation="Set PermitRootLogin no",
        started=1.5,
        duration=0.1234567,
        metrics={"fs.used_pct:/var": 71.0},
    )
    return [
        base,
        dataclasses.replace(
            base, check_id="t.waived_holds", status=Status.WAIVED, waiver=Waiver("c", "t", "j", "a", "e")
        ),
        # a secret in the evidence and a probe command over the cap: both changed before storing
        dataclasses.replace(
            base,
            check_id="t.secret_holds",
            evidence=Evidence("cat /etc/x; " + "y" * 2000, f"DB_PASSWORD={SECRET}", "", ""),
        ),
        dataclasses.replace(base, check_id="t.pass_holds", status=Status.PASS, frameworks={}, metrics={}),
    ]


def _stored_bodies(store: Store, run_id: str) -> list[str]:
    lines = (store.run_dir(run_id) / "results.jsonl").read_text(encoding="utf-8").splitlines()
    return [split_chained(line)[0] for line in lines]  # type: ignore[index]


@pytest.mark.parametrize("stream_class", [JsonRunStream, JsonLinesStream])
def test_each_result_is_converted_once_for_store_and_stdout(tmp_path, monkeypatch, stream_class):
    """Was: to_dict twice per result (the store line, then the stdout stream) and json.dumps twice."""
    calls = []
    to_json = Result.to_json

    def counting(self: Result) -> str:
        calls.append(self.check_id)
        return to_json(self)

    monkeypatch.setattr(Result, "to_json", counting)
    out: list[str] = []
    store = Store(tmp_path)
    session = RunSession(store, Run(id="r", kind="audit", started=0.0), stream=stream_class(out.append))
    hosts = ["a", "b", "c"]
    done = session.execute([type("O", (), {"results": _results(h)})() for h in hosts])
    assert done.tally.total == 12
    assert len(calls) == 12, f"{len(calls)} to_json calls for 12 results"
    text = "".join(out)
    printed = json.loads(text)["results"] if stream_class is JsonRunStream else text.splitlines()[:-1]
    printed = [json.loads(p) if isinstance(p, str) else p for p in printed]
    stored = [json.loads(b) for b in _stored_bodies(store, "r")]
    assert printed == stored  # what stdout shows is what the store holds
    assert SECRET not in text and REDACTED in text
    assert all(len(p["evidence"]["source"]) <= EVIDENCE_CAP for p in printed)


def test_stdout_document_is_the_same_document_as_before(tmp_path):
    """The live --format json document, parsed, equals the document built from the stored results
    (the plain-data builder, run_document) and validates against the schema."""
    from itops.report.jsondoc import run_document

    out: list[str] = []
    store = Store(tmp_path)
    session = RunSession(store, Run(id="r", kind="audit", started=0.0, planned={"a": 4, "z": 3}))
    session.stream = JsonRunStream(out.append)
    session.execute([type("O", (), {"results": _results("a")})()])
    doc = json.loads("".join(out))
    jsonschema.Draft202012Validator(load_schema()).validate(doc)
    expected = run_document(store.get_run("r"), store.results("r"))
    assert doc == expected


def test_stored_results_carry_the_text_each_was_stored_as(tmp_path):
    store = Store(tmp_path)
    writer = store.begin(Run(id="r", kind="audit", started=0.0))
    stored = writer.add_many(_results("a"))
    writer.finish("complete", 1)
    assert isinstance(stored, StoredResults) and len(stored.texts) == len(stored) == 4
    assert stored.texts == _stored_bodies(store, "r")
    assert [json.loads(t) for t in stored.texts] == [r.to_dict() for r in stored]
    assert stored[0] is not None and stored.texts[0] == stored[0].to_json()
    assert writer.add_many([]) == [] and writer.add_many([]).texts == []


@pytest.mark.parametrize(
    "value",
    [
        {"a": 'é \u2028 \x00 "quoted" \\', "b": [1, 2.5, -0.0, 1e300, None, True, False], "c": {"d": ()}},
        {"nan": math.nan, "inf": math.inf, "big": 10**30, "nested": [[{"x": "y"}]]},
        [],
        "text",
    ],
)
def test_compact_json_is_what_json_dumps_gives(value):
    assert compact_json(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def test_compact_json_refuses_what_json_refuses():
    with pytest.raises(TypeError):
        compact_json({"a": object()})


def test_redact_result_copies_only_what_changes():
    """Nothing to redact or cap: the result itself, even when its texts equal ones already seen in
    the memo as other objects (the next host's copy); a change: one copy equal to what
    dataclasses.replace would give."""
    memo: dict[str, str] = {}
    clean = _results("a")[0]
    assert redact_result(clean, memo) is clean
    again = dataclasses.replace(
        clean,
        message="".join(list(clean.message)),  # equal text, another object
        evidence=Evidence(*("".join(list(t)) for t in dataclasses.astuple(clean.evidence))),
    )
    assert again.message is not clean.message
    assert redact_result(again, memo) is again
    assert redact_result(again) is again

    register_secret(SECRET)
    dirty = dataclasses.replace(clean, message=f"token {SECRET}", resource=f"/x/{SECRET}")
    for m in (memo, None):
        out = redact_result(dirty, m)
        assert out == dataclasses.replace(dirty, message=f"token {REDACTED}", resource=f"/x/{REDACTED}")
        assert out.evidence is dirty.evidence  # unchanged evidence is not copied
    long = dataclasses.replace(clean, evidence=Evidence("c" * 3000, "e", "o", "x"))
    capped = redact_result(long, memo)
    assert len(capped.evidence.source) <= EVIDENCE_CAP and capped.evidence.excerpt == "e"
    assert type(capped) is Result and capped.message is clean.message


def test_redact_gives_back_the_text_itself_and_remembers_long_commands_within_bounds():
    """Unchanged texts come back as the same object (so redact_result copies nothing); probe commands
    of a few KB (the package checks' are over 2 KB) are remembered across hosts like short texts;
    what is remembered stays under _CACHE_CHARS characters."""
    from itops import redact as mod

    command = "for f in /etc/*; do stat -c '%a %U' \"$f\"; done; " * 60  # ~3 KB, no secret in it
    fresh = "".join(list(command))
    assert mod.redact(command) is command and mod.redact(fresh) is fresh
    assert command in mod._cache
    for i in range(2 * mod._CACHE_CHARS // mod._CACHE_TEXT):  # twice what may be held
        mod.redact(f"{i} " + "z" * (mod._CACHE_TEXT - 10))
        assert mod._cache_chars <= mod._CACHE_CHARS
    assert sum(len(k) + len(v) for k, v in mod._cache.items()) == mod._cache_chars


def test_cap_remembers_its_cuts_within_bounds():
    from itops import redact as mod

    command = "x" * 3000
    cut = mod.cap(command, EVIDENCE_CAP)
    assert len(cut) == EVIDENCE_CAP and cut.endswith("…[truncated]")
    assert mod.cap("".join(list(command)), EVIDENCE_CAP) is cut  # the next host's copy: no new cut
    for i in range(mod._CUTS_ENTRIES + 5):
        mod.cap(f"{i}" + "y" * 2000, EVIDENCE_CAP)
        assert len(mod._cuts) <= mod._CUTS_ENTRIES
    huge = "z" * (mod._CACHE_TEXT + 1)
    assert mod.cap(huge, 100) == "z" * (100 - len(" …[truncated]")) + " …[truncated]"
    assert (huge, 100) not in mod._cuts


def test_streams_still_take_plain_results_and_other_streams_get_result_objects(tmp_path):
    """The ResultStream contract holds for outputs that are not the store's (a plugin's stream, a
    list of results built elsewhere): plain sequences are encoded by the stream itself, and a stream
    fed by the session gets Result objects (the redacted ones) besides the texts."""
    plain = _results("a")[:2]
    out: list[str] = []
    JsonLinesStream(out.append).add(plain)
    assert [json.loads(line) for line in "".join(out).splitlines()] == [r.to_dict() for r in plain]

    seen: list[Result] = []

    class Collect:
        def start(self, run: Run) -> None:
            pass

        def add(self, results) -> None:
            seen.extend(results)

        def finish(self, run: Run, tally) -> None:
            pass

    RunSession(Store(tmp_path), Run(id="r", kind="audit", started=0.0), stream=Collect()).execute(
        [type("O", (), {"results": _results("b")})()]
    )
    assert all(isinstance(r, Result) for r in seen) and len(seen) == 4
    assert all(SECRET not in r.evidence.excerpt for r in seen)


_TEXTS = ["", "plain", 'é \u2028 \x00\x1f\x7f "q" \\ \n\t', "ssh.root_login_disabled", "/etc/ssh/sshd_config", "😀"]


def _random_result(rng: random.Random) -> Result:
    def text() -> str:
        if rng.random() < 0.5:
            return rng.choice(_TEXTS)
        return "".join(rng.choice('ab "\\\n\x01é€😀\u2028/:') for _ in range(rng.randrange(12)))

    frameworks = rng.choice(
        [{}, {"cis-debian-12": ("5.1.20",), "nist-800-53": ("AC-6", "IA-2")}, {text(): (text(), text())}]
    )
    waiver = (
        None
        if rng.random() < 0.7
        else Waiver(check=text(), target=text(), justification=text(), approver=text(), expires="2027-01-01")
    )
    return Result(
        run_id=rng.choice(["r1", "20261207T040000Z-abcdef", text()]),
        check_id=rng.choice(_TEXTS),
        target=text(),
        status=rng.choice(list(Status)),
        severity=rng.choice(list(Severity)),
        title=text(),
        message=text(),
        resource=text(),
        evidence=Evidence(source=text(), excerpt=text(), observed=text(), expected=text()),
        frameworks=frameworks,
        remediation=text(),
        started=rng.choice([0.0, 1765080000.123456, 1e-7, 1e22, -0.0, rng.random() * 2e9]),
        duration=rng.choice([0.0, 0.000123, 1.2e-5, 12.5, rng.random()]),
        waiver=waiver,
        metrics=rng.choice([{}, {"fs.used_pct:/var": 71.0, "n": 3}]),
    )


def test_result_json_is_exactly_compact_json_of_to_dict():
    """Result.to_json builds its text from remembered parts: the text must be what json gives."""
    rng = random.Random(20261207)
    for _ in range(20_000):
        r = _random_result(rng)
        assert _fast_result_json(r) == compact_json(r.to_dict()), r  # the fast path itself, no fallback
        assert r.to_json() == compact_json(r.to_dict())


@pytest.mark.parametrize(
    "changes",
    [
        {"started": math.nan},
        {"duration": math.inf},
        {"started": 17},  # an int time
        {"target": None},  # not a str
        {"metrics": {"x": math.nan}},
        {"waiver": Waiver("c", "t", "j", "a", "2027-01-01", ticket='T-"1"')},
    ],
)
def test_result_json_of_unusual_values_is_still_compact_json(changes):
    r = dataclasses.replace(_random_result(random.Random(1)), **changes)
    assert r.to_json() == compact_json(r.to_dict())


def test_result_json_notices_frameworks_changed_in_place():
    frameworks = {"cis-debian-12": ["5.1.20"]}
    r = dataclasses.replace(_random_result(random.Random(2)), frameworks=frameworks)
    assert '"frameworks":{"cis-debian-12":["5.1.20"]}' in r.to_json()
    frameworks["cis-debian-12"].append("5.1.21")
    frameworks["iso-27001"] = ["A.8.5"]
    assert r.to_json() == compact_json(r.to_dict())
    assert '"iso-27001":["A.8.5"]' in r.to_json()


def test_result_json_tables_stay_bounded():
    from itops import model

    rng = random.Random(3)
    base = _random_result(rng)
    for n in range(3 * model._TABLE_MAX):
        r = dataclasses.replace(base, target=f"host-{n}", resource="/x" * 300, check_id=f"c{n}")
        assert r.to_json() == compact_json(r.to_dict())
    assert len(model._strings) <= model._TABLE_MAX and len(model._heads) <= model._TABLE_MAX
    assert "/x" * 300 not in model._strings  # a long text is encoded, not kept
