"""Name, label and annotation rules, and the exact messages kubectl prints after `field: `."""

from __future__ import annotations

import pytest

from core import errors
from core.errors import Cause
from core.kube import validation as v

SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    r"'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used "
    "for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
NAME_PART_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)


def test_subdomain_message_is_kubernetes_wording() -> None:
    assert v.dns1123_subdomain("Bad_Name", "metadata.name") == [
        Cause("metadata.name", f'Invalid value: "Bad_Name": {SUBDOMAIN_MSG}', "FieldValueInvalid"),
    ]


@pytest.mark.parametrize("name", ["a", "web", "web-1", "a.b.c", "0abc", "a" * 253, "x" * 63 + "." + "y" * 63])
def test_valid_subdomains(name: str) -> None:
    assert v.dns1123_subdomain(name, "metadata.name") == []


@pytest.mark.parametrize("name", ["", "A", "-a", "a-", "a..b", ".a", "a_b", "a b", "ä", "a/b"])
def test_invalid_subdomains(name: str) -> None:
    assert [c.message for c in v.dns1123_subdomain(name, "f")] == [f"Invalid value: {v.go_quote(name)}: "
                                                                   f"{SUBDOMAIN_MSG}"]


def test_too_long_subdomain_reports_length_and_nothing_else() -> None:
    assert [c.message for c in v.dns1123_subdomain("a" * 254, "f")] == [
        f'Invalid value: "{"a" * 254}": must be no more than 253 characters',
    ]


def test_dns1123_label() -> None:
    assert v.dns1123_label("kube-system", "metadata.name") == []
    assert v.dns1123_label("a" * 63, "metadata.name") == []
    assert [c.message for c in v.dns1123_label("Bad", "metadata.name")] == [
        f'Invalid value: "Bad": {LABEL_MSG}']
    assert [c.message for c in v.dns1123_label("a.b", "metadata.name")] == [
        'Invalid value: "a.b": must not contain dots']
    assert [c.message for c in v.dns1123_label("a" * 64, "metadata.name")] == [
        f'Invalid value: "{"a" * 64}": must be no more than 63 characters']


def test_dns1035_label_for_service_names() -> None:
    assert v.dns1035_label("web", "metadata.name") == []
    (cause,) = v.dns1035_label("1web", "metadata.name")
    assert cause.message == (
        'Invalid value: "1web": a DNS-1035 label must consist of lower case alphanumeric characters or '
        "'-', start with an alphabetic character, and end with an alphanumeric character "
        "(e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
    )


def test_label_keys() -> None:
    for good in ["app", "App_1", "a.b-c", "example.com/app", "k8s.io/x", "a" * 63, "a" * 253 + "/b"]:
        assert v.label_key(good, "metadata.labels") == [], good
    assert [c.message for c in v.label_key("-a", "f")] == [f'Invalid value: "-a": {NAME_PART_MSG}']
    assert [c.message for c in v.label_key("/a", "f")] == [
        'Invalid value: "/a": prefix part must be non-empty']
    assert [c.message for c in v.label_key("a/", "f")] == [
        'Invalid value: "a/": name part must be non-empty', f'Invalid value: "a/": {NAME_PART_MSG}']
    assert [c.message for c in v.label_key("A_b/c", "f")] == [
        f'Invalid value: "A_b/c": prefix part {SUBDOMAIN_MSG}']
    assert v.label_key("a/b/c", "f")[0].message.startswith(
        'Invalid value: "a/b/c": a qualified name must consist of alphanumeric characters')
    assert v.label_key("a/b/c", "f")[0].message.endswith(
        " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')")
    assert [c.message for c in v.label_key("a" * 64, "f")] == [
        f'Invalid value: "{"a" * 64}": name part must be no more than 63 characters']


def test_label_values() -> None:
    for good in ["", "a", "A-b_c.d", "1" * 63]:
        assert v.label_value(good, "f") == [], good
    assert [c.message for c in v.label_value("bad value", "f")] == [
        f'Invalid value: "bad value": {LABEL_VALUE_MSG}']
    assert [c.message for c in v.label_value("a" * 64, "f")] == [
        f'Invalid value: "{"a" * 64}": must be no more than 63 characters']


def test_labels_report_against_the_map_field() -> None:
    causes = v.labels({"ok": "fine", "bad key": "x", "k": "bad value"}, "metadata.labels")
    assert {c.field for c in causes} == {"metadata.labels"}
    assert [c.message.split(":")[1].strip() for c in causes] == ['"bad key"', '"bad value"']
    assert v.labels(None) == []
    assert v.labels({"a": 5}, "metadata.labels")[0].message == "Invalid value: 5: must be a string"
    assert v.labels(["a"], "metadata.labels")[0].reason == "FieldValueInvalid"  # type: ignore[arg-type]


def test_annotation_keys_are_case_insensitive_and_values_free_form() -> None:
    assert v.annotations({"Example.COM/Owner": "anything at all, even spaces"}) == []
    assert [c.message for c in v.annotations({"bad key": "x"})] == [
        f'Invalid value: "bad key": {NAME_PART_MSG}']


