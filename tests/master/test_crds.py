"""CustomResourceDefinitions against the real master: kubectl 1.20 and 1.33, and the official Python client."""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from tests.master.conftest import RunningMaster, kubectl, start_master

pytestmark = pytest.mark.integration
Obj = dict[str, Any]
GROUP = "stable.example.com"

CRD: Obj = yaml.safe_load("""
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: crontabs.stable.example.com
spec:
  group: stable.example.com
  scope: Namespaced
  names: {plural: crontabs, singular: crontab, kind: CronTab, shortNames: [ct], categories: [all]}
  versions:
  - name: v1beta1
    served: true
    storage: false
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
    additionalPrinterColumns:
    - {name: Spec, type: string, jsonPath: .spec.cronSpec}
    - {name: Replicas, type: integer, jsonPath: .spec.replicas}
    - {name: Ready, type: string, jsonPath: '.status.conditions[?(@.type=="Ready")].status'}
    - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
    schema:
      openAPIV3Schema:
        type: object
        description: A CronTab runs an image on a schedule.
        properties:
          spec:
            type: object
            required: [cronSpec]
            properties:
              cronSpec:
                type: string
                description: The schedule, in cron format.
                pattern: '^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$'
              replicas: {type: integer, minimum: 0, maximum: 10, default: 1}
              size: {type: string, enum: [small, medium, large], default: small}
              containers:
                type: array
                x-kubernetes-list-type: map
                x-kubernetes-list-map-keys: [name]
                items:
                  type: object
                  required: [name]
                  properties:
                    name: {type: string}
                    image: {type: string}
                    port: {x-kubernetes-int-or-string: true}
              extra: {type: object, x-kubernetes-preserve-unknown-fields: true}
          status:
            type: object
            properties:
              replicas: {type: integer}
              conditions:
                type: array
                items:
                  type: object
                  properties:
                    type: {type: string}
                    status: {type: string}
""")


def crontab(name: str, **spec: Any) -> Obj:
    return {"apiVersion": f"{GROUP}/v1", "kind": "CronTab", "metadata": {"name": name},
            "spec": {"cronSpec": "*/5 * * * *", **spec}}


@pytest.fixture(scope="module")
def crd_master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningMaster]:
    m = start_master(tmp_path_factory.mktemp("crds") / "data")
    yield m
    m.stop()


@pytest.fixture(scope="module")
def api(crd_master: RunningMaster) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(crd_master.kubeconfig))


