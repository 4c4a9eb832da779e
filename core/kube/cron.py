"""Cron schedules as Kubernetes' CronJob reads them (robfig/cron's standard parser): five fields and the @ names.

`minute hour day-of-month month day-of-week`, each a `*`, a number, a range
`a-b`, a list `a,b`, a step `*/n` or `a-b/n`, month and weekday names (`JAN`,
`MON`), `?` as `*` in the day fields, day-of-week 7 as Sunday; and `@yearly`
(`@annually`), `@monthly`, `@weekly`, `@daily` (`@midnight`), `@hourly`. As in
cron, when both day fields are restricted a time matches either. A `TZ=` or
`CRON_TZ=` prefix is refused: Kubernetes takes the zone from `spec.timeZone`.
`next_after(t)` is the first matching minute strictly after `t`, in `t`'s zone.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

_NAMED = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
          "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
_MONTHS = {m: i + 1 for i, m in enumerate(["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT",
                                           "NOV", "DEC"])}
_DAYS = {d: i for i, d in enumerate(["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"])}
_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_FIELDS = ("minute", "hour", "day of month", "month", "day of week")


class CronError(ValueError):
    """A schedule that does not parse; the message says which part."""


@dataclass(frozen=True)
class Schedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    days_star: bool
    weekdays_star: bool

    def matches(self, t: dt.datetime) -> bool:
        if t.minute not in self.minutes or t.hour not in self.hours or t.month not in self.months:
            return False
        day_ok, weekday_ok = t.day in self.days, (t.isoweekday() % 7) in self.weekdays
        if self.days_star or self.weekdays_star:
            return day_ok and weekday_ok
        return day_ok or weekday_ok

    def next_after(self, t: dt.datetime, limit_years: int = 5) -> dt.datetime | None:
        """The first matching minute after `t` (None if there is none within `limit_years`: `0 0 30 2 *`)."""
        cur = (t.replace(second=0, microsecond=0) + dt.timedelta(minutes=1))
        end = t + dt.timedelta(days=366 * limit_years)
        while cur <= end:
            if cur.month not in self.months:
                year, month = (cur.year + 1, 1) if cur.month == 12 else (cur.year, cur.month + 1)
                cur = cur.replace(year=year, month=month, day=1, hour=0, minute=0)
                continue
            day_ok = cur.day in self.days
            weekday_ok = (cur.isoweekday() % 7) in self.weekdays
            ok = (day_ok and weekday_ok) if (self.days_star or self.weekdays_star) else (day_ok or weekday_ok)
            if not ok:
                cur = (cur + dt.timedelta(days=1)).replace(hour=0, minute=0)
                continue
            if cur.hour not in self.hours:
                cur = (cur + dt.timedelta(hours=1)).replace(minute=0)
                continue
            if cur.minute not in self.minutes:
                cur += dt.timedelta(minutes=1)
                continue
            return cur
        return None


def _value(text: str, index: int) -> int:
    names = _MONTHS if index == 3 else _DAYS if index == 4 else {}
    if text.upper() in names:
        return names[text.upper()]
    if not text.isdigit():
        raise CronError(f"failed to parse int from {text}: strconv.Atoi: parsing {text!r}: invalid syntax")
    return int(text)


def _field(text: str, index: int) -> tuple[frozenset[int], bool]:
    low, high = _BOUNDS[index]
    out: set[int] = set()
    star = False
    for part in text.split(","):
        if not part:
            raise CronError(f"empty part in the {_FIELDS[index]} field")
        base, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"invalid step in {part!r}")
            step = int(step_text)
        if base in ("*", "?"):
            start, end = low, high
            star = star or not step_text
        elif "-" in base:
            a, _, b = base.partition("-")
            start, end = _value(a, index), _value(b, index)
        else:
            start = _value(base, index)
            end = high if step_text else start
        if start < low or end > high:
            raise CronError(f"end of range ({end}) above maximum ({high}): {part}" if end > high
                            else f"beginning of range ({start}) below minimum ({low}): {part}")
        if start > end:
            raise CronError(f"beginning of range ({start}) beyond end of range ({end}): {part}")
        out.update(range(start, end + 1, step))
    if index == 4 and 7 in out:
        out.discard(7)
        out.add(0)
    return frozenset(out), star


def parse(text: str) -> Schedule:
    spec = text.strip()
    if spec.upper().startswith(("TZ=", "CRON_TZ=")):
        raise CronError("TZ and CRON_TZ are not supported in the schedule; use spec.timeZone")
    if spec.startswith("@"):
        if spec not in _NAMED:
            raise CronError(f"unrecognized descriptor: {spec}")
        spec = _NAMED[spec]
    fields = spec.split()
    if len(fields) != 5:
        raise CronError(f"expected exactly 5 fields, found {len(fields)}: {text}")
    parsed = [_field(f, i) for i, f in enumerate(fields)]
    return Schedule(parsed[0][0], parsed[1][0], parsed[2][0], parsed[3][0], parsed[4][0], parsed[2][1], parsed[4][1])
