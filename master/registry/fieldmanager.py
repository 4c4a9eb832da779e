"""`metadata.managedFields`: who owns which field, kept up to date on every write, and server-side apply.

Kubernetes' field manager (apimachinery `pkg/util/managedfields`) wraps every
create, update and patch: non-apply writes record an `Update` entry for the
fields they changed (taking them from other owners without conflict), an
apply merges the manifest into the live object, owns exactly the manifest's
fields, removes the fields its manager applied before and dropped if no one
else owns them, and fails with 409 on a field another manager owns with a
different value unless forced. This module does the same over the typed
operations in `core.kube.apply`; the verbs call `apply` and `record_update`.

Choices, with their reasons:

- One entry per (manager, operation, subresource, and for Update the
  apiVersion), replaced in place: an object never grows with the number of
  writes, only with the number of writers, and Update entries are capped at
  10 by folding the oldest into `ancient-changes`, as Kubernetes does.
- Times are RFC 3339 seconds and change only when the entry's fields do, so
  a write that changes nothing writes nothing.
- The master's own controllers write through the same verbs with no
  requester; they are recorded as `kube-controller-manager`, like Kubernetes'.
- Metadata the server owns (name, uid, resourceVersion, …) and the type
  fields are never owned; a main-resource write never owns `status` and a
  status write owns only `status` (Kubernetes' reset fields).
- Client-sent managedFields: `[]` or `[{}]` resets them; invalid ones are
  ignored (the live ones stay), both as apimachinery's `decodeLiveOrNew`.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from core import errors
from core.kube import apply as typed
from core.kube import fieldpath, timefmt
from core.kube.fieldpath import FieldSet, Path
from master.registry import managedfields as mf
from master.registry.managedfields import APPLY, UPDATE, Entry, decode

__all__ = ["APPLY", "UPDATE", "Entry", "apply", "conflict_error", "decode", "record_update"]

Obj = dict[str, Any]
CONTROLLERS = "kube-controller-manager"
_STRIPPED: frozenset[Path] = frozenset({
    ("f:apiVersion",), ("f:kind",), ("f:metadata",),
    *(("f:metadata", f"f:{name}") for name in (
        "name", "namespace", "creationTimestamp", "selfLink", "uid", "clusterName", "generation",
        "managedFields", "resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds")),
})


def _owned_filter(subresource: str, has_status: bool) -> Any:
    def keep(path: Path) -> bool:
        if path in _STRIPPED:
            return False
        if subresource == "status":
            return bool(path) and path[0] == "f:status"
        return not (has_status and path[:1] == ("f:status",))
    return keep


def _filtered(paths: FieldSet, keep: Any) -> FieldSet:
    return {p for p in paths if keep(p)}


def require_manager(manager: str) -> None:
    """Kubernetes' 422 for an apply without `?fieldManager=` (checked before the body is read)."""
    if not manager:
        raise errors.Invalid(message='PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                                     "is required for apply patch", kind="PatchOptions", group="meta.k8s.io",
                             causes=[errors.Cause("fieldManager", "Required value: is required for apply patch",
                                                  "FieldValueRequired")])


def gvk_string(obj: Obj) -> str:
    """An object's GroupVersionKind as Go's `schema.GroupVersionKind.String` prints it
    (`apps/v1, Kind=Deployment`, `/v1, Kind=Pod`)."""
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    text = api_version if isinstance(api_version, str) else ""
    group, _, version = text.rpartition("/") if text.count("/") <= 1 else ("", "", "")
    return f"{group}/{version}, Kind={kind if isinstance(kind, str) else ''}"


def manager_from_user_agent(user_agent: str) -> str:
    """Kubernetes' default manager: the User-Agent up to its first "/" (at most 128 characters)."""
    return user_agent.split("/", 1)[0][:128]


def record_update(old: Obj | None, new: Obj, kind: str, api_version: str, manager: str, subresource: str,
                  has_status: bool) -> None:
    """Set `new`'s managedFields after a create (old None), update or non-apply patch by `manager`."""
    nm = new.setdefault("metadata", {})
    raw = nm.get("managedFields")
    if old is None:
        entries = [] if raw is None or mf.is_reset(raw) else mf.decoded_or(raw, [])
        base: Obj = {}
    else:
        live = mf.live_entries(old)
        if subresource or raw is None or raw == (old.get("metadata") or {}).get("managedFields"):
            entries = live  # (sent back as read: a PUT of a GET)
        elif mf.is_reset(raw):
            entries = []
        else:
            entries = mf.decoded_or(raw, live) or live
        base = old
    keep = _owned_filter(subresource, has_status)
    diff = typed.compare(mf.without_managed(base), mf.without_managed(new), kind)
    changed = _filtered(diff.changed, keep)
    removed = _filtered(diff.removed, keep)
    mine = Entry(manager, UPDATE, api_version, None, subresource)
    gone = changed | removed
    result: list[Entry] = []
    for e in entries:
        if e.ident() == mine.ident():
            mine = e
            continue
        e.drop(gone)
        result.append(e)
    mine.drop(removed)
    if changed:
        mine.fields |= changed
        mine.time = timefmt.rfc3339()
    result.append(mine)
    previous = None if old is None else (old.get("metadata") or {}).get("managedFields")
    mf.store_entries(nm, mf.cap_updates(result), previous)


class _Conflicts(Exception):
    def __init__(self, found: list[tuple[Entry, Path]]) -> None:
        super().__init__(f"{len(found)} conflicts")
        self.found = found


