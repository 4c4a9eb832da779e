"""Field paths and field sets of server-side apply, and their FieldsV1 wire form.

Server-side apply records, per manager, the set of fields that manager owns;
`metadata.managedFields[].fieldsV1` stores that set as a JSON tree whose keys
are path elements (`kubernetes-sigs/structured-merge-diff`, `fieldpath`):

- `f:<name>`: a field of a map or struct;
- `k:<json object of the key fields>`: an element of a keyed list (list-map);
- `v:<json value>`: an element of a set list;
- `i:<n>`: an element of a list by index;
- `.` inside a node: the node itself is in the set (a node written `{}` is a
  member too; a node with children but no `.` only leads to members).

Here a path is a tuple of those element strings, already serialised, and a set
is a plain Python `set` of paths: union, difference and intersection are then
the built-in set operations, which is what the owner bookkeeping needs, and
the tree form exists only on the wire.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

Path = tuple[str, ...]
FieldSet = set[Path]

SELF = "."
_RANK = {"f": 0, "k": 1, "v": 2, "i": 3}


def _dump(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def field(name: str) -> str:
    return "f:" + name


def key(fields: Mapping[str, Any]) -> str:
    """The element of a list-map with these key field values (serialised with sorted names, as Go)."""
    return "k:" + _dump(dict(fields))


def value(item: Any) -> str:
    return "v:" + _dump(item)


def index(i: int) -> str:
    return f"i:{i}"


def _order(pe: str) -> tuple[int, str]:
    if pe[:2] == "i:":
        return 3, pe[2:].zfill(12)
    return _RANK.get(pe[:1], 4), pe[2:]


def sort_key(path: Path) -> tuple[tuple[int, str], ...]:
    """Paths in structured-merge-diff's order (how Kubernetes lists conflicting fields)."""
    return tuple(_order(pe) for pe in path)


def to_fields_v1(paths: Iterable[Path]) -> dict[str, Any]:
    """The FieldsV1 tree of a set: children in structured-merge-diff's order (fields, keys, values,
    indexes), `.` first where a node with children is itself a member."""
    root: dict[str, Any] = {}
    members: set[int] = set()
    for path in paths:
        node = root
        for pe in path:
            node = node.setdefault(pe, {})
        members.add(id(node))
    return _emit(root, members)


def _emit(node: dict[str, Any], members: set[int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pe in sorted(node, key=_order):
        child = node[pe]
        body = _emit(child, members)
        if child and id(child) in members:
            body = {SELF: {}, **body}
        out[pe] = body
    return out


def from_fields_v1(tree: Any, check: bool = True) -> FieldSet:
    """The set a FieldsV1 tree describes; ValueError when it is not one (`check=False`: a tree this
    code wrote, whose path elements need no second look)."""
    if not isinstance(tree, dict):
        raise ValueError("FieldsV1 must be a JSON object")
    out: FieldSet = set()
    stack: list[tuple[Path, dict[str, Any]]] = [((), tree)]
    while stack:
        prefix, node = stack.pop()
        for pe, child in node.items():
            if pe == SELF:
                if prefix:
                    out.add(prefix)
                continue
            if check:
                _check_element(pe)
            if not isinstance(child, dict):
                raise ValueError(f"FieldsV1 node {pe!r} must be an object")
            path = (*prefix, pe)
            if not child:
                out.add(path)
            else:
                stack.append((path, child))
    return out


def _check_element(pe: str) -> None:
    kind, _, rest = pe.partition(":")
    if kind == "f" and _:
        return
    if kind == "i" and rest.isdigit():
        return
    if kind in ("k", "v") and _:
        try:
            parsed = json.loads(rest)
        except ValueError:
            raise ValueError(f"invalid path element {pe!r}") from None
        if kind == "k" and not isinstance(parsed, dict):
            raise ValueError(f"invalid key path element {pe!r}")
        return
    raise ValueError(f"invalid path element {pe!r}")


def _go_value(item: Any) -> str:
    """A value as structured-merge-diff prints it in a path (strings quoted, the rest as JSON)."""
    return json.dumps(item, separators=(",", ":"), ensure_ascii=False)


def path_string(path: Path) -> str:
    """A path as Kubernetes prints it in conflicts: `.spec.containers[name="web"].image`."""
    parts: list[str] = []
    for pe in path:
        kind, rest = pe[:1], pe[2:]
        if kind == "f":
            parts.append("." + rest)
        elif kind == "k":
            keys = json.loads(rest)
            parts.append("[" + ",".join(f"{k}={_go_value(keys[k])}" for k in sorted(keys)) + "]")
        elif kind == "v":
            parts.append(f"[={_go_value(json.loads(rest))}]")
        else:
            parts.append(f"[{rest}]")
    return "".join(parts)


def tree_has(tree: dict[str, Any], path: Path) -> bool:
    """Whether the set a FieldsV1 tree describes holds `path`, without decoding the tree."""
    node: Any = tree
    for pe in path:
        if not isinstance(node, dict):
            return False
        node = node.get(pe)
        if node is None:
            return False
    return isinstance(node, dict) and (not node or SELF in node)


def has_prefix(path: Path, prefix: Path) -> bool:
    return path[:len(prefix)] == prefix
