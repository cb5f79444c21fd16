"""Cron expressions: 5 fields (crontab) or 6 with seconds first, parsed into the allowed values of each field.

Day-of-week numbers follow crontab (0 and 7 are Sunday), not apscheduler (whose 0 is Monday);
:meth:`CronSpec.trigger_fields` hands apscheduler day names so both agree. Restricting both
day-of-month and day-of-week is refused: crontab ORs them, apscheduler and systemd AND them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTHS = {m: i for i, m in enumerate(_MONTH_NAMES, start=1)}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
#: field name, lowest, highest, names
_FIELDS: tuple[tuple[str, int, int, Mapping[str, int]], ...] = (
    ("second", 0, 59, {}),
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),
)


@dataclass(frozen=True)
class CronSpec:
    """A parsed cron expression: the allowed values of each field (day of week 0 = Sunday)."""

    expression: str
    second: tuple[int, ...]
    minute: tuple[int, ...]
    hour: tuple[int, ...]
    day: tuple[int, ...]
    month: tuple[int, ...]
    day_of_week: tuple[int, ...]
    any_day: bool  # day of month is '*'
    any_weekday: bool  # day of week is '*'

    def trigger_fields(self) -> dict[str, str]:
        """Keyword arguments for apscheduler's CronTrigger (day-of-week by name: apscheduler's 0 is Monday)."""
        return {
            "second": compact(self.second, 0, 59),
            "minute": compact(self.minute, 0, 59),
            "hour": compact(self.hour, 0, 23),
            "day": "*" if self.any_day else compact(self.day, 1, 31),
            "month": compact(self.month, 1, 12),
            "day_of_week": "*" if self.any_weekday else ",".join(DAY_NAMES[d] for d in self.day_of_week),
        }


def compact(values: tuple[int, ...], low: int, high: int) -> str:
    """Cron text for a set of values: ``*``, ``*/n``, ``a-b`` runs and lists (the same in crontab and apscheduler)."""
    vals = sorted(set(values))
    if vals == list(range(low, high + 1)):
        return "*"
    if len(vals) > 2 and vals[0] == low:
        step = vals[1] - vals[0]
        if vals == list(range(low, high + 1, step)):
            return f"*/{step}"
    out: list[str] = []
    i = 0
    while i < len(vals):
        j = i
        while j + 1 < len(vals) and vals[j + 1] == vals[j] + 1:
            j += 1
        out += [f"{vals[i]}-{vals[j]}"] if j - i >= 2 else [str(v) for v in vals[i : j + 1]]
        i = j + 1
    return ",".join(out)


def _value(text: str, low: int, high: int, names: Mapping[str, int], what: str) -> int:
    key = text.lower()
    if key in names:
        return names[key]
    if not text.isdigit():
        raise ValueError(f"{what} field: {text!r} is not a number" + (" or a name" if names else ""))
    value = int(text)
    if not low <= value <= high:
        raise ValueError(f"{what} field: {value} is outside {low}-{high}")
    return value


def _field(text: str, low: int, high: int, names: Mapping[str, int], what: str) -> set[int]:
    out: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) < 1:
                raise ValueError(f"{what} field: bad step {step_text!r} in {part!r}")
            step = int(step_text)
        if body == "*":
            first, last = low, high
        elif "-" in body:
            a, _, b = body.partition("-")
            first, last = _value(a, low, high, names, what), _value(b, low, high, names, what)
            if first > last:
                raise ValueError(f"{what} field: range {body!r} runs backwards")
        elif body:
            first = _value(body, low, high, names, what)
            last = high if step_text else first
        else:
            raise ValueError(f"{what} field: empty item in {text!r}")
        out.update(range(first, last + 1, step))
    return out


def parse_cron(expression: str) -> CronSpec:
    """Parse a 5-field (crontab) or 6-field (seconds first) cron expression; ValueError says what is wrong."""
    parts = expression.split()
    if len(parts) == 5:
        parts = ["0", *parts]
    elif len(parts) != 6:
        raise ValueError(
            f"cron expression {expression!r} has {len(parts)} fields: use 5 (minute hour day month weekday) "
            "or 6 (second minute hour day month weekday)"
        )
    values = [_field(p, lo, hi, names, what) for p, (what, lo, hi, names) in zip(parts, _FIELDS, strict=True)]
    weekdays = {d % 7 for d in values[5]}
    any_day, any_weekday = parts[3] == "*", parts[5] == "*"
    if not any_day and not any_weekday:
        raise ValueError(
            "restrict day-of-month or day-of-week, not both: crontab runs when EITHER matches, "
            "the scheduler and systemd only when BOTH do"
        )
    return CronSpec(
        expression=" ".join(expression.split()),
        second=tuple(sorted(values[0])),
        minute=tuple(sorted(values[1])),
        hour=tuple(sorted(values[2])),
        day=tuple(sorted(values[3])),
        month=tuple(sorted(values[4])),
        day_of_week=tuple(sorted(weekdays)),
        any_day=any_day,
        any_weekday=any_weekday,
    )
