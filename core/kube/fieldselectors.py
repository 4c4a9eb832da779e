"""Field selectors (`?fieldSelector=spec.nodeName=pi-2,status.phase!=Failed`).

The agent lists its own pods with `spec.nodeName=<node>`, kubectl users filter
with `--field-selector`. Terms are `field=value`, `field==value` or
`field!=value`, comma-separated, with `\\`, `,` and `=` escaped in values by a
backslash; only the fields Kubernetes makes selectable for a kind may be used
(`SELECTABLE_FIELDS`). Parsing raises `core.errors.BadRequest` worded as
Kubernetes (`field label not supported: spec.foo`). Also importable from
`core.kube.selectors`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from core import errors

EQUALS = "="
NOT_EQUALS = "!="


@dataclass(frozen=True)
class FieldRequirement:
    """`field = value` or `field != value` (`==` is read as `=`)."""

    field: str
    operator: str
    value: str

    def __str__(self) -> str:
        return f"{self.field}{self.operator}{escape_field_value(self.value)}"


def escape_field_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _unescape_field_value(value: str) -> str:
    out: list[str] = []
    in_slash = False
    for ch in value:
        if in_slash:
            if ch not in "\\,=":
                raise errors.BadRequest(message=f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch in ",=":
            raise errors.BadRequest(message=f"invalid field selector: unescaped character in value: {ch}")
        else:
            out.append(ch)
    if in_slash:
        raise errors.BadRequest(message="invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_terms(text: str) -> list[str]:
    """Split on commas that are not escaped with a backslash."""
    terms: list[str] = []
    start, escaped = 0, False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    """Split at the first operator; like Kubernetes, escapes are not looked at here."""
    for i in range(len(term)):
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op):]
    return None


_OBJECT_FIELDS = frozenset({"metadata.name", "metadata.namespace"})

#: The fields Kubernetes lets `?fieldSelector=` use, per kind; every kind allows metadata.name/namespace.
SELECTABLE_FIELDS: Mapping[str, frozenset[str]] = {
    "Pod": _OBJECT_FIELDS | {
        "spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
        "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName",
    },
    "Node": _OBJECT_FIELDS | {"spec.unschedulable"},
    "Event": _OBJECT_FIELDS | {
        "involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
        "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
        "reason", "reportingComponent", "source", "type",
    },
    "Secret": _OBJECT_FIELDS | {"type"},
    "Namespace": _OBJECT_FIELDS | {"status.phase"},
    "ReplicaSet": _OBJECT_FIELDS | {"status.replicas"},
    "Job": _OBJECT_FIELDS | {"status.successful"},
    "Service": _OBJECT_FIELDS | {"spec.clusterIP", "spec.type"},
}


def selectable_fields(kind: str) -> frozenset[str]:
    """What `FieldSelector.parse` should allow for `kind`."""
    return SELECTABLE_FIELDS.get(kind, _OBJECT_FIELDS)


# Where a selectable field is not the JSON path of the same name, and what an absent field reads as
# (Kubernetes reads fields from typed objects, so an absent bool is "false" and an absent count "0").
_FIELD_PATHS = {"source": "source.component"}
_FIELD_DEFAULTS = {"spec.unschedulable": "false", "spec.hostNetwork": "false", "status.replicas": "0",
                   "status.successful": "0"}


def field_value(obj: Mapping[str, Any], field: str) -> str:
    """The string a field selector compares: booleans lower case, absent "" (or the zero value)."""
    cur: Any = obj
    for part in _FIELD_PATHS.get(field, field).split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            cur = None
            break
        cur = cur[part]
    if cur is None:
        return _FIELD_DEFAULTS.get(field, "")
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return str(cur)


class FieldSelector:
    """Requirements on dotted fields (`metadata.name`, `spec.nodeName`, `status.phase`)."""

    def __init__(self, requirements: Iterable[FieldRequirement] = ()) -> None:
        self._reqs = tuple(requirements)

    @classmethod
    def parse(cls, text: str, allowed: Collection[str]) -> FieldSelector:
        """Parse `?fieldSelector=`; every field must be in `allowed` (pass metadata.name and
        metadata.namespace too: Kubernetes allows those on every resource).

        Raises `errors.BadRequest` with Kubernetes' messages, e.g.
        `field label not supported: spec.foo`.
        """
        reqs: list[FieldRequirement] = []
        for term in sorted(_split_terms(text)):
            if not term:
                continue
            split = _split_term(term)
            if split is None:
                raise errors.BadRequest(message=f"invalid selector: '{text}'; can't understand '{term}'")
            lhs, op, rhs = split
            value = _unescape_field_value(rhs)
            reqs.append(FieldRequirement(lhs, NOT_EQUALS if op == NOT_EQUALS else EQUALS, value))
        for req in reqs:
            if req.field not in allowed:
                raise errors.BadRequest(message=f"field label not supported: {req.field}")
        return cls(reqs)

    @classmethod
    def everything(cls) -> FieldSelector:
        return cls()

    @property
    def requirements(self) -> tuple[FieldRequirement, ...]:
        return self._reqs

    @property
    def empty(self) -> bool:
        return not self._reqs

    def exact(self, field: str) -> str | None:
        """The value an `=` requirement demands of `field` (e.g. the agent's spec.nodeName), if any."""
        for req in self._reqs:
            if req.field == field and req.operator == EQUALS:
                return req.value
        return None

    def matches(self, obj: Mapping[str, Any]) -> bool:
        for req in self._reqs:
            equal = field_value(obj, req.field) == req.value
            if equal != (req.operator == EQUALS):
                return False
        return True

    def __str__(self) -> str:
        return ",".join(str(r) for r in self._reqs)

    def __repr__(self) -> str:
        return f"FieldSelector({list(self._reqs)!r})"