def wait_for(check: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        time.sleep(0.05)


def _established(ext: client.ApiextensionsV1Api, name: str) -> bool:
    try:
        crd = ext.read_custom_resource_definition(name)
    except ApiException:
        return False
    return any(c.type == "Established" and c.status == "True" for c in (crd.status.conditions or []))


@pytest.fixture(scope="module")
def crontabs(crd_master: RunningMaster, api: client.ApiClient) -> Iterator[None]:
    kubectl(crd_master, "new", "apply", "-f", "-", input=json.dumps(CRD))
    ext = client.ApiextensionsV1Api(api)
    wait_for(lambda: _established(ext, "crontabs.stable.example.com"), 5, "the CRD is Established")
    yield
    kubectl(crd_master, "new", "delete", "crd", "crontabs.stable.example.com", "--wait=false", check=False)


@pytest.mark.parametrize("which", ["old", "new"])
def test_kubectl_creates_lists_and_validates_custom_resources(crd_master: RunningMaster, crontabs: None,
                                                              which: str) -> None:
    name = f"tab-{which}"
    kubectl(crd_master, which, "apply", "-f", "-",
            input=json.dumps(crontab(name, containers=[{"name": "a", "image": "busybox", "port": "http"}])))
    got = json.loads(kubectl(crd_master, which, "get", "ct", name, "-o", "json").stdout)
    assert got["spec"]["replicas"] == 1 and got["spec"]["size"] == "small"  # defaults from the schema
    assert got["metadata"]["generation"] == 1
    table = kubectl(crd_master, which, "get", "crontabs").stdout.splitlines()
    assert table[0].split() == ["NAME", "SPEC", "REPLICAS", "READY", "AGE"]
    row = next(line for line in table if line.startswith(name)).split()
    # No Ready condition yet: an empty cell, as kube-apiserver sends it (null); Age is printed as an age.
    assert row[1:7] == ["*/5", "*", "*", "*", "*", "1"] and len(row) == 8 and row[7].endswith("s")
    assert f"crontab.{GROUP}/{name}" in kubectl(crd_master, which, "get", "all").stdout
    # Bad values: every field error at once, nothing stored.
    bad = crontab(f"bad-{which}", replicas=20, size="huge",
                  containers=[{"name": "a"}, {"name": "a"}, {"image": "x"}])
    bad["spec"]["cronSpec"] = "never"
    if which == "old":  # kubectl 1.20 validates against /openapi/v2 first: the CRD's schema is in it
        proc = kubectl(crd_master, which, "apply", "-f", "-", input=json.dumps(bad), check=False)
        assert 'missing required field "name" in com.example.stable.v1.CronTab.spec.containers' in proc.stderr
    proc = kubectl(crd_master, which, "apply", "--validate=false", "-f", "-", input=json.dumps(bad), check=False)
    assert proc.returncode != 0
    for expected in ("spec.replicas: Invalid value: 20: spec.replicas in body should be less than or equal to 10",
                     'spec.size: Unsupported value: "huge": supported values: "small", "medium", "large"',
                     "spec.cronSpec: Invalid value: \"never\": spec.cronSpec in body should match",
                     "spec.containers[2].name: Required value", "spec.containers[1]: Duplicate value"):
        assert expected in proc.stderr, proc.stderr
    assert kubectl(crd_master, which, "get", "ct", f"bad-{which}", check=False).returncode != 0
    # Patches: merge and JSON work, strategic merge is refused as Kubernetes refuses it for custom resources.
    kubectl(crd_master, which, "patch", "ct", name, "--type", "merge", "-p", '{"spec":{"size":"large"}}')
    kubectl(crd_master, which, "patch", "ct", name, "--type", "json",
            "-p", '[{"op":"replace","path":"/spec/replicas","value":3}]')
    proc = kubectl(crd_master, which, "patch", "ct", name, "-p", '{"spec":{"size":"medium"}}', check=False)
    assert proc.returncode != 0 and "application/merge-patch+json" in proc.stderr
    assert "strategic-merge-patch" not in proc.stderr.split("accepted media types include:")[-1]
    kubectl(crd_master, which, "scale", "ct", name, "--replicas", "4")
    got = json.loads(kubectl(crd_master, which, "get", "ct", name, "-o", "json").stdout)
    assert (got["spec"]["size"], got["spec"]["replicas"], got["metadata"]["generation"]) == ("large", 4, 4)
    proc = kubectl(crd_master, which, "scale", "ct", name, "--replicas", "11", check=False)
    assert proc.returncode != 0 and "should be less than or equal to 10" in proc.stderr
    kubectl(crd_master, which, "delete", "ct", name)


def test_unknown_fields_are_pruned_or_refused(crd_master: RunningMaster, crontabs: None) -> None:
    obj = crontab("pruned", bogus=1, extra={"free": {"form": [1, 2]}})
    proc = kubectl(crd_master, "new", "create", "-f", "-", input=json.dumps(obj), check=False)
    assert proc.returncode != 0 and 'unknown field "spec.bogus"' in proc.stderr  # kubectl 1.33: Strict
    kubectl(crd_master, "new", "create", "--validate=false", "-f", "-", input=json.dumps(obj))
    got = json.loads(kubectl(crd_master, "new", "get", "ct", "pruned", "-o", "json").stdout)
    assert "bogus" not in got["spec"] and got["spec"]["extra"] == {"free": {"form": [1, 2]}}


def test_explain_reads_the_crd_schema(crd_master: RunningMaster, crontabs: None) -> None:
    out = kubectl(crd_master, "new", "explain", "ct.spec").stdout
    assert "cronSpec\t<string> -required-" in out and "The schedule, in cron format." in out
    assert "enum: small, medium, large" in out
    out = kubectl(crd_master, "old", "explain", "crontab.spec.cronSpec").stdout
    assert "The schedule, in cron format." in out


def test_status_subresource_and_versions(api: client.ApiClient, crontabs: None) -> None:
    objs = client.CustomObjectsApi(api)
    objs.create_namespaced_custom_object(GROUP, "v1", "default", "crontabs",
                                         {**crontab("st"), "status": {"replicas": 9}})
    got = objs.get_namespaced_custom_object(GROUP, "v1", "default", "crontabs", "st")
    assert "status" not in got  # dropped on create: the status subresource owns it
    got["status"] = {"replicas": 2, "conditions": [{"type": "Ready", "status": "True"}]}
    got["spec"]["replicas"] = 7  # ignored by a status write
    after = objs.replace_namespaced_custom_object_status(GROUP, "v1", "default", "crontabs", "st", got)
    assert after["status"]["replicas"] == 2 and after["spec"]["replicas"] == 1
    assert after["metadata"]["generation"] == 1
    after["status"] = {"replicas": 100}  # ignored by a main-resource write
    after["spec"]["size"] = "medium"
    main = objs.replace_namespaced_custom_object(GROUP, "v1", "default", "crontabs", "st", after)
    assert main["status"]["replicas"] == 2 and main["metadata"]["generation"] == 2
    scale = objs.get_namespaced_custom_object_scale(GROUP, "v1", "default", "crontabs", "st")
    assert (scale["spec"]["replicas"], scale["status"]["replicas"]) == (1, 2)
    # The same object through the other served version (the None conversion: only apiVersion differs).
    beta = objs.get_namespaced_custom_object(GROUP, "v1beta1", "default", "crontabs", "st")
    assert beta["apiVersion"] == f"{GROUP}/v1beta1" and beta["spec"] == main["spec"]
    objs.delete_namespaced_custom_object(GROUP, "v1", "default", "crontabs", "st")


def test_python_client_crud_watch_and_selectors(api: client.ApiClient, crontabs: None) -> None:
    objs = client.CustomObjectsApi(api)
    start = objs.list_namespaced_custom_object(GROUP, "v1", "default", "crontabs")["metadata"]["resourceVersion"]
    seen: list[tuple[str, str]] = []
    w = watch.Watch()

    def follow() -> None:
        for ev in w.stream(objs.list_namespaced_custom_object, GROUP, "v1", "default", "crontabs",
                           resource_version=start, label_selector="suite=watch", timeout_seconds=20):
            seen.append((ev["type"], ev["object"]["metadata"]["name"]))
            if ev["type"] == "DELETED":
                w.stop()

    t = threading.Thread(target=follow)
    t.start()
    for n in ("w1", "w2"):
        body = crontab(n)
        body["metadata"]["labels"] = {"suite": "watch"}
        objs.create_namespaced_custom_object(GROUP, "v1", "default", "crontabs", body)
    objs.patch_namespaced_custom_object(GROUP, "v1", "default", "crontabs", "w1", {"spec": {"replicas": 2}})
    by_name = objs.list_namespaced_custom_object(GROUP, "v1", "default", "crontabs", field_selector="metadata.name=w2")
    assert [i["metadata"]["name"] for i in by_name["items"]] == ["w2"]
    labelled = objs.list_cluster_custom_object(GROUP, "v1", "crontabs", label_selector="suite=watch")
    assert sorted(i["metadata"]["name"] for i in labelled["items"]) == ["w1", "w2"]
    objs.delete_namespaced_custom_object(GROUP, "v1", "default", "crontabs", "w2")
    t.join(25)
    assert seen == [("ADDED", "w1"), ("ADDED", "w2"), ("MODIFIED", "w1"), ("DELETED", "w2")]
    with pytest.raises(ApiException) as bad:
        objs.create_namespaced_custom_object(GROUP, "v1", "default", "crontabs", crontab("x", replicas="two"))
    assert bad.value.status == 422
    assert 'spec.replicas in body must be of type integer: \\"string\\"' in bad.value.body
    objs.delete_namespaced_custom_object(GROUP, "v1", "default", "crontabs", "w1")


def test_owner_references_collect_dependents(api: client.ApiClient, crontabs: None) -> None:
    objs, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
    owner = objs.create_namespaced_custom_object(GROUP, "v1", "default", "crontabs", crontab("owner"))
    ref = client.V1OwnerReference(api_version=f"{GROUP}/v1", kind="CronTab", name="owner",
                                  uid=owner["metadata"]["uid"])
    core.create_namespaced_config_map("default", client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="owned-by-tab", owner_references=[ref])))
    dep = crontab("dependent")
    dep["metadata"]["ownerReferences"] = [ref.to_dict() | {"apiVersion": f"{GROUP}/v1"}]
    dep["metadata"]["ownerReferences"][0].pop("api_version", None)
    objs.create_namespaced_custom_object(GROUP, "v1", "default", "crontabs", dep)
    objs.delete_namespaced_custom_object(GROUP, "v1", "default", "crontabs", "owner")

    def gone() -> bool:
        try:
            core.read_namespaced_config_map("owned-by-tab", "default")
            return False
        except ApiException as exc:
            if exc.status != 404:
                raise
        try:
            objs.get_namespaced_custom_object(GROUP, "v1", "default", "crontabs", "dependent")
            return False
        except ApiException as exc:
            return exc.status == 404

    wait_for(gone, 10, "the garbage collector deletes a ConfigMap and a CronTab owned by a deleted CronTab")


