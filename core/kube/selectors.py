"""Label and field selectors: `?labelSelector=` / `?fieldSelector=` strings and `metav1.LabelSelector`.

List, watch and deletecollection filter with these, controllers match pods to
Deployments and Services with them, and the agent asks for its own pods with
`spec.nodeName=<node>`. The grammar, canonical string form and error wording
follow `k8s.io/apimachinery/pkg/labels` and `.../fields`, because kubectl
prints the server's message verbatim (`unable to parse requirement: ...`).
Field selectors are implemented in `fieldselectors` and re-exported here.

Errors: `LabelSelector.parse` and `FieldSelector.parse` raise
`core.errors.BadRequest` (400, as the API server answers a bad query
parameter). `LabelSelector.from_dict` raises `SelectorError`, a `ValueError`
carrying Kubernetes-worded `causes` for a 422 (`validation.label_selector`
gives the same causes without raising).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from core import errors
from core.errors import Cause
from core.kube import validation
from core.kube.fieldselectors import (
    SELECTABLE_FIELDS,
    FieldRequirement,
    FieldSelector,
    escape_field_value,
    field_value,
    selectable_fields,
)

__all__ = [
    "SELECTABLE_FIELDS", "FieldRequirement", "FieldSelector", "LabelSelector", "Requirement", "SelectorError",
    "escape_field_value", "field_value", "selectable_fields",
]

# Operators, spelled as Kubernetes' selection.Operator values.
EQUALS = "="
DOUBLE_EQUALS = "=="
NOT_EQUALS = "!="
IN = "in"
NOT_IN = "notin"
EXISTS = "exists"
DOES_NOT_EXIST = "!"
GREATER_THAN = "gt"
LESS_THAN = "lt"

_BINARY_OPERATORS = (IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN)
_INT64 = re.compile(r"[+-]?[0-9]+")
_INT64_MAX = 2**63 - 1


class SelectorError(ValueError):
    """A `metav1.LabelSelector` that does not validate; `causes` are ready for an `Invalid` (422)."""

    def __init__(self, causes: list[Cause]) -> None:
        super().__init__(validation.aggregate(causes))
        self.causes = causes


def _parse_int64(text: str) -> int | None:
    if not _INT64.fullmatch(text):
        return None
    value = int(text)
    return value if -_INT64_MAX - 1 <= value <= _INT64_MAX else None


@dataclass(frozen=True)
class Requirement:
    """One `key op values` term of a label selector; `values` sorted and unique."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        has = self.key in labels
        if op in (EQUALS, DOUBLE_EQUALS, IN):
            return has and labels[self.key] in self.values
        if op in (NOT_EQUALS, NOT_IN):
            return not has or labels[self.key] not in self.values
        if op == EXISTS:
            return has
        if op == DOES_NOT_EXIST:
            return not has
        if op in (GREATER_THAN, LESS_THAN):
            if not has or len(self.values) != 1:
                return False
            mine, theirs = _parse_int64(labels[self.key]), _parse_int64(self.values[0])
            if mine is None or theirs is None:
                return False
            return mine > theirs if op == GREATER_THAN else mine < theirs
        return False

    def __str__(self) -> str:
        op = self.operator
        if op == DOES_NOT_EXIST:
            return "!" + self.key
        if op == EXISTS:
            return self.key
        joined = ",".join(self.values)
        if op in (IN, NOT_IN):
            return f"{self.key} {op} ({joined})"
        symbol = {GREATER_THAN: ">", LESS_THAN: "<"}.get(op, op)
        return f"{self.key}{symbol}{joined}"


def _new_requirement(key: str, op: str, values: Iterable[str]) -> Requirement:
    """Kubernetes' NewRequirement: checks arity and values; raises ValueError with its message."""
    vals = sorted(set(values))
    errs: list[str] = []
    for msg in validation.is_qualified_name(key):
        errs.append(f"key: Invalid value: {validation.go_quote(key)}: {msg}")
    rendered = validation.render_value(vals)
    if op in (IN, NOT_IN) and not vals:
        errs.append(f"values: Invalid value: {rendered}: "
                    "for 'in', 'notin' operators, values set can't be empty")
    elif op in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS) and len(vals) != 1:
        errs.append(f"values: Invalid value: {rendered}: exact-match compatibility requires one single value")
    elif op in (EXISTS, DOES_NOT_EXIST) and vals:
        errs.append(f"values: Invalid value: {rendered}: "
                    "values set must be empty for exists and does not exist")
    elif op in (GREATER_THAN, LESS_THAN):
        if len(vals) != 1:
            errs.append(f"values: Invalid value: {rendered}: "
                        "for 'Gt', 'Lt' operators, exactly one value is required")
        for i, v in enumerate(vals):
            if _parse_int64(v) is None:
                errs.append(f"values[{i}]: Invalid value: {validation.go_quote(v)}: "
                            "for 'Gt', 'Lt' operators, the value must be an integer")
    for i, v in enumerate(vals):
        msgs = validation.is_valid_label_value(v)
        if msgs:
            errs.append(f"values[{i}][{key}]: Invalid value: {validation.go_quote(v)}: {'; '.join(msgs)}")
    if errs:
        raise ValueError(errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]")
    return Requirement(key, op, tuple(vals))


