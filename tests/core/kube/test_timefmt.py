"""The one RFC 3339 formatter: seconds and microseconds in UTC with `Z`, and a lenient parser for ours and Docker's."""

from __future__ import annotations

import datetime as dt

from core.kube import timefmt


def test_formats_any_zone_as_utc_with_z() -> None:
    when = dt.datetime(2024, 1, 2, 5, 4, 5, 123456, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert timefmt.rfc3339(when) == "2024-01-02T03:04:05Z"
    assert timefmt.micro(when) == "2024-01-02T03:04:05.123456Z"


def test_epoch_seconds_are_accepted() -> None:
    assert timefmt.rfc3339(0.0) == "1970-01-01T00:00:00Z"
    assert timefmt.micro(1.5) == "1970-01-01T00:00:01.500000Z"


def test_parse_reads_back_what_it_writes_and_dockers_nanoseconds() -> None:
    when = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert timefmt.parse(timefmt.rfc3339(when)) == when
    assert timefmt.parse("2024-01-02T03:04:05.123456789Z") == when.replace(microsecond=123456)
    assert timefmt.parse("2024-01-02T03:04:05") == when  # no zone: UTC


def test_parse_treats_zero_empty_and_garbage_as_absent() -> None:
    for text in (None, "", "0001-01-01T00:00:00Z", "yesterday", 12):
        assert timefmt.parse(text) is None
