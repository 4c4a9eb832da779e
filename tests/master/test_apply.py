"""Server-side apply and managedFields over the API: bad input, dry run, Update entries, managedFields
written by clients (kubectl 1.33's migration), and the official Python client's apply."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests

from tests.master.conftest import RunningMaster

pytestmark = pytest.mark.integration
APPLY = "application/apply-patch+yaml"
CMS = "/api/v1/namespaces/default/configmaps"


def cm(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


@pytest.fixture
def http(master: RunningMaster) -> requests.Session:
    return master.session()


def apply(master: RunningMaster, http: requests.Session, path: str, body: Any, ctype: str = APPLY,
          **params: str) -> requests.Response:
    data = body if isinstance(body, str) else json.dumps(body)
    return http.patch(master.url + path, data=data, params=params, headers={"Content-Type": ctype})


def user_session(master: RunningMaster, name: str) -> requests.Session:
    """An HTTPS session with a client certificate for user `name` (no groups), from the master's CA."""
    from master.pki import issue_client_cert, pki_paths

    cert, key = issue_client_cert(pki_paths(master.data_dir), name, [])
    (master.data_dir / f"{name}.crt").write_bytes(cert)
    (master.data_dir / f"{name}.key").write_bytes(key)
    s = requests.Session()
    s.trust_env = False
    s.verify = str(master.ca)
    s.cert = (str(master.data_dir / f"{name}.crt"), str(master.data_dir / f"{name}.key"))
    return s


def owners(obj: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(e["manager"], e["operation"]): e for e in obj["metadata"].get("managedFields", [])}


def test_apply_creates_then_updates_with_yaml_or_json(master: RunningMaster, http: requests.Session) -> None:
    made = apply(master, http, f"{CMS}/yaml-cm", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: yaml-cm}\n"
                 "data: {a: '1'}\n", fieldManager="tool")
    assert made.status_code == 201, made.text
    entry = owners(made.json())[("tool", "Apply")]
    assert entry["fieldsType"] == "FieldsV1" and entry["apiVersion"] == "v1"
    assert entry["fieldsV1"] == {"f:data": {"f:a": {}}}
    assert entry["time"].endswith("Z") and len(entry["time"]) == 20  # seconds precision
    again = apply(master, http, f"{CMS}/yaml-cm", cm("yaml-cm", a="1", b="2"), fieldManager="tool")
    assert again.status_code == 200 and again.json()["data"] == {"a": "1", "b": "2"}
    same = apply(master, http, f"{CMS}/yaml-cm", cm("yaml-cm", a="1", b="2"), fieldManager="tool")
    assert same.json()["metadata"]["resourceVersion"] == again.json()["metadata"]["resourceVersion"]


