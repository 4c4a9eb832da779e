"""The Raspberry Pi facts an agent publishes on its Node, read back for the status page.

The agent (`agent/kubelet/node.py`) writes them as annotations named in
`core/wellknown.py`:
the board model (`/proc/device-tree/model`), the SoC temperature in °C and the
firmware's `vcgencmd get_throttled` bits as hex. Thresholds follow the Pi's own:
the firmware starts soft throttling at 80 °C (60-70 °C is normal under load).
"""

from __future__ import annotations

import enum
from typing import Any, TypedDict

from core import wellknown

MODEL_ANNOTATION = wellknown.MODEL_ANNOTATION
TEMPERATURE_ANNOTATION = wellknown.TEMPERATURE_ANNOTATION
THROTTLED_ANNOTATION = wellknown.THROTTLED_ANNOTATION

WARM_C = 70.0
HOT_C = 80.0

# vcgencmd get_throttled: bits 0-3 happen now, bits 16-19 have happened since boot.
_FLAGS = {0: "under-voltage", 1: "frequency capped", 2: "throttled", 3: "soft temperature limit"}
_SINCE_BOOT_SHIFT = 16


class Level(enum.StrEnum):
    """How a reading should look: the page colours by it."""

    OK = "ok"
    WARN = "warn"
    BAD = "bad"


class Temperature(TypedDict):
    celsius: float
    level: str


class Flag(TypedDict):
    flag: str
    now: bool


def temperature(annotations: dict[str, Any]) -> Temperature | None:
    """The SoC temperature and its level, or None when the board does not report one."""
    raw = annotations.get(TEMPERATURE_ANNOTATION)
    try:
        celsius = float(raw) if raw is not None else None
    except (TypeError, ValueError):
        return None
    if celsius is None:
        return None
    level = Level.BAD if celsius >= HOT_C else Level.WARN if celsius >= WARM_C else Level.OK
    return {"celsius": round(celsius, 1), "level": level.value}


def throttling(annotations: dict[str, Any]) -> list[Flag]:
    """Firmware flags set on the board: happening now first, then those seen since boot."""
    raw = annotations.get(THROTTLED_ANNOTATION)
    try:
        bits = int(str(raw), 16) if raw is not None else 0
    except ValueError:
        return []
    now = [Flag(flag=name, now=True) for bit, name in _FLAGS.items() if bits & (1 << bit)]
    past = [Flag(flag=name, now=False) for bit, name in _FLAGS.items()
            if bits & (1 << (bit + _SINCE_BOOT_SHIFT)) and not bits & (1 << bit)]
    return now + past


def model(annotations: dict[str, Any]) -> str:
    return str(annotations.get(MODEL_ANNOTATION) or "")
