"""Strategic merge patch: the patches kubectl apply and kubectl patch send, and the directive edge cases.

Every case in CASES was checked against Kubernetes' own implementation
(`kubectl patch --local --type strategic`); `test_cases_match_kubectl` re-runs
that comparison when a kubectl binary is around.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from core import errors
from core.kube.patch import strategic_merge_patch
from tests.conftest import require

WEB: dict[str, Any] = {
    "name": "web", "image": "nginx:1",
    "ports": [{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 443, "protocol": "TCP"}],
    "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
}
SIDE: dict[str, Any] = {"name": "side", "image": "busybox"}


def deployment(containers: list[dict[str, Any]], **pod_spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web", "tier": "fe"}},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": containers, **pod_spec}},
        },
    }


def pod_spec_patch(spec: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"template": {"spec": spec}}}


def with_pod_spec(obj: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(obj))
    out["spec"]["template"]["spec"].update(changes)
    return out


def with_container(obj: dict[str, Any], index: int, **changes: Any) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(obj))
    out["spec"]["template"]["spec"]["containers"][index].update(changes)
    return out


POD: dict[str, Any] = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "p", "finalizers": ["a", "b", "c"],
                 "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs1",
                                      "uid": "1"}]},
    "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}]}],
             "tolerations": [{"key": "x", "operator": "Exists"}]},
    "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"},
                                                  {"type": "PodScheduled", "status": "True"}]},
}


def pod(**changes: Any) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(POD))
    for dotted, value in changes.items():
        section, field = dotted.split("__")
        out[section][field] = value
    return out


NODE: dict[str, Any] = {
    "apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
    "spec": {"podCIDRs": ["10.0.0.0/24"], "taints": [{"key": "a", "effect": "NoSchedule"}]},
    "status": {
        "addresses": [{"type": "InternalIP", "address": "1.2.3.4"}, {"type": "Hostname", "address": "n1"}],
        "conditions": [{"type": "Ready", "status": "True"}, {"type": "MemoryPressure", "status": "False"}],
    },
}

SERVICE: dict[str, Any] = {
    "apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
    "spec": {"selector": {"app": "a"},
             "ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"},
                       {"port": 443, "protocol": "TCP"}]},
}

DEP = deployment([WEB])
DEP2 = deployment([WEB, SIDE])

# (id, original, patch, expected)
CASES: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    (
        "apply-removes-a-port",
        DEP,
        pod_spec_patch({
            "$setElementOrder/containers": [{"name": "web"}],
            "containers": [{"name": "web", "$setElementOrder/ports": [{"containerPort": 80}],
                            "ports": [{"$patch": "delete", "containerPort": 443}]}],
        }),
        with_container(DEP, 0, ports=[{"containerPort": 80, "protocol": "TCP"}]),
    ),
    (
        "apply-adds-a-port-in-the-middle",
        DEP,
        pod_spec_patch({
            "containers": [{"name": "web",
                            "$setElementOrder/ports": [{"containerPort": 80}, {"containerPort": 8080},
                                                       {"containerPort": 443}],
                            "ports": [{"containerPort": 8080}]}],
        }),
        with_container(DEP, 0, ports=[{"containerPort": 80, "protocol": "TCP"}, {"containerPort": 8080},
                                      {"containerPort": 443, "protocol": "TCP"}]),
    ),
    (
        "env-var-changed-and-added",
        DEP,
        pod_spec_patch({"containers": [{"name": "web", "env": [{"name": "B", "value": "3"},
                                                                {"name": "C", "value": "4"}]}]}),
        with_container(DEP, 0, env=[{"name": "A", "value": "1"}, {"name": "B", "value": "3"},
                                    {"name": "C", "value": "4"}]),
    ),
    (
        "env-order-set-by-apply",
        DEP,
        pod_spec_patch({"containers": [{
            "name": "web",
            "$setElementOrder/env": [{"name": "C"}, {"name": "A"}, {"name": "B"}],
            "env": [{"name": "C", "value": "4"}, {"name": "B", "value": "3"}],
        }]}),
        with_container(DEP, 0, env=[{"name": "C", "value": "4"}, {"name": "A", "value": "1"},
                                    {"name": "B", "value": "3"}]),
    ),
    (
        "env-var-deleted",
        DEP,
        pod_spec_patch({"containers": [{"name": "web", "env": [{"name": "A", "$patch": "delete"}]}]}),
        with_container(DEP, 0, env=[{"name": "B", "value": "2"}]),
    ),
    (
        "env-value-from-replaced-by-value",
        deployment([{"name": "web", "image": "i",
                     "env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}]}]),
        pod_spec_patch({"containers": [{"name": "web",
                                        "env": [{"name": "A", "value": "v", "valueFrom": None}]}]}),
        deployment([{"name": "web", "image": "i", "env": [{"name": "A", "value": "v"}]}]),
    ),
    (
        "retain-keys-switches-strategy-to-recreate",
        DEP,
        {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": None}}},
        {**DEP, "spec": {**DEP["spec"], "strategy": {"type": "Recreate"}}},
    ),
    (
        "containers-reordered",
        DEP2,
        pod_spec_patch({"$setElementOrder/containers": [{"name": "side"}, {"name": "web"}]}),
        deployment([SIDE, WEB]),
    ),
    (
        "injected-container-keeps-its-place",
        deployment([WEB, {"name": "inj", "image": "i"}, SIDE]),
        pod_spec_patch({"$setElementOrder/containers": [{"name": "side"}, {"name": "web"}]}),
        deployment([{"name": "inj", "image": "i"}, SIDE, WEB]),
    ),
    (
        "null-removes-a-label",
        DEP,
        {"metadata": {"labels": {"tier": None}}},
        {**DEP, "metadata": {"name": "web", "labels": {"app": "web"}}},
    ),
    (
        "new-container-without-order-goes-first",
        DEP2,
        pod_spec_patch({"containers": [{"name": "new", "image": "x"}]}),
        deployment([{"name": "new", "image": "x"}, WEB, SIDE]),
    ),
    (
        "patch-replace-element-replaces-the-list",
        DEP2,
        pod_spec_patch({"containers": [{"name": "only", "image": "x"}, {"$patch": "replace"}]}),
        deployment([{"name": "only", "image": "x"}]),
    ),
    (
        "patch-replace-in-a-map",
        DEP,
        {"metadata": {"labels": {"$patch": "replace", "x": "1"}}},
        {**DEP, "metadata": {"name": "web", "labels": {"x": "1"}}},
    ),
    (
        "patch-delete-in-a-map-empties-it",
        DEP,
        {"metadata": {"labels": {"$patch": "delete"}}},
        {**DEP, "metadata": {"name": "web", "labels": {}}},
    ),
    (
        "patch-replace-marker-with-content-still-replaces-the-whole-list",
        POD,
        {"spec": {"containers": [{"name": "c", "$patch": "replace", "image": "j"}]}},
        pod(spec__containers=[]),
    ),
    (
        "deleting-an-absent-element-is-a-no-op",
        POD,
        {"spec": {"containers": [{"name": "zzz", "$patch": "delete"}]}},
        POD,
    ),
    (
        "duplicate-originals-all-deleted",
        pod(spec__containers=[{"name": "c", "image": "i",
                               "env": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]}]),
        {"spec": {"containers": [{"name": "c", "env": [{"name": "A", "$patch": "delete"}]}]}},
        pod(spec__containers=[{"name": "c", "image": "i", "env": []}]),
    ),
    (
        "tolerations-have-no-strategy-and-are-replaced",
        deployment([WEB], tolerations=[{"key": "a", "operator": "Exists"},
                                       {"key": "b", "operator": "Exists"}]),
        pod_spec_patch({"tolerations": [{"key": "c", "operator": "Exists"}]}),
        deployment([WEB], tolerations=[{"key": "c", "operator": "Exists"}]),
    ),
    (
        "env-from-is-replaced",
        deployment([{"name": "web", "image": "i", "envFrom": [{"configMapRef": {"name": "a"}}]}]),
        pod_spec_patch({"containers": [{"name": "web", "envFrom": [{"configMapRef": {"name": "b"}}]}]}),
        deployment([{"name": "web", "image": "i", "envFrom": [{"configMapRef": {"name": "b"}}]}]),
    ),
    (
        "volume-mounts-merge-by-mount-path",
        deployment([{"name": "web", "image": "i", "volumeMounts": [{"name": "a", "mountPath": "/a"}]}]),
        pod_spec_patch({"containers": [{"name": "web", "volumeMounts": [{"name": "b", "mountPath": "/b"}]}]}),
        deployment([{"name": "web", "image": "i",
                     "volumeMounts": [{"name": "b", "mountPath": "/b"}, {"name": "a", "mountPath": "/a"}]}]),
    ),
    (
        "volume-source-switched-with-retain-keys",
        deployment([WEB], volumes=[{"name": "v", "emptyDir": {}}, {"name": "w", "emptyDir": {}}]),
        pod_spec_patch({"volumes": [{"name": "v", "$retainKeys": ["configMap", "name"],
                                     "configMap": {"name": "cm"}}]}),
        deployment([WEB], volumes=[{"name": "v", "configMap": {"name": "cm"}},
                                   {"name": "w", "emptyDir": {}}]),
    ),
    (
        "init-containers-and-pull-secrets-merge-by-name",
        deployment([WEB], initContainers=[{"name": "i1", "image": "a"}], imagePullSecrets=[{"name": "a"}]),
        pod_spec_patch({"initContainers": [{"name": "i2", "image": "b"}],
                        "imagePullSecrets": [{"name": "b"}]}),
        deployment([WEB], initContainers=[{"name": "i2", "image": "b"}, {"name": "i1", "image": "a"}],
                   imagePullSecrets=[{"name": "b"}, {"name": "a"}]),
    ),
    (
        "host-aliases-merge-by-ip-spread-by-topology-key",
        deployment([WEB], hostAliases=[{"ip": "1.1.1.1", "hostnames": ["a"]}],
                   topologySpreadConstraints=[{"topologyKey": "zone", "maxSkew": 1}]),
        pod_spec_patch({"hostAliases": [{"ip": "1.1.1.1", "hostnames": ["b"]}],
                        "topologySpreadConstraints": [{"topologyKey": "host", "maxSkew": 2}]}),
        deployment([WEB], hostAliases=[{"ip": "1.1.1.1", "hostnames": ["b"]}],
                   topologySpreadConstraints=[{"topologyKey": "host", "maxSkew": 2},
                                              {"topologyKey": "zone", "maxSkew": 1}]),
    ),
    (
        "ports-null-removes-all-ports",
        DEP,
        pod_spec_patch({"containers": [{"name": "web", "ports": None}]}),
        deployment([{k: v for k, v in WEB.items() if k != "ports"}]),
    ),
    (
        "finalizers-merge-as-a-set-new-first",
        POD,
        {"metadata": {"finalizers": ["d", "b"]}},
        pod(metadata__finalizers=["d", "a", "b", "c"]),
    ),
    (
        "finalizers-delete-from-primitive-list",
        POD,
        {"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}},
        pod(metadata__finalizers=["a", "c"]),
    ),
    (
        "finalizers-set-order-and-delete",
        POD,
        {"metadata": {"$setElementOrder/finalizers": ["c", "a"],
                      "$deleteFromPrimitiveList/finalizers": ["b"]}},
        pod(metadata__finalizers=["c", "a"]),
    ),
    (
        "finalizers-set-order-with-addition",
        POD,
        {"metadata": {"$setElementOrder/finalizers": ["a", "d", "b", "c"], "finalizers": ["d"]}},
        pod(metadata__finalizers=["a", "d", "b", "c"]),
    ),
    (
        "primitive-merge-deduplicates",
        pod(metadata__finalizers=["a", "a", "b"]),
        {"metadata": {"finalizers": ["b", "c", "c"]}},
        pod(metadata__finalizers=["a", "b", "c"]),
    ),
    (
        "owner-references-merge-by-uid",
        POD,
        {"metadata": {"ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs2",
                                           "uid": "2"}]}},
        pod(metadata__ownerReferences=[
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs2", "uid": "2"},
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs1", "uid": "1"},
        ]),
    ),
    (
        "pod-status-condition-updated-in-place",
        POD,
        {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
        pod(status__conditions=[{"type": "Ready", "status": "True"},
                                {"type": "PodScheduled", "status": "True"}]),
    ),
    (
        "node-heartbeat-merges-one-condition",
        NODE,
        {"status": {"conditions": [{"type": "Ready", "status": "True",
                                    "lastHeartbeatTime": "2024-01-01T00:00:00Z"}]}},
        {**NODE, "status": {**NODE["status"], "conditions": [
            {"type": "Ready", "status": "True", "lastHeartbeatTime": "2024-01-01T00:00:00Z"},
            {"type": "MemoryPressure", "status": "False"}]}},
    ),
    (
        "node-taints-are-replaced-pod-cidrs-merged",
        NODE,
        {"spec": {"taints": [{"key": "b", "effect": "NoExecute"}], "podCIDRs": ["10.0.1.0/24"]}},
        {**NODE, "spec": {"taints": [{"key": "b", "effect": "NoExecute"}],
                          "podCIDRs": ["10.0.1.0/24", "10.0.0.0/24"]}},
    ),
    (
        "node-addresses-merge-by-type",
        NODE,
        {"status": {"addresses": [{"type": "InternalIP", "address": "5.6.7.8"}]}},
        {**NODE, "status": {**NODE["status"], "addresses": [{"type": "InternalIP", "address": "5.6.7.8"},
                                                            {"type": "Hostname", "address": "n1"}]}},
    ),
    (
        "service-ports-merge-by-port",
        SERVICE,
        {"spec": {"ports": [{"port": 80, "targetPort": 9090}]}},
        {**SERVICE, "spec": {**SERVICE["spec"], "ports": [{"port": 80, "targetPort": 9090, "protocol": "TCP"},
                                                          {"port": 443, "protocol": "TCP"}]}},
    ),
    (
        "service-port-removed-by-apply",
        SERVICE,
        {"spec": {"$setElementOrder/ports": [{"port": 443}], "ports": [{"port": 80, "$patch": "delete"}]}},
        {**SERVICE, "spec": {**SERVICE["spec"], "ports": [{"port": 443, "protocol": "TCP"}]}},
    ),
    (
        "endpoints-subsets-are-replaced",
        {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "e"},
         "subsets": [{"addresses": [{"ip": "1.1.1.1"}]}]},
        {"subsets": [{"addresses": [{"ip": "2.2.2.2"}]}]},
        {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "e"},
         "subsets": [{"addresses": [{"ip": "2.2.2.2"}]}]},
    ),
    (
        "service-account-secrets-merge-pull-secrets-replace",
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"},
         "secrets": [{"name": "a"}], "imagePullSecrets": [{"name": "x"}]},
        {"secrets": [{"name": "b"}], "imagePullSecrets": [{"name": "y"}]},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"},
         "secrets": [{"name": "b"}, {"name": "a"}], "imagePullSecrets": [{"name": "y"}]},
    ),
    (
        "namespace-spec-finalizers-are-replaced",
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"},
         "spec": {"finalizers": ["kubernetes"]}},
        {"spec": {"finalizers": ["other"]}},
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n"},
         "spec": {"finalizers": ["other"]}},
    ),
    (
        "configmap-data-keys",
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v", "k2": "v2"}},
        {"data": {"k": None, "k3": "v3"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
         "data": {"k2": "v2", "k3": "v3"}},
    ),
    (
        "job-template-containers-merge",
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
         "spec": {"template": {"spec": {"containers": [{"name": "a", "image": "x"}]}}}},
        {"spec": {"template": {"spec": {"containers": [{"name": "b", "image": "y"}]}}}},
        {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
         "spec": {"template": {"spec": {"containers": [{"name": "b", "image": "y"},
                                                       {"name": "a", "image": "x"}]}}}},
    ),
    (
        "root-replace",
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "v"}},
        {"$patch": "replace", "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}},
    ),
    (
        "scalar-and-type-changes-replace",
        DEP,
        {"spec": {"replicas": 5, "selector": "x"}},
        {**DEP, "spec": {**DEP["spec"], "replicas": 5, "selector": "x"}},
    ),
]


@pytest.mark.parametrize(("original", "patch", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_strategic_merge_patch(original: dict[str, Any], patch: dict[str, Any],
                               expected: dict[str, Any]) -> None:
    before = json.dumps(original), json.dumps(patch)
    assert strategic_merge_patch(original, patch, original["kind"]) == expected
    assert (json.dumps(original), json.dumps(patch)) == before  # inputs untouched


def test_list_order_is_exact_not_just_content() -> None:
    result = strategic_merge_patch(DEP2, pod_spec_patch({"$setElementOrder/containers": [{"name": "side"},
                                                                                         {"name": "web"}]}),
                                   "Deployment")
    assert [c["name"] for c in result["spec"]["template"]["spec"]["containers"]] == ["side", "web"]


# --- errors (worded as Kubernetes; it ignores a non-list $deleteFromPrimitiveList) -------------------

ERRORS: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    ("delete-without-merge-key", DEP, pod_spec_patch({"containers": [{"$patch": "delete"}]}),
     "map: map[$patch:delete] does not contain declared merge key: name"),
    ("element-without-merge-key", DEP, pod_spec_patch({"containers": [{"image": "x"}]}),
     "map: map[image:x] does not contain declared merge key: name"),
    ("unknown-patch-type", DEP, {"metadata": {"labels": {"$patch": "frob"}}},
     "unknown patch type: frob in map: map[$patch:frob]"),
    ("unknown-patch-type-in-list", DEP, pod_spec_patch({"containers": [{"name": "web", "$patch": "frob"}]}),
     "unknown patch type: frob in map: map[$patch:frob name:web]"),
    ("retain-keys-not-covering-patch", DEP,
     {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate", "rollingUpdate": {"maxSurge": 1}}}},
     "invalid patch format of retainKeys"),
    ("retain-keys-not-a-list", DEP, {"spec": {"strategy": {"$retainKeys": "type"}}},
     "invalid patch format of retainKeys"),
    ("set-order-disagrees-with-patch", DEP2,
     pod_spec_patch({"$setElementOrder/containers": [{"name": "web"}],
                     "containers": [{"name": "side", "image": "q"}]}),
     "The order in patch list:\n[map[image:q name:side]]\n"
     " doesn't match $setElementOrder list:\n[map[name:web]]\n"),
    ("set-order-not-a-list", DEP2, pod_spec_patch({"$setElementOrder/containers": {"name": "web"}}),
     "invalid patch format of setElementOrder list"),
    ("delete-primitive-not-a-list", POD, {"metadata": {"$deleteFromPrimitiveList/finalizers": "a"}},
     "invalid patch format of primitive list"),
    ("mixed-element-types", DEP, pod_spec_patch({"containers": ["x"]}),
     "list element types are not identical"),
    ("lists-of-lists", pod(metadata__finalizers=[["a"]]), {"metadata": {"finalizers": [["b"]]}},
     "lists of lists are not supported"),
]


@pytest.mark.parametrize(("original", "patch", "message"), [e[1:] for e in ERRORS],
                         ids=[e[0] for e in ERRORS])
def test_malformed_patches_are_bad_requests(original: dict[str, Any], patch: dict[str, Any],
                                            message: str) -> None:
    with pytest.raises(errors.BadRequest) as caught:
        strategic_merge_patch(original, patch, original["kind"])
    assert message in caught.value.message
    assert caught.value.code == 400


def test_patch_must_be_an_object() -> None:
    with pytest.raises(errors.BadRequest, match="invalid JSON document"):
        strategic_merge_patch(DEP, [{"op": "add"}], "Deployment")  # type: ignore[arg-type]


# --- where pikube deliberately differs from Go (documented in the module) -----------------------------


def test_value_added_where_original_had_none_is_cleaned_of_directives() -> None:
    original = {k: v for k, v in DEP["spec"].items() if k != "strategy"}
    result = strategic_merge_patch({**DEP, "spec": original},
                                   {"spec": {"strategy": {"$retainKeys": ["type"], "type": "Recreate",
                                                          "rollingUpdate": None}}}, "Deployment")
    assert result["spec"]["strategy"] == {"type": "Recreate"}


def test_new_list_drops_delete_directives_and_nulls() -> None:
    result = strategic_merge_patch(pod(spec__containers=[{"name": "c", "image": "i"}]),
                                   {"spec": {"containers": [{"name": "c", "ports": [
                                       {"containerPort": 1, "hostIP": None},
                                       {"containerPort": 2, "$patch": "delete"}]}]}}, "Pod")
    assert result["spec"]["containers"] == [{"name": "c", "image": "i", "ports": [{"containerPort": 1}]}]


def test_patch_merge_directive_is_accepted_as_the_default() -> None:
    result = strategic_merge_patch(DEP, {"metadata": {"labels": {"$patch": "merge", "x": "1"}}}, "Deployment")
    assert result["metadata"]["labels"] == {"app": "web", "tier": "fe", "x": "1"}
    result = strategic_merge_patch(DEP, pod_spec_patch({"containers": [{"$patch": "merge"},
                                                                       {"name": "web", "$patch": "merge",
                                                                        "image": "nginx:2"}]}), "Deployment")
    assert result["spec"]["template"]["spec"]["containers"] == [{**WEB, "image": "nginx:2"}]


def test_unknown_dollar_keys_are_dropped() -> None:
    result = strategic_merge_patch(DEP, {"metadata": {"$frob": 1, "labels": {"x": "1"}}}, "Deployment")
    assert "$frob" not in result["metadata"]
    assert result["metadata"]["labels"]["x"] == "1"


def test_unknown_kind_replaces_lists_but_merges_maps() -> None:
    widget = {"kind": "Widget", "metadata": {"name": "w", "finalizers": ["a"], "labels": {"a": "1"}},
              "spec": {"containers": [{"name": "a"}, {"name": "b"}]}}
    result = strategic_merge_patch(widget, {"metadata": {"finalizers": ["b"], "labels": {"b": "2"}},
                                            "spec": {"containers": [{"name": "c"}]}}, "Widget")
    assert result["spec"]["containers"] == [{"name": "c"}]
    assert result["metadata"]["finalizers"] == ["b"]
    assert result["metadata"]["labels"] == {"a": "1", "b": "2"}


def test_patch_replace_cleans_nested_nulls() -> None:
    result = strategic_merge_patch(DEP, {"metadata": {"labels": {"$patch": "replace", "x": "1", "y": None}}},
                                   "Deployment")
    assert result["metadata"]["labels"] == {"x": "1"}


def test_original_is_not_shared_with_result() -> None:
    original = json.loads(json.dumps(DEP))
    result = strategic_merge_patch(original, {"metadata": {"labels": {"x": "1"}}}, "Deployment")
    result["spec"]["template"]["spec"]["containers"][0]["image"] = "changed"
    assert original["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1"


# --- the same cases through Kubernetes' implementation -------------------------------------------------


def _kubectl_patch(kubectl: str, original: dict[str, Any], patch: dict[str, Any], tmp: Path) -> Any:
    path = tmp / "object.json"
    path.write_text(json.dumps(original))
    out = subprocess.run(
        [kubectl, "patch", "--local", "-f", str(path), "--type", "strategic", "-p", json.dumps(patch),
         "-o", "json"],
        capture_output=True, text=True, timeout=60, check=False,
        env={"PATH": os.defpath, "HOME": str(tmp), "KUBECONFIG": str(tmp / "none")},
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.integration
def test_cases_match_kubectl(tmp_path: Path) -> None:
    kubectl = shutil.which("kubectl")
    require(kubectl is not None, "kubectl is not installed")
    assert kubectl is not None
    mismatched = [
        name for name, original, patch, expected in CASES
        if _kubectl_patch(kubectl, original, patch, tmp_path) != expected
    ]
    assert mismatched == []
