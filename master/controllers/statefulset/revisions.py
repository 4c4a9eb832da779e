"""A StatefulSet's revisions: ControllerRevisions holding each pod template it has had, as Kubernetes keeps them.

A revision's `data` is the patch Kubernetes stores, `{"spec": {"template":
{..., "$patch": "replace"}}}`, so `kubectl rollout undo` (which applies a
revision's data as a strategic merge patch) puts the whole old template back.
Its name is `<set>-<hash of that data>` (the hash takes the set's
`collisionCount` too: a name taken by other data moves the count on), its
labels are the template's plus `controller.kubernetes.io/hash`, its
annotations the set's (so `kubectl rollout history` finds a change cause), its
number one above the newest. Going back to an older template reuses that
revision and gives it the newest number, so history reads in the order things
happened. The oldest revisions beyond `revisionHistoryLimit` go, except those
the set or its pods still use.
"""

from __future__ import annotations

import copy
from typing import Any

from master.controllers.templatehash import template_hash

Obj = dict[str, Any]
HASH_LABEL = "controller.kubernetes.io/hash"


def data_of(sts: Obj) -> Obj:
    template = copy.deepcopy((sts.get("spec") or {}).get("template") or {})
    return {"spec": {"template": {**template, "$patch": "replace"}}}


def template_of(revision: Obj) -> Obj:
    template = copy.deepcopy(((revision.get("data") or {}).get("spec") or {}).get("template") or {})
    template.pop("$patch", None)
    return template


def same_data(a: Obj, b: Obj) -> bool:
    return template_hash(a) == template_hash(b) and a == b


def new_revision(sts: Obj, number: int, owner: Obj, collision_count: int = 0) -> Obj:
    data = data_of(sts)
    meta = sts.get("metadata") or {}
    digest = template_hash(data, collision_count)
    template_meta = ((sts.get("spec") or {}).get("template") or {}).get("metadata") or {}
    labels = dict(template_meta.get("labels") or {})
    labels[HASH_LABEL] = digest
    revision_meta: Obj = {"name": f"{meta.get('name')}-{digest}", "namespace": meta.get("namespace"),
                          "labels": labels, "ownerReferences": [owner]}
    if meta.get("annotations"):
        revision_meta["annotations"] = dict(meta["annotations"])
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": revision_meta,
            "data": data, "revision": number}


def surplus(revisions: list[Obj], keep: set[str], limit: int) -> list[Obj]:
    """The revisions to delete: the oldest beyond `limit`, never one named in `keep`."""
    spare = sorted((r for r in revisions if r["metadata"]["name"] not in keep), key=lambda r: int(r.get("revision")
                                                                                                  or 0))
    return spare[:max(0, len(spare) - max(0, limit))]
