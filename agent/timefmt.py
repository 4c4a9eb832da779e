"""Kubernetes time formats (RFC 3339 seconds for Time, microseconds for MicroTime) and parsing Docker's."""

from __future__ import annotations

import datetime as dt


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def rfc3339(when: dt.datetime | None = None) -> str:
    return (when or now()).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro(when: dt.datetime | None = None) -> str:
    return (when or now()).astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse(text: str | None) -> dt.datetime | None:
    """Kubernetes or Docker timestamps (`2024-01-02T03:04:05.123456789Z`); None for empty or zero."""
    if not text or text.startswith("0001-01-01"):
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
