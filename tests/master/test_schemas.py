"""The generated API definitions and server-side field validation (`master.registry.schemas`)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from core.kube import schema as patch_table
from master.registry import schemas
from master.registry.catalog import Catalog, builtin_resources

CATALOG = Catalog(builtin_resources())
META = "io.k8s.apimachinery.pkg.apis.meta.v1."


def _pod(**container: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": {"app": "x", "any/key": "v"}, "annotations": {"a.b/c": "d"}},
            "spec": {"containers": [{"name": "c", "image": "nginx", **container}]}}


@pytest.mark.parametrize("rt", list(CATALOG), ids=lambda rt: rt.kind)
def test_every_served_kind_has_a_definition_with_its_gvk(rt: Any) -> None:
    defs = schemas.definitions()
    for kind in (rt.kind, rt.list_kind):
        name = schemas.definition_name(rt.group, rt.version, kind)
        assert name is not None, kind
        assert name.endswith("." + kind)
        gvks = defs[name]["x-kubernetes-group-version-kind"]
        assert {"group": rt.group, "version": rt.version, "kind": kind} in gvks
    props = defs[schemas.definition_name(rt.group, rt.version, rt.kind) or ""]["properties"]
    assert props["metadata"]["$ref"] == META + "ObjectMeta"
    assert "description" in props["metadata"]


def test_definition_names_follow_kubernetes() -> None:
    assert schemas.definition_name("", "v1", "Pod") == "io.k8s.api.core.v1.Pod"
    assert schemas.definition_name("apps", "v1", "Deployment") == "io.k8s.api.apps.v1.Deployment"
    assert schemas.definition_name("coordination.k8s.io", "v1", "Lease") == "io.k8s.api.coordination.v1.Lease"
    assert schemas.definition_name("", "v1", "Event") == "io.k8s.api.core.v1.Event"
    assert schemas.definition_name("", "v1", "Status") == META + "Status"
    assert schemas.definition_name("apps", "v1", "DeleteOptions") == META + "DeleteOptions"
    assert schemas.definition_name("autoscaling", "v1", "Scale") == "io.k8s.api.autoscaling.v1.Scale"
    assert schemas.definition_name("", "v1", "Nope") is None


def test_container_schema_carries_types_descriptions_and_patch_extensions() -> None:
    defs = schemas.definitions()
    container = defs["io.k8s.api.core.v1.Container"]
    assert container["required"] == ["name"]
    props = container["properties"]
    assert props["image"]["type"] == "string" and "Container image name" in props["image"]["description"]
    # A field whose type is another definition keeps its own description.
    assert props["lifecycle"] == {"$ref": "io.k8s.api.core.v1.Lifecycle",
                                  "description": props["lifecycle"]["description"]}
    assert props["lifecycle"]["description"].startswith("Actions that the management system")
    assert props["ports"]["x-kubernetes-patch-merge-key"] == "containerPort"
    assert props["ports"]["x-kubernetes-list-map-keys"] == ["containerPort", "protocol"]
    assert props["args"]["x-kubernetes-list-type"] == "atomic"
    assert props["imagePullPolicy"]["enum"] == ["Always", "IfNotPresent", "Never"]
    spec = defs["io.k8s.api.core.v1.PodSpec"]["properties"]
    assert spec["terminationGracePeriodSeconds"]["format"] == "int64"
    assert spec["volumes"]["x-kubernetes-patch-strategy"] == "merge,retainKeys"
    assert "x-kubernetes-patch-strategy" not in spec["tolerations"]
    limits = defs["io.k8s.api.core.v1.ResourceRequirements"]["properties"]["limits"]
    assert limits["additionalProperties"] == {"$ref": "io.k8s.apimachinery.pkg.api.resource.Quantity"}
    target = defs["io.k8s.api.core.v1.ServicePort"]["properties"]["targetPort"]
    assert target["$ref"] == "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
    assert defs[META + "ObjectMeta"]["properties"]["creationTimestamp"]["$ref"] == META + "Time"


def _definition_for(short: str) -> str | None:
    for package in ("io.k8s.api.core.v1.", "io.k8s.api.apps.v1.", "io.k8s.api.batch.v1.",
                    "io.k8s.api.coordination.v1.", "io.k8s.api.autoscaling.v1.", META):
        if package + short in schemas.definitions():
            return package + short
    return None


def test_patch_merge_keys_agree_with_the_strategic_merge_patch_table() -> None:
    """core.kube.schema (used by the server's strategic merge patch) and the OpenAPI (used by kubectl's
    apply) must describe the same lists the same way, or apply and patch disagree."""
    checked = 0
    for type_name, fields in patch_table.TYPES.items():
        name = _definition_for(type_name)
        if name is None:
            continue  # a kind pikube does not serve (StatefulSet, CronJob …)
        props = schemas.definitions()[name].get("properties", {})
        for field, meta in fields.items():
            assert field in props, f"{type_name}.{field}"
            ours = props[field]
            strategy = ours.get("x-kubernetes-patch-strategy", "")
            if meta.strategy == patch_table.MERGE:
                assert "merge" in strategy.split(","), f"{type_name}.{field}"
                assert ours.get("x-kubernetes-patch-merge-key", "") == meta.merge_key, f"{type_name}.{field}"
            elif ours.get("type") == "array":
                assert "merge" not in strategy.split(","), f"{type_name}.{field} merges in the OpenAPI"
            if meta.retain_keys:
                assert "retainKeys" in strategy.split(","), f"{type_name}.{field}"
            checked += 1
    assert checked > 40


def test_structure_and_definitions_were_generated_together() -> None:
    skeleton = schemas._structure()["types"]
    for name, schema in schemas.definitions().items():
        if "properties" in schema:
            assert set(skeleton[name]) == set(schema["properties"]), name


# ---- unknown_fields -----------------------------------------------------------------------------------

def test_misspelt_container_field_is_reported_with_its_path() -> None:
    assert schemas.unknown_fields("", "v1", "Pod", _pod(imagee="x")) == ["spec.containers[0].imagee"]


def test_known_fields_labels_annotations_and_maps_are_accepted() -> None:
    pod = _pod(ports=[{"containerPort": 80, "protocol": "TCP"}], env=[{"name": "A", "value": "b"}],
               resources={"limits": {"cpu": "1", "example.com/gpu": 1}, "requests": {"memory": "1Gi"}})
    pod["spec"]["nodeSelector"] = {"kubernetes.io/arch": "arm64"}
    pod["status"] = {"phase": "Running", "podIP": "10.0.0.1"}
    assert schemas.unknown_fields("", "v1", "Pod", pod) == []
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
          "data": {"any.key-here": "v", "config.yaml": "a: b"}, "binaryData": {"bin": "AAEC"}}
    assert schemas.unknown_fields("", "v1", "ConfigMap", cm) == []
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"k": "v"},
              "data": {"k2": "dg=="}, "type": "Opaque"}
    assert schemas.unknown_fields("", "v1", "Secret", secret) == []


def test_unknown_fields_at_every_level_are_all_reported_in_order() -> None:
    pod = _pod(ports=[{"containerPort": 80}, {"containerPort": 81, "hostPortt": 1}], livenessProbe={
        "httpGet": {"port": 8080, "pathh": "/"}})
    pod["foo"] = 1
    pod["metadata"]["labelz"] = {}
    pod["metadata"]["ownerReferences"] = [{"apiVersion": "v1", "kind": "X", "name": "n", "uid": "u", "bad": 1}]
    pod["status"] = {"phasee": "Running"}
    assert schemas.unknown_fields("", "v1", "Pod", pod) == [
        "metadata.labelz", "metadata.ownerReferences[0].bad",
        "spec.containers[0].ports[1].hostPortt", "spec.containers[0].livenessProbe.httpGet.pathh",
        "foo", "status.phasee"]


def test_nested_templates_and_other_groups() -> None:
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
              "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "d"}},
                       "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
                       "template": {"metadata": {"labels": {"app": "d"}, "creationTimestamp": None},
                                    "spec": {"containers": [{"name": "c", "image": "i", "commnd": ["x"]}]}}}}
    assert schemas.unknown_fields("apps", "v1", "Deployment", deploy) == [
        "spec.template.spec.containers[0].commnd"]
    job = {"spec": {"template": {"spec": {"containers": [], "restartPolicy": "Never"}}, "backofLimit": 1}}
    assert schemas.unknown_fields("batch", "v1", "Job", job) == ["spec.backofLimit"]
    lease = {"spec": {"holderIdentity": "n", "renewTime": "2024-01-01T00:00:00.000000Z", "leaseDurationSecs": 1}}
    assert schemas.unknown_fields("coordination.k8s.io", "v1", "Lease", lease) == ["spec.leaseDurationSecs"]


def test_free_form_fields_wrong_shapes_and_unknown_kinds_are_not_reported() -> None:
    pod = _pod()
    pod["metadata"]["managedFields"] = [{"manager": "m", "fieldsV1": {"f:metadata": {"f:labels": {}}}}]
    pod["spec"]["containers"].append("not an object")
    pod["spec"]["volumes"] = None
    assert schemas.unknown_fields("", "v1", "Pod", pod) == []
    assert schemas.unknown_fields("", "v1", "Nope", {"x": 1}) == []
    assert schemas.unknown_fields("", "v1", "Pod", {"spec": "str"}) == []


def test_drop_unknown_fields_removes_exactly_the_reported_fields() -> None:
    pod = _pod(imagee="x", ports=[{"containerPort": 80, "bogus": 1}])
    pod["spec"]["foo"] = {"bar": 1}
    assert schemas.drop_unknown_fields("", "v1", "Pod", pod) == [
        "spec.containers[0].imagee", "spec.containers[0].ports[0].bogus", "spec.foo"]
    assert pod["spec"] == {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}]}]}
    assert pod["metadata"]["labels"] == {"app": "x", "any/key": "v"}
    assert schemas.unknown_fields("", "v1", "Pod", pod) == []


def test_messages_match_kubernetes() -> None:
    assert schemas.strict_error_message("Pod", "v1", ["spec.foo", "bar"]) == (
        'Pod in version "v1" cannot be handled as a Pod: strict decoding error: unknown field "spec.foo", '
        'unknown field "bar"')
    assert schemas.warning_headers(["spec.foo"]) == ['299 - "unknown field \\"spec.foo\\""']


def test_validation_loads_only_the_small_skeleton() -> None:
    """Writes must not pay for the descriptions: unknown_fields never reads definitions.json."""
    code = ("import master.registry.schemas as s, master.api.app\n"
            "assert s.definitions.cache_info().currsize == 0 and s._structure.cache_info().currsize == 0\n"
            "assert s.unknown_fields('', 'v1', 'Pod', {'spec': {'containers': [{'nam': 1}]}}) == "
            "['spec.containers[0].nam']\n"
            "assert s.definitions.cache_info().currsize == 0\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
