"""IntOrString values such as a rolling update's `maxSurge: 25%` / `maxUnavailable: 1`.

The Deployment controller turns these into pod counts; Kubernetes rounds the
surge up and the unavailable count down, and if both come to zero it allows
one unavailable pod so a rollout can always make progress. Mirrors
`k8s.io/apimachinery/pkg/util/intstr.GetScaledValueFromIntOrPercent`.
"""

from __future__ import annotations

import re

IntOrString = int | str

_PERCENT = re.compile(r"([+-]?[0-9]+)%")


def is_percent(value: object) -> bool:
    """Whether `value` is a string percentage such as "25%"."""
    return isinstance(value, str) and _PERCENT.fullmatch(value) is not None


def scaled_value(value: IntOrString, total: int, round_up: bool) -> int:
    """An int as is, or a percentage of `total` (rounded up or down); ValueError on anything else.

    A string must be a percentage: "5" is rejected, as Kubernetes rejects it.
    """
    if isinstance(value, bool):
        raise ValueError("invalid value for IntOrString: invalid type: neither int nor percentage")
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        raise ValueError("invalid value for IntOrString: invalid type: neither int nor percentage")
    if not value.endswith("%"):
        raise ValueError("invalid value for IntOrString: invalid type: string is not a percentage")
    match = _PERCENT.fullmatch(value)
    if match is None:
        raise ValueError(f"invalid value for IntOrString: invalid value {value!r}: not an integer percentage")
    scaled = int(match.group(1)) * total
    return -(-scaled // 100) if round_up else scaled // 100


def resolve_fenceposts(max_surge: IntOrString | None, max_unavailable: IntOrString | None,
                       desired: int) -> tuple[int, int]:
    """(surge, unavailable) pod counts for a rolling update of `desired` replicas.

    Missing values count as 0; if both resolve to 0, unavailable becomes 1.
    """
    surge = scaled_value(0 if max_surge is None else max_surge, desired, True)
    unavailable = scaled_value(0 if max_unavailable is None else max_unavailable, desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable
