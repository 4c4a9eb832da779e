"""Kubernetes' two time formats, written once: RFC 3339 to the second (`Time`) and to the microsecond (`MicroTime`).

Every timestamp pikube writes goes through `rfc3339` or `micro`, always in UTC
with a `Z`, as the API server renders `metav1.Time`; `parse` reads them back,
and also Docker's nanosecond timestamps, without raising on what it cannot read
(a controller deciding on a bad timestamp treats it as absent).
"""

from __future__ import annotations

import datetime as dt

When = dt.datetime | float | None


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _utc(when: When) -> dt.datetime:
    if when is None:
        return now()
    if isinstance(when, dt.datetime):
        return when.astimezone(dt.UTC)
    return dt.datetime.fromtimestamp(when, dt.UTC)


def rfc3339(when: When = None) -> str:
    """`when` (a datetime or seconds since the epoch; now when None) as `2024-01-02T03:04:05Z`."""
    return _utc(when).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro(when: When = None) -> str:
    """`when` as a MicroTime, `2024-01-02T03:04:05.123456Z` (Leases' renewTime, events' eventTime)."""
    return _utc(when).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse(text: object) -> dt.datetime | None:
    """Kubernetes or Docker timestamps (`2024-01-02T03:04:05.123456789Z`); None for empty, zero or unreadable."""
    if not isinstance(text, str) or not text or text.startswith("0001-01-01"):
        return None
    t = text.strip().replace("Z", "+00:00")
    if "." in t:  # Docker has nanoseconds; Python takes at most microseconds
        head, frac = t.split(".", 1)
        digits = "".join(ch for ch in frac if ch.isdigit())
        tz = frac[len(digits):]
        t = f"{head}.{digits[:6].ljust(6, '0')}{tz}"
    try:
        parsed = dt.datetime.fromisoformat(t)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