def test_cluster_scoped_crd_and_deleting_a_crd_deletes_its_objects(crd_master: RunningMaster,
                                                                   api: client.ApiClient) -> None:
    crd = copy.deepcopy(CRD)
    crd["metadata"]["name"] = "boards.hw.example.com"
    crd["spec"].update({"group": "hw.example.com", "scope": "Cluster",
                        "names": {"plural": "boards", "kind": "Board"}})
    crd["spec"]["versions"] = [crd["spec"]["versions"][1]]
    ext, objs = client.ApiextensionsV1Api(api), client.CustomObjectsApi(api)
    kubectl(crd_master, "old", "create", "-f", "-", input=json.dumps(crd))
    wait_for(lambda: _established(ext, "boards.hw.example.com"), 5, "the CRD is Established")
    for n in ("pi-1", "pi-2"):
        objs.create_cluster_custom_object("hw.example.com", "v1", "boards",
                                          {"apiVersion": "hw.example.com/v1", "kind": "Board", "metadata": {"name": n},
                                           "spec": {"cronSpec": "0 * * * *"}})
    assert len(objs.list_cluster_custom_object("hw.example.com", "v1", "boards")["items"]) == 2
    table = kubectl(crd_master, "new", "get", "boards").stdout
    assert "pi-1" in table and "NAMESPACE" not in table
    kubectl(crd_master, "new", "delete", "crd", "boards.hw.example.com")  # waits until the CRD is gone

    def unserved() -> bool:
        try:
            objs.list_cluster_custom_object("hw.example.com", "v1", "boards")
            return False
        except ApiException as exc:
            return exc.status == 404

    wait_for(unserved, 5, "the group stops being served")
    kubectl(crd_master, "old", "create", "-f", "-", input=json.dumps(crd))  # the same CRD again: no old objects
    wait_for(lambda: _established(ext, "boards.hw.example.com"), 5, "the CRD is Established again")
    assert objs.list_cluster_custom_object("hw.example.com", "v1", "boards")["items"] == []
    kubectl(crd_master, "new", "delete", "crd", "boards.hw.example.com")


