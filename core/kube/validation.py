"""Kubernetes name, label and annotation rules, reported as field `Cause`s worded like Kubernetes.

kubectl prints a 422 as `The Pod "x" is invalid: <field>: <message>`, so the
message text of every `Cause` here is what Kubernetes' `field.Error.ErrorBody()`
produces (`Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must ...`),
and `invalid_error` builds the whole `Invalid` exception with Kubernetes'
top-level message. The `is_*` functions return the bare rule violations (as
Go's `k8s.io/apimachinery/pkg/util/validation` does) for callers that word
their own errors, such as the label selector parser.
"""

# No `from __future__ import annotations` here: it would shadow the `annotations` validator below.
import re
from collections.abc import Iterable, Mapping
from typing import Any

from core import errors
from core.errors import Cause

INVALID = "FieldValueInvalid"
REQUIRED = "FieldValueRequired"
NOT_SUPPORTED = "FieldValueNotSupported"
TOO_LONG = "FieldValueTooLong"
FORBIDDEN = "FieldValueForbidden"
DUPLICATE = "FieldValueDuplicate"

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
DNS1035_LABEL_MAX = 63
QUALIFIED_NAME_MAX = 63
LABEL_VALUE_MAX = 63
TOTAL_ANNOTATION_SIZE = 256 * 1024

DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN_FMT = DNS1123_LABEL_FMT + r"(\." + DNS1123_LABEL_FMT + ")*"
DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
LABEL_VALUE_FMT = "(" + QUALIFIED_NAME_FMT + ")?"

_DNS1123_LABEL = re.compile(DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN = re.compile(DNS1123_SUBDOMAIN_FMT)
_DNS1035_LABEL = re.compile(DNS1035_LABEL_FMT)
_QUALIFIED_NAME = re.compile(QUALIFIED_NAME_FMT)
_LABEL_VALUE = re.compile(LABEL_VALUE_FMT)

_DNS1123_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character"
)
_DNS1035_LABEL_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
    "start with an alphabetic character, and end with an alphanumeric character"
)
_QUALIFIED_NAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)


# --- rule checks returning bare messages (Go's validation.IsXxx) -------------------------------------


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    """Kubernetes' wording for a regex failure, double spaces between examples included."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    listed = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {listed}regex used for validation is '{fmt}')"


def max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def _full(pattern: re.Pattern[str], value: str) -> bool:
    return pattern.fullmatch(value) is not None


def is_dns1123_label(value: str) -> list[str]:
    msgs: list[str] = []
    if len(value) > DNS1123_LABEL_MAX:
        msgs.append(max_len_error(DNS1123_LABEL_MAX))
    if not _full(_DNS1123_LABEL, value):
        if _full(_DNS1123_SUBDOMAIN, value):
            msgs.append("must not contain dots")
        else:
            msgs.append(regex_error(_DNS1123_LABEL_MSG, DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return msgs


def is_dns1123_subdomain(value: str) -> list[str]:
    msgs: list[str] = []
    if len(value) > DNS1123_SUBDOMAIN_MAX:
        msgs.append(max_len_error(DNS1123_SUBDOMAIN_MAX))
    if not _full(_DNS1123_SUBDOMAIN, value):
        msgs.append(regex_error(_DNS1123_SUBDOMAIN_MSG, DNS1123_SUBDOMAIN_FMT, "example.com"))
    return msgs


def is_dns1035_label(value: str) -> list[str]:
    msgs: list[str] = []
    if len(value) > DNS1035_LABEL_MAX:
        msgs.append(max_len_error(DNS1035_LABEL_MAX))
    if not _full(_DNS1035_LABEL, value):
        msgs.append(regex_error(_DNS1035_LABEL_MSG, DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return msgs


def is_qualified_name(value: str) -> list[str]:
    """A label key or annotation key: `[prefix/]name`, prefix a DNS subdomain, name ≤ 63 chars."""
    msgs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            msgs.append("prefix part must be non-empty")
        else:
            msgs.extend("prefix part " + m for m in is_dns1123_subdomain(prefix))
    else:
        return [
            "a qualified name "
            + regex_error(_QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        msgs.append("name part must be non-empty")
    elif len(name) > QUALIFIED_NAME_MAX:
        msgs.append("name part " + max_len_error(QUALIFIED_NAME_MAX))
    if not _full(_QUALIFIED_NAME, name):
        examples = ("MyName", "my.name", "123-abc")
        msgs.append("name part " + regex_error(_QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, *examples))
    return msgs


def is_valid_label_value(value: str) -> list[str]:
    msgs: list[str] = []
    if len(value) > LABEL_VALUE_MAX:
        msgs.append(max_len_error(LABEL_VALUE_MAX))
    if not _full(_LABEL_VALUE, value):
        msgs.append(regex_error(_LABEL_VALUE_MSG, LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return msgs


# --- causes (Go's field.Invalid / Required / ... with ErrorBody wording) -----------------------------


def go_quote(text: str) -> str:
    """`text` quoted the way Go's `%q` (strconv.Quote) does."""
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif code < 0x80:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    out.append('"')
    return "".join(out)