# --- the label selector string grammar ---------------------------------------------------------------

_IDENT, _IN, _NOTIN, _OPEN, _CLOSE, _COMMA, _EQ, _DEQ, _NEQ, _NOT, _GT, _LT, _EOS = range(13)
_SYMBOLS = {"!": _NOT, "!=": _NEQ, "(": _OPEN, ")": _CLOSE, ",": _COMMA, "=": _EQ, "==": _DEQ,
            ">": _GT, "<": _LT}
_SPECIAL = set("=!(),><")
_SPACE = set(" \t\r\n")


def _lex(text: str) -> list[tuple[int, str]]:
    tokens: list[tuple[int, str]] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in _SPACE:
            i += 1
        elif ch in _SPECIAL:
            # The longest run of special characters that is still a known symbol.
            j = i + 1
            while j < n and text[j] in _SPECIAL and text[i:j + 1] in _SYMBOLS:
                j += 1
            tokens.append((_SYMBOLS[text[i:j]], text[i:j]))
            i = j
        else:
            j = i
            while j < n and text[j] not in _SPACE and text[j] not in _SPECIAL:
                j += 1
            word = text[i:j]
            tokens.append(({"in": _IN, "notin": _NOTIN}.get(word, _IDENT), word))
            i = j
    tokens.append((_EOS, ""))
    return tokens


class _Parser:
    """Kubernetes' recursive-descent selector parser, kept to its structure so errors read the same."""

    def __init__(self, text: str) -> None:
        self.tokens = _lex(text)
        self.pos = 0

    def _peek(self, values: bool = True) -> tuple[int, str]:
        return self._as(self.tokens[min(self.pos, len(self.tokens) - 1)], values)

    def _next(self, values: bool = True) -> tuple[int, str]:
        tok = self._peek(values)
        self.pos += 1
        return tok

    @staticmethod
    def _as(tok: tuple[int, str], values: bool) -> tuple[int, str]:
        # In a value position the keywords `in` and `notin` are plain identifiers.
        if values and tok[0] in (_IN, _NOTIN):
            return _IDENT, tok[1]
        return tok

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            tok, lit = self._peek()
            if tok == _EOS:
                return reqs
            if tok not in (_IDENT, _NOT):
                raise ValueError(f"found '{lit}', expected: !, identifier, or 'end of string'")
            try:
                reqs.append(self._requirement())
            except ValueError as exc:
                raise ValueError(f"unable to parse requirement: {exc}") from None
            tok, lit = self._next()
            if tok == _EOS:
                return reqs
            if tok != _COMMA:
                raise ValueError(f"found '{lit}', expected: ',' or 'end of string'")
            tok, lit = self._peek()
            if tok not in (_IDENT, _NOT):
                raise ValueError(f"found '{lit}', expected: identifier after ','")

    def _requirement(self) -> Requirement:
        key, op = self._key_and_unary()
        if op:
            return _new_requirement(key, op, ())
        op = self._operator()
        values = self._set_values() if op in (IN, NOT_IN) else self._exact_value()
        return _new_requirement(key, op, values)

    def _key_and_unary(self) -> tuple[str, str]:
        op = ""
        tok, lit = self._next()
        if tok == _NOT:
            op = DOES_NOT_EXIST
            tok, lit = self._next()
        if tok != _IDENT:
            raise ValueError(f"found '{lit}', expected: identifier")
        msgs = validation.is_qualified_name(lit)
        if msgs:
            raise ValueError(f"<nil>: Invalid value: {validation.go_quote(lit)}: {'; '.join(msgs)}")
        if self._peek()[0] in (_EOS, _COMMA) and not op:
            op = EXISTS
        return lit, op

    def _operator(self) -> str:
        tok, lit = self._next(values=False)
        ops = {_IN: IN, _NOTIN: NOT_IN, _EQ: EQUALS, _DEQ: DOUBLE_EQUALS, _NEQ: NOT_EQUALS,
               _GT: GREATER_THAN, _LT: LESS_THAN}
        if tok not in ops:
            raise ValueError(f"found '{lit}', expected: {', '.join(_BINARY_OPERATORS)}")
        return ops[tok]

    def _set_values(self) -> set[str]:
        tok, lit = self._next()
        if tok != _OPEN:
            raise ValueError(f"found '{lit}' expected: '('")
        tok, lit = self._peek()
        if tok == _CLOSE:
            self._next()
            return {""}
        if tok not in (_IDENT, _COMMA):
            raise ValueError(f"found '{lit}', expected: ',', ')' or identifier")
        values = self._identifier_list()
        tok, _ = self._next()
        if tok != _CLOSE:
            raise ValueError(f"found '{lit}', expected: ')'")
        return values

    def _identifier_list(self) -> set[str]:
        values: set[str] = set()
        while True:
            tok, lit = self._next()
            if tok == _IDENT:
                values.add(lit)
                tok2, lit2 = self._peek()
                if tok2 == _COMMA:
                    continue
                if tok2 == _CLOSE:
                    return values
                raise ValueError(f"found '{lit2}', expected: ',' or ')'")
            if tok == _COMMA:
                if not values:
                    values.add("")  # "(,"
                tok2, _ = self._peek()
                if tok2 == _CLOSE:
                    values.add("")  # ",)"
                    return values
                if tok2 == _COMMA:
                    self._next()
                    values.add("")  # ",,"
                continue
            raise ValueError(f"found '{lit}', expected: ',', or identifier")

    def _exact_value(self) -> set[str]:
        tok, _ = self._peek()
        if tok in (_EOS, _COMMA):
            return {""}
        tok, lit = self._next()
        if tok == _IDENT:
            return {lit}
        raise ValueError(f"found '{lit}', expected: identifier")