def test_bad_apply_requests(master: RunningMaster, http: requests.Session) -> None:
    path = f"{CMS}/bad-cm"
    missing = apply(master, http, path, cm("bad-cm"))
    assert missing.status_code == 422
    assert missing.json()["message"] == ('PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                                         "is required for apply patch")
    not_object = apply(master, http, path, "[1, 2]", fieldManager="m")
    assert not_object.status_code == 400
    assert not_object.json()["message"] == ("error decoding patch: json: cannot unmarshal array into Go value of "
                                            "type map[string]interface {}")
    version = apply(master, http, path, {**cm("bad-cm"), "apiVersion": "apps/v1"}, fieldManager="m")
    assert version.status_code == 400
    assert version.json()["message"] == "invalid object type: apps/v1, Kind=ConfigMap"
    kind = apply(master, http, path, {**cm("bad-cm"), "kind": "Secret"}, fieldManager="m")
    assert (kind.status_code, kind.json()["message"]) == (400, "invalid object type: /v1, Kind=Secret")
    with_owners = cm("bad-cm")
    with_owners["metadata"]["managedFields"] = []
    refused = apply(master, http, path, with_owners, fieldManager="m")
    assert (refused.status_code, refused.json()["message"]) == (400, "metadata.managedFields must be nil")
    force_on_merge = apply(master, http, path, {"data": {}}, "application/merge-patch+json", force="true")
    assert force_on_merge.status_code == 422
    assert http.get(master.url + path).status_code == 404  # nothing was created


def test_dry_run_stores_nothing(master: RunningMaster, http: requests.Session) -> None:
    dry = apply(master, http, f"{CMS}/dry-cm", cm("dry-cm", a="1"), fieldManager="m", dryRun="All")
    assert dry.status_code == 201 and dry.json()["data"] == {"a": "1"}
    assert http.get(f"{master.url}{CMS}/dry-cm").status_code == 404
    apply(master, http, f"{CMS}/dry-cm", cm("dry-cm", a="1"), fieldManager="m")
    dry2 = apply(master, http, f"{CMS}/dry-cm", cm("dry-cm", a="2"), fieldManager="m", dryRun="All")
    assert dry2.json()["data"] == {"a": "2"}
    assert http.get(f"{master.url}{CMS}/dry-cm").json()["data"] == {"a": "1"}


def test_conflict_message_and_causes(master: RunningMaster, http: requests.Session) -> None:
    path = f"{CMS}/clash-cm"
    assert apply(master, http, path, cm("clash-cm", a="1", b="1"), fieldManager="first").ok
    # The same values: co-owned, no conflict.
    shared = apply(master, http, path, cm("clash-cm", a="1"), fieldManager="second")
    assert shared.ok
    assert owners(shared.json())[("second", "Apply")]["fieldsV1"] == {"f:data": {"f:a": {}}}
    one = apply(master, http, path, cm("clash-cm", a="2"), fieldManager="second")
    assert one.status_code == 409
    body = one.json()
    assert body["reason"] == "Conflict"
    assert body["message"] == 'Apply failed with 1 conflict: conflict with "first": .data.a'
    assert body["details"]["causes"] == [{"reason": "FieldManagerConflict", "message": 'conflict with "first"',
                                          "field": ".data.a"}]
    two = apply(master, http, path, cm("clash-cm", a="2", b="2"), fieldManager="second")
    assert two.json()["message"] == ('Apply failed with 2 conflicts: conflicts with "first":\n- .data.a\n'
                                     "- .data.b")
    # An Update owner is named with its apiVersion.
    http.patch(f"{master.url}{path}", data=json.dumps({"data": {"c": "3"}}),
               headers={"Content-Type": "application/merge-patch+json"}, params={"fieldManager": "editor"})
    three = apply(master, http, path, cm("clash-cm", a="1", c="4"), fieldManager="second")
    assert three.json()["message"] == ('Apply failed with 1 conflict: conflict with "editor" using v1: .data.c')
    forced = apply(master, http, path, cm("clash-cm", a="2", b="2"), fieldManager="second", force="true")
    assert forced.ok and forced.json()["data"] == {"a": "2", "b": "2", "c": "3"}
    after = owners(forced.json())
    assert ("first", "Apply") not in after  # it lost every field it had
    assert after[("second", "Apply")]["fieldsV1"] == {"f:data": {"f:a": {}, "f:b": {}}}


def test_removal_keeps_fields_others_own(master: RunningMaster, http: requests.Session) -> None:
    path = f"{CMS}/shared-cm"
    apply(master, http, path, cm("shared-cm", a="1", b="1"), fieldManager="one")
    apply(master, http, path, cm("shared-cm", b="1"), fieldManager="two")
    left = apply(master, http, path, cm("shared-cm"), fieldManager="one").json()
    assert left["data"] == {"b": "1"}  # a: only "one" had it; b: "two" co-owns it


def test_update_entries_and_managed_fields_written_by_clients(master: RunningMaster,
                                                              http: requests.Session) -> None:
    made = http.post(f"{master.url}{CMS}", json=cm("upd-cm", a="1"), headers={"User-Agent": "mytool/1.0 (x)"})
    assert made.status_code == 201
    entries = owners(made.json())
    assert entries[("mytool", "Update")]["fieldsV1"] == {"f:data": {".": {}, "f:a": {}}} or \
        entries[("mytool", "Update")]["fieldsV1"] == {"f:data": {"f:a": {}}}
    # A PUT of what was read keeps the entries; a change by another manager moves the field to it.
    current = made.json()
    current["data"]["a"] = "2"
    put = http.put(f"{master.url}{CMS}/upd-cm", json=current, params={"fieldManager": "other"}).json()
    entries = owners(put)
    assert ("mytool", "Update") not in entries
    assert entries[("other", "Update")]["fieldsV1"] == {"f:data": {"f:a": {}}}
    # Invalid managedFields from a client are ignored; `[]` resets them (apimachinery's decodeLiveOrNew).
    bad = [{"op": "replace", "path": "/metadata/managedFields", "value": [{"manager": "x", "operation": "Nope"}]}]
    kept = apply(master, http, f"{CMS}/upd-cm", bad, "application/json-patch+json").json()
    assert owners(kept) == entries
    reset = [{"op": "replace", "path": "/metadata/managedFields", "value": []}]
    cleared = apply(master, http, f"{CMS}/upd-cm", reset, "application/json-patch+json").json()
    assert "managedFields" not in cleared["metadata"]
    assert int(cleared["metadata"]["resourceVersion"]) > int(put["metadata"]["resourceVersion"])
    # A rewrite (kubectl 1.33's migration to server-side apply) is stored as sent.
    rewrite = [{"op": "add", "path": "/metadata/managedFields", "value": [
        {"manager": "kubectl", "operation": "Apply", "apiVersion": "v1", "time": "2026-01-01T00:00:00Z",
         "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:a": {}}}}]}]
    moved = apply(master, http, f"{CMS}/upd-cm", rewrite, "application/json-patch+json").json()
    assert owners(moved)[("kubectl", "Apply")]["fieldsV1"] == {"f:data": {"f:a": {}}}
    clash = apply(master, http, f"{CMS}/upd-cm", cm("upd-cm", a="3"), fieldManager="someone")
    assert clash.status_code == 409 and 'conflict with "kubectl"' in clash.json()["message"]