def _bad_crd(change: Callable[[Obj], None]) -> str:
    crd = copy.deepcopy(CRD)
    crd["metadata"]["name"] = "widgets.bad.example.com"
    crd["spec"].update({"group": "bad.example.com", "names": {"plural": "widgets", "kind": "Widget"}})
    change(crd)
    return json.dumps(crd)


def _v1_schema(crd: Obj) -> Obj:
    schema: Obj = crd["spec"]["versions"][1]["schema"]["openAPIV3Schema"]
    return schema


@pytest.mark.parametrize(("change", "message"), [
    (lambda c: c["metadata"].update(name="gadgets.bad.example.com"),
     'metadata.name: Invalid value: "gadgets.bad.example.com": must be spec.names.plural+"."+spec.group'),
    (lambda c: _v1_schema(c)["properties"]["spec"]["properties"].update(loose={"description": "no type"}),
     "spec.versions[1].schema.openAPIV3Schema.properties[spec].properties[loose].type: Required value: must not "
     "be empty for specified object fields"),
    (lambda c: c["spec"]["versions"][0].update(storage=True),
     "must have exactly one version marked as storage version"),
    (lambda c: c["spec"].update(conversion={"strategy": "Webhook"}),
     'spec.conversion.strategy: Unsupported value: "Webhook"'),
    (lambda c: _v1_schema(c).update({"x-kubernetes-validations": [{"rule": "self.spec.replicas < 5"}]}),
     "CEL validation rules are not supported by pikube"),
    (lambda c: c["spec"].update(group="apps"), 'spec.group: Invalid value: "apps"'),
    (lambda c: c["spec"].update(scope="Global"), 'spec.scope: Unsupported value: "Global"'),
], ids=["name", "non-structural", "two-storage", "webhook", "cel", "builtin-group", "scope"])
def test_bad_crds_are_refused_with_kubernetes_messages(crd_master: RunningMaster, change: Callable[[Obj], None],
                                                       message: str) -> None:
    proc = kubectl(crd_master, "new", "create", "-f", "-", input=_bad_crd(change), check=False)
    assert proc.returncode != 0 and message in proc.stderr, proc.stderr
    assert "is invalid" in proc.stderr
    assert kubectl(crd_master, "new", "get", "crd", "widgets.bad.example.com", check=False).returncode != 0


