"""One step of a Deployment's rollout: rolling update, recreate, proportional scaling, history cleanup.

The arithmetic is Kubernetes': the new ReplicaSet grows while the total stays
within `replicas + maxSurge`; old ones shrink while the available pods stay at
or above `replicas - maxUnavailable` (unhealthy old replicas go first, so a
broken old version cannot block a rollout). Recreate scales everything old to
zero and waits for its pods to be gone before the new ReplicaSet grows.
"""

from __future__ import annotations

import math
from typing import Any

from master.controllers.deployment.rscontrol import RSControl
from master.controllers.deployment.status import sync_rollout
from master.controllers.deployment.util import (
    MAX_REPLICAS,
    available,
    is_complete,
    max_surge,
    max_unavailable,
    new_rs_replicas,
    replicas,
    revision,
    status_of,
)
from master.controllers.podutil import meta

Obj = dict[str, Any]


def _by_age(sets: list[Obj]) -> list[Obj]:
    return sorted(sets, key=lambda rs: (meta(rs).get("creationTimestamp", ""), meta(rs).get("name", "")))


def rolling(rsc: RSControl, d: Obj, sets: list[Obj]) -> None:
    new_rs, old_sets = rsc.new_and_old(d, sets, create=True)
    assert new_rs is not None
    if _reconcile_new(rsc, d, [*old_sets, new_rs], new_rs) or _reconcile_old(rsc, d, old_sets, new_rs):
        sync_rollout(rsc, d, new_rs, old_sets)
        return
    if is_complete(d, d.get("status") or {}):
        cleanup(rsc, d, old_sets)
    sync_rollout(rsc, d, new_rs, old_sets)


def _reconcile_new(rsc: RSControl, d: Obj, all_sets: list[Obj], new_rs: Obj) -> bool:
    want = replicas(d)
    if replicas(new_rs) == want:
        return False
    target = want if replicas(new_rs) > want else new_rs_replicas(d, all_sets, new_rs)
    scaled, updated = rsc.scale_rs(d, new_rs, target)
    new_rs.update(updated)
    return scaled


def _reconcile_old(rsc: RSControl, d: Obj, old_sets: list[Obj], new_rs: Obj) -> bool:
    active_old = [rs for rs in old_sets if replicas(rs) > 0]
    if not active_old:
        return False
    all_pods = sum(replicas(rs) for rs in [*old_sets, new_rs])
    min_available = replicas(d) - max_unavailable(d)
    new_unavailable = replicas(new_rs) - available(new_rs)
    budget = all_pods - min_available - new_unavailable
    if budget <= 0:
        return False
    cleaned = 0
    for rs in _by_age(active_old):  # unhealthy old replicas first
        unhealthy = replicas(rs) - available(rs)
        if cleaned >= budget or unhealthy <= 0:
            continue
        n = min(budget - cleaned, unhealthy)
        _, updated = rsc.scale_rs(d, rs, replicas(rs) - n)
        rs.update(updated)
        cleaned += n
    scaled_down = 0
    can_remove = sum(available(rs) for rs in [*old_sets, new_rs]) - min_available
    for rs in _by_age(active_old):
        if scaled_down >= can_remove:
            break
        if replicas(rs) == 0:
            continue
        n = min(replicas(rs), can_remove - scaled_down)
        _, updated = rsc.scale_rs(d, rs, replicas(rs) - n)
        rs.update(updated)
        scaled_down += n
    return cleaned + scaled_down > 0


def recreate(rsc: RSControl, d: Obj, sets: list[Obj]) -> None:
    new_rs, old_sets = rsc.new_and_old(d, sets, create=False)
    scaled = False
    for rs in old_sets:
        if replicas(rs) > 0:
            s, updated = rsc.scale_rs(d, rs, 0)
            rs.update(updated)
            scaled = scaled or s
    if scaled or rsc.old_pods_running(new_rs, old_sets):
        sync_rollout(rsc, d, new_rs, old_sets)
        return
    if new_rs is None:
        new_rs, old_sets = rsc.new_and_old(d, sets, create=True)
        assert new_rs is not None
    if replicas(new_rs) != replicas(d):
        _, updated = rsc.scale_rs(d, new_rs, replicas(d))
        new_rs.update(updated)
    if is_complete(d, d.get("status") or {}):
        cleanup(rsc, d, old_sets)
    sync_rollout(rsc, d, new_rs, old_sets)


def scale(rsc: RSControl, d: Obj, new_rs: Obj | None, old_sets: list[Obj]) -> None:
    """A scaling event (or a paused deployment): resize the ReplicaSets, proportionally when several are active."""
    want = replicas(d)
    everything = [*old_sets, *([new_rs] if new_rs is not None else [])]
    active = [rs for rs in everything if replicas(rs) > 0]
    if len(active) <= 1:
        target = active[0] if active else (new_rs or (_by_age(old_sets)[-1] if old_sets else None))
        if target is not None and replicas(target) != want:
            rsc.scale_rs(d, target, want)
        return
    if new_rs is not None and replicas(new_rs) == want and status_of(new_rs, "availableReplicas") == want:
        for rs in old_sets:
            if replicas(rs) > 0:
                rsc.scale_rs(d, rs, 0)
        return
    allowed = want + max_surge(d) if want > 0 else 0
    to_add = allowed - sum(replicas(rs) for rs in active)
    if to_add == 0:
        return
    # Grow the largest (newest on ties) first; shrink the largest (oldest on ties) first.
    order = sorted(active, key=lambda rs: (replicas(rs), meta(rs).get("creationTimestamp", "")), reverse=True) \
        if to_add > 0 else sorted(active, key=lambda rs: (-replicas(rs), meta(rs).get("creationTimestamp", "")))
    sizes = {}
    added = 0
    for rs in order:
        part = _proportion(d, rs, to_add, added)
        sizes[rs["metadata"]["name"]] = replicas(rs) + part
        added += part
    first = order[0]["metadata"]["name"]
    sizes[first] = max(sizes[first] + to_add - added, 0)
    for rs in order:
        rsc.scale_rs(d, rs, sizes[rs["metadata"]["name"]])


def _proportion(d: Obj, rs: Obj, to_add: int, added: int) -> int:
    if replicas(rs) == 0 or to_add == added:
        return 0
    if replicas(d) == 0:
        fraction = -replicas(rs)
    else:
        before = int((meta(rs).get("annotations") or {}).get(MAX_REPLICAS) or 0) or status_of(d, "replicas")
        new_max = replicas(d) + max_surge(d)
        fraction = math.floor(replicas(rs) * new_max / before + 0.5) - replicas(rs) if before else 0
    allowed = to_add - added
    return min(fraction, allowed) if to_add > 0 else max(fraction, allowed)


def cleanup(rsc: RSControl, d: Obj, old_sets: list[Obj]) -> None:
    """Delete the oldest empty ReplicaSets beyond `revisionHistoryLimit`."""
    limit = (d.get("spec") or {}).get("revisionHistoryLimit")
    if not isinstance(limit, int):
        return
    alive = [rs for rs in old_sets if not meta(rs).get("deletionTimestamp")]
    excess = len(alive) - limit
    if excess <= 0:
        return
    for rs in sorted(alive, key=revision)[:excess]:
        if status_of(rs, "replicas") or replicas(rs) or \
                int(meta(rs).get("generation") or 1) > status_of(rs, "observedGeneration"):
            continue
        rsc.client.delete(rsc.kinds.replicasets, meta(rs)["namespace"], meta(rs)["name"], uid=meta(rs)["uid"])