def test_status_writes_are_recorded_with_their_subresource(master: RunningMaster,
                                                           http: requests.Session) -> None:
    ns = "/api/v1/namespaces/default/services"
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ssa-svc"},
           "spec": {"ports": [{"port": 80}], "selector": {"app": "x"}}}
    made = apply(master, http, f"{ns}/ssa-svc", svc, fieldManager="deployer")
    assert made.status_code == 201, made.text
    spec = owners(made.json())[("deployer", "Apply")]["fieldsV1"]["f:spec"]
    assert spec == {"f:ports": {'k:{"port":80,"protocol":"TCP"}': {".": {}, "f:port": {}}}, "f:selector": {}}
    status = {"status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.9"}]}}}
    written = http.patch(f"{master.url}{ns}/ssa-svc/status", data=json.dumps(status),
                         headers={"Content-Type": "application/merge-patch+json"},
                         params={"fieldManager": "lb"}).json()
    entry = [e for e in written["metadata"]["managedFields"] if e["manager"] == "lb"]
    assert len(entry) == 1 and entry[0]["subresource"] == "status"
    assert list(entry[0]["fieldsV1"]) == ["f:status"]
    # Apply through the status subresource owns status only; a missing object is 404, not created.
    applied = apply(master, http, f"{ns}/ssa-svc/status", {**svc, "status": {"loadBalancer": {}}},
                    fieldManager="lb-apply", force="true")
    assert applied.ok, applied.text
    mine = [e for e in applied.json()["metadata"]["managedFields"] if e["manager"] == "lb-apply"]
    assert mine[0]["subresource"] == "status" and list(mine[0]["fieldsV1"]) == ["f:status"]
    assert apply(master, http, f"{ns}/absent/status", {**svc, "metadata": {"name": "absent"}},
                 fieldManager="x").status_code == 404


def test_python_client_create_from_yaml_apply_is_idempotent(master: RunningMaster) -> None:
    from kubernetes import config, utils

    api = config.new_client_from_config(str(master.kubeconfig))
    docs = [{"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {"name": "py-ssa", "namespace": "default", "labels": {"app": "py-ssa"}},
             "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "py-ssa"}},
                      "template": {"metadata": {"labels": {"app": "py-ssa"}},
                                   "spec": {"containers": [{"name": "c", "image": "pikube/busybox:1"}]}}}}]
    first = utils.create_from_yaml(api, yaml_objects=docs, apply=True)
    second = utils.create_from_yaml(api, yaml_objects=docs, apply=True)
    one, two = first[0][0], second[0][0]
    assert one.metadata.generation == two.metadata.generation == 1
    managers = {(e.manager, e.operation) for e in two.metadata.managedFields}
    assert ("python-client", "Apply") in managers