def test_two_crds_claiming_one_kind(crd_master: RunningMaster, api: client.ApiClient, crontabs: None) -> None:
    rival = copy.deepcopy(CRD)
    rival["metadata"]["name"] = "crontabz.stable.example.com"
    rival["spec"]["names"] = {"plural": "crontabz", "singular": "crontabz", "kind": "CronTab"}
    kubectl(crd_master, "new", "create", "-f", "-", input=json.dumps(rival))
    ext = client.ApiextensionsV1Api(api)

    def refused() -> bool:
        crd = ext.read_custom_resource_definition("crontabz.stable.example.com")
        conds = {c.type: c for c in crd.status.conditions or []}
        return "NamesAccepted" in conds and conds["NamesAccepted"].status == "False"

    wait_for(refused, 5, "the newer CRD's names are refused")
    crd = ext.read_custom_resource_definition("crontabz.stable.example.com")
    conds = {c.type: c for c in crd.status.conditions}
    assert conds["NamesAccepted"].reason == "KindConflict" and conds["Established"].status == "False"
    assert '"CronTab" is already in use' in conds["NamesAccepted"].message
    proc = kubectl(crd_master, "new", "get", "crontabz", check=False)
    assert proc.returncode != 0
    table = kubectl(crd_master, "new", "get", "crd").stdout
    assert "crontabz.stable.example.com" in table and "crontabs.stable.example.com" in table
    kubectl(crd_master, "new", "delete", "crd", "crontabz.stable.example.com")


@pytest.mark.parametrize("which", ["old", "new"])
def test_kubectl_waits_for_established_and_lists_crds(crd_master: RunningMaster, crontabs: None, which: str) -> None:
    out = kubectl(crd_master, which, "wait", "--for=condition=Established", "--timeout=5s",
                  "crd/crontabs.stable.example.com").stdout
    assert "condition met" in out
    table = kubectl(crd_master, which, "get", "crd").stdout.splitlines()
    assert table[0].split() == ["NAME", "CREATED", "AT"]
    assert any(line.startswith("crontabs.stable.example.com ") for line in table)
    resources = kubectl(crd_master, which, "api-resources", "--api-group", GROUP).stdout
    assert "crontabs" in resources and "ct" in resources and "CronTab" in resources


def test_a_kind_without_its_crd_gets_kubectls_mapping_error(crd_master: RunningMaster) -> None:
    """kubectl 1.33 lists the CRDs when a manifest names a kind the server does not know: that list works, so it
    says the kind is not installed instead of 'failed to check CRD: ... could not find the requested resource'."""
    obj = {"apiVersion": "missing.example.com/v1", "kind": "Nothing", "metadata": {"name": "x"}}
    proc = kubectl(crd_master, "new", "apply", "-f", "-", input=json.dumps(obj), check=False)
    assert proc.returncode != 0
    assert 'no matches for kind "Nothing" in version "missing.example.com/v1"' in proc.stderr
    assert "failed to check CRD" not in proc.stderr