def test_annotations_total_size_limit() -> None:
    exactly = {"k": "x" * (256 * 1024 - 1)}
    assert v.annotations(exactly) == []
    (cause,) = v.annotations({"k": "x" * (256 * 1024)})
    assert cause == Cause("metadata.annotations", "Too long: must have at most 262144 bytes",
                          "FieldValueTooLong")
    # Bytes, not characters.
    assert v.annotations({"k": "é" * (128 * 1024)})[0].reason == "FieldValueTooLong"


def test_generate_name_allows_a_trailing_dash() -> None:
    assert v.generate_name("web-") == []
    assert v.generate_name("web") == []
    (cause,) = v.generate_name("Web-")
    assert cause.field == "metadata.generateName"
    assert cause.message == f'Invalid value: "Web-": {SUBDOMAIN_MSG}'
    assert v.generate_name("-") != []
    assert v.generate_name("kube-", label=True) == []
    assert v.generate_name("a.b-", label=True)[0].message == 'Invalid value: "a.b-": must not contain dots'


def test_object_name() -> None:
    assert v.object_name({"name": "web"}) == []
    assert v.object_name({"generateName": "web-"}) == []
    assert v.object_name({}) == [Cause("metadata.name", "Required value: name or generateName is required",
                                       "FieldValueRequired")]
    assert v.object_name({"name": "Web"})[0].field == "metadata.name"
    assert v.object_name({"generateName": "Web-"})[0].field == "metadata.generateName"
    assert v.object_name({"name": "a.b"}, label=True)[0].message == \
        'Invalid value: "a.b": must not contain dots'
    assert v.object_name({"name": 5})[0].message == "Invalid value: 5: must be a string"


def test_cause_builders() -> None:
    assert v.required("spec.containers").message == "Required value"
    assert v.required("spec.containers", "must have at least one").message == \
        "Required value: must have at least one"
    assert v.not_supported("spec.restartPolicy", "Sometimes", ["Always", "OnFailure", "Never"]) == Cause(
        "spec.restartPolicy",
        'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"',
        "FieldValueNotSupported",
    )
    assert v.invalid("spec.replicas", -1, "must be greater than or equal to 0").message == \
        "Invalid value: -1: must be greater than or equal to 0"
    assert v.invalid("spec.paused", True, "x").message == "Invalid value: true: x"
    assert v.invalid("spec.x", None, "x").message == "Invalid value: null: x"
    assert v.forbidden("spec.x", "may not be set").message == "Forbidden: may not be set"
    assert v.duplicate("spec.containers[1].name", "web").message == 'Duplicate value: "web"'


def test_go_quote() -> None:
    assert v.go_quote('a"b\\c') == '"a\\"b\\\\c"'
    assert v.go_quote("tab\there\n") == '"tab\\there\\n"'
    assert v.go_quote("\x01") == '"\\x01"'
    assert v.go_quote("héllo") == '"héllo"'


def test_invalid_error_one_cause() -> None:
    err = v.invalid_error("Pod", "Bad_Name", v.dns1123_subdomain("Bad_Name", "metadata.name"))
    assert isinstance(err, errors.Invalid)
    assert err.message == \
        f'Pod "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": {SUBDOMAIN_MSG}'
    status = err.status()
    assert status["code"] == 422 and status["reason"] == "Invalid"
    assert status["details"] == {
        "name": "Bad_Name", "kind": "Pod",
        "causes": [{"reason": "FieldValueInvalid", "field": "metadata.name",
                    "message": f'Invalid value: "Bad_Name": {SUBDOMAIN_MSG}'}],
    }


def test_invalid_error_several_causes_group_and_duplicates() -> None:
    causes = [v.required("spec.selector"), v.required("spec.template"), v.required("spec.selector")]
    err = v.invalid_error("Deployment", "web", causes, group="apps")
    assert err.message == ('Deployment.apps "web" is invalid: '
                           "[spec.selector: Required value, spec.template: Required value]")
    assert err.group == "apps"
    assert err.causes == causes
    assert v.invalid_error("Pod", "x", []).message == 'Pod "x" is invalid'


def test_label_selector_validation_paths() -> None:
    expression = {"key": "Bad Key", "operator": "In", "values": ["ok", "-x"]}
    causes = v.label_selector({"matchExpressions": [expression]}, "spec.selector")
    assert [c.field for c in causes] == ["spec.selector.matchExpressions[0].key",
                                         "spec.selector.matchExpressions[0].values[1]"]
    assert v.label_selector(None, "spec.selector") == []
    assert v.label_selector("app=web", "spec.selector")[0].field == "spec.selector"
    assert v.label_selector({"matchExpressions": "x"}, "s")[0].field == "s.matchExpressions"
    assert v.label_selector({"matchExpressions": ["x"]}, "s")[0].field == "s.matchExpressions[0]"
