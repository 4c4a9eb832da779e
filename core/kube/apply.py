"""The typed operations of server-side apply: field sets of objects, comparison, merge and removal.

Structured-merge-diff walks an object with its schema; here the schema is the
strategic-merge table in `schema` (one table for both patch formats), read
with `schema.list_type`: keyed lists merge and are owned per element (by
their list-map keys), set lists per value, other lists whole (atomic); maps
merge key by key unless marked atomic. Kinds not in the table get the default
rules (lists atomic, maps granular), as Kubernetes gives schemaless objects.

What is a member of an object's field set follows `typed/tofieldset.go`:
scalars, atomic lists and maps, empty maps and nulls, and every element of a
keyed or set list; a non-empty granular map is not a member itself, only the
way to its fields. `flatten` returns those members with their values, so a
comparison is two dictionaries compared, and `compare` only descends into
subtrees that differ (a status write costs what it changes, not the object).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from core import errors
from core.kube import fieldpath, schema
from core.kube._json import copy_json, json_equal
from core.kube.fieldpath import FieldSet, Path

Obj = dict[str, Any]
ELEMENT = object()  # the value recorded for a list element (its fields carry the values)
_ROOT = schema.PatchMeta()


def _root(kind: str) -> schema.PatchMeta:
    return schema.PatchMeta(type=schema.root_type(kind))


def element_of(item: Any, i: int, list_kind: str, keys: tuple[str, ...], strict: bool = False) -> str:
    """The path element of list item `item` (at index `i`): `k:` for keyed lists, `v:` for sets.

    An element of a keyed list without its keys is addressed by index (live objects); `strict`
    (an applied configuration) makes that a 400, as Kubernetes refuses it.
    """
    if list_kind == schema.SET_LIST:
        return fieldpath.value(item)
    if list_kind == schema.MAP_LIST and isinstance(item, dict):
        found: dict[str, Any] = {}
        for k in keys:
            if k in item and item[k] is not None:
                found[k] = item[k]
            elif k in schema.KEY_DEFAULTS:
                found[k] = schema.KEY_DEFAULTS[k]
            else:
                break
        else:
            return fieldpath.key(found)
    if strict:
        raise errors.BadRequest(message=f"associative list with keys has an element that omits key field "
                                        f'"{keys[0] if keys else "?"}" (and doesn\'t have default value)')
    return fieldpath.index(i)


# ---- field sets ------------------------------------------------------------------------------
def flatten(obj: Obj, kind: str, strict: bool = False) -> dict[Path, Any]:
    """Every member of `obj`'s field set, with its value (`ELEMENT` for list elements)."""
    out: dict[Path, Any] = {}
    _flatten_map(obj, _root(kind).type, (), out, strict)
    return out


def field_set(obj: Obj, kind: str, strict: bool = False) -> FieldSet:
    return set(flatten(obj, kind, strict))


def _flatten_map(m: Obj, type_name: str | None, path: Path, out: dict[Path, Any], strict: bool) -> None:
    for k, v in m.items():
        _flatten_value(v, schema.lookup(type_name, k), (*path, fieldpath.field(k)), out, strict)


def _flatten_value(v: Any, meta: schema.PatchMeta, path: Path, out: dict[Path, Any], strict: bool) -> None:
    if isinstance(v, dict):
        if meta.atomic or not v:
            out[path] = v
        else:
            _flatten_map(v, meta.type, path, out, strict)
        return
    if isinstance(v, list):
        list_kind, keys = schema.list_type(meta)
        if list_kind == schema.ATOMIC_LIST:
            out[path] = v
            return
        for i, item in enumerate(v):
            ep = (*path, element_of(item, i, list_kind, keys, strict))
            if list_kind == schema.SET_LIST:
                out[ep] = item
                continue
            out[ep] = ELEMENT
            if isinstance(item, dict):
                _flatten_map(item, meta.type, ep, out, strict)
        return
    out[path] = v


def _same(a: Any, b: Any) -> bool:
    if a is ELEMENT or b is ELEMENT:
        return a is b
    return json_equal(a, b)