KINDS: list[tuple[str, dict[str, Any]]] = [
    ("/api/v1/namespaces/default/pods", {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "k-pod"},
                                         "spec": {"containers": [{"name": "c", "image": "busybox"}]}}),
    ("/api/v1/namespaces/default/secrets", {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "k-sec"},
                                            "stringData": {"a": "b"}}),
    ("/api/v1/namespaces/default/serviceaccounts", {"apiVersion": "v1", "kind": "ServiceAccount",
                                                    "metadata": {"name": "k-sa", "labels": {"a": "b"}}}),
    ("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                            "metadata": {"name": "k-ns", "labels": {"a": "b"}}}),
    ("/apis/apps/v1/namespaces/default/daemonsets", {
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "k-ds"},
        "spec": {"selector": {"matchLabels": {"a": "ds"}}, "template": {
            "metadata": {"labels": {"a": "ds"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}),
    ("/apis/apps/v1/namespaces/default/statefulsets", {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "k-sts"},
        "spec": {"serviceName": "k", "replicas": 0, "selector": {"matchLabels": {"a": "sts"}}, "template": {
            "metadata": {"labels": {"a": "sts"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}),
    ("/apis/batch/v1/namespaces/default/cronjobs", {
        "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "k-cj"},
        "spec": {"schedule": "0 0 1 1 *", "suspend": True, "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}}}),
    ("/apis/coordination.k8s.io/v1/namespaces/default/leases", {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "k-lease"},
        "spec": {"holderIdentity": "me"}}),
    ("/apis/rbac.authorization.k8s.io/v1/clusterroles", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "k-cr"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]}),
]


@pytest.mark.parametrize(("collection", "manifest"), KINDS, ids=[m["kind"] for _, m in KINDS])
def test_every_kind_applies_and_reapplies_without_a_write(master: RunningMaster, http: requests.Session,
                                                          collection: str, manifest: dict[str, Any]) -> None:
    path = f"{collection}/{manifest['metadata']['name']}"
    first = apply(master, http, path, manifest, fieldManager="kinds")
    assert first.status_code == 201, first.text
    assert ("kinds", "Apply") in owners(first.json())
    for _ in range(5):  # a controller may write the status in between: then try again
        current = http.get(master.url + path).json()
        again = apply(master, http, path, manifest, fieldManager="kinds")
        assert again.status_code == 200, again.text
        if again.json()["metadata"]["resourceVersion"] == current["metadata"]["resourceVersion"]:
            break
        time.sleep(0.5)
    else:
        pytest.fail("applying the same manifest again wrote the object")


def test_creating_by_apply_needs_the_create_permission(master: RunningMaster, http: requests.Session) -> None:
    rbac = f"{master.url}/apis/rbac.authorization.k8s.io/v1/namespaces/default"
    http.post(f"{rbac}/roles", json={"metadata": {"name": "patcher"}, "rules": [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "patch"]}]}).raise_for_status()
    http.post(f"{rbac}/rolebindings", json={"metadata": {"name": "patcher"}, "roleRef": {
        "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "patcher"}, "subjects": [
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "patcher"}]}).raise_for_status()
    patcher = user_session(master, "patcher")
    refused = apply(master, patcher, f"{CMS}/perm-cm", cm("perm-cm", a="1"), fieldManager="p")
    assert refused.status_code == 403
    assert "cannot create resource" in refused.json()["message"]
    assert http.post(f"{master.url}{CMS}", json=cm("perm-cm", a="0")).status_code == 201
    allowed = apply(master, patcher, f"{CMS}/perm-cm", cm("perm-cm", a="1"), fieldManager="p", force="true")
    assert allowed.status_code == 200 and allowed.json()["data"] == {"a": "1"}


def test_apply_through_the_scale_subresource(master: RunningMaster, http: requests.Session) -> None:
    deps = "/apis/apps/v1/namespaces/default/deployments"
    dep = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "scaled"},
           "spec": {"replicas": 2, "selector": {"matchLabels": {"a": "scaled"}}, "template": {
               "metadata": {"labels": {"a": "scaled"}}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}
    assert apply(master, http, f"{deps}/scaled", dep, fieldManager="deployer").status_code == 201
    scale = {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "scaled"},
             "spec": {"replicas": 3}}
    clash = apply(master, http, f"{deps}/scaled/scale", scale, fieldManager="autoscaler")
    assert clash.status_code == 409
    assert clash.json()["message"] == 'Apply failed with 1 conflict: conflict with "deployer": .spec.replicas'
    wrong = apply(master, http, f"{deps}/scaled/scale", {**scale, "kind": "Deployment"}, fieldManager="a")
    assert (wrong.status_code, wrong.json()["message"]) == (400, "invalid object type: autoscaling/v1, "
                                                                 "Kind=Deployment")
    forced = apply(master, http, f"{deps}/scaled/scale", scale, fieldManager="autoscaler", force="true")
    assert forced.status_code == 200 and forced.json()["spec"]["replicas"] == 3
    entries = {(e["manager"], e["operation"], e.get("subresource", "")): e["fieldsV1"]
               for e in http.get(f"{master.url}{deps}/scaled").json()["metadata"]["managedFields"]}
    assert entries[("autoscaler", "Apply", "scale")] == {"f:spec": {"f:replicas": {}}}
    assert "f:replicas" not in entries[("deployer", "Apply", "")]["f:spec"]
    missing = apply(master, http, f"{deps}/absent/scale", {**scale, "metadata": {"name": "absent"}},
                    fieldManager="autoscaler")
    assert missing.status_code == 404