def apply(live: Obj, config: Obj, kind: str, api_version: str, manager: str, force: bool, subresource: str,
          has_status: bool) -> Obj:
    """`config` applied to `live` by `manager`: the new object with its managedFields (409 on conflicts).

    Two steps of apimachinery's chain for the manager `kubectl`, which let an object move from client-side
    to server-side apply (kubectl 1.20 has no migration of its own): conflicts on fields whose live value is
    still the one in the `last-applied-configuration` annotation are forced (`lastappliedmanager.go`), and
    an object that carries the annotation gets it rewritten to the applied configuration
    (`lastappliedupdater.go`), so a later client-side apply diffs against what was applied last.
    """
    cm = config.get("metadata")
    if isinstance(cm, dict) and cm.get("managedFields") is not None:
        raise errors.BadRequest(message="metadata.managedFields must be nil")
    try:
        merged = _apply(live, config, kind, api_version, manager, force, subresource, has_status)
    except _Conflicts as caught:
        if manager != "kubectl":
            raise conflict_error(caught.found) from None
        allowed = _unchanged_since_last_applied(live, kind, api_version)
        left = [(e, p) for e, p in caught.found if p not in allowed]
        if left:
            raise conflict_error(left) from None
        merged = _apply(live, config, kind, api_version, manager, True, subresource, has_status)
    if manager == "kubectl":
        annotations = (merged.get("metadata") or {}).get("annotations") or {}
        if annotations.get(LAST_APPLIED):
            merged["metadata"] = {**merged["metadata"],
                                  "annotations": {**annotations, LAST_APPLIED: _last_applied(config)}}
    return merged


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _last_applied(config: Obj) -> str:
    """The annotation's value for `config`, as Go's unstructured JSON encoder writes it (sorted keys, a
    newline), without the annotation itself."""
    out = copy.deepcopy(config)
    meta = out.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("annotations"), dict):
        meta["annotations"].pop(LAST_APPLIED, None)  # an emptied map stays, as Go's SetAnnotations keeps it
    text = json.dumps(out, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    for char, escaped in _GO_ESCAPES:  # Go's encoder escapes these (HTML-safe JSON); they occur only in strings
        text = text.replace(char, escaped)
    return text + "\n"


_GO_ESCAPES = (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
               ("\u2029", "\\u2029"))


def _unchanged_since_last_applied(live: Obj, kind: str, api_version: str) -> FieldSet:
    """The fields of `live`'s last-applied annotation whose live value is still the applied one."""
    annotations = (live.get("metadata") or {}).get("annotations") or {}
    try:
        last = json.loads(annotations.get(LAST_APPLIED) or "")
    except ValueError:
        return set()
    if not isinstance(last, dict) or last.get("apiVersion") != api_version:
        return set()
    try:
        fields = typed.field_set(last, kind)
    except errors.ApiError:
        return set()
    diff = typed.compare(last, mf.without_managed(live), kind)
    return fields - diff.modified - diff.added - diff.removed


def _apply(live: Obj, config: Obj, kind: str, api_version: str, manager: str, force: bool, subresource: str,
           has_status: bool) -> Obj:
    keep = _owned_filter(subresource, has_status)
    entries = mf.live_entries(live)
    bare = mf.without_managed(live)
    me = Entry(manager, APPLY, api_version, None, subresource)
    others: list[Entry] = []
    for e in entries:
        if e.ident() == me.ident():
            me = e
        else:
            others.append(e)
    last = me.fields
    applied = _filtered(typed.field_set(config, kind, strict=True), keep)
    merged = typed.merge(bare, config, kind)
    dropped: list[Path] = []
    if last - applied:  # what the others own matters only when this manager dropped something
        owned: FieldSet = applied.union(*(e.fields for e in others))
        dropped = [p for p in last - owned if not any(fieldpath.has_prefix(q, p) for q in owned)]
    if dropped:
        merged = typed.remove(merged, dropped, kind)
    diff = typed.compare(bare, merged, kind)
    changed = _filtered(diff.changed, keep)
    conflicts = [(e, p) for e in others if e.touches(changed)
                 for p in sorted(e.fields & changed, key=fieldpath.sort_key)]
    if conflicts and not force:
        raise _Conflicts(conflicts)
    for e in others:
        e.drop(changed | diff.removed)
    object_changed = not diff.empty()
    if me.fields != applied or object_changed or me.time is None:
        me.time = timefmt.rfc3339()
    me.api_version = api_version
    if me.fields != applied:
        me.fields = applied
    merged.setdefault("metadata", {})
    mf.store_entries(merged["metadata"], [*others, me], (live.get("metadata") or {}).get("managedFields"))
    return merged


def conflict_error(conflicts: list[tuple[Entry, Path]]) -> errors.Conflict:
    """Kubernetes' 409 for apply conflicts (apimachinery `internal/conflict.go`)."""
    causes = [errors.Cause(fieldpath.path_string(p), f"conflict with {e.describe()}", "FieldManagerConflict")
              for e, p in conflicts]
    if len(conflicts) == 1:
        e, p = conflicts[0]
        message = f"Apply failed with 1 conflict: conflict with {e.describe()}: {fieldpath.path_string(p)}"
    else:
        by_owner: dict[str, list[str]] = {}
        for e, p in conflicts:
            by_owner.setdefault(e.describe(), []).append(fieldpath.path_string(p))
        lines: list[str] = []
        for owner in sorted(by_owner):
            lines.append(f"conflicts with {owner}:")
            lines.extend(f"- {p}" for p in by_owner[owner])
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return errors.Conflict(message=message, causes=causes)
