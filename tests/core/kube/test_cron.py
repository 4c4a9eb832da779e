"""Cron schedules as Kubernetes reads them: fields, names, steps, the @ descriptors, the day-field rule, errors."""

from __future__ import annotations

import datetime as dt

import pytest

from core.kube.cron import CronError, parse

UTC = dt.UTC


def t(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def test_next_times_of_common_schedules() -> None:
    assert parse("*/1 * * * *").next_after(t(2026, 12, 5, 10, 30, 15)) == t(2026, 12, 5, 10, 31)
    assert parse("*/15 * * * *").next_after(t(2026, 12, 5, 10, 30)) == t(2026, 12, 5, 10, 45)
    assert parse("0 3 * * *").next_after(t(2026, 12, 5, 10, 30)) == t(2026, 12, 6, 3, 0)
    assert parse("@hourly").next_after(t(2026, 12, 5, 10, 0)) == t(2026, 12, 5, 11, 0)
    assert parse("@weekly").next_after(t(2026, 12, 5, 10, 0)) == t(2026, 12, 6, 0, 0)  # the 6th is a Sunday
    assert parse("@yearly").next_after(t(2026, 12, 5)) == t(2027, 1, 1)
    assert parse("30 2 1-7 * MON").next_after(t(2026, 12, 5)) == t(2026, 12, 5, 2, 30)  # either day field:
    assert parse("30 2 1-7 * MON").next_after(t(2026, 12, 8)) == t(2026, 12, 14, 2, 30)  # the 1st-7th or a Monday
    assert parse("0 0 * JUN-AUG SAT,SUN").next_after(t(2026, 12, 5)) == t(2027, 6, 5)
    assert parse("0 12 * * 7").next_after(t(2026, 12, 5)) == t(2026, 12, 6, 12, 0)  # 7 is Sunday too
    assert parse("0 0 30 2 *").next_after(t(2026, 1, 1)) is None  # never
    assert parse("5-10/2 * * * *").minutes == frozenset({5, 7, 9})


def test_a_schedule_follows_its_time_zone() -> None:
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    nxt = parse("0 9 * * *").next_after(dt.datetime(2026, 12, 5, 10, 0, tzinfo=berlin))
    assert nxt == dt.datetime(2026, 12, 6, 9, 0, tzinfo=berlin)
    assert nxt is not None and nxt.astimezone(UTC).hour == 8


@pytest.mark.parametrize(("text", "why"), [
    ("61 * * * *", "above maximum (59)"),
    ("* * * *", "expected exactly 5 fields"),
    ("*/0 * * * *", "invalid step"),
    ("5-1 * * * *", "beyond end of range"),
    ("@fortnightly", "unrecognized descriptor"),
    ("TZ=UTC 0 * * * *", "use spec.timeZone"),
    ("x * * * *", "failed to parse int from x"),
])
def test_bad_schedules_say_what_is_wrong(text: str, why: str) -> None:
    with pytest.raises(CronError, match=why.replace("(", r"\(").replace(")", r"\)")):
        parse(text)