class LabelSelector:
    """A set of requirements that must all hold; `everything()` matches all, `nothing()` none."""

    def __init__(self, requirements: Iterable[Requirement] = (), *, nothing: bool = False) -> None:
        # Sorted by key (stable), as Kubernetes' internalSelector keeps them.
        self._reqs = tuple(sorted(requirements, key=lambda r: r.key))
        self._nothing = nothing

    @classmethod
    def parse(cls, text: str) -> LabelSelector:
        """The `?labelSelector=` syntax; raises `errors.BadRequest` worded as Kubernetes."""
        try:
            return cls(_Parser(text).parse())
        except ValueError as exc:
            raise errors.BadRequest(message=str(exc)) from None

    @classmethod
    def from_dict(cls, selector: Mapping[str, Any] | None, field: str = "selector") -> LabelSelector:
        """A `metav1.LabelSelector`. None selects nothing, `{}` everything.

        Raises `SelectorError` (a ValueError with `.causes` whose fields start
        with `field`) when a key, value or operator is invalid.
        """
        if selector is None:
            return cls.nothing()
        causes = validation.label_selector(selector, field)
        if causes:
            raise SelectorError(causes)
        reqs = [Requirement(k, EQUALS, (v,)) for k, v in (selector.get("matchLabels") or {}).items()]
        ops = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}
        for expr in selector.get("matchExpressions") or []:
            values = () if expr["operator"] in ("Exists", "DoesNotExist") else sorted(set(expr["values"]))
            reqs.append(Requirement(expr["key"], ops[expr["operator"]], tuple(values)))
        return cls(reqs)

    @classmethod
    def from_set(cls, labels: Mapping[str, str] | None) -> LabelSelector:
        """Exact match on every pair (a Service's `spec.selector`); empty or None selects everything."""
        return cls(Requirement(k, EQUALS, (v,)) for k, v in (labels or {}).items())

    @classmethod
    def everything(cls) -> LabelSelector:
        return cls()

    @classmethod
    def nothing(cls) -> LabelSelector:
        return cls(nothing=True)

    @property
    def requirements(self) -> tuple[Requirement, ...]:
        return self._reqs

    @property
    def empty(self) -> bool:
        """True when the selector has no requirements and so matches every object."""
        return not self._reqs and not self._nothing

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self._nothing:
            return False
        have = labels or {}
        return all(r.matches(have) for r in self._reqs)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self._reqs)

    def __repr__(self) -> str:
        return "LabelSelector.nothing()" if self._nothing else f"LabelSelector.parse({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LabelSelector):
            return NotImplemented
        return self._reqs == other._reqs and self._nothing == other._nothing

    def __hash__(self) -> int:
        return hash((self._reqs, self._nothing))

