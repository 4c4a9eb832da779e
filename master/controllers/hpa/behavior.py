"""From the metrics' proposal to the replica count the autoscaler sets: stabilisation and rate limits.

Kubernetes' HPA controller does this in two ways, kept apart here as there:

* without `spec.behavior`: the highest recommendation of the last
  `downscale_window` (5 min by default, `--horizontal-pod-autoscaler-downscale-stabilization`)
  is used, so a brief dip never scales down; scaling up is limited to
  max(2 x current, 4) per sync;
* with `spec.behavior` (always set on objects written with one; the defaults
  fill in what it leaves out): scale-up and scale-down each have a stabilisation
  window (the lowest recommendation of the up window, the highest of the down
  window bound the change) and rate policies (`Pods`/`Percent` per
  `periodSeconds`, combined by `selectPolicy` Max/Min, or `Disabled`), counted
  against the scale events of each policy's period.

Every result comes with the `ScalingLimited` condition's reason and message,
and the `AbleToScale` reason when stabilisation held the count back. The
history (recommendations, scale events) is per autoscaler and in memory only,
as in Kubernetes: a master restart forgets it.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

Obj = dict[str, Any]
SCALE_UP_LIMIT_FACTOR = 2.0
SCALE_UP_LIMIT_MINIMUM = 4


@dataclass(frozen=True)
class Limited:
    """The `ScalingLimited` condition: status "True" with the limit's reason, else "False" DesiredWithinRange."""

    status: str
    reason: str
    message: str


WITHIN = Limited("False", "DesiredWithinRange", "the desired count is within the acceptable range")


@dataclass
class History:
    """One autoscaler's recent recommendations and scale changes."""

    recommendations: list[tuple[dt.datetime, int]] = field(default_factory=list)
    scale_ups: list[tuple[dt.datetime, int]] = field(default_factory=list)  # (when, replicas added)
    scale_downs: list[tuple[dt.datetime, int]] = field(default_factory=list)  # (when, replicas removed)

    def record_scale(self, now: dt.datetime, before: int, after: int, keep: dt.timedelta) -> None:
        if after > before:
            self.scale_ups.append((now, after - before))
        elif after < before:
            self.scale_downs.append((now, before - after))
        self.scale_ups = [e for e in self.scale_ups if now - e[0] <= keep]
        self.scale_downs = [e for e in self.scale_downs if now - e[0] <= keep]


@dataclass(frozen=True)
class Decision:
    replicas: int
    limited: Limited
    stabilized: str  # "" or the AbleToScale reason: ScaleUpStabilized / ScaleDownStabilized


def _clamp(desired: int, low: int, high: int) -> tuple[int, Limited]:
    if desired > high:
        return high, Limited("True", "TooManyReplicas", "the desired replica count is more than the maximum "
                                                        "replica count")
    if desired < low:
        return low, Limited("True", "TooFewReplicas", "the desired replica count is less than the minimum "
                                                      "replica count")
    return desired, WITHIN


def without_behavior(history: History, now: dt.datetime, current: int, proposed: int, low: int, high: int,
                     downscale_window: dt.timedelta) -> Decision:
    """Kubernetes' normalizeDesiredReplicas: stabilise downscales, limit upscales, clamp to min/max."""
    cutoff = now - downscale_window
    history.recommendations = [r for r in history.recommendations if r[0] > cutoff]
    stabilized = max([proposed, *(r[1] for r in history.recommendations)])
    history.recommendations.append((now, proposed))
    reason = "ScaleDownStabilized" if stabilized != proposed else ""
    limit = max(int(SCALE_UP_LIMIT_FACTOR * current), SCALE_UP_LIMIT_MINIMUM)
    if high > limit:
        ceiling, over = limit, Limited("True", "ScaleUpLimit", "the desired replica count is increasing faster "
                                                               "than the maximum scale rate")
    else:
        ceiling, over = high, Limited("True", "TooManyReplicas", "the desired replica count is more than the "
                                                                 "maximum replica count")
    if stabilized < low:
        return Decision(low, Limited("True", "TooFewReplicas", "the desired replica count is less than the "
                                                               "minimum replica count"), reason)
    if stabilized > ceiling:
        return Decision(ceiling, over, reason)
    return Decision(stabilized, WITHIN, reason)


