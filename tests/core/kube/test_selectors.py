"""Label and field selectors: grammar, canonical form, matching and Kubernetes' error wording."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import errors
from core.kube.selectors import FieldSelector, LabelSelector, SelectorError, field_value, selectable_fields

# --- label selector strings ---------------------------------------------------------------------------

CANONICAL = [
    ("x=a", "x=a"),
    ("x==a", "x==a"),
    ("x!=a", "x!=a"),
    ("z=c,x=a,y=b", "x=a,y=b,z=c"),  # sorted by key
    (" x = a , y != b ", "x=a,y!=b"),  # blanks around tokens
    ("x in (c,a,b)", "x in (a,b,c)"),  # values sorted
    ("x in (a,a)", "x in (a)"),  # and de-duplicated
    ("x notin (b, a)", "x notin (a,b)"),
    ("x in ()", "x in ()"),  # the empty value
    ("x in (,a)", "x in (,a)"),
    ("x", "x"),
    ("!x", "!x"),
    ("x,!y", "x,!y"),
    ("x=", "x="),  # empty value
    ("x>1", "x>1"),
    ("x<2", "x<2"),
    ("in=x", "in=x"),  # keywords are plain words as keys ...
    ("x in (in,notin)", "x in (in,notin)"),  # ... and as values
    ("example.com/app=web", "example.com/app=web"),
    ("a.b_c-d=E.f_G-h", "a.b_c-d=E.f_G-h"),
    ("", ""),
]


@pytest.mark.parametrize(("text", "canonical"), CANONICAL)
def test_parse_gives_the_canonical_form(text: str, canonical: str) -> None:
    selector = LabelSelector.parse(text)
    assert str(selector) == canonical
    assert LabelSelector.parse(canonical) == selector


BAD = [
    ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
    ("a=b c", "found 'c', expected: ',' or 'end of string'"),
    ("a=bad value", "found 'value', expected: ',' or 'end of string'"),
    ("a in x", "unable to parse requirement: found 'x' expected: '('"),
    ("a in (x", "unable to parse requirement: found '', expected: ',' or ')'"),
    ("a in (x y)", "unable to parse requirement: found 'y', expected: ',' or ')'"),
    ("a=b,", "found '', expected: identifier after ','"),
    (",", "found ',', expected: !, identifier, or 'end of string'"),
    ("=a", "found '=', expected: !, identifier, or 'end of string'"),
    ("a=(", "unable to parse requirement: found '(', expected: identifier"),
    ("!a=b", "found '=', expected: ',' or 'end of string'"),
    ("a gt 1", "unable to parse requirement: found 'gt', expected: in, notin, =, ==, !=, gt, lt"),
    ("a>b", "unable to parse requirement: values[0]: Invalid value: \"b\": "
            "for 'Gt', 'Lt' operators, the value must be an integer"),
    ("-a=b", "unable to parse requirement: <nil>: Invalid value: \"-a\": name part must consist of "
             "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
             "character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
             "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"),
    ("a/b/c=d", "unable to parse requirement: <nil>: Invalid value: \"a/b/c\": "
                "a qualified name must consist"),
    ("Bad_Prefix/a=b", "unable to parse requirement: <nil>: Invalid value: \"Bad_Prefix/a\": "
                       "prefix part a lowercase RFC 1123 subdomain"),
    ("a=-b", "unable to parse requirement: values[0][a]: Invalid value: \"-b\": a valid label must be "
             "an empty string or consist of alphanumeric characters"),
    ("x<-2", "unable to parse requirement: values[0][x]: Invalid value: \"-2\": a valid label must be"),
    ("a=" + "v" * 64, "unable to parse requirement: values[0][a]: Invalid value: \"" + "v" * 64 + "\": "
                      "must be no more than 63 characters"),
]


@pytest.mark.parametrize(("text", "message"), BAD)
def test_bad_selectors_are_400_with_kubernetes_wording(text: str, message: str) -> None:
    with pytest.raises(errors.BadRequest) as caught:
        LabelSelector.parse(text)
    assert caught.value.message.startswith(message)
    assert caught.value.code == 400


MATCHES = [
    ("a=b", {"a": "b"}, True),
    ("a=b", {"a": "c"}, False),
    ("a=b", {}, False),
    ("a==b", {"a": "b", "c": "d"}, True),
    ("a!=b", {}, True),
    ("a!=b", {"a": "b"}, False),
    ("a!=b", {"a": "c"}, True),
    ("a in (x,y)", {"a": "y"}, True),
    ("a in (x,y)", {"a": "z"}, False),
    ("a in (x,y)", {}, False),
    ("a notin (x)", {}, True),
    ("a notin (x)", {"a": "x"}, False),
    ("a in ()", {"a": ""}, True),
    ("a in ()", {"a": "x"}, False),
    ("a", {"a": ""}, True),
    ("a", {"b": "a"}, False),
    ("!a", {"a": "x"}, False),
    ("!a", {"b": "x"}, True),
    ("a>5", {"a": "10"}, True),
    ("a>5", {"a": "5"}, False),
    ("a>5", {"a": "x"}, False),
    ("a>5", {}, False),
    ("a<5", {"a": "-1"}, True),
    ("a<5", {"a": "9"}, False),
    ("a=b,c", {"a": "b"}, False),
    ("a=b,c", {"a": "b", "c": "1"}, True),
    ("", {"anything": "x"}, True),
    ("a=", {"a": ""}, True),
    ("a=", {}, False),
]


@pytest.mark.parametrize(("text", "labels", "expected"), MATCHES)
def test_matches(text: str, labels: dict[str, str], expected: bool) -> None:
    assert LabelSelector.parse(text).matches(labels) is expected


def test_matching_an_object_without_labels() -> None:
    assert LabelSelector.parse("a!=b").matches(None)
    assert not LabelSelector.parse("a").matches(None)


def test_everything_nothing_and_empty() -> None:
    assert LabelSelector.parse("").empty
    assert LabelSelector.everything().matches({"x": "y"})
    assert not LabelSelector.parse("a").empty
    nothing = LabelSelector.nothing()
    assert not nothing.empty
    assert not nothing.matches({})
    assert nothing != LabelSelector.everything()


# --- metav1.LabelSelector ---------------------------------------------------------------------------


def test_from_dict_combines_match_labels_and_expressions() -> None:
    selector = LabelSelector.from_dict({
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["fe", "be", "fe"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "env", "operator": "NotIn", "values": ["dev"]},
            {"key": "team", "operator": "Exists"},
        ],
    })
    assert str(selector) == "app=web,!canary,env notin (dev),team,tier in (be,fe)"
    assert selector.matches({"app": "web", "tier": "fe", "team": "a"})
    assert not selector.matches({"app": "web", "tier": "fe", "team": "a", "canary": "1"})
    assert not selector.matches({"app": "web", "tier": "fe", "team": "a", "env": "dev"})
    assert not selector.matches({"app": "web", "tier": "fe"})


def test_from_dict_none_selects_nothing_and_empty_selects_everything() -> None:
    assert not LabelSelector.from_dict(None).matches({})
    assert LabelSelector.from_dict({}).matches({"a": "b"})
    assert LabelSelector.from_dict({"matchLabels": {}, "matchExpressions": []}).empty


def test_from_dict_invalid_raises_with_field_causes() -> None:
    with pytest.raises(SelectorError) as caught:
        LabelSelector.from_dict({
            "matchLabels": {"app": "bad value"},
            "matchExpressions": [
                {"key": "a", "operator": "In", "values": []},
                {"key": "b", "operator": "Exists", "values": ["x"]},
                {"key": "c", "operator": "Near"},
            ],
        }, "spec.selector")
    fields = [(c.field, c.reason) for c in caught.value.causes]
    assert fields == [
        ("spec.selector.matchLabels", "FieldValueInvalid"),
        ("spec.selector.matchExpressions[0].values", "FieldValueRequired"),
        ("spec.selector.matchExpressions[1].values", "FieldValueForbidden"),
        ("spec.selector.matchExpressions[2].operator", "FieldValueInvalid"),
    ]
    messages = [c.message for c in caught.value.causes]
    assert messages[1] == "Required value: must be specified when `operator` is 'In' or 'NotIn'"
    assert messages[3] == 'Invalid value: "Near": not a valid selector operator'
    assert isinstance(caught.value, ValueError)
    assert str(caught.value).startswith("[spec.selector.matchLabels: Invalid value: \"bad value\"")


def test_from_set_is_exact_match_and_empty_is_everything() -> None:
    selector = LabelSelector.from_set({"b": "2", "a": "1"})
    assert str(selector) == "a=1,b=2"
    assert selector.matches({"a": "1", "b": "2", "c": "3"})
    assert not selector.matches({"a": "1"})
    assert LabelSelector.from_set({}).empty
    assert LabelSelector.from_set(None).matches({})


VALID_KEYS = st.from_regex(r"([a-z]{1,5}\.)?[a-z]{1,5}/[A-Za-z][A-Za-z0-9._-]{0,6}[A-Za-z0-9]|[a-z]{1,6}",
                           fullmatch=True)
VALID_VALUES = st.from_regex(r"([A-Za-z0-9]([A-Za-z0-9._-]{0,6}[A-Za-z0-9])?)?", fullmatch=True)
TERMS = st.one_of(
    st.tuples(VALID_KEYS, st.sampled_from(["=", "==", "!="]), VALID_VALUES)
    .map(lambda t: f"{t[0]}{t[1]}{t[2]}"),
    # (Kubernetes cannot parse a list ending in ",,", so values here are never empty.)
    st.tuples(VALID_KEYS, st.sampled_from(["in", "notin"]),
              st.lists(VALID_VALUES.filter(bool), min_size=1, max_size=3))
    .map(lambda t: f"{t[0]} {t[1]} ({','.join(t[2])})"),
    VALID_KEYS,
    VALID_KEYS.map(lambda k: "!" + k),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(TERMS, max_size=4), st.dictionaries(VALID_KEYS, VALID_VALUES, max_size=4))
def test_canonical_form_parses_back_to_an_equivalent_selector(terms: list[str],
                                                              labels: dict[str, str]) -> None:
    selector = LabelSelector.parse(",".join(terms))
    again = LabelSelector.parse(str(selector))
    assert again == selector
    assert again.matches(labels) == selector.matches(labels)


# --- field selectors --------------------------------------------------------------------------------

POD_FIELDS = {"metadata.name", "metadata.namespace", "spec.nodeName", "status.phase", "spec.unschedulable"}
POD: dict[str, Any] = {"metadata": {"name": "web-1", "namespace": "default"},
                       "spec": {"nodeName": "pi-2"}, "status": {"phase": "Running"}}


def test_field_selector_canonical_form_and_requirements() -> None:
    selector = FieldSelector.parse("status.phase!=Failed,spec.nodeName==pi-2", POD_FIELDS)
    assert str(selector) == "spec.nodeName=pi-2,status.phase!=Failed"
    assert [(r.field, r.operator, r.value) for r in selector.requirements] == [
        ("spec.nodeName", "=", "pi-2"), ("status.phase", "!=", "Failed"),
    ]
    assert selector.exact("spec.nodeName") == "pi-2"
    assert selector.exact("status.phase") is None  # only != asked
    assert selector.exact("metadata.name") is None


FIELD_MATCHES = [
    ("metadata.name=web-1", True),
    ("metadata.name=web-2", False),
    ("metadata.namespace=default,spec.nodeName=pi-2", True),
    ("spec.nodeName=pi-3", False),
    ("spec.nodeName!=pi-3", True),
    ("status.phase!=Running", False),
    ("", True),
]


@pytest.mark.parametrize(("text", "expected"), FIELD_MATCHES)
def test_field_selector_matches(text: str, expected: bool) -> None:
    assert FieldSelector.parse(text, POD_FIELDS).matches(POD) is expected


def test_missing_field_compares_as_empty_so_unscheduled_pods_can_be_listed() -> None:
    unscheduled = {"metadata": {"name": "p"}, "spec": {}}
    assert FieldSelector.parse("spec.nodeName=", POD_FIELDS).matches(unscheduled)
    assert not FieldSelector.parse("spec.nodeName=", POD_FIELDS).matches(POD)
    assert FieldSelector.parse("spec.nodeName!=", POD_FIELDS).matches(POD)


def test_field_values_render_like_kubernetes() -> None:
    node = {"spec": {"unschedulable": True, "count": 3, "none": None}}
    assert field_value(node, "spec.unschedulable") == "true"
    assert field_value({"spec": {"unschedulable": False}}, "spec.unschedulable") == "false"
    assert field_value(node, "spec.count") == "3"
    assert field_value(node, "spec.none") == ""
    assert field_value(node, "spec.count.deeper") == ""
    assert FieldSelector.parse("spec.unschedulable=true", POD_FIELDS).matches(node)


def test_absent_fields_read_as_kubernetes_zero_values() -> None:
    # Kubernetes reads these from typed objects: an absent bool is false, an absent count 0.
    assert FieldSelector.parse("spec.unschedulable=false", POD_FIELDS).matches({"spec": {}})
    assert field_value({}, "spec.hostNetwork") == "false"
    assert field_value({"status": {}}, "status.replicas") == "0"
    assert field_value({}, "status.successful") == "0"
    assert field_value({"status": {"replicas": 3}}, "status.replicas") == "3"


def test_event_source_is_the_source_component() -> None:
    event = {"source": {"component": "kubelet", "host": "pi-1"}, "type": "Warning"}
    selector = FieldSelector.parse("source=kubelet,type=Warning", selectable_fields("Event"))
    assert selector.matches(event)


def test_selectable_fields_per_kind() -> None:
    pod_fields = selectable_fields("Pod")
    assert {"spec.nodeName", "status.phase", "metadata.name", "metadata.namespace"} <= pod_fields
    assert selectable_fields("Node") == {"metadata.name", "metadata.namespace", "spec.unschedulable"}
    assert selectable_fields("ConfigMap") == {"metadata.name", "metadata.namespace"}
    with pytest.raises(errors.BadRequest, match=r"^field label not supported: spec\.nodeName$"):
        FieldSelector.parse("spec.nodeName=x", selectable_fields("Deployment"))


def test_field_selector_escapes() -> None:
    selector = FieldSelector.parse(r"metadata.name=a\,b\=c\\d", POD_FIELDS)
    assert selector.exact("metadata.name") == "a,b=c\\d"
    assert str(selector) == r"metadata.name=a\,b\=c\\d"
    assert selector.matches({"metadata": {"name": "a,b=c\\d"}})


FIELD_ERRORS = [
    ("spec.foo=x", "field label not supported: spec.foo"),
    ("metadata.name=a,spec.foo=x", "field label not supported: spec.foo"),
    ("metadata.name", "invalid selector: 'metadata.name'; can't understand 'metadata.name'"),
    ("metadata.name=a=b", "invalid field selector: unescaped character in value: ="),
    (r"metadata.name=a\x", "invalid field selector: invalid escape sequence: \\x"),
    ("metadata.name=a\\", "invalid field selector: invalid escape sequence: \\"),
]


@pytest.mark.parametrize(("text", "message"), FIELD_ERRORS)
def test_field_selector_errors(text: str, message: str) -> None:
    with pytest.raises(errors.BadRequest) as caught:
        FieldSelector.parse(text, POD_FIELDS)
    assert caught.value.message == message


def test_empty_field_selector() -> None:
    assert FieldSelector.parse("", POD_FIELDS).empty
    assert FieldSelector.everything().matches({})
    assert not FieldSelector.parse("metadata.name=x", POD_FIELDS).empty