def test_deleting_a_namespace_deletes_its_custom_resources(api: client.ApiClient, crontabs: None) -> None:
    core, objs = client.CoreV1Api(api), client.CustomObjectsApi(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="crs-go")))
    objs.create_namespaced_custom_object(GROUP, "v1", "crs-go", "crontabs", crontab("in-ns"))
    core.delete_namespace("crs-go")

    def namespace_gone() -> bool:
        try:
            core.read_namespace("crs-go")
            return False
        except ApiException as exc:
            return exc.status == 404

    wait_for(namespace_gone, 15, "the namespace (and the CronTab in it) is deleted")
    assert objs.list_cluster_custom_object(GROUP, "v1", "crontabs", field_selector="metadata.namespace=crs-go")[
        "items"] == []


@pytest.mark.parametrize("which", ["old", "new"])
def test_server_side_apply_of_custom_resources_follows_the_crd_schema(crd_master: RunningMaster, crontabs: None,
                                                                      which: str) -> None:
    """The list-map `containers` (keyed by name) merges per element: a manager owns only its own containers,
    and dropping one from its manifest removes just that one."""
    name = f"ssa-{which}"
    mine = crontab(name, containers=[{"name": "a", "image": "busybox"}, {"name": "b", "image": "busybox"}])
    kubectl(crd_master, which, "apply", "--server-side", "--field-manager", "mine", "-f", "-", input=json.dumps(mine))
    theirs = crontab(name, containers=[{"name": "c", "image": "nginx"}])
    kubectl(crd_master, which, "apply", "--server-side", "--field-manager", "theirs", "-f", "-",
            input=json.dumps(theirs))
    show = ("--show-managed-fields",) if which == "new" else ()  # kubectl ≥ 1.21 hides them otherwise
    got = json.loads(kubectl(crd_master, which, "get", "ct", name, "-o", "json", *show).stdout)
    assert [c["name"] for c in got["spec"]["containers"]] == ["a", "b", "c"]
    managers = {e["manager"]: e for e in got["metadata"]["managedFields"]}
    assert set(managers) >= {"mine", "theirs"}
    assert list(managers["theirs"]["fieldsV1"]["f:spec"]["f:containers"]) == ['k:{"name":"c"}']
    assert list(managers["mine"]["fieldsV1"]["f:spec"]["f:containers"]) == ['k:{"name":"a"}', 'k:{"name":"b"}']
    mine["spec"]["containers"] = [{"name": "a", "image": "busybox"}]  # b dropped by its only owner
    kubectl(crd_master, which, "apply", "--server-side", "--field-manager", "mine", "-f", "-", input=json.dumps(mine))
    got = json.loads(kubectl(crd_master, which, "get", "ct", name, "-o", "json").stdout)
    assert [c["name"] for c in got["spec"]["containers"]] == ["a", "c"]
    # A value another manager owns is a conflict; --force-conflicts takes it.
    theirs["spec"]["containers"] = [{"name": "c", "image": "nginx"}, {"name": "a", "image": "alpine"}]
    proc = kubectl(crd_master, which, "apply", "--server-side", "--field-manager", "theirs", "-f", "-",
                   input=json.dumps(theirs), check=False)
    assert proc.returncode != 0 and 'conflict with "mine"' in proc.stderr
    assert '.spec.containers[name="a"].image' in proc.stderr
    kubectl(crd_master, which, "apply", "--server-side", "--force-conflicts", "--field-manager", "theirs", "-f", "-",
            input=json.dumps(theirs))
    got = json.loads(kubectl(crd_master, which, "get", "ct", name, "-o", "json").stdout)
    assert {c["name"]: c["image"] for c in got["spec"]["containers"]} == {"a": "alpine", "c": "nginx"}
    bad = crontab(name, replicas=99)  # the schema still applies to an apply
    proc = kubectl(crd_master, which, "apply", "--server-side", "--field-manager", "mine", "-f", "-",
                   input=json.dumps(bad), check=False)
    assert proc.returncode != 0 and "should be less than or equal to 10" in proc.stderr
    kubectl(crd_master, which, "delete", "ct", name)
