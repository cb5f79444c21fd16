"""Waivers: accepted risks that turn a FAIL into WAIVED until the day they expire.

A waiver comes from the inventory's ``waivers:`` list or from a separate YAML file of
the same shape (``waivers: [...]`` or a bare list), validated with the same rules and
messages as the inventory (file, line, key path; unknown keys are errors; ``expires``
is required)::

    waivers:
      - {check: "ssh.*", target: "group:legacy", justification: "...", approver: "...",
         ticket: OPS-123, expires: 2027-01-31}

``check`` is a glob over check ids. ``target`` is a glob over the result's target (host,
backup id, cloud target) or its resource (e.g. a bucket ARN); ``group:NAME``,
``site:NAME`` and ``tag:NAME`` (NAME may be a glob) match the inventory's hosts in that
group (child groups included), site or tag.

:meth:`WaiverSet.apply` turns a FAIL covered by an unexpired waiver into WAIVED with the
waiver attached; an expired waiver never applies. :meth:`WaiverSet.report` sorts the
waivers into active, expired and stale (matching nothing in the run). Only FAIL is ever
waived: ERROR and UNREACHABLE mean "not assessed", which no waiver can cover.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from itops.errors import ConfigError, ConfigProblem
from itops.inventory import Inventory, WaiverRule
from itops.model import Result, Status, Waiver
from itops.yamlload import raise_if_problems, read_yaml, validate_model

_LABEL_KINDS = ("group", "site", "tag")
STATES = ("active", "expired", "stale")


def _error(problems: list[ConfigProblem]) -> ConfigError:
    return ConfigError(problems, what="waivers file")


def read_waiver_file(path: str | Path) -> list[WaiverRule]:
    """Rules of a separate waivers file; raise :class:`ConfigError` listing every problem."""
    doc = read_yaml(path, _error)
    problems = list(doc.problems)
    items: list[Any] = []
    prefix: tuple[str, ...] = ()
    if not problems:
        if isinstance(doc.data, list):
            items = doc.data
        elif isinstance(doc.data, dict):
            unknown = sorted(set(map(str, doc.data)) - {"version", "waivers"})
            for key in unknown:
                problems.append(ConfigProblem(doc.file, doc.lines.nearest((key,)), key, f"unknown key {key!r}"))
            raw = doc.data.get("waivers")
            items, prefix = ([] if raw is None else raw), ("waivers",)
            if not isinstance(items, list):
                line = doc.lines.nearest(("waivers",))
                problems.append(ConfigProblem(doc.file, line, "waivers", "expected a list of waivers"))
                items = []
        elif doc.data is not None:
            problems.append(ConfigProblem(doc.file, 1, "", "expected a list of waivers or a mapping with `waivers:`"))
    rules: list[WaiverRule] = []
    for i, item in enumerate(items):
        where: tuple[str | int, ...] = (*prefix, i)
        rule, more = validate_model(WaiverRule, item, file=doc.file, lines=doc.lines, prefix=where)
        problems += more
        if rule is not None:
            name = f"{Path(doc.file).name}[{i}]"
            rules.append(rule.model_copy(update={"name": name, "line": doc.lines.nearest(where)}))
    raise_if_problems(problems, _error)
    return rules


@dataclass(frozen=True)
class WaiverEntry:
    """One waiver rule and where it was written."""

    rule: WaiverRule
    source: str  # the file it came from

    @property
    def where(self) -> str:
        return f"{self.source}:{self.rule.line}" if self.rule.line else self.source

    def to_waiver(self) -> Waiver:
        """The waiver as attached to a result (and shown in reports)."""
        r = self.rule
        return Waiver(r.check, r.target, r.justification, r.approver, r.expires.isoformat(), r.ticket or "")


@dataclass(frozen=True)
class WaiverUse:
    """A waiver's standing in one run: how many results it matched and how many it waived."""

    entry: WaiverEntry
    state: str  # active | expired | stale
    matched: int  # results of the run whose check and target it covers (any status)
    waived: int  # FAIL results it turned into WAIVED (for an expired one: would have)
    days_left: int  # until (and including) the expiry day; negative once expired

    def to_dict(self) -> dict[str, Any]:
        r = self.entry.rule
        return {
            "check": r.check,
            "target": r.target,
            "justification": r.justification,
            "approver": r.approver,
            "ticket": r.ticket or "",
            "expires": r.expires.isoformat(),
            "source": self.entry.where,
            "state": self.state,
            "matched": self.matched,
            "waived": self.waived,
            "days_left": self.days_left,
        }