def _window(rules: Obj, default: int) -> int:
    value = rules.get("stabilizationWindowSeconds")
    return default if value is None else int(value)


def _changed_in(events: list[tuple[dt.datetime, int]], now: dt.datetime, seconds: int) -> int:
    return sum(n for when, n in events if now - when < dt.timedelta(seconds=seconds))


def scale_up_limit(current: int, history: History, rules: Obj, now: dt.datetime) -> int:
    select = rules.get("selectPolicy") or "Max"
    if select == "Disabled":
        return current
    proposals = []
    for p in rules.get("policies") or []:
        start = current - _changed_in(history.scale_ups, now, int(p["periodSeconds"]))
        if p["type"] == "Pods":
            proposals.append(start + int(p["value"]))
        else:
            proposals.append(math.ceil(start * (1 + int(p["value"]) / 100)))
    if not proposals:
        return current
    return max(proposals) if select == "Max" else min(proposals)


def scale_down_limit(current: int, history: History, rules: Obj, now: dt.datetime) -> int:
    select = rules.get("selectPolicy") or "Max"
    if select == "Disabled":
        return current
    proposals = []
    for p in rules.get("policies") or []:
        start = current + _changed_in(history.scale_downs, now, int(p["periodSeconds"]))
        if p["type"] == "Pods":
            proposals.append(start - int(p["value"]))
        else:
            proposals.append(int(start * (1 - int(p["value"]) / 100)))
    if not proposals:
        return current
    # "Max" is the policy that allows the most change: the lowest count.
    return min(proposals) if select == "Max" else max(proposals)


def with_behavior(history: History, now: dt.datetime, current: int, proposed: int, low: int, high: int,
                  behavior: Obj, downscale_window: dt.timedelta) -> Decision:
    """Kubernetes' normalizeDesiredReplicasWithBehaviors."""
    up_rules, down_rules = behavior.get("scaleUp") or {}, behavior.get("scaleDown") or {}
    up_window = dt.timedelta(seconds=_window(up_rules, 0))
    down_window = dt.timedelta(seconds=_window(down_rules, int(downscale_window.total_seconds())))
    up, down = proposed, proposed
    for when, value in history.recommendations:
        if when > now - up_window:
            up = min(up, value)
        if when > now - down_window:
            down = max(down, value)
    stabilized = max(current, up)
    stabilized = min(stabilized, down)
    keep = max(up_window, down_window)
    history.recommendations = [r for r in history.recommendations if r[0] > now - keep]
    history.recommendations.append((now, proposed))
    reason = ""
    if stabilized != proposed:
        reason = "ScaleUpStabilized" if stabilized < proposed else "ScaleDownStabilized"
    if stabilized > current:
        limit = max(scale_up_limit(current, history, up_rules, now), current)
        if stabilized > min(high, limit):
            if limit < high:
                return Decision(limit, Limited("True", "ScaleUpLimit", "the desired replica count is increasing "
                                                                       "faster than the maximum scale rate"), reason)
            return Decision(high, Limited("True", "TooManyReplicas", "the desired replica count is more than the "
                                                                     "maximum replica count"), reason)
        return Decision(stabilized, WITHIN, reason)
    if stabilized < current:
        limit = min(scale_down_limit(current, history, down_rules, now), current)
        if stabilized < max(low, limit):
            if limit > low:
                return Decision(limit, Limited("True", "ScaleDownLimit", "the desired replica count is decreasing "
                                                                         "faster than the maximum scale rate"), reason)
            return Decision(low, Limited("True", "TooFewReplicas", "the desired replica count is less than the "
                                                                   "minimum replica count"), reason)
        return Decision(stabilized, WITHIN, reason)
    replicas, limited = _clamp(stabilized, low, high)
    return Decision(replicas, limited, reason)