_GO_ESCAPES = {
    "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
    "\\": "\\\\", '"': '\\"',
}


def render_value(value: Any) -> str:
    """A bad value the way `ErrorBody` prints it: strings quoted, numbers and booleans bare."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[]string{" + ", ".join(render_value(v) for v in value) + "}"
    return str(value)


def invalid(field: str, value: Any, detail: str) -> Cause:
    return Cause(field=field, message=f"Invalid value: {render_value(value)}: {detail}", reason=INVALID)


def required(field: str, detail: str = "") -> Cause:
    return Cause(field=field, message="Required value" + (f": {detail}" if detail else ""), reason=REQUIRED)


def not_supported(field: str, value: Any, supported: Iterable[str]) -> Cause:
    choices = ", ".join(go_quote(s) for s in supported)
    body = f"Unsupported value: {render_value(value)}"
    return Cause(field=field, message=body + (f": supported values: {choices}" if choices else ""),
                 reason=NOT_SUPPORTED)


def too_long(field: str, max_bytes: int) -> Cause:
    return Cause(field=field, message=f"Too long: must have at most {max_bytes} bytes", reason=TOO_LONG)


def forbidden(field: str, detail: str) -> Cause:
    return Cause(field=field, message=f"Forbidden: {detail}", reason=FORBIDDEN)


def duplicate(field: str, value: Any) -> Cause:
    return Cause(field=field, message=f"Duplicate value: {render_value(value)}", reason=DUPLICATE)


def _each(field: str, value: str, msgs: list[str]) -> list[Cause]:
    return [invalid(field, value, m) for m in msgs]


def _string_or_cause(field: str, value: Any) -> Cause | None:
    if isinstance(value, str):
        return None
    return invalid(field, value, "must be a string")


# --- field validators returning causes ---------------------------------------------------------------


def dns1123_subdomain(value: str, field: str) -> list[Cause]:
    """Pod, Node, ConfigMap, Secret, Deployment ... names."""
    bad = _string_or_cause(field, value)
    return [bad] if bad else _each(field, value, is_dns1123_subdomain(value))


def dns1123_label(value: str, field: str) -> list[Cause]:
    """Namespace names and other names that become one DNS label."""
    bad = _string_or_cause(field, value)
    return [bad] if bad else _each(field, value, is_dns1123_label(value))


def dns1035_label(value: str, field: str) -> list[Cause]:
    """Service names (they must start with a letter)."""
    bad = _string_or_cause(field, value)
    return [bad] if bad else _each(field, value, is_dns1035_label(value))


def label_key(value: str, field: str) -> list[Cause]:
    bad = _string_or_cause(field, value)
    return [bad] if bad else _each(field, value, is_qualified_name(value))


def label_value(value: str, field: str) -> list[Cause]:
    bad = _string_or_cause(field, value)
    return [bad] if bad else _each(field, value, is_valid_label_value(value))


def labels(values: Mapping[str, Any] | None, field: str = "metadata.labels") -> list[Cause]:
    """Every key a qualified name and every value a label value; all causes carry `field` itself."""
    if values is None:
        return []
    if not isinstance(values, Mapping):
        return [invalid(field, values, "must be a map of string keys to string values")]
    causes: list[Cause] = []
    for key in sorted(values, key=str):
        causes.extend(label_key(key, field))
        causes.extend(label_value(values[key], field))
    return causes


def annotations(values: Mapping[str, Any] | None, field: str = "metadata.annotations") -> list[Cause]:
    """Keys are qualified names (case-insensitively); keys and values together at most 256 KiB."""
    if values is None:
        return []
    if not isinstance(values, Mapping):
        return [invalid(field, values, "must be a map of string keys to string values")]
    causes: list[Cause] = []
    total = 0
    for key in sorted(values, key=str):
        value = values[key]
        if not isinstance(key, str):
            causes.append(invalid(field, key, "must be a string"))
            continue
        causes.extend(_each(field, key, is_qualified_name(key.lower())))
        if not isinstance(value, str):
            causes.append(invalid(field, value, "must be a string"))
            continue
        total += len(key.encode()) + len(value.encode())
    if total > TOTAL_ANNOTATION_SIZE:
        causes.append(too_long(field, TOTAL_ANNOTATION_SIZE))
    return causes


def generate_name(value: str, field: str = "metadata.generateName", *, label: bool = False) -> list[Cause]:
    """A `generateName` prefix: valid once random characters follow, so a trailing '-' is fine.

    Checked as a DNS subdomain (or DNS label with `label=True`) with a trailing
    '-' stood in for by a letter, as Kubernetes' `NameIsDNSSubdomain(name, prefix=true)`.
    """
    bad = _string_or_cause(field, value)
    if bad:
        return [bad]
    masked = value[:-1] + "a" if len(value) > 1 and value.endswith("-") else value
    msgs = is_dns1123_label(masked) if label else is_dns1123_subdomain(masked)
    return _each(field, value, msgs)


def object_name(meta: Mapping[str, Any], field: str = "metadata", *, label: bool = False) -> list[Cause]:
    """`metadata.name` (or `generateName` when name is empty) as Kubernetes' ValidateObjectMeta checks it.

    `label=True` for resources whose names are DNS labels (namespaces).
    """
    name = meta.get("name")
    prefix = meta.get("generateName")
    if not name:
        if not prefix:
            return [required(f"{field}.name", "name or generateName is required")]
        return generate_name(prefix, f"{field}.generateName", label=label)
    check = dns1123_label if label else dns1123_subdomain
    return check(name, f"{field}.name")


def label_selector(selector: Any, field: str) -> list[Cause]:
    """A `metav1.LabelSelector` (`matchLabels` + `matchExpressions`), worded as ValidateLabelSelector."""
    if selector is None:
        return []
    if not isinstance(selector, Mapping):
        return [invalid(field, selector, "must be an object with matchLabels and/or matchExpressions")]
    causes = labels(selector.get("matchLabels"), f"{field}.matchLabels")
    exprs = selector.get("matchExpressions")
    if exprs is None:
        return causes
    if not isinstance(exprs, list):
        return [*causes, invalid(f"{field}.matchExpressions", exprs, "must be a list")]
    for i, expr in enumerate(exprs):
        causes.extend(_selector_requirement(expr, f"{field}.matchExpressions[{i}]"))
    return causes


_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def _selector_requirement(expr: Any, field: str) -> list[Cause]:
    if not isinstance(expr, Mapping):
        return [invalid(field, expr, "must be an object with key, operator and values")]
    causes: list[Cause] = []
    op = expr.get("operator")
    values = expr.get("values") or []
    if not isinstance(values, list):
        return [invalid(f"{field}.values", values, "must be a list of strings")]
    if op in ("In", "NotIn"):
        if not values:
            causes.append(required(f"{field}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
    elif op in ("Exists", "DoesNotExist"):
        if values:
            causes.append(forbidden(f"{field}.values",
                                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
    else:
        causes.append(invalid(f"{field}.operator", op, "not a valid selector operator"))
    causes.extend(label_key(expr.get("key", ""), f"{field}.key"))
    for i, value in enumerate(values):
        causes.extend(label_value(value, f"{field}.values[{i}]"))
    return causes


# --- the exception -----------------------------------------------------------------------------------


def cause_text(cause: Cause) -> str:
    """One cause as Go's `field.Error.Error()` prints it: `field: message`."""
    return f"{cause.field}: {cause.message}" if cause.field else cause.message


def aggregate(causes: Iterable[Cause]) -> str:
    """Causes joined as Go's `utilerrors.Aggregate` does: one bare, several as `[a, b]`, duplicates once."""
    seen: list[str] = []
    for cause in causes:
        text = cause_text(cause)
        if text not in seen:
            seen.append(text)
    if len(seen) == 1:
        return seen[0]
    return "[" + ", ".join(seen) + "]"


def invalid_error(kind: str, name: str, causes: list[Cause], group: str = "") -> errors.Invalid:
    """The 422 Kubernetes returns: `Deployment.apps "web" is invalid: spec.replicas: Invalid value: ...`."""
    qualified = f"{kind}.{group}" if group else kind
    message = f"{qualified} {go_quote(name)} is invalid"
    if causes:
        message += ": " + aggregate(causes)
    return errors.Invalid(message=message, kind=kind, name=name, group=group, causes=list(causes))