@dataclass
class Comparison:
    """How two objects differ, as field sets (structured-merge-diff's `typed.Comparison`)."""

    added: FieldSet = field(default_factory=set)
    modified: FieldSet = field(default_factory=set)
    removed: FieldSet = field(default_factory=set)

    @property
    def changed(self) -> FieldSet:
        """Added or modified: what a writer takes from other owners."""
        return self.added | self.modified

    def empty(self) -> bool:
        return not (self.added or self.modified or self.removed)


def compare(old: Obj, new: Obj, kind: str) -> Comparison:
    out = Comparison()
    _compare_map(old, new, _root(kind).type, (), out)
    return out


def _compare_map(old: Obj, new: Obj, type_name: str | None, path: Path, out: Comparison) -> None:
    for k, nv in new.items():
        meta = schema.lookup(type_name, k)
        p = (*path, fieldpath.field(k))
        if k in old:
            _compare_value(old[k], nv, meta, p, out)
        else:
            _leaves(nv, meta, p, out.added)
    for k, ov in old.items():
        if k not in new:
            _leaves(ov, schema.lookup(type_name, k), (*path, fieldpath.field(k)), out.removed)


def _leaves(v: Any, meta: schema.PatchMeta, path: Path, into: FieldSet) -> None:
    found: dict[Path, Any] = {}
    _flatten_value(v, meta, path, found, False)
    into.update(found)


def _compare_value(ov: Any, nv: Any, meta: schema.PatchMeta, path: Path, out: Comparison) -> None:
    if type(ov) is type(nv) and ov == nv:
        return
    if isinstance(ov, dict) and isinstance(nv, dict) and ov and nv and not meta.atomic:
        _compare_map(ov, nv, meta.type, path, out)
        return
    list_kind, keys = schema.list_type(meta)
    if isinstance(ov, list) and isinstance(nv, list) and list_kind != schema.ATOMIC_LIST:
        olds = {element_of(x, i, list_kind, keys): x for i, x in enumerate(ov)}
        news = {element_of(x, i, list_kind, keys): x for i, x in enumerate(nv)}
        for pe, item in news.items():
            ep = (*path, pe)
            if pe not in olds:
                out.added.add(ep)
                if list_kind == schema.MAP_LIST and isinstance(item, dict):
                    _leaves(item, schema.PatchMeta(type=meta.type), ep, out.added)
            elif list_kind == schema.MAP_LIST and isinstance(item, dict) and isinstance(olds[pe], dict):
                _compare_map(olds[pe], item, meta.type, ep, out)
        for pe, item in olds.items():
            if pe not in news:
                ep = (*path, pe)
                out.removed.add(ep)
                if list_kind == schema.MAP_LIST and isinstance(item, dict):
                    _leaves(item, schema.PatchMeta(type=meta.type), ep, out.removed)
        return
    before: dict[Path, Any] = {}
    after: dict[Path, Any] = {}
    _flatten_value(ov, meta, path, before, False)
    _flatten_value(nv, meta, path, after, False)
    for p, v in after.items():
        if p not in before:
            out.added.add(p)
        elif not _same(before[p], v):
            out.modified.add(p)
    out.removed.update(p for p in before if p not in after)


# ---- merge -----------------------------------------------------------------------------------
def merge(live: Obj, config: Obj, kind: str) -> Obj:
    """`config` merged into `live` by the schema (structured-merge-diff's `Merge`), as a new object.

    A `null` in the configuration removes the field (Kubernetes' typed objects drop nulls).
    """
    return _merge_map(live, config, _root(kind).type)


def _merge_map(live: Obj, config: Obj, type_name: str | None) -> Obj:
    out = dict(live)
    for k, v in config.items():
        if v is None:
            out.pop(k, None)
            continue
        out[k] = _merge_value(live.get(k), v, schema.lookup(type_name, k))
    return out