class WaiverSet:
    """The waivers in force for one run, and the inventory labels ``group:``/``site:``/``tag:`` need."""

    def __init__(
        self,
        entries: Sequence[WaiverEntry],
        today: date | None = None,
        host_labels: Mapping[str, Mapping[str, Sequence[str]]] | None = None,
    ) -> None:
        self.entries = tuple(entries)
        self.today = today or date.today()
        self.host_labels = dict(host_labels or {})

    @classmethod
    def load(
        cls, inventory: Inventory | None, extra_file: str | Path | None = None, today: date | None = None
    ) -> WaiverSet:
        """The inventory's waivers followed by those of ``extra_file`` (inventory ones win ties)."""
        entries: list[WaiverEntry] = []
        labels: dict[str, dict[str, Sequence[str]]] = {}
        if inventory is not None:
            entries += [WaiverEntry(rule, str(inventory.path)) for rule in inventory.waivers]
            for h in inventory.hosts.values():
                labels[h.name] = {"group": h.groups, "site": (h.site,) if h.site else (), "tag": h.tags}
        if extra_file is not None:
            entries += [WaiverEntry(rule, str(extra_file)) for rule in read_waiver_file(extra_file)]
        return cls(entries, today=today, host_labels=labels)

    def __len__(self) -> int:
        return len(self.entries)

    def expired(self, entry: WaiverEntry) -> bool:
        return entry.rule.expired(self.today)

    def days_left(self, entry: WaiverEntry) -> int:
        return (entry.rule.expires - self.today).days

    def matches(self, entry: WaiverEntry, result: Result) -> bool:
        """Does ``entry`` cover ``result``'s check and target (whatever its status and expiry)?"""
        rule = entry.rule
        if not fnmatch.fnmatchcase(result.check_id, rule.check):
            return False
        kind, sep, pattern = rule.target.partition(":")
        if sep and kind in _LABEL_KINDS:
            values = self.host_labels.get(result.target, {}).get(kind, ())
            return any(fnmatch.fnmatchcase(v, pattern) for v in values)
        if fnmatch.fnmatchcase(result.target, rule.target):
            return True
        return bool(result.resource) and fnmatch.fnmatchcase(result.resource, rule.target)

    def waiver_for(self, result: Result) -> WaiverEntry | None:
        """The first unexpired waiver covering ``result`` (in file order), if any."""
        for entry in self.entries:
            if not self.expired(entry) and self.matches(entry, result):
                return entry
        return None

    def apply(self, result: Result) -> Result:
        """A FAIL covered by a valid waiver becomes WAIVED with the waiver attached; others unchanged."""
        if result.status is not Status.FAIL:
            return result
        entry = self.waiver_for(result)
        if entry is None:
            return result
        return replace(result, status=Status.WAIVED, waiver=entry.to_waiver())

    def apply_all(self, results: Iterable[Result]) -> list[Result]:
        return [self.apply(r) for r in results]

    def report(self, results: Iterable[Result]) -> dict[str, list[WaiverUse]]:
        """Each waiver as ``active``, ``expired`` or ``stale`` (matching no result of the run).

        ``results`` may be before or after :meth:`apply`: a WAIVED result counts for the
        waiver attached to it, a FAIL for the waiver that would waive it.
        """
        usage = self.usage()
        for r in results:
            usage.add(r)
        return usage.report()

    def usage(self) -> WaiverUsage:
        """Counters of what each waiver matched, fed one result at a time (a streaming run keeps these,
        not its results, for the waiver warnings at the end)."""
        return WaiverUsage(self)

    def _waived_by(self, entry: WaiverEntry, r: Result) -> bool:
        if r.status is Status.WAIVED:
            return r.waiver == entry.to_waiver()
        return r.status is Status.FAIL and self.waiver_for(r) is entry

    def in_selection(
        self, entry: WaiverEntry, planned: Mapping[str, Iterable[str]], clouds: Iterable[str] = ()
    ) -> bool:
        """Could ``entry`` have matched anything this run covered?

        ``planned`` maps each target the run covered (host or cloud account name) to the check ids
        run on it; ``clouds`` names the inventory's cloud accounts. A waiver is outside the run when
        its check ran nowhere, or when the inventory targets it names were all left out (or ran none
        of its checks). A target naming nothing in the inventory (a resource ARN, a typo) is judged
        by the results as before.
        """
        rule = entry.rule
        covers = {t: [c for c in ids if fnmatch.fnmatchcase(c, rule.check)] for t, ids in planned.items()}
        if not any(covers.values()):
            return False
        kind, sep, pattern = rule.target.partition(":")
        if sep and kind in _LABEL_KINDS:
            known = [
                h
                for h, labels in self.host_labels.items()
                if any(fnmatch.fnmatchcase(v, pattern) for v in labels.get(kind, ()))
            ]
        else:
            known = [t for t in (*self.host_labels, *clouds) if fnmatch.fnmatchcase(t, rule.target)]
        if not known:
            return True
        return any(covers.get(t) for t in known)

    def warnings(
        self,
        results: Iterable[Result] | WaiverUsage,
        planned: Mapping[str, Iterable[str]] | None = None,
        clouds: Iterable[str] = (),
    ) -> list[str]:
        """One line per expired or stale waiver, for the end of ``itops audit`` (stderr).

        With ``planned`` (target -> check ids the run covered, see :meth:`in_selection`), a waiver
        outside a ``--limit``/``--checks`` selection is not called stale: it could not match.
        """
        report = results.report() if isinstance(results, WaiverUsage) else self.report(results)
        if planned is not None:
            report["stale"] = [u for u in report["stale"] if self.in_selection(u.entry, planned, clouds)]
        lines = []
        for u in report["expired"]:
            r = u.entry.rule
            hit = f": {u.waived} failure(s) no longer waived" if u.waived else ""
            lines.append(f"waiver {r.check} on {r.target} ({u.entry.where}) expired on {r.expires.isoformat()}{hit}")
        for u in report["stale"]:
            r = u.entry.rule
            lines.append(f"waiver {r.check} on {r.target} ({u.entry.where}) matches no result of this run (stale)")
        return lines

    def expiring(self, within_days: int) -> list[WaiverEntry]:
        """Waivers that expire within ``within_days`` days from today, expired ones included, soonest first."""
        limit = self.today + timedelta(days=within_days)
        return sorted((e for e in self.entries if e.rule.expires <= limit), key=lambda e: e.rule.expires)


class WaiverUsage:
    """What each waiver of a :class:`WaiverSet` matched and waived so far (see :meth:`WaiverSet.report`)."""

    def __init__(self, waivers: WaiverSet) -> None:
        self.waivers = waivers
        self._expired = [waivers.expired(e) for e in waivers.entries]
        self.matched = [0] * len(waivers.entries)
        self.waived = [0] * len(waivers.entries)

    def add(self, r: Result) -> None:
        ws = self.waivers
        for i, entry in enumerate(ws.entries):
            if not ws.matches(entry, r):
                continue
            self.matched[i] += 1
            if self._expired[i]:
                self.waived[i] += r.status is Status.FAIL
            else:
                self.waived[i] += ws._waived_by(entry, r)

    def report(self) -> dict[str, list[WaiverUse]]:
        out: dict[str, list[WaiverUse]] = {state: [] for state in STATES}
        ws = self.waivers
        for i, entry in enumerate(ws.entries):
            state = "expired" if self._expired[i] else "active" if self.matched[i] else "stale"
            out[state].append(WaiverUse(entry, state, self.matched[i], self.waived[i], ws.days_left(entry)))
        return out