def _merge_value(lv: Any, cv: Any, meta: schema.PatchMeta) -> Any:
    if isinstance(cv, dict) and isinstance(lv, dict) and not meta.atomic:
        return _merge_map(lv, cv, meta.type)
    list_kind, keys = schema.list_type(meta)
    if isinstance(cv, list) and isinstance(lv, list) and list_kind != schema.ATOMIC_LIST:
        return _merge_list(lv, cv, list_kind, keys, meta.type)
    return _clean(copy_json(cv))


def _clean(v: Any) -> Any:
    """A new value as a typed object keeps it: without null map members."""
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [_clean(x) for x in v]
    return v


def _merge_list(live: list[Any], config: list[Any], list_kind: str, keys: tuple[str, ...],
                type_name: str | None) -> list[Any]:
    """Merged elements in structured-merge-diff's order (`typed/merge.go`, `visitListItems`): the
    configuration's elements in its order, live-only elements where they stood among them."""
    lpes = [element_of(x, i, list_kind, keys) for i, x in enumerate(live)]
    cpes = [element_of(x, i, list_kind, keys, strict=True) for i, x in enumerate(config)]
    lmap: dict[str, Any] = {}
    for pe, x in zip(lpes, live, strict=True):
        lmap.setdefault(pe, x)
    cmap: dict[str, Any] = {}
    for pe, x in zip(cpes, config, strict=True):
        cmap.setdefault(pe, x)

    def merged(pe: str) -> Any:
        if pe not in cmap:
            return lmap[pe]
        if list_kind == schema.MAP_LIST and isinstance(lmap.get(pe), dict) and isinstance(cmap[pe], dict):
            return _merge_map(lmap[pe], cmap[pe], type_name)
        return _clean(copy_json(cmap[pe]))

    shared = [pe for pe in cpes if pe in lmap]
    next_shared = shared.pop(0) if shared else None
    done: set[str] = set()
    out: list[Any] = []
    li = ci = 0
    while li < len(lpes) or ci < len(cpes):
        if li < len(lpes) and ci < len(cpes):
            pe = lpes[li]
            if pe == cpes[ci]:
                done.add(pe)
                out.append(merged(pe))
                li, ci = li + 1, ci + 1
                next_shared = shared.pop(0) if shared else None
                continue
            if pe in cmap and next_shared is not None and next_shared != pe:
                li += 1  # a shared element out of the configuration's order: it comes with the configuration
                continue
        if li < len(lpes):
            pe = lpes[li]
            if pe not in cmap:
                out.append(lmap[pe])
                li += 1
                continue
            if pe in done:
                li += 1
        if ci < len(cpes):
            pe = cpes[ci]
            done.add(pe)
            out.append(merged(pe))
            ci += 1
            if next_shared is not None and next_shared == pe:
                next_shared = shared.pop(0) if shared else None
    return out


# ---- removal ---------------------------------------------------------------------------------
def remove(obj: Obj, paths: Iterable[Path], kind: str) -> Obj:
    """`obj` without the nodes at `paths` (a copy); maps and lists left empty by a removal go too,
    as Go's typed objects omit them."""
    out: Obj = copy_json(obj)
    for path in sorted(paths, key=len):  # a node before its fields: a key field gone would lose the node
        _remove_one(out, path, _root(kind))
    return out


def _children(container: Any, meta: schema.PatchMeta) -> Iterator[tuple[str, Any, schema.PatchMeta]]:
    if isinstance(container, dict):
        for k in container:
            yield fieldpath.field(k), k, schema.lookup(meta.type, k)
    elif isinstance(container, list):
        list_kind, keys = schema.list_type(meta)
        for i, item in enumerate(container):
            yield element_of(item, i, list_kind, keys), i, schema.PatchMeta(type=meta.type)


def _remove_one(root: Obj, path: Path, meta: schema.PatchMeta) -> None:
    trail: list[tuple[Any, Any]] = []  # (container, key or index) down to the node
    node: Any = root
    current_meta = meta
    for pe in path:
        for name, slot, child_meta in _children(node, current_meta):
            if name == pe:
                trail.append((node, slot))
                node = node[slot]
                current_meta = child_meta
                break
        else:
            return  # not there (any more)
    while trail:
        container, slot = trail.pop()
        del container[slot]
        if container or not trail:
            return
